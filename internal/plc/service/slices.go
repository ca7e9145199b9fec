package service

import (
	"context"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/store"
)

// Slice lifecycle (the original's):
//
//	AddSlice ──> live (expires = now + 2 weeks) ──UpdateSlice/RenewSlice──> live (later expiry)
//	               │                                  (non-admin: <= now + 8 weeks,
//	               │                                   needs url and description)
//	               ├── expires <= now ──> expired: hidden from every listing and node;
//	               │                       soft-deleted by the next AddSlice (name free)
//	               └── DeleteSlice / DeleteSite ──> deleted (id never reused)
//
// Slice lifetimes of the original.
const (
	DefaultSliceLifetime = 14 * 24 * time.Hour // new slices expire in 2 weeks
	MaxRenewal           = 8 * 7 * 24 * time.Hour
)

type sliceInfo struct {
	id            int64
	site          int64
	name          string
	instantiation string
	expires       int64
	url, desc     *string
}

func (o *op) slice(id int64) (*sliceInfo, error) {
	s := &sliceInfo{id: id}
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id, name, instantiation, expires, url, description FROM slices WHERE slice_id = ? AND deleted = 0 AND expires > ?",
		[]any{id, o.now}, &s.site, &s.name, &s.instantiation, &s.expires, &s.url, &s.desc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(core.Slice, id)
	}
	return s, nil
}

func (o *op) isMember(slice, person int64) (bool, error) {
	var one int64
	return o.tx.QueryRow(o.ctx, "SELECT 1 FROM slice_person WHERE slice_id = ? AND person_id = ?", []any{slice, person}, &one)
}

// sliceWriter is the permission shared by UpdateSlice, DeleteSlice,
// AddSliceToNodes, DeleteSliceFromNodes and AddLeases: admin; PIs of the
// slice's site; members of the slice.
func (o *op) sliceWriter(s *sliceInfo) error {
	if isAdmin(o.c) {
		return nil
	}
	if isPerson(o.c) {
		if o.c.HasRole(core.RolePI) && atSite(o.c, s.site) {
			return nil
		}
		m, err := o.isMember(s.id, o.c.PersonID)
		if err != nil {
			return err
		}
		if m {
			return nil
		}
	}
	return forbidden("Permission denied: not a member of slice %s or a pi of its site", s.name)
}

func (o *op) deleteExpiredSlices() error {
	ids, err := o.tx.Ints(o.ctx, "SELECT slice_id FROM slices WHERE deleted = 0 AND expires <= ?", o.now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := o.removeSlice(id); err != nil {
			return err
		}
	}
	return nil
}

func (o *op) addSlice(t *store.Table, rec core.Record) (int64, error) {
	name := str(rec, "name")
	if !sliceNameRE.MatchString(name) {
		return 0, core.FieldErrorf("name", "Invalid slice name %q: must be <login_base>_<name> with [a-z0-9.] before the first '_' and [a-zA-Z0-9_.] after it", name)
	}
	lb := name[:strings.Index(name, "_")]
	var site, maxSlices, enabled int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id, max_slices, enabled FROM sites WHERE login_base = ? AND deleted = 0", []any{lb}, &site, &maxSlices, &enabled)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, core.FieldErrorf("name", "Invalid slice name %q: no site has login_base %q", name, lb)
	}
	if !isAdmin(o.c) && !atSite(o.c, site) {
		return 0, forbidden("Permission denied: slice name %q must start with the login_base of one of your sites", name)
	}
	if enabled == 0 {
		return 0, core.Errorf(core.Invalid, "site %s is disabled", lb)
	}
	if err := o.deleteExpiredSlices(); err != nil {
		return 0, err
	}
	n, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM slices WHERE site_id = ? AND deleted = 0", site)
	if err != nil {
		return 0, err
	}
	if n >= maxSlices {
		return 0, core.Errorf(core.Conflict, "site %s has reached its maximum number of slices (%d)", lb, maxSlices)
	}
	var one int64
	if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM slices WHERE name = ? AND deleted = 0", []any{name}, &one); err != nil || found {
		return 0, conflictOr(err, "slice %q already exists", name)
	}
	if v, ok := rec["instantiation"]; ok {
		if err := o.checkInstantiation(v.(string)); err != nil {
			return 0, err
		}
	}
	rec["site_id"] = site
	if isPerson(o.c) {
		rec["creator_person_id"] = o.c.PersonID
	}
	rec["created"] = o.now
	rec["expires"] = o.now + int64(DefaultSliceLifetime/time.Second)
	id, err := o.tx.InsertRecord(o.ctx, t, rec)
	if err != nil {
		return 0, err
	}
	hrnTT, err := o.tagTypeID("hrn")
	if err != nil {
		return 0, err
	}
	if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, ?)", id, hrnTT, o.s.opts.HRNRoot+"."+lb+"."+name[len(lb)+1:]); err != nil {
		return 0, err
	}
	if len(o.s.opts.VsysDefaults) > 0 {
		vsys, err := o.tagTypeID("vsys")
		if err != nil {
			return 0, err
		}
		for _, v := range o.s.opts.VsysDefaults {
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, ?)", id, vsys, v); err != nil {
				return 0, err
			}
		}
	}
	return id, o.touchSlice(id)
}

