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
	Links []RequestLink
}

// RequestLink is a point-to-point link of a request between two of its
// nodes, with the RSpec v3 properties this aggregate builds (0: not
// given; a link's properties are the same both ways).
type RequestLink struct {
	ClientID     string
	Nodes        [2]string // the client_ids of the two nodes
	Interfaces   [2]string // the client_ids of their interfaces
	CapacityKbps int64     // capacity, kbit/s
	LatencyUs    int64     // latency, one way, microseconds
	LossPPM      int64     // packet_loss, parts per million
	managers     []string  // component_manager names (checked by Bind)
}

// MaxRequestLinks bounds the links of a request (a slice's topology has
// at most 63, package core/vlinks).
const MaxRequestLinks = 63

type reqRSpec struct {
	XMLName xml.Name  `xml:"rspec"`
	Type    string    `xml:"type,attr"`
	Nodes   []reqNode `xml:"http://www.geni.net/resources/rspec/3 node"`
	Links   []reqLink `xml:"http://www.geni.net/resources/rspec/3 link"`
}

type reqLink struct {
	ClientID          string  `xml:"client_id,attr"`
	ComponentManagers []named `xml:"http://www.geni.net/resources/rspec/3 component_manager"`
	InterfaceRefs     []struct {
		ClientID string `xml:"client_id,attr"`
	} `xml:"http://www.geni.net/resources/rspec/3 interface_ref"`
	Properties []struct {
		Source     string `xml:"source_id,attr"`
		Dest       string `xml:"dest_id,attr"`
		Capacity   string `xml:"capacity,attr"`
		Latency    string `xml:"latency,attr"`
		PacketLoss string `xml:"packet_loss,attr"`
	} `xml:"http://www.geni.net/resources/rspec/3 property"`
	LinkTypes []named `xml:"http://www.geni.net/resources/rspec/3 link_type"`
}

type reqNode struct {
	ClientID           string `xml:"client_id,attr"`
	ComponentID        string `xml:"component_id,attr"`
	ComponentManagerID string `xml:"component_manager_id,attr"`
	Exclusive          string `xml:"exclusive,attr"`
	SliverTypes        []struct {
		Name string `xml:"name,attr"`
	} `xml:"http://www.geni.net/resources/rspec/3 sliver_type"`
	Interfaces []struct {
		ClientID string `xml:"client_id,attr"`
	} `xml:"http://www.geni.net/resources/rspec/3 interface"`
}

// ParseRequest reads a request RSpec. Errors are *geni.Error: TooBig for
// a document over MaxRequestBytes, with more than MaxRequestNodes nodes or
// MaxRequestLinks links; Unsupported for exclusive nodes and links this
// aggregate cannot build (LANs of more than two nodes, other aggregates'
// links, link types other than lan and vlan, properties that differ by
// direction); BadArgs for anything malformed, each naming what and where.
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
	ifaces := map[string]string{} // interface client_id -> node client_id
	for i, n := range doc.Nodes {
		for _, in := range n.Interfaces {
			switch {
			case in.ClientID == "":
				return nil, geni.Errorf(geni.BadArgs, "request RSpec: node %d (client_id %q): an interface without client_id", i+1, clip(n.ClientID))
			case len(in.ClientID) > 128 || strings.ContainsAny(in.ClientID, " \t\r\n\x00"):
				return nil, geni.Errorf(geni.BadArgs, "request RSpec: interface %q: client_id must be at most 128 characters without spaces", clip(in.ClientID))
			case ifaces[in.ClientID] != "":
				return nil, geni.Errorf(geni.BadArgs, "request RSpec: interface client_id %q used twice", clip(in.ClientID))
			}
			ifaces[in.ClientID] = n.ClientID
		}
	}
	if len(doc.Links) > MaxRequestLinks {
		return nil, geni.Errorf(geni.TooBig, "request RSpec: %d links, at most %d", len(doc.Links), MaxRequestLinks)
	}
	links := map[string]bool{}
	for i, l := range doc.Links {
		rl, err := parseLink(i, l, ifaces)
		if err != nil {
			return nil, err
		}
		if links[rl.ClientID] || seen[rl.ClientID] {
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: link %q: client_id used twice", clip(rl.ClientID))
		}
		links[rl.ClientID] = true
		r.Links = append(r.Links, rl)
	}
	return r, nil
}

