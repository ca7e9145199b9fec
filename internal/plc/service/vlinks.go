package service

import (
	"context"
	"net/netip"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/plc/store"
)

// Virtual links (the vlinks slice tag, package core/vlinks): checked when
// written, resolved into each node's link ends when its state is computed.

// checkVLinks refuses a topology PLC cannot build: a node-scoped value (a
// topology is the slice's), a second vlinks tag on the slice, links on
// nodes the slice is not on, a slice id beyond the VNI space, or a private
// range overlapping another live slice's (links and LANs inside one range
// never overlap: Parse refuses a range too small for them). except is the tag being
// replaced (0 for a new one).
func (o *op) checkVLinks(value string, slice int64, node *int64, except int64) error {
	if node != nil {
		return core.FieldErrorf("node_id", "%s is the whole slice's topology: it cannot be scoped to one node", tags.VLinks)
	}
	top, err := vlinks.Parse(value)
	if err != nil {
		return err
	}
	s, err := o.slice(slice)
	if err != nil {
		return err
	}
	n, err := o.tx.Int(o.ctx, `SELECT COUNT(*) FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		WHERE st.slice_id = ? AND tt.tagname = ? AND st.slice_tag_id <> ?`, slice, tags.VLinks, except)
	if err != nil {
		return err
	}
	if n > 0 {
		return core.Errorf(core.Conflict, "slice %s already has a %s tag: update it instead of adding another", s.name, tags.VLinks)
	}
	if len(top.Links)+len(top.LANs) > 0 && slice > vlinks.MaxSliceID {
		return core.FieldErrorf("value", "slice %s (id %d): slice ids above %d cannot have virtual links", s.name, slice, vlinks.MaxSliceID)
	}
	hosts, err := o.tx.Strings(o.ctx, `SELECT n.hostname FROM nodes n JOIN slice_node sn ON sn.node_id = n.node_id
		WHERE sn.slice_id = ? AND n.deleted = 0`, slice)
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, h := range hosts {
		on[strings.ToLower(h)] = true
	}
	for _, l := range top.Links {
		for _, h := range []string{l.A, l.B} {
			if !on[h] {
				return core.FieldErrorf("value", "link %s: %s is not a node of slice %s (add the slice to it first)", l.Name, h, s.name)
			}
		}
	}
	for _, n := range top.LANs {
		for _, h := range n.Members {
			if !on[h] {
				return core.FieldErrorf("value", "LAN %s: %s is not a node of slice %s (add the slice to it first)", n.Name, h, s.name)
			}
		}
	}
	if !top.Prefix.IsValid() {
		return nil
	}
	rows, err := o.tx.Query(o.ctx, `SELECT s.name, st.value FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		JOIN slices s ON s.slice_id = st.slice_id
		WHERE tt.tagname = ? AND st.slice_id <> ? AND s.deleted = 0 AND s.expires > ?`, tags.VLinks, slice, o.now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			return err
		}
		theirs, err := vlinks.Parse(v)
		if err != nil {
			continue
		}
		if vlinks.Overlaps(top, theirs) {
			return core.Errorf(core.Conflict, "vlinks: prefix %s overlaps prefix %s of slice %s", top.Prefix, theirs.Prefix, name)
		}
	}
	return rows.Err()
}

// stateVLinks resolves a sliver's topology (its merged vlinks attribute)
// into the ends of its links and LANs on the node called host. Links whose
// other node has left the slice or has no primary IPv4 address are left
// out (LAN members are left out of the LAN's peers, a LAN without peers
// is left out); a
// value that no longer parses gives no links (it was checked when written).
func stateVLinks(ctx context.Context, tx *store.Tx, slice int64, host string, attrs []core.Attribute) ([]core.VLink, error) {
	value, ok := "", false
	for _, a := range attrs {
		if a.TagName == tags.VLinks {
			value, ok = a.Value, true
		}
	}
	if !ok {
		return nil, nil
	}
	top, err := vlinks.Parse(value)
	if err != nil || len(top.Links)+len(top.LANs) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT n.hostname, i.ip FROM nodes n JOIN slice_node sn ON sn.node_id = n.node_id
		JOIN interfaces i ON i.node_id = n.node_id AND i.is_primary = 1
		WHERE sn.slice_id = ? AND n.deleted = 0`, slice)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	addrs := map[string]netip.Addr{}
	for rows.Next() {
		var h string
		var ip *string
		if err := rows.Scan(&h, &ip); err != nil {
			return nil, err
		}
		if ip == nil {
			continue
		}
		if a, err := netip.ParseAddr(*ip); err == nil && a.Is4() {
			addrs[strings.ToLower(h)] = a
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ends, _, err := top.Ends(slice, host, func(h string) (netip.Addr, bool) {
		a, ok := addrs[h]
		return a, ok && a.IsGlobalUnicast()
	})
	if err != nil {
		return nil, nil // slice id beyond the VNI space: refused when written
	}
	return ends, nil
}
