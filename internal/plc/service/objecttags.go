package service

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/store"
)

// Tags of sites, persons, nodes and interfaces: who may set them, value checks, writes.

type tagSpec struct {
	class    core.Class // tag class
	owner    core.Class
	table    string
	ownerCol string
}

var tagSpecs = map[core.Class]tagSpec{
	core.SiteTag:      {core.SiteTag, core.Site, "site_tags", "site_id"},
	core.PersonTag:    {core.PersonTag, core.Person, "person_tags", "person_id"},
	core.NodeTag:      {core.NodeTag, core.Node, "node_tags", "node_id"},
	core.InterfaceTag: {core.InterfaceTag, core.Interface, "interface_tags", "interface_id"},
}

var tagClassOf = map[core.Class]core.Class{
	core.Site: core.SiteTag, core.Person: core.PersonTag, core.Node: core.NodeTag, core.Interface: core.InterfaceTag, core.Slice: core.SliceTag,
}

// authObjectTag checks the write permission of a tag (AuthorizeHelpers):
// by tag id (id > 0) or for a new tag (rec).
func (o *op) authObjectTag(t *store.Table, id int64, rec core.Record) error {
	spec := tagSpecs[t.Class]
	if rec == nil {
		r, err := o.row(t.Class, id, spec.ownerCol, "tag_type_id")
		if err != nil {
			return err
		}
		rec = r
	}
	owner, tt := i64(rec, spec.ownerCol), i64(rec, "tag_type_id")
	if err := o.exists(spec.owner, owner); err != nil {
		return err
	}
	if err := o.exists(core.TagType, tt); err != nil {
		return err
	}
	if err := o.tagChanged(spec.owner, owner); err != nil {
		return err
	}
	if isAdmin(o.c) {
		return nil
	}
	ok, err := o.mayWriteTagType(tt)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("Permission denied: your roles may not write tags of type %d", tt)
	}
	switch spec.owner {
	case core.Site:
		ok = atSite(o.c, owner)
	case core.Person:
		ok = isPerson(o.c) && o.c.PersonID == owner
	case core.Node, core.Interface:
		node := owner
		if spec.owner == core.Interface {
			if _, err := o.tx.QueryRow(o.ctx, "SELECT node_id FROM interfaces WHERE interface_id = ?", []any{owner}, &node); err != nil {
				return err
			}
		}
		if isNode(o.c) {
			ok = o.c.NodeID == node
		} else {
			site, err := o.nodeSite(node)
			if err != nil {
				return err
			}
			ok = atSite(o.c, site)
		}
	}
	if !ok {
		return forbidden("Permission denied: may not write tags of %s %d", spec.owner, owner)
	}
	return nil
}

// tagChanged records the watch consequences of a tag change.
func (o *op) tagChanged(owner core.Class, id int64) error {
	switch owner {
	case core.Node:
		o.ch.addNodes(id)
	case core.Interface:
		var node int64
		if _, err := o.tx.QueryRow(o.ctx, "SELECT node_id FROM interfaces WHERE interface_id = ?", []any{id}, &node); err != nil {
			return err
		}
		o.ch.addNodes(node)
	case core.Person:
		return o.touchPerson(id)
	}
	return nil
}

func (o *op) addObjectTag(t *store.Table, rec core.Record) (int64, error) {
	if err := o.authObjectTag(t, 0, rec); err != nil {
		return 0, err
	}
	if err := o.checkTagValue(i64(rec, "tag_type_id"), rec["value"]); err != nil {
		return 0, err
	}
	spec := tagSpecs[t.Class]
	var one int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM "+spec.table+" WHERE "+spec.ownerCol+" = ? AND tag_type_id = ?", []any{rec[spec.ownerCol], rec["tag_type_id"]}, &one)
	if err := conflictOr2(err, found, "%s %v already has a tag of type %v", spec.owner, rec[spec.ownerCol], rec["tag_type_id"]); err != nil {
		return 0, err
	}
	return o.tx.InsertRecord(o.ctx, t, rec)
}

// checkTagValue refuses a value of tag type tt that the tag table
// (core/tags) refuses.
func (o *op) checkTagValue(tt int64, v any) error {
	value, ok := v.(string)
	if !ok {
		return nil
	}
	name, err := o.tagTypeName(tt)
	if err != nil {
		return err
	}
	return tags.Check(name, value)
}

// updateObjectTag checks a change of a site, person, node or interface tag.
func (o *op) updateObjectTag(t *store.Table, id int64, rec core.Record) error {
	if err := o.authObjectTag(t, id, nil); err != nil {
		return err
	}
	v, ok := rec["value"]
	if !ok {
		return nil
	}
	cur, err := o.row(t.Class, id, "tag_type_id")
	if err != nil {
		return err
	}
	return o.checkTagValue(i64(cur, "tag_type_id"), v)
}

// putTag sets an object tag without permission checks (internal tags such
// as hrn).
func (o *op) putTag(owner core.Class, id int64, tagname, value string) error {
	tt, err := o.tagTypeID(tagname)
	if err != nil {
		return err
	}
	spec := tagSpecs[tagClassOf[owner]]
	if _, err := o.tx.Exec(o.ctx, "DELETE FROM "+spec.table+" WHERE "+spec.ownerCol+" = ? AND tag_type_id = ?", id, tt); err != nil {
		return err
	}
	_, err = o.tx.Exec(o.ctx, "INSERT INTO "+spec.table+" ("+spec.ownerCol+", tag_type_id, value) VALUES (?, ?, ?)", id, tt, value)
	return err
}

// setTags applies tag pseudo-fields of an Add or Update, with the
// permission checks of the tag methods; nil deletes the tag.
func (o *op) setTags(class core.Class, id int64, tags core.Record) error {
	if len(tags) == 0 {
		return nil
	}
	tc := tagClassOf[class]
	t, err := table(tc)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(tags) {
		v := tags[name]
		tt, err := o.tagTypeID(name)
		if err != nil {
			return err
		}
		if class == core.Slice {
			if err := o.setSliceTagField(t, id, tt, v); err != nil {
				return err
			}
			continue
		}
		spec := tagSpecs[tc]
		rec := core.Record{spec.ownerCol: id, "tag_type_id": tt}
		if err := o.authObjectTag(t, 0, rec); err != nil {
			return err
		}
		if err := o.checkTagValue(tt, v); err != nil {
			return err
		}
		if _, err := o.tx.Exec(o.ctx, "DELETE FROM "+spec.table+" WHERE "+spec.ownerCol+" = ? AND tag_type_id = ?", id, tt); err != nil {
			return err
		}
		if v != nil {
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO "+spec.table+" ("+spec.ownerCol+", tag_type_id, value) VALUES (?, ?, ?)", id, tt, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedNames(r core.Record) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
