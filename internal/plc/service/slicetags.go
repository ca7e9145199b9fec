package service

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/store"
)

// Slice tags: who may set them, value checks, writes.

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
// an enabled init script, and the values of exclusive tags (ports,
// codemux) must not collide with another slice's on a shared node.
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
	case tags.VLinks:
		return o.checkVLinks(value, slice, node, except)
	}
	if e, ok := exclusive(tagname); ok {
		return o.checkExclusive(e, slice, []tagValue{{value, node}})
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
