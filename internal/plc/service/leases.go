package service

import (
	"context"

	"github.com/planetlab/pl/internal/core"
)

// Leases of reservable nodes: rounding, overlap, writes.

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
	if err := o.local(core.Slice, slice); err != nil {
		return 0, err
	}
	if err := o.local(core.Node, node); err != nil {
		return 0, err
	}
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
		if err := o.local(core.Slice, sliceID); err != nil {
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