// parseLink reads link i of a request; ifaces maps the nodes' interfaces
// to their nodes.
func parseLink(i int, l reqLink, ifaces map[string]string) (RequestLink, error) {
	rl := RequestLink{ClientID: l.ClientID}
	where := fmt.Sprintf("link %d (client_id %q)", i+1, clip(l.ClientID))
	switch {
	case l.ClientID == "":
		return rl, geni.Errorf(geni.BadArgs, "request RSpec: link %d has no client_id", i+1)
	case len(l.ClientID) > 128 || strings.ContainsAny(l.ClientID, " \t\r\n\x00"):
		return rl, geni.Errorf(geni.BadArgs, "request RSpec: %s: client_id must be at most 128 characters without spaces", where)
	}
	for _, cm := range l.ComponentManagers {
		if strings.TrimSpace(cm.Name) == "" {
			return rl, geni.Errorf(geni.BadArgs, "request RSpec: %s: a component_manager without name", where)
		}
		rl.managers = append(rl.managers, strings.TrimSpace(cm.Name))
	}
	for _, t := range l.LinkTypes {
		if n := strings.TrimSpace(t.Name); n != "lan" && n != "vlan" {
			return rl, geni.Errorf(geni.Unsupported, "request RSpec: %s: link_type %q is not supported (this aggregate builds lan and vlan links: a virtual link between two slivers)", where, clip(n))
		}
	}
	switch n := len(l.InterfaceRefs); {
	case n > 2:
		return rl, geni.Errorf(geni.Unsupported, "request RSpec: %s: %d interfaces: a link of this aggregate joins two nodes (LANs of more are not supported)", where, n)
	case n < 2:
		return rl, geni.Errorf(geni.BadArgs, "request RSpec: %s: %d interface_ref, a link joins two", where, n)
	}
	for j, ref := range l.InterfaceRefs {
		node, ok := ifaces[ref.ClientID]
		if !ok {
			return rl, geni.Errorf(geni.BadArgs, "request RSpec: %s: interface_ref %q: no node of the request has that interface", where, clip(ref.ClientID))
		}
		rl.Interfaces[j], rl.Nodes[j] = ref.ClientID, node
	}
	if rl.Nodes[0] == rl.Nodes[1] {
		return rl, geni.Errorf(geni.BadArgs, "request RSpec: %s: both interfaces are on node %q (a link joins two nodes)", where, clip(rl.Nodes[0]))
	}
	type props struct{ cap, lat, loss int64 }
	var dirs []props
	for _, p := range l.Properties {
		ends := map[string]bool{rl.Interfaces[0]: true, rl.Interfaces[1]: true}
		if !ends[p.Source] || !ends[p.Dest] || p.Source == p.Dest {
			return rl, geni.Errorf(geni.BadArgs, "request RSpec: %s: property from %q to %q: want one interface of the link to the other", where, clip(p.Source), clip(p.Dest))
		}
		var pr props
		var err error
		if pr.cap, err = number(p.Capacity, where, "capacity", 1, 1, 1<<40); err != nil {
			return rl, err
		}
		if pr.lat, err = number(p.Latency, where, "latency", 1000, 0, 1<<40); err != nil {
			return rl, err
		}
		if pr.loss, err = number(p.PacketLoss, where, "packet_loss", 1_000_000, 0, 1_000_000); err != nil {
			return rl, err
		}
		if len(dirs) > 0 && dirs[0] != pr {
			return rl, geni.Errorf(geni.Unsupported, "request RSpec: %s: the properties differ by direction: this aggregate's links are the same both ways", where)
		}
		dirs = append(dirs, pr)
	}
	if len(dirs) > 0 {
		rl.CapacityKbps, rl.LatencyUs, rl.LossPPM = dirs[0].cap, dirs[0].lat, dirs[0].loss
	}
	return rl, nil
}

// number reads a property: a decimal number (or "" for none: 0), scaled
// by scale and rounded to a whole number, in [lo, hi] when given.
func number(v, where, name string, scale float64, lo, hi int64) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f || f < 0 || f*scale > float64(hi) {
		return 0, geni.Errorf(geni.BadArgs, "request RSpec: %s: %s %q is impossible: want a number from %g to %g", where, name, clip(v), float64(lo)/scale, float64(hi)/scale)
	}
	n := int64(f*scale + 0.5)
	if n < lo {
		return 0, geni.Errorf(geni.BadArgs, "request RSpec: %s: %s %q is impossible: want a number from %g to %g", where, name, clip(v), float64(lo)/scale, float64(hi)/scale)
	}
	return n, nil
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
	for _, l := range r.Links {
		for _, m := range l.managers {
			if !strings.EqualFold(m, am) {
				return nil, geni.Errorf(geni.Unsupported, "request RSpec: link %q spans aggregate %s: links between aggregates (stitching) are not supported", l.ClientID, clip(m))
			}
		}
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
	Interfaces         []ManifestInterface
}

