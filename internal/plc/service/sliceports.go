package service

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/core/tags"
)

// Port reservations of slices (the ports tag): no two slices on one node hold the same port.

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
