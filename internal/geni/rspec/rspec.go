// Package rspec reads and writes GENI RSpec v3 documents
// (http://www.geni.net/resources/rspec/3): the advertisement of this
// aggregate's nodes, requests (parsed strictly, with limits, and bound to
// the nodes that exist) and manifests carrying each sliver's ssh login.
// Extensions in other namespaces are ignored, as the specification asks.
// testdata holds XML Schemas of the three kinds, written for this project
// from the specification's facts (docs/geni.md), that the tests validate
// every document against with xmllint.
package rspec

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/geni"
)

// NS is the RSpec v3 namespace.
const NS = geni.RSpecNS

// What this aggregate advertises for every node.
const (
	HardwareType = "plab-pc"      // a shared PlanetLab node
	SliverType   = "pl-container" // a PlanetLab sliver: a container with the slice's users' keys
	DiskImage    = "default"      // the node's reference image
)

// Limits of a request.
const (
	MaxRequestBytes = 1 << 20
	MaxRequestNodes = 2000
	maxDepth        = 64
)

// Node is one node of the advertisement.
type Node struct {
	ComponentID   string // urn:publicid:IDN+<host>+node+<hostname>
	ComponentName string // the hostname
	Site          string // the site's login_base
	Available     bool
	Latitude      *float64
	Longitude     *float64
	Country       string
}

