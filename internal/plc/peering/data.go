package peering

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/restapi"
)

// Data is what a PLC hands a peer (the original's GetPeerData answer, with
// its field names): its public registry as seen by that peer. Ids are the
// sender's. Sites and Nodes are every local site and node (whitelisted
// nodes left out); Slices are the sender's local slices that use a node of
// the receiving peer, Persons their members, Keys those persons' keys;
// PeerNodes are the receiver's nodes as the sender knows them (peer_node_id
// is the receiver's own id), so that the receiver can map a slice's
// node_ids onto its own nodes; PeerPersons likewise are the receiver's
// persons among the members of those slices (peer_person_id is the
// receiver's own id), so that the slivers on the receiver's nodes get
// those persons' keys as the receiver knows them.
type Data struct {
	Sites       []Site   `json:"Sites"`
	Keys        []Key    `json:"Keys"`
	Nodes       []Node   `json:"Nodes"`
	Persons     []Person `json:"Persons"`
	Slices      []Slice  `json:"Slices"`
	PeerNodes   []Node   `json:"PeerNodes"`
	PeerPersons []Person `json:"PeerPersons,omitempty"`
	DBTime      float64  `json:"db_time"`
}

// Site is a site in peer data.
type Site struct {
	SiteID          int64    `json:"site_id"`
	LoginBase       string   `json:"login_base"`
	Name            string   `json:"name"`
	AbbreviatedName string   `json:"abbreviated_name"`
	URL             *string  `json:"url"`
	Enabled         bool     `json:"enabled"`
	IsPublic        bool     `json:"is_public"`
	Latitude        *float64 `json:"latitude"`
	Longitude       *float64 `json:"longitude"`
	MaxSlices       int64    `json:"max_slices"`
	MaxSlivers      int64    `json:"max_slivers"`
}

// Person is an account in peer data (never its password or secrets).
type Person struct {
	PersonID  int64   `json:"person_id"`
	Email     string  `json:"email"`
	FirstName string  `json:"first_name"`
	LastName  string  `json:"last_name"`
	Enabled   bool    `json:"enabled"`
	SiteIDs   []int64 `json:"site_ids"`
	// PeerPersonID is, in PeerPersons, the receiver's own id of the person.
	PeerPersonID *int64 `json:"peer_person_id,omitempty"`
}

// Key is an ssh key in peer data.
type Key struct {
	KeyID    int64  `json:"key_id"`
	PersonID int64  `json:"person_id"`
	KeyType  string `json:"key_type"`
	Key      string `json:"key"`
}

// Node is a node in peer data (never its key, session or boot nonce).
type Node struct {
	NodeID     int64  `json:"node_id"`
	Hostname   string `json:"hostname"`
	SiteID     int64  `json:"site_id"`
	NodeType   string `json:"node_type"`
	BootState  string `json:"boot_state"`
	PeerNodeID *int64 `json:"peer_node_id"`
}

// Slice is a slice in peer data.
type Slice struct {
	SliceID       int64   `json:"slice_id"`
	Name          string  `json:"name"`
	SiteID        int64   `json:"site_id"`
	Instantiation string  `json:"instantiation"`
	URL           *string `json:"url"`
	Description   *string `json:"description"`
	MaxNodes      int64   `json:"max_nodes"`
	Created       int64   `json:"created"`
	Expires       int64   `json:"expires"`
	NodeIDs       []int64 `json:"node_ids"`
	PersonIDs     []int64 `json:"person_ids"`
	// Tags are the slice-wide tags a member may set (CarriedTag).
	Tags []SliceTag `json:"tags,omitempty"`
}

// SliceTag is a slice-wide tag of a slice in peer data.
type SliceTag struct {
	Tagname string `json:"tagname"`
	Value   string `json:"value"`
}

// CarriedTag reports whether a slice-wide tag travels with a slice to its
// peers: a tag of core/tags that the slice's own PI or users may set
// (init scripts, ports, image, ...), so a peer's slice gets no more there
// than a local member could give it; never "enabled", which a PLC decides
// for itself (suspensions). Both sides apply it: the receiver does not
// trust the sender's choice.
func CarriedTag(name string) bool {
	t, ok := tags.Lookup(name)
	if !ok || name == tags.Enabled {
		return false
	}
	return slices.Contains(t.Roles, core.RolePI) || slices.Contains(t.Roles, core.RoleUser)
}

// MaxDataBytes bounds the peer data a PLC accepts.
const MaxDataBytes = 64 << 20

// Bounds of peer data values (the registry's column limits).
const (
	maxName     = 254
	maxKey      = 4096
	maxTags     = 256
	maxTagValue = 64 << 10
)

