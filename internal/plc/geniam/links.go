package geniam

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/rspec"
	"github.com/planetlab/pl/internal/sfa"
)

// Links of request RSpecs become statements of the slice's vlinks tag
// (docs/networks.md, package core/vlinks: the one grammar): allocated
// with their nodes (rows of kind link in the aggregate's memory, holding
// the statement), written into the tag when both their nodes are
// provisioned, taken out of it when a node leaves.

// linkSpec is a link row's Spec (JSON).
type linkSpec struct {
	Stmt   string    `json:"vlink"`      // its vlinks statement
	Ifaces [2]string `json:"interfaces"` // the request's interface client_ids
	Hosts  [2]string `json:"hosts"`      // the two nodes' host names, lower case
}

func decodeLinkSpec(s string) (linkSpec, vlinks.Link, bool) {
	var ls linkSpec
	if json.Unmarshal([]byte(s), &ls) != nil {
		return ls, vlinks.Link{}, false
	}
	t, err := vlinks.Parse("prefix 10.0.0.0/30; " + ls.Stmt)
	if err != nil || len(t.Links) != 1 {
		return ls, vlinks.Link{}, false
	}
	return ls, t.Links[0], true
}

// linkName is the vlinks name (the interface's name in both slivers) of
// a link's client_id: its letters and digits, lower case, with an "l"
// first when it does not start with a letter, at most 15.
func linkName(clientID string) string {
	var b []byte
	for i := 0; i < len(clientID); i++ {
		c := clientID[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c-'A'+'a')
		}
	}
	if len(b) == 0 || b[0] < 'a' || b[0] > 'z' {
		b = append([]byte{'l'}, b...)
	}
	if len(b) > 15 {
		b = b[:15]
	}
	return string(b)
}

// defaultPrefix is the private range of a slice whose vlinks tag has
// none: a /24 (64 links) of 100.64.0.0/10, the (slice id mod 16384)-th.
// Two slices with the same one are refused by PLC when the second writes
// its tag (REFUSED: overlapping ranges); its members can set another
// prefix in the tag.
func defaultPrefix(sliceID int64) netip.Prefix {
	i := uint32(sliceID % 16384)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + i>>8), byte(i), 0}), 24)
}

// topology is the slice's vlinks tag, parsed (its id, 0 when none).
func (a *Aggregate) topology(ctx context.Context, c *core.Caller, sliceID int64) (vlinks.Topology, int64, error) {
	recs, err := a.cfg.Registry.Get(ctx, c, core.SliceTag, &core.Filter{Terms: []core.Term{
		{Field: "slice_id", Op: core.Eq, Value: sliceID}, {Field: "tagname", Op: core.Eq, Value: tags.VLinks}}},
		[]string{"slice_tag_id", "value", "node_id"})
	if err != nil {
		return vlinks.Topology{}, 0, err
	}
	for _, r := range recs {
		if n, _ := r["node_id"].(int64); n != 0 {
			continue
		}
		v, _ := r["value"].(string)
		id, _ := r["slice_tag_id"].(int64)
		t, err := vlinks.Parse(v)
		if err != nil {
			return vlinks.Topology{}, 0, err
		}
		return t, id, nil
	}
	return vlinks.Topology{}, 0, nil
}

// planLinks turns a request's links into link rows: one vlinks statement
// each between the hosts its nodes are bound to, checked with package
// vlinks alone (BADARGS naming the link) and with the slice's links
// (its tag, and links allocated before).
func (a *Aggregate) planLinks(ctx context.Context, c *core.Caller, s *slice, req *rspec.Request, bound []rspec.Bound, until int64) ([]core.GENISliver, error) {
	if len(req.Links) == 0 {
		return nil, nil
	}
	host := map[string]string{}
	for _, b := range bound {
		host[b.ClientID] = strings.ToLower(b.Node.ComponentName)
	}
	top, _, err := a.topology(ctx, c, s.id)
	if err != nil {
		return nil, err
	}
	all := []string{}
	for _, l := range top.Links {
		all = append(all, vlinks.Topology{Links: []vlinks.Link{l}}.String())
	}
	for _, r := range s.links {
		if r.AllocatedUntil > 0 {
			if ls, _, ok := decodeLinkSpec(r.Spec); ok {
				all = append(all, ls.Stmt)
			}
		}
	}
	var rows []core.GENISliver
	for _, l := range req.Links {
		name := linkName(l.ClientID)
		stmt := fmt.Sprintf("%s %s %s", name, host[l.Nodes[0]], host[l.Nodes[1]])
		if l.CapacityKbps > 0 {
			stmt += fmt.Sprintf(" rate=%dkbit", l.CapacityKbps)
		}
		if l.LatencyUs > 0 {
			stmt += fmt.Sprintf(" delay=%dus", l.LatencyUs)
		}
		if l.LossPPM > 0 {
			stmt += fmt.Sprintf(" loss=%d.%04d%%", l.LossPPM/10_000, l.LossPPM%10_000)
		}
		if _, err := vlinks.Parse("prefix 10.0.0.0/30; " + stmt); err != nil {
			return nil, geni.Errorf(geni.BadArgs, "request RSpec: link %q (the virtual link %q): %s", l.ClientID, stmt, core.PublicMessage(err))
		}
		all = append(all, stmt)
		b, _ := json.Marshal(linkSpec{Stmt: stmt, Ifaces: l.Interfaces, Hosts: [2]string{host[l.Nodes[0]], host[l.Nodes[1]]}})
		rows = append(rows, core.GENISliver{SliceID: s.id, Kind: core.GENILink, Ref: name, ClientID: l.ClientID, AllocatedUntil: until, Spec: string(b)})
	}
	prefix := top.Prefix
	if !prefix.IsValid() {
		prefix = defaultPrefix(s.id)
	}
	if _, err := vlinks.Parse("prefix " + prefix.String() + "; " + strings.Join(all, "; ")); err != nil {
		return nil, geni.Errorf(geni.BadArgs, "request RSpec: links, with the slice's (interface names are a link's client_id in lower-case letters and digits): %s", core.PublicMessage(err))
	}
	for _, r := range rows {
		for _, old := range s.links {
			if old.Ref == r.Ref {
				return nil, geni.Errorf(geni.AlreadyExists, "slice %s already has a link %q (client_id %q)", s.urn, r.Ref, old.ClientID)
			}
		}
	}
	return rows, nil
}