func (o *op) checkInstantiation(v string) error {
	found, err := o.lookupExists("slice_instantiations", "instantiation", v)
	if err != nil {
		return err
	}
	if !found {
		return core.FieldErrorf("instantiation", "unknown instantiation %q", v)
	}
	return nil
}

// updateSlice applies UpdateSlice; clamp (RenewSlice) lowers a non-admin's
// expiry to the maximum instead of refusing it. It returns the expiry.
func (o *op) updateSlice(t *store.Table, id int64, rec core.Record, clamp bool) (int64, error) {
	s, err := o.slice(id)
	if err != nil {
		return 0, err
	}
	if err := o.sliceWriter(s); err != nil {
		return 0, err
	}
	if _, ok := rec["max_nodes"]; ok && !isAdmin(o.c) && !(o.c.HasRole(core.RolePI) && atSite(o.c, s.site)) {
		return 0, &core.Error{Code: core.Forbidden, Field: "max_nodes", Message: "only admins and pis may change max_nodes"}
	}
	if v, ok := rec["instantiation"]; ok {
		if err := o.checkInstantiation(v.(string)); err != nil {
			return 0, err
		}
	}
	expires := s.expires
	if v, ok := rec["expires"]; ok {
		exp := v.(int64)
		if exp <= o.now {
			return 0, core.FieldErrorf("expires", "must lie in the future")
		}
		if exp > s.expires {
			var maxSlices int64
			if _, err := o.tx.QueryRow(o.ctx, "SELECT max_slices FROM sites WHERE site_id = ?", []any{s.site}, &maxSlices); err != nil {
				return 0, err
			}
			if maxSlices <= 0 {
				return 0, core.FieldErrorf("expires", "slice creation and renewal have been disabled for the site")
			}
			limit := o.now + int64(MaxRenewal/time.Second)
			if !isAdmin(o.c) && exp > limit {
				if !clamp {
					return 0, core.FieldErrorf("expires", "cannot renew a slice beyond 8 weeks from now")
				}
				exp = max(limit, s.expires)
			}
			for _, k := range []string{"description", "url"} {
				cur := s.desc
				if k == "url" {
					cur = s.url
				}
				nv, given := rec[k]
				if given && blank(nv) || !given && (cur == nil || strings.TrimSpace(*cur) == "") {
					return 0, core.FieldErrorf(k, "cannot renew a slice with an empty description or URL")
				}
			}
		}
		rec["expires"] = exp
		expires = exp
	}
	if err := o.touchSlice(id); err != nil {
		return 0, err
	}
	if err := o.tx.UpdateRecord(o.ctx, t, id, rec); err != nil {
		return 0, err
	}
	return expires, o.touchSlice(id)
}

// RenewSlice implements core.Registry: it sets the expiry, lowered to the
// 8-week maximum for non-admins, and returns the expiry granted.
func (s *Service) RenewSlice(ctx context.Context, c *core.Caller, sliceID, expires int64) (int64, error) {
	if err := authorize(c, opUpdateSlice); err != nil {
		return 0, err
	}
	t, _ := table(core.Slice)
	var granted int64
	err := s.write(ctx, c, func(o *op) error {
		var err error
		granted, err = o.updateSlice(t, sliceID, core.Record{"expires": expires}, true)
		return err
	})
	return granted, err
}