// ManifestInterface is an interface of a sliver: a link's end.
type ManifestInterface struct {
	ClientID string
	Address  string // IPv4, "" until the link is built (provisioned)
	Netmask  string
}

// ManifestLink is a link between two slivers in a manifest.
type ManifestLink struct {
	ClientID     string
	SliverID     string
	Interfaces   [2]string // client_ids
	CapacityKbps int64
	LatencyUs    int64
	LossPPM      int64
}

// Manifest writes a manifest of nodes and links, valid until expires.
func Manifest(nodes []ManifestNode, links []ManifestLink, now, expires time.Time) []byte {
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
		for _, in := range n.Interfaces {
			mi := manInterface{ClientID: in.ClientID}
			if in.Address != "" {
				mi.IP = &manIP{Address: in.Address, Netmask: in.Netmask, Type: "ipv4"}
			}
			mn.Interfaces = append(mn.Interfaces, mi)
		}
		doc.Nodes = append(doc.Nodes, mn)
	}
	for _, l := range links {
		ml := manLink{ClientID: l.ClientID, SliverID: l.SliverID, LinkType: &named{Name: "lan"}}
		for _, in := range l.Interfaces {
			ml.InterfaceRefs = append(ml.InterfaceRefs, manRef{ClientID: in})
		}
		for _, d := range [][2]string{{l.Interfaces[0], l.Interfaces[1]}, {l.Interfaces[1], l.Interfaces[0]}} {
			ml.Properties = append(ml.Properties, manProperty{Source: d[0], Dest: d[1], Capacity: strconv.FormatInt(l.CapacityKbps, 10),
				Latency: strconv.FormatFloat(float64(l.LatencyUs)/1000, 'f', -1, 64), PacketLoss: strconv.FormatFloat(float64(l.LossPPM)/1e6, 'f', -1, 64)})
		}
		doc.Links = append(doc.Links, ml)
	}
	return marshal(doc)
}

type manLink struct {
	ClientID      string        `xml:"client_id,attr"`
	SliverID      string        `xml:"sliver_id,attr"`
	InterfaceRefs []manRef      `xml:"interface_ref"`
	Properties    []manProperty `xml:"property"`
	LinkType      *named        `xml:"link_type"`
}

type manRef struct {
	ClientID string `xml:"client_id,attr"`
}

type manProperty struct {
	Source     string `xml:"source_id,attr"`
	Dest       string `xml:"dest_id,attr"`
	Capacity   string `xml:"capacity,attr"`
	Latency    string `xml:"latency,attr"`
	PacketLoss string `xml:"packet_loss,attr"`
}

type manInterface struct {
	ClientID string `xml:"client_id,attr"`
	IP       *manIP `xml:"ip"`
}

type manIP struct {
	Address string `xml:"address,attr"`
	Netmask string `xml:"netmask,attr"`
	Type    string `xml:"type,attr"`
}

type manRSpec struct {
	XMLName        xml.Name  `xml:"http://www.geni.net/resources/rspec/3 rspec"`
	XSI            string    `xml:"xmlns:xsi,attr"`
	SchemaLocation string    `xml:"xsi:schemaLocation,attr"`
	Type           string    `xml:"type,attr"`
	Generated      string    `xml:"generated,attr"`
	Expires        string    `xml:"expires,attr"`
	Nodes          []manNode `xml:"node"`
	Links          []manLink `xml:"link"`
}

type manNode struct {
	ClientID           string         `xml:"client_id,attr"`
	ComponentID        string         `xml:"component_id,attr"`
	ComponentManagerID string         `xml:"component_manager_id,attr"`
	SliverID           string         `xml:"sliver_id,attr"`
	Exclusive          bool           `xml:"exclusive,attr"`
	SliverType         *named         `xml:"sliver_type"`
	Services           *services      `xml:"services"`
	Host               *named         `xml:"host"`
	Interfaces         []manInterface `xml:"interface"`
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
