package service

import (
	"context"
	"sort"
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/store"
)

// Per-peer caps (docs/federation.md): beyond max_slices, an admin bounds
// what a peer's slices get on this PLC's nodes with peer fields:
// max_slivers_per_node (the peer's first admitted slices by slice_id on
// each node; the others get no sliver there) and cap_<resource> for each
// rspec resource (cpu_share, cpu_pct, net_min_rate, net_max_rate,
// mem_max, in the slice tags' units): a foreign sliver's amount above the
// cap, or unlimited, is clipped to it. NULL: no cap. Both are applied
// when a node's state is computed, so a change reaches the nodes at once.

// capFields maps the peer fields to the rspec resources they cap.
var capFields = []struct{ field, resource string }{
	{"cap_cpu_share", rspec.CPUShare},
	{"cap_cpu_pct", rspec.CPUPct},
	{"cap_net_min_rate", rspec.NetMinRate},
	{"cap_net_max_rate", rspec.NetMaxRate},
	{"cap_mem_max", rspec.MemMax},
}

// checkPeerCaps checks the cap fields of an AddPeer or UpdatePeer: a cap
// is a value its slice tag accepts, and one that grants something (not
// 0 for cpu_share, nor the "unlimited" 0 of net_max_rate and mem_max).
func checkPeerCaps(rec core.Record) error {
	if v, ok := rec["max_slivers_per_node"]; ok && v != nil {
		if n, _ := core.AsInt(v); n < 0 {
			return core.FieldErrorf("max_slivers_per_node", "must be 0 or more (0: none of the peer's slivers), got %d", n)
		}
	}
	for _, c := range capFields {
		v, ok := rec[c.field]
		if !ok || v == nil {
			continue
		}
		n, _ := core.AsInt(v)
		if err := tags.Check(c.resource, strconv.FormatInt(n, 10)); err != nil {
			return core.FieldErrorf(c.field, "%v", err)
		}
		if n <= 0 && (c.resource == rspec.CPUShare || rspec.Unlimited(c.resource, n)) {
			return core.FieldErrorf(c.field, "a cap of %d on %s grants nothing or everything; give at least 1 (or null: no cap)", n, c.resource)
		}
	}
	return nil
}

// peerCap is one peer's caps.
type peerCap struct {
	perNode *int64
	max     rspec.RSpec
	capped  []string // the resources with a cap
}

// peerCaps are the caps of the peers whose slices a node state holds.
type peerCaps map[int64]peerCap

// statePeerCaps reads the caps of the peers of the foreign slices among sl.
func statePeerCaps(ctx context.Context, tx *store.Tx, sl []stateSlice) (peerCaps, error) {
	caps := peerCaps{}
	for _, s := range sl {
		if s.peer == nil {
			continue
		}
		if _, done := caps[*s.peer]; done {
			continue
		}
		var c peerCap
		vals := make([]*int64, len(capFields))
		dest := []any{&c.perNode}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if _, err := tx.QueryRow(ctx, `SELECT max_slivers_per_node, cap_cpu_share, cap_cpu_pct, cap_net_min_rate, cap_net_max_rate, cap_mem_max
			FROM peers WHERE peer_id = ?`, []any{*s.peer}, dest...); err != nil {
			return nil, err
		}
		var r rspec.RSpec
		for i, v := range vals {
			if v == nil {
				continue
			}
			c.capped = append(c.capped, capFields[i].resource)
			switch capFields[i].resource {
			case rspec.CPUShare:
				r.CPUShare = *v
			case rspec.CPUPct:
				r.CPUPct = *v
			case rspec.NetMinRate:
				r.NetMinKbit = *v
			case rspec.NetMaxRate:
				r.NetMaxKbit = *v
			case rspec.MemMax:
				r.MemKiB = *v
			}
		}
		c.max = r
		caps[*s.peer] = c
	}
	return caps, nil
}

// perNode keeps, of each peer's slices in sl (ordered by slice_id), the
// first max_slivers_per_node.
func (caps peerCaps) perNode(sl []stateSlice) []stateSlice {
	count := map[int64]int64{}
	out := sl[:0:0]
	for _, s := range sl {
		if s.peer != nil {
			if c := caps[*s.peer]; c.perNode != nil && count[*s.peer] >= *c.perNode {
				continue
			}
			count[*s.peer]++
		}
		out = append(out, s)
	}
	return out
}

// clip bounds a foreign sliver's rspec tags by the peer's caps.
func (c peerCap) clip(attrs []core.Attribute) []core.Attribute {
	if len(c.capped) == 0 {
		return attrs
	}
	r, err := rspec.FromAttributes(attrs)
	if err != nil {
		// A value the table refuses: the node would refuse it too;
		// start from the defaults so the cap holds regardless.
		r, _ = rspec.FromAttributes(nil)
	}
	r, changed := rspec.Clip(r, c.max, c.capped)
	if len(changed) == 0 && err == nil {
		return attrs
	}
	out := r.Attributes(attrs)
	sort.SliceStable(out, func(i, j int) bool { return out[i].TagName < out[j].TagName })
	return out
}