func (o *op) deleteSlice(id int64) error {
	s, err := o.slice(id)
	if err != nil {
		return err
	}
	if err := o.sliceWriter(s); err != nil {
		return err
	}
	return o.removeSlice(id)
}

// removeSlice soft-deletes a slice and drops its memberships, tags and
// leases.
func (o *op) removeSlice(id int64) error {
	if err := o.touchSlice(id); err != nil {
		return err
	}
	for _, q := range []string{
		"DELETE FROM slice_node WHERE slice_id = ?",
		"DELETE FROM slice_node_whitelist WHERE slice_id = ?",
		"DELETE FROM slice_person WHERE slice_id = ?",
		"DELETE FROM slice_tags WHERE slice_id = ?",
		"DELETE FROM leases WHERE slice_id = ?",
		"UPDATE slices SET deleted = 1 WHERE slice_id = ?",
	} {
		if _, err := o.tx.Exec(o.ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// --- slice tags ---

// authSliceTag is AuthorizeHelpers.caller_may_write_slice_tag.
func (o *op) authSliceTag(s *sliceInfo, tt int64, node, nodegroup *int64) error {
	if isAdmin(o.c) {
		return nil
	}
	if nodegroup != nil {
		return forbidden("Permission denied: nodegroup-scoped slice tags are admin-only")
	}
	ok, err := o.mayWriteTagType(tt)
	if err != nil {
		return err
	}
	if !ok {
		name, _ := o.tagTypeName(tt)
		return forbidden("Permission denied: your roles may not write slice tag %q", name)
	}
	if isNode(o.c) {
		if node == nil || *node != o.c.NodeID {
			return forbidden("Permission denied: a node may only write sliver tags for itself")
		}
		var one int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM slice_node WHERE slice_id = ? AND node_id = ?", []any{s.id, o.c.NodeID}, &one)
		if err != nil {
			return err
		}
		if !found {
			return forbidden("Permission denied: slice %s is not on this node", s.name)
		}
		return nil
	}
	if o.c.HasRole(core.RolePI) && atSite(o.c, s.site) {
		return nil
	}
	if o.c.HasRole(core.RoleUser) {
		m, err := o.isMember(s.id, o.c.PersonID)
		if err != nil {
			return err
		}
		if m {
			return nil
		}
	}
	return forbidden("Permission denied: not a member of slice %s or a pi of its site", s.name)
}

func optInt(v any) *int64 {
	if n, ok := v.(int64); ok {
		return &n
	}
	return nil
}

// checkSliceTagValue validates a slice tag's value: what the tag table
// (core/tags) refuses, nodes would refuse; beyond it, initscript must name
// an enabled init script and ports must not collide.
func (o *op) checkSliceTagValue(tagname, value string, slice int64, node *int64, except int64) error {
	if err := tags.Check(tagname, value); err != nil {
		return err
	}
	switch tagname {
	case "initscript":
		var one int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM initscripts WHERE name = ? AND enabled = 1", []any{value}, &one)
		if err != nil {
			return err
		}
		if !found {
			return core.FieldErrorf("value", "no enabled init script is named %q", value)
		}
	case tags.PortsTag:
		ps, _ := ports.Parse(value) // tags.Check parsed it
		return o.checkPortCollision(slice, []portTag{{ps, node, except}})
	}
	return nil
}

func (o *op) addSliceTag(t *store.Table, rec core.Record) (int64, error) {
	s, err := o.slice(i64(rec, "slice_id"))
	if err != nil {
		return 0, err
	}
	tt := i64(rec, "tag_type_id")
	tagname, err := o.tagTypeName(tt)
	if err != nil {
		return 0, err
	}
	node, group := optInt(rec["node_id"]), optInt(rec["nodegroup_id"])
	if node != nil && group != nil {
		return 0, core.FieldErrorf("nodegroup_id", "a slice tag is scoped to a node or to a node group, not both")
	}
	if node != nil {
		if err := o.exists(core.Node, *node); err != nil {
			return 0, err
		}
	}
	if group != nil {
		if err := o.exists(core.NodeGroup, *group); err != nil {
			return 0, err
		}
	}
	if err := o.authSliceTag(s, tt, node, group); err != nil {
		return 0, err
	}
	value := str(rec, "value")
	q := "SELECT COUNT(*) FROM slice_tags WHERE slice_id = ? AND tag_type_id = ? AND value = ?"
	args := []any{s.id, tt, value}
	for _, p := range []struct {
		col string
		v   *int64
	}{{"node_id", node}, {"nodegroup_id", group}} {
		if p.v == nil {
			q += " AND " + p.col + " IS NULL"
		} else {
			q += " AND " + p.col + " = ?"
			args = append(args, *p.v)
		}
	}
	n, err := o.tx.Int(o.ctx, q, args...)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		return 0, core.Errorf(core.Conflict, "slice %s already has tag %s = %q in this scope", s.name, tagname, value)
	}
	if err := o.checkSliceTagValue(tagname, value, s.id, node, 0); err != nil {
		return 0, err
	}
	if err := o.sliceTagChanged(s, tagname, node); err != nil {
		return 0, err
	}
	id, err := o.tx.InsertRecord(o.ctx, t, rec)
	if err != nil {
		return 0, err
	}
	return id, o.sliceTagChanged(s, tagname, node)
}

// sliceTagChanged records the nodes a slice tag change affects.
func (o *op) sliceTagChanged(s *sliceInfo, tagname string, node *int64) error {
	if tagname == "system" {
		o.ch.all = true
		return nil
	}
	if node != nil {
		o.ch.addNodes(*node)
		return nil
	}
	return o.touchSlice(s.id)
}

type sliceTagRow struct {
	slice       int64
	tt          int64
	tagname     string
	value       string
	node, group *int64
}

func (o *op) sliceTagRow(id int64) (*sliceTagRow, error) {
	r := &sliceTagRow{}
	found, err := o.tx.QueryRow(o.ctx, "SELECT st.slice_id, st.tag_type_id, tt.tagname, st.value, st.node_id, st.nodegroup_id FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id WHERE st.slice_tag_id = ?",
		[]any{id}, &r.slice, &r.tt, &r.tagname, &r.value, &r.node, &r.group)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(core.SliceTag, id)
	}
	return r, nil
}

func (o *op) updateSliceTag(t *store.Table, id int64, rec core.Record) error {
	r, err := o.sliceTagRow(id)
	if err != nil {
		return err
	}
	s, err := o.slice(r.slice)
	if err != nil {
		return err
	}
	if err := o.authSliceTag(s, r.tt, r.node, r.group); err != nil {
		return err
	}
	if v, ok := rec["value"]; ok {
		if err := o.checkSliceTagValue(r.tagname, v.(string), s.id, r.node, id); err != nil {
			return err
		}
	}
	if err := o.sliceTagChanged(s, r.tagname, r.node); err != nil {
		return err
	}
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

func (o *op) deleteSliceTag(id int64) error {
	r, err := o.sliceTagRow(id)
	if err != nil {
		return err
	}
	s, err := o.slice(r.slice)
	if err != nil {
		return err
	}
	if err := o.authSliceTag(s, r.tt, r.node, r.group); err != nil {
		return err
	}
	if err := o.sliceTagChanged(s, r.tagname, r.node); err != nil {
		return err
	}
	_, err = o.tx.Exec(o.ctx, "DELETE FROM slice_tags WHERE slice_tag_id = ?", id)
	return err
}

// setSliceTagField applies a tag pseudo-field of AddSlice/UpdateSlice: it
// replaces the slice's global values of that tag (nil removes them).
func (o *op) setSliceTagField(t *store.Table, slice, tt int64, v any) error {
	s, err := o.slice(slice)
	if err != nil {
		return err
	}
	if err := o.authSliceTag(s, tt, nil, nil); err != nil {
		return err
	}
	tagname, err := o.tagTypeName(tt)
	if err != nil {
		return err
	}
	if err := o.sliceTagChanged(s, tagname, nil); err != nil {
		return err
	}
	if _, err := o.tx.Exec(o.ctx, "DELETE FROM slice_tags WHERE slice_id = ? AND tag_type_id = ? AND node_id IS NULL AND nodegroup_id IS NULL", slice, tt); err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	if err := o.checkSliceTagValue(tagname, v.(string), slice, nil, 0); err != nil {
		return err
	}
	_, err = o.tx.InsertRecord(o.ctx, t, core.Record{"slice_id": slice, "tag_type_id": tt, "value": v})
	return err
}

// --- port reservations ---

// portTag is one value of a slice's ports tag (package core/ports syntax).
type portTag struct {
	ps     []ports.Port
	node   *int64 // sliver-scoped reservation
	except int64  // slice_tag_id being replaced
}

// checkPortCollision refuses reservations of slice that collide with a
// reservation of another live slice on a node both are on. A reservation
// applies on every node of its slice (or on its node, when sliver-scoped).
func (o *op) checkPortCollision(slice int64, res []portTag) error {
	tt, err := o.tagTypeID(tags.PortsTag)
	if err != nil {
		return err
	}
	rows, err := o.tx.Query(o.ctx, `SELECT st.slice_tag_id, st.slice_id, s.name, st.value, st.node_id, sn.node_id
		FROM slice_tags st JOIN slices s ON s.slice_id = st.slice_id
		JOIN slice_node sn ON sn.slice_id = st.slice_id
		JOIN slice_node mine ON mine.node_id = sn.node_id AND mine.slice_id = ?
		WHERE st.tag_type_id = ? AND st.slice_id <> ? AND s.deleted = 0 AND s.expires > ?
		AND (st.node_id IS NULL OR st.node_id = sn.node_id)`, slice, tt, slice, o.now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var tagID, other, node int64
		var name, value string
		var scoped *int64
		if err := rows.Scan(&tagID, &other, &name, &value, &scoped, &node); err != nil {
			return err
		}
		theirs, err := ports.Parse(value)
		if err != nil {
			continue
		}
		for _, r := range res {
			if r.node != nil && *r.node != node {
				continue
			}
			if a, _, found := ports.Conflict(r.ps, theirs); found {
				return &core.Error{Code: core.Conflict, Field: "value", Message: sprintf("port reservation %s collides with slice %s (%s) on node %d", a, name, value, node)}
			}
		}
	}
	return rows.Err()
}

// slicePorts lists a slice's reservations (for adding it to nodes).
func (o *op) slicePorts(slice int64) ([]portTag, error) {
	rows, err := o.tx.Query(o.ctx, `SELECT st.value, st.node_id FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		WHERE st.slice_id = ? AND tt.tagname = ?`, slice, tags.PortsTag)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []portTag
	for rows.Next() {
		var v string
		var node *int64
		if err := rows.Scan(&v, &node); err != nil {
			return nil, err
		}
		if ps, err := ports.Parse(v); err == nil {
			out = append(out, portTag{ps: ps, node: node})
		}
	}
	return out, rows.Err()
}

// checkNodePorts refuses adding slice to node when one of its reservations
// collides with one of another slice already on the node.
func (o *op) checkNodePorts(slice, node int64) error {
	mine, err := o.slicePorts(slice)
	if err != nil || len(mine) == 0 {
		return err
	}
	rows, err := o.tx.Query(o.ctx, `SELECT s.name, st.value, st.node_id FROM slice_tags st
		JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		JOIN slices s ON s.slice_id = st.slice_id
		JOIN slice_node sn ON sn.slice_id = st.slice_id AND sn.node_id = ?
		WHERE tt.tagname = ? AND st.slice_id <> ? AND s.deleted = 0 AND s.expires > ? AND (st.node_id IS NULL OR st.node_id = ?)`,
		node, tags.PortsTag, slice, o.now, node)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name, v string
		var scoped *int64
		if err := rows.Scan(&name, &v, &scoped); err != nil {
			return err
		}
		theirs, err := ports.Parse(v)
		if err != nil {
			continue
		}
		for _, m := range mine {
			if m.node != nil && *m.node != node {
				continue
			}
			if a, _, found := ports.Conflict(m.ps, theirs); found {
				return core.Errorf(core.Conflict, "node %d: port reservation %s of this slice collides with slice %s (%s)", node, a, name, v)
			}
		}
	}
	return rows.Err()
}

// --- leases ---

func (o *op) roundLease(from, until int64) (int64, int64, error) {
	g := o.s.opts.LeaseGranularity
	from = (from + g - 1) / g * g // up
	until = until / g * g         // down
	if until <= from {
		return 0, 0, core.FieldErrorf("t_until", "lease is empty after rounding to the %d s granularity", g)
	}
	return from, until, nil
}

// addLease reserves one node; the error is per node (AddLeases errors).
func (o *op) addLease(node, slice, from, until int64) (int64, error) {
	var ntype string
	found, err := o.tx.QueryRow(o.ctx, "SELECT node_type FROM nodes WHERE node_id = ? AND deleted = 0", []any{node}, &ntype)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, notFound(core.Node, node)
	}
	if ntype != "reservable" {
		return 0, core.Errorf(core.Invalid, "node %d is not reservable", node)
	}
	if err := o.leaseOverlap(node, from, until, 0); err != nil {
		return 0, err
	}
	o.ch.addNodes(node)
	return o.tx.Insert(o.ctx, "leases", "lease_id", []string{"slice_id", "node_id", "t_from", "t_until"}, []any{slice, node, from, until})
}