// DecodeData decodes and checks peer data from an untrusted peer: JSON
// syntax (no key twice in an object), types, sizes, non-positive or
// duplicate ids, empty names and references to objects the data does not
// carry. The error names the first offence; a nil error means every
// object is well formed. Unknown fields are ignored (the original sends
// many more).
func DecodeData(b []byte) (*Data, error) {
	if len(b) > MaxDataBytes {
		return nil, fmt.Errorf("peer data of %d bytes exceeds %d", len(b), MaxDataBytes)
	}
	if _, err := restapi.DecodeJSON(b); err != nil {
		return nil, fmt.Errorf("peer data: %v", err)
	}
	var d Data
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("peer data: %v", restapi.JSONErrText(err))
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return &d, nil
}

type idSet map[int64]bool

func ids[T any](what string, list []T, id func(T) int64) (idSet, error) {
	s := idSet{}
	for i, x := range list {
		n := id(x)
		if n <= 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("%s[%d]: id %d out of range", what, i, n)
		}
		if s[n] {
			return nil, fmt.Errorf("%s[%d]: duplicate id %d", what, i, n)
		}
		s[n] = true
	}
	return s, nil
}

// distinct refuses an id given twice in a list.
func distinct(where, field string, list []int64) error {
	seen := make(map[int64]bool, len(list))
	for _, id := range list {
		if seen[id] {
			return fmt.Errorf("%s: %s names %d twice", where, field, id)
		}
		seen[id] = true
	}
	return nil
}

func text(where, field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s: %s is empty", where, field)
	}
	if len(v) > max {
		return fmt.Errorf("%s: %s is %d bytes, at most %d", where, field, len(v), max)
	}
	if strings.ContainsRune(v, 0) {
		return fmt.Errorf("%s: %s contains a NUL byte", where, field)
	}
	return nil
}

func finite(where, field string, f *float64) error {
	if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
		return fmt.Errorf("%s: %s is not finite", where, field)
	}
	return nil
}