// Advertisement writes the advertisement of nodes managed by am (the
// aggregate's URN); only available nodes when availableOnly.
func Advertisement(am string, nodes []Node, availableOnly bool, now time.Time) []byte {
	doc := adRSpec{Type: "advertisement", Generated: now.UTC().Format(time.RFC3339), Expires: now.Add(time.Hour).UTC().Format(time.RFC3339),
		XSI: xsiNS, SchemaLocation: NS + " " + NS + "/ad.xsd"}
	for _, n := range nodes {
		if availableOnly && !n.Available {
			continue
		}
		an := adNode{ComponentID: n.ComponentID, ComponentName: n.ComponentName, ComponentManagerID: am, Exclusive: false,
			HardwareType: &named{Name: HardwareType},
			SliverType:   &sliverType{Name: SliverType, DiskImage: &named{Name: DiskImage}},
			Available:    &available{Now: n.Available}}
		if n.Latitude != nil && n.Longitude != nil {
			an.Location = &location{Country: n.Country, Latitude: ftoa(*n.Latitude), Longitude: ftoa(*n.Longitude)}
		}
		doc.Nodes = append(doc.Nodes, an)
	}
	return marshal(doc)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

const xsiNS = "http://www.w3.org/2001/XMLSchema-instance"

type adRSpec struct {
	XMLName        xml.Name `xml:"http://www.geni.net/resources/rspec/3 rspec"`
	XSI            string   `xml:"xmlns:xsi,attr"`
	SchemaLocation string   `xml:"xsi:schemaLocation,attr"`
	Type           string   `xml:"type,attr"`
	Generated      string   `xml:"generated,attr"`
	Expires        string   `xml:"expires,attr"`
	Nodes          []adNode `xml:"node"`
}

type adNode struct {
	ComponentID        string      `xml:"component_id,attr"`
	ComponentName      string      `xml:"component_name,attr"`
	ComponentManagerID string      `xml:"component_manager_id,attr"`
	Exclusive          bool        `xml:"exclusive,attr"`
	HardwareType       *named      `xml:"hardware_type"`
	SliverType         *sliverType `xml:"sliver_type"`
	Location           *location   `xml:"location"`
	Available          *available  `xml:"available"`
}

type named struct {
	Name string `xml:"name,attr"`
}

type sliverType struct {
	Name      string `xml:"name,attr"`
	DiskImage *named `xml:"disk_image"`
}

type location struct {
	Country   string `xml:"country,attr"`
	Latitude  string `xml:"latitude,attr,omitempty"`
	Longitude string `xml:"longitude,attr,omitempty"`
}

type available struct {
	Now bool `xml:"now,attr"`
}

func marshal(v any) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	e := xml.NewEncoder(&b)
	e.Indent("", "  ")
	if err := e.Encode(v); err != nil {
		panic(fmt.Sprintf("rspec: encoding %T: %v", v, err)) // only fixed types of this package
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// RequestNode is one node of a request.
type RequestNode struct {
	ClientID           string
	ComponentID        string // "" = any node (unbound)
	ComponentManagerID string
	SliverType         string // "" = the default
	Exclusive          bool
}

// Request is a parsed request RSpec.
type Request struct {
	Nodes []RequestNode
}

type reqRSpec struct {
	XMLName xml.Name  `xml:"rspec"`
	Type    string    `xml:"type,attr"`
	Nodes   []reqNode `xml:"http://www.geni.net/resources/rspec/3 node"`
	Links   []struct {
		ClientID string `xml:"client_id,attr"`
	} `xml:"http://www.geni.net/resources/rspec/3 link"`
}

type reqNode struct {
	ClientID           string `xml:"client_id,attr"`
	ComponentID        string `xml:"component_id,attr"`
	ComponentManagerID string `xml:"component_manager_id,attr"`
	Exclusive          string `xml:"exclusive,attr"`
	SliverTypes        []struct {
		Name string `xml:"name,attr"`
	} `xml:"http://www.geni.net/resources/rspec/3 sliver_type"`
}

// ParseRequest reads a request RSpec. Errors are *geni.Error: TooBig for
// a document over MaxRequestBytes or with more than MaxRequestNodes nodes,
// Unsupported for links and exclusive nodes, BadArgs for anything
// malformed, each naming what and where.
func ParseRequest(data []byte) (*Request, error) {
	if len(data) > MaxRequestBytes {
		return nil, geni.Errorf(geni.TooBig, "request RSpec of %d bytes: at most %d", len(data), MaxRequestBytes)
	}
	if err := scan(data); err != nil {
		return nil, err
	}
	var doc reqRSpec
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, geni.Errorf(geni.BadArgs, "request RSpec: %v", err)
	}
	if doc.XMLName.Space != NS || doc.XMLName.Local != "rspec" {
		return nil, geni.Errorf(geni.BadArgs, "request RSpec: root <%s> in namespace %q, want <rspec> in %s", doc.XMLName.Local, doc.XMLName.Space, NS)
	}
	if doc.Type != "request" {
		return nil, geni.Errorf(geni.BadArgs, "request RSpec: type %q, want request", clip(doc.Type))
	}
	if len(doc.Links) > 0 {
		return nil, geni.Errorf(geni.Unsupported, "request RSpec: link %q: links between slivers are not supported (PlanetLab slivers share the nodes' Internet connection)", clip(doc.Links[0].ClientID))
	}
	if len(doc.Nodes) == 0 {
		return nil, geni.Errorf(geni.BadArgs, "request RSpec: no <node>")
	}
	if len(doc.Nodes) > MaxRequestNodes {
		return nil, geni.Errorf(geni.TooBig, "request RSpec: %d nodes, at most %d", len(doc.Nodes), MaxRequestNodes)
	}
	r := &Request{}
	seen := map[string]bool{}
	for i, n := range doc.Nodes {
		rn := RequestNode{ClientID: n.ClientID, ComponentID: strings.TrimSpace(n.ComponentID), ComponentManagerID: strings.TrimSpace(n.ComponentManagerID)}
		where := fmt.Sprintf("node %d (client_id %q)", i+1, clip(n.ClientID))
		switch {
		case n.ClientID == "":
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: node %d has no client_id", i+1)
		case len(n.ClientID) > 128 || strings.ContainsAny(n.ClientID, " \t\r\n\x00"):
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: %s: client_id must be at most 128 characters without spaces", where)
		case seen[n.ClientID]:
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: %s: client_id used twice", where)
		}
		seen[n.ClientID] = true
		switch strings.TrimSpace(n.Exclusive) {
		case "", "false", "0":
		case "true", "1":
			return nil, geni.Errorf(geni.Unsupported, "request RSpec: %s: exclusive nodes are not supported (PlanetLab nodes are shared)", where)
		default:
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: %s: exclusive=%q is not a boolean", where, clip(n.Exclusive))
		}
		if len(n.SliverTypes) > 1 {
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: %s: more than one sliver_type", where)
		}
		if len(n.SliverTypes) == 1 {
			rn.SliverType = n.SliverTypes[0].Name
			if rn.SliverType != SliverType {
				return nil, geni.Errorf(geni.BadArgs, "request RSpec: %s: sliver_type %q, this aggregate has only %q", where, clip(rn.SliverType), SliverType)
			}
		}
		r.Nodes = append(r.Nodes, rn)
	}
	return r, nil
}

// scan refuses DTDs (entities) and documents too deep, before decoding.
func scan(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		t, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			line, _ := d.InputPos()
			return geni.Errorf(geni.BadArgs, "request RSpec: not well-formed XML at line %d: %v", line, err)
		}
		switch t.(type) {
		case xml.Directive:
			return geni.Errorf(geni.BadArgs, "request RSpec: a DTD or other <!...> directive is not accepted")
		case xml.StartElement:
			if depth++; depth > maxDepth {
				return geni.Errorf(geni.BadArgs, "request RSpec: nested deeper than %d", maxDepth)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// Bound is a request node bound to a node of this aggregate.
type Bound struct {
	ClientID string
	Node     Node
}

// Bind binds every node of the request to one of nodes (the aggregate's,
// am its URN): bound nodes by component_id, unbound ones to available nodes
// not otherwise used. A slice has at most one sliver per node. Errors:
// BadArgs for another aggregate's node, SearchFailed for an unknown node,
// Unavailable for one that is not available, TooBig when the request asks
// for more nodes than there are.
func Bind(r *Request, am string, nodes []Node) ([]Bound, error) {
	byID := map[string]Node{}
	for _, n := range nodes {
		byID[strings.ToLower(n.ComponentID)] = n
	}
	used := map[string]string{} // component_id -> client_id
	out := make([]Bound, len(r.Nodes))
	var unbound []int
	for i, rn := range r.Nodes {
		if rn.ComponentManagerID != "" && !strings.EqualFold(rn.ComponentManagerID, am) {
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: node %q is for aggregate %s, this is %s", rn.ClientID, clip(rn.ComponentManagerID), am)
		}
		if rn.ComponentID == "" {
			unbound = append(unbound, i)
			continue
		}
		n, ok := byID[strings.ToLower(rn.ComponentID)]
		if !ok {
			return nil, geni.Errorf(geni.SearchFailed, "request RSpec: node %q: no node %s at this aggregate", rn.ClientID, clip(rn.ComponentID))
		}
		if other, dup := used[n.ComponentID]; dup {
			return nil, geni.Errorf(geni.TooBig, "request RSpec: nodes %q and %q both ask for %s: a slice has one sliver per node", other, rn.ClientID, n.ComponentName)
		}
		if !n.Available {
			return nil, geni.Errorf(geni.Unavailable, "request RSpec: node %q: %s is not available now", rn.ClientID, n.ComponentName)
		}
		used[n.ComponentID] = rn.ClientID
		out[i] = Bound{ClientID: rn.ClientID, Node: n}
	}
	if len(unbound) > 0 {
		var free []Node
		for _, n := range nodes {
			if _, taken := used[n.ComponentID]; !taken && n.Available {
				free = append(free, n)
			}
		}
		if len(unbound) > len(free) {
			return nil, geni.Errorf(geni.TooBig, "request RSpec: %d nodes without component_id, but only %d more nodes are available", len(unbound), len(free))
		}
		for j, i := range unbound {
			out[i] = Bound{ClientID: r.Nodes[i].ClientID, Node: free[j]}
		}
	}
	return out, nil
}

// Login is how to log into a sliver.
type Login struct {
	Hostname string
	Port     int
	Username string
}

// ManifestNode is one sliver in a manifest.
type ManifestNode struct {
	ClientID           string
	ComponentID        string
	ComponentName      string
	ComponentManagerID string
	SliverID           string
	Logins             []Login
}

// Manifest writes a manifest of nodes, valid until expires.
func Manifest(nodes []ManifestNode, now, expires time.Time) []byte {
	doc := manRSpec{Type: "manifest", Generated: now.UTC().Format(time.RFC3339), Expires: expires.UTC().Format(time.RFC3339),
		XSI: xsiNS, SchemaLocation: NS + " " + NS + "/manifest.xsd"}
	for _, n := range nodes {
		mn := manNode{ClientID: n.ClientID, ComponentID: n.ComponentID, ComponentManagerID: n.ComponentManagerID,
			SliverID: n.SliverID, Exclusive: false, SliverType: &named{Name: SliverType}, Host: &named{Name: n.ComponentName}}
		if len(n.Logins) > 0 {
			mn.Services = &services{}
			for _, l := range n.Logins {
				mn.Services.Logins = append(mn.Services.Logins, login{Authentication: "ssh-keys", Hostname: l.Hostname, Port: l.Port, Username: l.Username})
			}
		}
		doc.Nodes = append(doc.Nodes, mn)
	}
	return marshal(doc)
}

type manRSpec struct {
	XMLName        xml.Name  `xml:"http://www.geni.net/resources/rspec/3 rspec"`
	XSI            string    `xml:"xmlns:xsi,attr"`
	SchemaLocation string    `xml:"xsi:schemaLocation,attr"`
	Type           string    `xml:"type,attr"`
	Generated      string    `xml:"generated,attr"`
	Expires        string    `xml:"expires,attr"`
	Nodes          []manNode `xml:"node"`
}

type manNode struct {
	ClientID           string    `xml:"client_id,attr"`
	ComponentID        string    `xml:"component_id,attr"`
	ComponentManagerID string    `xml:"component_manager_id,attr"`
	SliverID           string    `xml:"sliver_id,attr"`
	Exclusive          bool      `xml:"exclusive,attr"`
	SliverType         *named    `xml:"sliver_type"`
	Services           *services `xml:"services"`
	Host               *named    `xml:"host"`
}

type services struct {
	Logins []login `xml:"login"`
}

type login struct {
	Authentication string `xml:"authentication,attr"`
	Hostname       string `xml:"hostname,attr"`
	Port           int    `xml:"port,attr"`
	Username       string `xml:"username,attr"`
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