func (o *op) leaseOverlap(node, from, until, except int64) error {
	n, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM leases WHERE node_id = ? AND lease_id <> ? AND t_from < ? AND t_until > ?", node, except, until, from)
	if err != nil {
		return err
	}
	if n > 0 {
		return core.Errorf(core.Conflict, "node %d is already leased between %d and %d", node, from, until)
	}
	return nil
}

func (o *op) addLeaseRecord(in core.Record) (int64, error) {
	t, _ := table(core.Lease)
	rec, err := t.Check(in, true)
	if err != nil {
		return 0, err
	}
	s, err := o.slice(i64(rec, "slice_id"))
	if err != nil {
		return 0, err
	}
	if err := o.sliceWriter(s); err != nil {
		return 0, err
	}
	from, until, err := o.roundLease(i64(rec, "t_from"), i64(rec, "t_until"))
	if err != nil {
		return 0, err
	}
	return o.addLease(i64(rec, "node_id"), s.id, from, until)
}

func (o *op) leaseSlice(id int64) (node int64, s *sliceInfo, from, until int64, err error) {
	var slice int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT node_id, slice_id, t_from, t_until FROM leases WHERE lease_id = ?", []any{id}, &node, &slice, &from, &until)
	if err != nil {
		return 0, nil, 0, 0, err
	}
	if !found {
		return 0, nil, 0, 0, notFound(core.Lease, id)
	}
	s, err = o.slice(slice)
	if err != nil {
		return 0, nil, 0, 0, err
	}
	return node, s, from, until, o.sliceWriter(s)
}