// buildLinks writes into the slice's vlinks tag the allocated links whose
// two hosts are now nodes of the slice, and returns their rows, marked
// provisioned.
func (a *Aggregate) buildLinks(ctx context.Context, c *core.Caller, s *slice, hosts map[string]bool) ([]core.GENISliver, error) {
	var add []vlinks.Link
	var rows []core.GENISliver
	for _, r := range s.links {
		if r.AllocatedUntil == 0 {
			continue
		}
		ls, l, ok := decodeLinkSpec(r.Spec)
		if !ok || !hosts[ls.Hosts[0]] || !hosts[ls.Hosts[1]] {
			continue
		}
		add = append(add, l)
		r.AllocatedUntil = 0
		rows = append(rows, r)
	}
	if len(add) == 0 {
		return nil, nil
	}
	top, id, err := a.topology(ctx, c, s.id)
	if err != nil {
		return nil, err
	}
	if !top.Prefix.IsValid() {
		top.Prefix = defaultPrefix(s.id)
	}
	top.Links = append(top.Links, add...)
	return rows, a.writeTopology(ctx, c, s.id, id, top)
}

// writeTopology writes the slice's vlinks tag (id 0: a new one); a
// topology without links deletes it.
func (a *Aggregate) writeTopology(ctx context.Context, c *core.Caller, sliceID, id int64, top vlinks.Topology) error {
	switch {
	case len(top.Links) == 0 && id != 0:
		return a.cfg.Registry.Delete(ctx, c, core.SliceTag, id)
	case len(top.Links) == 0:
		return nil
	case id != 0:
		return a.cfg.Registry.Update(ctx, c, core.SliceTag, id, core.Record{"value": top.String()})
	}
	tt, err := a.cfg.Registry.Resolve(ctx, c, core.TagType, tags.VLinks)
	if err != nil {
		return err
	}
	_, err = a.cfg.Registry.Add(ctx, c, core.SliceTag, core.Record{"slice_id": sliceID, "tag_type_id": tt, "value": top.String()})
	return err
}

// dropLinks takes the links touching hosts out of the slice's vlinks tag
// and forgets the link rows touching them (or touching the allocated
// nodes' hosts in allocated).
func (a *Aggregate) dropLinks(ctx context.Context, c *core.Caller, s *slice, hosts map[string]bool) error {
	if len(hosts) == 0 {
		return nil
	}
	top, id, err := a.topology(ctx, c, s.id)
	if err != nil {
		return err
	}
	if id != 0 {
		keep := top.Links[:0:0]
		for _, l := range top.Links {
			if !hosts[l.A] && !hosts[l.B] {
				keep = append(keep, l)
			}
		}
		if len(keep) != len(top.Links) {
			top.Links = keep
			if err := a.writeTopology(ctx, c, s.id, id, top); err != nil {
				return err
			}
		}
	}
	var refs []string
	for _, r := range s.links {
		if ls, _, ok := decodeLinkSpec(r.Spec); !ok || hosts[ls.Hosts[0]] || hosts[ls.Hosts[1]] {
			refs = append(refs, r.Ref)
		}
	}
	return a.cfg.Persons.DeleteGENISlivers(ctx, s.id, core.GENILink, refs...)
}

func (a *Aggregate) linkSliverURN(slice, name string) string {
	return sfa.URN{Authority: a.cfg.Host, Type: "sliver", Name: slice + ".link." + name}.String()
}
