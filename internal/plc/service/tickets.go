package service

import (
	"context"
	"crypto/ed25519"
	"sort"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
)

var _ ticket.Issuer = (*Service)(nil)

// ticketKeys are the signers nodes trust: PLC's key, then the brokers'.
func (s *Service) ticketKeys() []core.TicketKey {
	var out []core.TicketKey
	if s.opts.TicketKey != nil {
		out = append(out, ticket.NewPublicKey(s.opts.TicketKey.Public().(ed25519.PublicKey), "plc"))
	}
	return append(out, s.opts.TicketBrokers...)
}

// SliceTicket implements ticket.Issuer (GetSliceTicket): a ticket for the
// slice on the requested nodes (default: the slice's nodes), carrying the
// slice's record as the first node lists it, valid from now for the
// requested duration and never past the slice's expiry. Admins, PIs of
// the slice's site and its members may ask; only admins may name an
// rspec other than the slice's tags'. A node must list the slice (bound
// to it, or delegated): PLC does not grant slivers where the slice is
// not.
func (s *Service) SliceTicket(ctx context.Context, c *core.Caller, r ticket.Request) (string, error) {
	if err := authorize(c, opGetSliceTicket); err != nil {
		return "", err
	}
	if s.opts.TicketKey == nil {
		return "", core.Errorf(core.Unimplemented, "not supported: this PLC has no ticket key")
	}
	if r.Duration < 0 || r.Duration > ticket.MaxDuration {
		return "", core.FieldErrorf("duration", "%s is outside 0..%s", r.Duration, ticket.MaxDuration)
	}
	if r.Duration == 0 {
		r.Duration = ticket.DefaultDuration
	}
	if r.RSpec != nil && !isAdmin(c) {
		return "", forbidden("Permission denied: only admins may set a ticket's rspec")
	}
	var t ticket.Ticket
	err := s.read(ctx, c, func(o *op) error {
		sl, err := o.slice(r.SliceID)
		if err != nil {
			return err
		}
		if err := o.local(core.Slice, r.SliceID); err != nil {
			return err // a peer's slice gets its tickets from its own PLC
		}
		if err := o.sliceWriter(sl); err != nil {
			return err
		}
		nodes := append([]int64(nil), r.NodeIDs...)
		if len(nodes) == 0 {
			if nodes, err = o.tx.Ints(o.ctx, "SELECT node_id FROM slice_node WHERE slice_id = ? ORDER BY node_id", r.SliceID); err != nil {
				return err
			}
		}
		if len(nodes) == 0 {
			return core.FieldErrorf("node_ids", "slice %s is on no node: name the nodes", sl.name)
		}
		sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
		var first *core.Sliver
		for i, n := range nodes {
			if i > 0 && n == nodes[i-1] {
				return core.FieldErrorf("node_ids", "node %d named twice", n)
			}
			sv, err := ticketSliver(o, n, r.SliceID)
			if err != nil {
				return err
			}
			if first == nil {
				first = sv
			}
		}
		rs := r.RSpec
		if rs == nil {
			v, err := rspec.FromAttributes(first.Attributes)
			if err != nil {
				return err
			}
			rs = &v
		}
		until := min(o.now+int64(r.Duration/time.Second), sl.expires)
		t = ticket.Ticket{V: 1, Nonce: ticket.NewNonce(), NotBefore: o.now, NotAfter: until, Nodes: nodes, RSpec: *rs, Sliver: *first}
		return nil
	})
	if err != nil {
		return "", err
	}
	wire, err := ticket.Sign(t, s.opts.TicketKey)
	if err != nil {
		return "", err
	}
	s.log.Info("issued slice ticket", "slice", t.Sliver.Name, "nodes", t.Nodes, "until", t.NotAfter, "rspec", t.RSpec.String(), "nonce", t.Nonce)
	return wire, nil
}

// ticketSliver is the slice's record in node's state, or why there is none.
func ticketSliver(o *op, node, slice int64) (*core.Sliver, error) {
	var hostname string
	found, err := o.tx.QueryRow(o.ctx, "SELECT hostname FROM nodes WHERE node_id = ? AND deleted = 0", []any{node}, &hostname)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(core.Node, node)
	}
	groups, _, err := stateGroups(o.ctx, o.tx, node)
	if err != nil {
		return nil, err
	}
	svs, err := stateSlivers(o.ctx, o.tx, node, hostname, o.now, groups)
	if err != nil {
		return nil, err
	}
	for i := range svs {
		if svs[i].SliceID == slice {
			return &svs[i], nil
		}
	}
	return nil, core.Errorf(core.Conflict, "slice %d is neither on node %d nor delegated", slice, node)
}