// Check checks the data's consistency (see DecodeData).
func (d *Data) Check() error {
	sites, err := ids("Sites", d.Sites, func(s Site) int64 { return s.SiteID })
	if err != nil {
		return err
	}
	nodes, err := ids("Nodes", d.Nodes, func(n Node) int64 { return n.NodeID })
	if err != nil {
		return err
	}
	persons, err := ids("Persons", d.Persons, func(p Person) int64 { return p.PersonID })
	if err != nil {
		return err
	}
	if _, err := ids("Keys", d.Keys, func(k Key) int64 { return k.KeyID }); err != nil {
		return err
	}
	if _, err := ids("Slices", d.Slices, func(s Slice) int64 { return s.SliceID }); err != nil {
		return err
	}
	peerNodes, err := ids("PeerNodes", d.PeerNodes, func(n Node) int64 { return n.NodeID })
	if err != nil {
		return err
	}
	peerPersons, err := ids("PeerPersons", d.PeerPersons, func(p Person) int64 { return p.PersonID })
	if err != nil {
		return err
	}
	names := map[string]string{}
	unique := func(kind, name, where string) error {
		k := kind + "\x00" + strings.ToLower(name)
		if prev, dup := names[k]; dup {
			return fmt.Errorf("%s: %s %q already named by %s", where, kind, name, prev)
		}
		names[k] = where
		return nil
	}
	for i, s := range d.Sites {
		w := fmt.Sprintf("Sites[%d] (site_id %d)", i, s.SiteID)
		for _, e := range []error{
			text(w, "login_base", s.LoginBase, 32, true), text(w, "name", s.Name, maxName, true),
			text(w, "abbreviated_name", s.AbbreviatedName, 50, false), finite(w, "latitude", s.Latitude), finite(w, "longitude", s.Longitude),
			unique("login_base", s.LoginBase, w),
		} {
			if e != nil {
				return e
			}
		}
		if s.URL != nil {
			if err := text(w, "url", *s.URL, maxName, false); err != nil {
				return err
			}
		}
	}
	for i, n := range d.Nodes {
		w := fmt.Sprintf("Nodes[%d] (node_id %d)", i, n.NodeID)
		if err := text(w, "hostname", n.Hostname, 255, true); err != nil {
			return err
		}
		if err := unique("hostname", n.Hostname, w); err != nil {
			return err
		}
		if !sites[n.SiteID] {
			return fmt.Errorf("%s: site_id %d is not among the Sites", w, n.SiteID)
		}
		if err := text(w, "node_type", n.NodeType, 20, false); err != nil {
			return err
		}
		if err := text(w, "boot_state", n.BootState, 20, false); err != nil {
			return err
		}
	}
	ownNodes := map[int64]string{}
	for i, n := range d.PeerNodes {
		w := fmt.Sprintf("PeerNodes[%d] (node_id %d)", i, n.NodeID)
		if nodes[n.NodeID] {
			return fmt.Errorf("%s: node_id %d is also among the Nodes", w, n.NodeID)
		}
		if n.PeerNodeID == nil || *n.PeerNodeID <= 0 {
			return fmt.Errorf("%s: no peer_node_id", w)
		}
		if prev, dup := ownNodes[*n.PeerNodeID]; dup {
			return fmt.Errorf("%s: peer_node_id %d already named by %s", w, *n.PeerNodeID, prev)
		}
		ownNodes[*n.PeerNodeID] = w
	}
	ownPersons := map[int64]string{}
	for i, p := range d.PeerPersons {
		w := fmt.Sprintf("PeerPersons[%d] (person_id %d)", i, p.PersonID)
		if persons[p.PersonID] {
			return fmt.Errorf("%s: person_id %d is also among the Persons", w, p.PersonID)
		}
		if p.PeerPersonID == nil || *p.PeerPersonID <= 0 || *p.PeerPersonID > math.MaxInt32 {
			return fmt.Errorf("%s: no peer_person_id", w)
		}
		if prev, dup := ownPersons[*p.PeerPersonID]; dup {
			return fmt.Errorf("%s: peer_person_id %d already named by %s", w, *p.PeerPersonID, prev)
		}
		ownPersons[*p.PeerPersonID] = w
		if err := text(w, "email", p.Email, maxName, false); err != nil {
			return err
		}
	}
	for i, p := range d.Persons {
		w := fmt.Sprintf("Persons[%d] (person_id %d)", i, p.PersonID)
		if err := text(w, "email", p.Email, maxName, true); err != nil {
			return err
		}
		if !strings.Contains(p.Email, "@") {
			return fmt.Errorf("%s: email %q is not an address", w, p.Email)
		}
		if err := unique("email", p.Email, w); err != nil {
			return err
		}
		if err := text(w, "first_name", p.FirstName, 128, false); err != nil {
			return err
		}
		if err := text(w, "last_name", p.LastName, 128, false); err != nil {
			return err
		}
		for _, s := range p.SiteIDs {
			if !sites[s] {
				return fmt.Errorf("%s: site_ids names site %d, not among the Sites", w, s)
			}
		}
		if err := distinct(w, "site_ids", p.SiteIDs); err != nil {
			return err
		}
	}
	for i, k := range d.Keys {
		w := fmt.Sprintf("Keys[%d] (key_id %d)", i, k.KeyID)
		if !persons[k.PersonID] {
			return fmt.Errorf("%s: person_id %d is not among the Persons", w, k.PersonID)
		}
		if err := text(w, "key", k.Key, maxKey, true); err != nil {
			return err
		}
		if err := text(w, "key_type", k.KeyType, 20, false); err != nil {
			return err
		}
	}
	for i, s := range d.Slices {
		w := fmt.Sprintf("Slices[%d] (slice_id %d)", i, s.SliceID)
		if err := text(w, "name", s.Name, 64, true); err != nil {
			return err
		}
		if err := unique("slice", s.Name, w); err != nil {
			return err
		}
		if !sites[s.SiteID] {
			return fmt.Errorf("%s: site_id %d is not among the Sites", w, s.SiteID)
		}
		for _, f := range []struct {
			name string
			v    *string
			max  int
		}{{"url", s.URL, maxName}, {"description", s.Description, 2048}} {
			if f.v != nil {
				if err := text(w, f.name, *f.v, f.max, false); err != nil {
					return err
				}
			}
		}
		if err := text(w, "instantiation", s.Instantiation, 20, false); err != nil {
			return err
		}
		for _, n := range s.NodeIDs {
			if !nodes[n] && !peerNodes[n] {
				return fmt.Errorf("%s: node_ids names node %d, among neither Nodes nor PeerNodes", w, n)
			}
		}
		if err := distinct(w, "node_ids", s.NodeIDs); err != nil {
			return err
		}
		if err := distinct(w, "person_ids", s.PersonIDs); err != nil {
			return err
		}
		for _, p := range s.PersonIDs {
			if !persons[p] && !peerPersons[p] {
				return fmt.Errorf("%s: person_ids names person %d, among neither Persons nor PeerPersons", w, p)
			}
		}
		if len(s.Tags) > maxTags {
			return fmt.Errorf("%s: %d tags, at most %d", w, len(s.Tags), maxTags)
		}
		for j, t := range s.Tags {
			tw := fmt.Sprintf("%s tags[%d]", w, j)
			if err := text(tw, "tagname", t.Tagname, 100, true); err != nil {
				return err
			}
			if err := text(tw, "value", t.Value, maxTagValue, false); err != nil {
				return err
			}
		}
	}
	return nil
}