func (o *op) updateLease(id int64, rec core.Record) error {
	node, _, from, until, err := o.leaseSlice(id)
	if err != nil {
		return err
	}
	if v, ok := rec["t_from"]; ok {
		from = v.(int64)
	}
	if v, ok := rec["t_until"]; ok {
		until = v.(int64)
	}
	from, until, err = o.roundLease(from, until)
	if err != nil {
		return err
	}
	if err := o.leaseOverlap(node, from, until, id); err != nil {
		return err
	}
	o.ch.addNodes(node)
	_, err = o.tx.Exec(o.ctx, "UPDATE leases SET t_from = ?, t_until = ? WHERE lease_id = ?", from, until, id)
	return err
}

func (o *op) deleteLease(id int64) error {
	node, _, _, _, err := o.leaseSlice(id)
	if err != nil {
		return err
	}
	o.ch.addNodes(node)
	_, err = o.tx.Exec(o.ctx, "DELETE FROM leases WHERE lease_id = ?", id)
	return err
}

// AddLeases implements core.Registry.
func (s *Service) AddLeases(ctx context.Context, c *core.Caller, nodeIDs []int64, sliceID, from, until int64) ([]int64, []string, error) {
	if err := authorize(c, opAddLeases); err != nil {
		return nil, nil, err
	}
	newIDs := []int64{}
	errs := []string{}
	err := s.write(ctx, c, func(o *op) error {
		sl, err := o.slice(sliceID)
		if err != nil {
			return err
		}
		if err := o.sliceWriter(sl); err != nil {
			return err
		}
		f, u, err := o.roundLease(from, until)
		if err != nil {
			return err
		}
		for _, n := range nodeIDs {
			id, err := o.addLease(n, sliceID, f, u)
			if err != nil {
				if ce := core.ErrorCode(err); ce == core.Internal {
					return err
				}
				errs = append(errs, sprintf("node %d: %s", n, core.PublicMessage(err)))
				continue
			}
			newIDs = append(newIDs, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return newIDs, errs, nil
}
