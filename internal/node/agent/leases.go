package agent

import (
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

// Leases on reservable nodes (reference nodemanager.md §2.9; docs/
// brokering.md). PLC lists a reservable node's leases of the next day
// with reservation_policy "lease_or_idle". The rule, applied at every
// pass from the node's clock, with or without PLC:
//
//   - The holder is the slice of the lease with t_from <= now < t_until.
//   - The holder's sliver gets the node's reserved share: cpu_pct =
//     MaxReservedPct (90% of the node under contention; CPU arbitration
//     turns it into a weight). Its enabled tag is kept: a slice PLC
//     suspended stays suspended in its lease (the original forced
//     enabled; we do not override a suspension).
//   - Every other sliver except system slices (tag system=1) is
//     suspended (enabled=0: frozen, processes kept, no CPU) while it does
//     not hold the node, including when no lease is running ("idle"). The
//     original stopped them (killed their processes); freezing keeps
//     their state, and they thaw at the start of their own lease.
//   - System slivers run as usual and keep their own tags.
//
// The agent wakes at the next lease boundary (NextBoundary), so a switch
// happens within a pass's duration of t_from/t_until.

// ReservationPolicy values that make the node reservable.
const policyLease = "lease_or_idle"

// Holder returns the slice holding st's node at now ("" = none, or the
// node is not reservable).
func Holder(st *core.NodeState, now int64) string {
	if st.ReservationPolicy != policyLease {
		return ""
	}
	for _, l := range st.Leases {
		if l.TFrom <= now && now < l.TUntil {
			return l.Name
		}
	}
	return ""
}

// WithLeases returns st with the lease rule applied at now (pure; st is
// not modified).
func WithLeases(st *core.NodeState, now int64) *core.NodeState {
	if st.ReservationPolicy != policyLease {
		return st
	}
	holder := Holder(st, now)
	c := *st
	c.Slivers = make([]core.Sliver, len(st.Slivers))
	for i, s := range st.Slivers {
		switch {
		case isSystem(s):
		case s.Name == holder:
			s.Attributes = setAttr(s.Attributes, tags.CPUPct, strconv.Itoa(MaxReservedPct))
		default:
			s.Attributes = setAttr(s.Attributes, tags.Enabled, "0")
		}
		c.Slivers[i] = s
	}
	return &c
}

// NextBoundary returns the first lease start or end after now (0 = none).
func NextBoundary(st *core.NodeState, now int64) int64 {
	if st.ReservationPolicy != policyLease {
		return 0
	}
	var next int64
	for _, l := range st.Leases {
		for _, t := range []int64{l.TFrom, l.TUntil} {
			if t > now && (next == 0 || t < next) {
				next = t
			}
		}
	}
	return next
}

func isSystem(s core.Sliver) bool {
	v := ""
	for _, a := range s.Attributes {
		if a.TagName == tags.System {
			v = a.Value
		}
	}
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

// setAttr returns attrs with every value of name replaced by one value.
func setAttr(attrs []core.Attribute, name, value string) []core.Attribute {
	out := make([]core.Attribute, 0, len(attrs)+1)
	for _, a := range attrs {
		if a.TagName != name {
			out = append(out, a)
		}
	}
	return append(out, core.Attribute{TagName: name, Value: value})
}
