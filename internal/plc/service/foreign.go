package service

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Foreign objects (docs/federation.md): sites, persons, keys, nodes and
// slices that a peer PLC is authoritative for are cached here with a
// non-NULL peer_id, as the original did. Only a refresh from their peer
// (peerdata.go) writes them; every local mutation path refuses them with
// notLocal, the original's "Not a local ..." (PLCAPI fault 102).

// peered are the classes that may be foreign, with the words the
// original's refusals use.
var peered = map[core.Class]string{
	core.Site:   "site",
	core.Person: "account",
	core.Key:    "key",
	core.Node:   "node",
	core.Slice:  "slice",
}

// parentFields are the references to peered classes that the children of
// a foreign object carry; a child of a foreign object is foreign too.
var parentFields = []struct {
	field string
	class core.Class
}{{"site_id", core.Site}, {"person_id", core.Person}, {"node_id", core.Node}, {"slice_id", core.Slice}}

func notLocal(class core.Class, id, peer int64) error {
	return core.Errorf(core.Invalid, "Not a local %s: %s %d belongs to peer %d and is read-only here", peered[class], class, id, peer)
}

// local refuses a foreign object of a peered class. A missing object is
// not refused here: the caller's own lookup reports it.
func (o *op) local(class core.Class, id int64) error {
	if _, ok := peered[class]; !ok || id == 0 {
		return nil
	}
	tab, _ := table(class)
	var peer *int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT peer_id FROM "+tab.SQL+" WHERE "+tab.PK+" = ?", []any{id}, &peer)
	if err != nil {
		return err
	}
	if found && peer != nil {
		return notLocal(class, id, *peer)
	}
	return nil
}

// localRecord refuses a record (the fields of an Add) that names a foreign
// parent in one of its reference fields.
func (o *op) localRecord(rec core.Record) error {
	for _, p := range parentFields {
		if id, ok := core.AsInt(rec[p.field]); ok {
			if err := o.local(p.class, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// localRow refuses an existing object of t that is foreign or whose
// parents are (an Update or Delete).
func (o *op) localRow(t *store.Table, id int64) error {
	if err := o.local(t.Class, id); err != nil {
		return err
	}
	var cols []string
	for _, p := range parentFields {
		if f, ok := t.Field(p.field); ok && f.Expr == "" && !f.IsList() && p.class != t.Class {
			cols = append(cols, p.field)
		}
	}
	if len(cols) == 0 || t.StrPK {
		return nil
	}
	rec, err := o.row(t.Class, id, cols...)
	if err != nil {
		if core.ErrorCode(err) == core.NotFound {
			return nil // the operation itself reports the missing object
		}
		return err
	}
	return o.localRecord(rec)
}

// localLink refuses a relation change that writes a foreign object: the
// original lets local slices hold foreign nodes and persons (that is the
// point of peering), nothing else.
func (o *op) localLink(rel core.Relation, a, b int64) error {
	switch rel {
	case core.PersonSite:
		if err := o.local(core.Person, a); err != nil {
			return err
		}
		return o.local(core.Site, b)
	case core.PersonRole:
		return o.local(core.Person, a)
	case core.SlicePerson, core.SliceNode, core.SliceNodeWhitelist:
		return o.local(core.Slice, a)
	case core.NodePCU:
		return o.local(core.Node, a)
	case core.ConfFileNode:
		return o.local(core.Node, b)
	}
	return nil
}
