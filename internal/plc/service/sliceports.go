package service

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/core/tags"
)

// Exclusive slice tags: what one slice claims with them on a node, no
// other slice on that node may claim. Port reservations (the ports tag: no
// two slices hold the same port) and codemux host names (no two slices
// serve the same host on a node's shared port 80/443).

// exclusiveTag is one such tag and how two of its values collide.
type exclusiveTag struct {
	name string
	noun string // in errors: "port reservation", "codemux host"
	// conflict returns what in value mine collides with value theirs.
	// Both parse (tags.Check accepted them when written); a value that
	// does not is skipped.
	conflict func(mine, theirs string) (what string, found bool)
}

var exclusiveTags = []exclusiveTag{
	{tags.PortsTag, "port reservation", func(mine, theirs string) (string, bool) {
		a, errA := ports.Parse(mine)
		b, errB := ports.Parse(theirs)
		if errA != nil || errB != nil {
			return "", false
		}
		p, _, found := ports.Conflict(a, b)
		return p.String(), found
	}},
	{tags.Codemux, "codemux host", func(mine, theirs string) (string, bool) {
		a, errA := tags.ParseRoute(mine)
		b, errB := tags.ParseRoute(theirs)
		return a.Host, errA == nil && errB == nil && a.Host == b.Host
	}},
}

func exclusive(tagname string) (exclusiveTag, bool) {
	for _, e := range exclusiveTags {
		if e.name == tagname {
			return e, true
		}
	}
	return exclusiveTag{}, false
}

// tagValue is one value of a slice's exclusive tag.
type tagValue struct {
	value string
	node  *int64 // sliver-scoped
}

// checkExclusive refuses values of slice's exclusive tag e that collide
// with a value of another live slice on a node both are on. A value
// applies on every node of its slice (or on its node, when sliver-scoped).
func (o *op) checkExclusive(e exclusiveTag, slice int64, mine []tagValue) error {
	tt, err := o.tagTypeID(e.name)
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
		for _, m := range mine {
			if m.node != nil && *m.node != node {
				continue
			}
			if what, found := e.conflict(m.value, value); found {
				return &core.Error{Code: core.Conflict, Field: "value", Message: sprintf("%s %s collides with slice %s (%s) on node %d", e.noun, what, name, value, node)}
			}
		}
	}
	return rows.Err()
}

// sliceValues lists the values of a slice's exclusive tag (for adding it
// to nodes).
func (o *op) sliceValues(e exclusiveTag, slice int64) ([]tagValue, error) {
	rows, err := o.tx.Query(o.ctx, `SELECT st.value, st.node_id FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		WHERE st.slice_id = ? AND tt.tagname = ?`, slice, e.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tagValue
	for rows.Next() {
		var v tagValue
		if err := rows.Scan(&v.value, &v.node); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// checkNodeExclusive refuses adding slice to node when one of its
// exclusive tag values (ports, codemux hosts) collides with one of another
// slice already on the node.
func (o *op) checkNodeExclusive(slice, node int64) error {
	for _, e := range exclusiveTags {
		if err := o.checkNodeTag(e, slice, node); err != nil {
			return err
		}
	}
	return nil
}

func (o *op) checkNodeTag(e exclusiveTag, slice, node int64) error {
	mine, err := o.sliceValues(e, slice)
	if err != nil || len(mine) == 0 {
		return err
	}
	rows, err := o.tx.Query(o.ctx, `SELECT s.name, st.value, st.node_id FROM slice_tags st
		JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		JOIN slices s ON s.slice_id = st.slice_id
		JOIN slice_node sn ON sn.slice_id = st.slice_id AND sn.node_id = ?
		WHERE tt.tagname = ? AND st.slice_id <> ? AND s.deleted = 0 AND s.expires > ? AND (st.node_id IS NULL OR st.node_id = ?)`,
		node, e.name, slice, o.now, node)
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
		for _, m := range mine {
			if m.node != nil && *m.node != node {
				continue
			}
			if what, found := e.conflict(m.value, v); found {
				return core.Errorf(core.Conflict, "node %d: %s %s of this slice collides with slice %s (%s)", node, e.noun, what, name, v)
			}
		}
	}
	return rows.Err()
}
