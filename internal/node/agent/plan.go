package agent

import (
	"fmt"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sliver"
)

// OpKind is what the executor does to one sliver.
//
// Sliver lifecycle as the agent sees it:
//
//	            create                suspend (enabled=0)
//	(absent) ----------> running  <-------------------->  frozen
//	    ^                 |  ^ update (tags changed,        |
//	    |                 |  |  stopped, network drift)     |
//	    +---- destroy ----+--+------------------------------+
//	     (unbound, expired, deleted, not instantiated)
type OpKind string

// Operation kinds. OpNone is rendered in plans for slivers that need
// nothing, so golden plans show every sliver the agent considered.
const (
	OpCreate  OpKind = "create"
	OpUpdate  OpKind = "update"
	OpSuspend OpKind = "suspend"
	OpResume  OpKind = "resume"
	OpDestroy OpKind = "destroy"
	OpNone    OpKind = "none"
)

// Op is one step of a plan. For every kind but destroy and none, Spec and
// Net are the complete desired configuration: executing an op means
// "make the sliver look like this", which is idempotent.
type Op struct {
	Kind   OpKind
	Name   string
	XID    int
	Reason string // why, for logs and golden tests
	Spec   sliver.Spec
	Net    netcfg.Sliver
}

// String renders an op as one canonical line.
func (o Op) String() string {
	s := fmt.Sprintf("%s %s", o.Kind, o.Name)
	if o.XID != 0 {
		s += fmt.Sprintf(" xid=%d", o.XID)
	}
	if o.Reason != "" {
		s += " (" + o.Reason + ")"
	}
	return s
}

// Actual is what exists on the host.
type Actual struct {
	Slivers    []sliver.Status          // Runtime.List
	Net        []string                 // netcfg Manager.List
	NetApplied map[string]netcfg.Sliver // what the agent last ensured, per sliver
}

// Plan compares the host with the desired state and returns the operations
// that make them agree, destroys first (they free ports and bandwidth),
// then the rest, each group in name order. It is pure.
func Plan(actual Actual, d Desired) []Op {
	rt := map[string]sliver.Status{}
	for _, s := range actual.Slivers {
		rt[s.Name] = s
	}
	hasNet := map[string]bool{}
	for _, n := range actual.Net {
		hasNet[n] = true
	}
	names := map[string]bool{}
	for n := range rt {
		names[n] = true
	}
	for n := range hasNet {
		names[n] = true
	}
	for n := range d.Slivers {
		names[n] = true
	}
	for n := range d.Errors {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	var destroys, others []Op
	for _, name := range sorted {
		st, exists := rt[name]
		want, desired := d.Slivers[name]
		switch {
		case !desired && d.Errors[name] != "":
			if exists || hasNet[name] {
				others = append(others, Op{Kind: OpNone, Name: name, XID: st.XID, Reason: "kept as is: " + d.Errors[name]})
			}
		case !desired:
			xid := st.XID
			if xid == 0 {
				xid = actual.NetApplied[name].XID
			}
			destroys = append(destroys, Op{Kind: OpDestroy, Name: name, XID: xid, Reason: "not wanted"})
		case !exists:
			others = append(others, Op{Kind: OpCreate, Name: name, XID: want.Spec.XID, Spec: want.Spec, Net: want.Net})
		default:
			others = append(others, diffOne(st, hasNet[name], actual.NetApplied, want))
		}
	}
	return append(destroys, others...)
}

// diffOne decides what an existing sliver needs.
func diffOne(st sliver.Status, hasNet bool, applied map[string]netcfg.Sliver, want DesiredSliver) Op {
	op := Op{Name: want.Spec.Name, XID: want.Spec.XID, Spec: want.Spec, Net: want.Net}
	var why []string
	if !hasNet {
		why = append(why, "network missing")
	} else if got, ok := applied[want.Spec.Name]; !ok {
		why = append(why, "network unknown")
	} else if changed := netcfg.Changes(got, want.Net); len(changed) > 0 {
		why = append(why, "network "+strings.Join(changed, ","))
	}
	if st.Spec == nil {
		why = append(why, "spec unknown")
	} else if changed := specDiff(*st.Spec, want.Spec); len(changed) > 0 {
		why = append(why, strings.Join(changed, ","))
	}
	if !st.Running {
		why = append(why, "not running")
	}
	switch {
	case want.Spec.Enabled && st.Frozen:
		op.Kind = OpResume
	case !want.Spec.Enabled && !st.Frozen && st.Running:
		op.Kind = OpSuspend
	case len(why) > 0:
		op.Kind = OpUpdate
	default:
		op.Kind = OpNone
	}
	op.Reason = strings.Join(why, "; ")
	return op
}

// specDiff names the fields of the applied spec that differ from the
// desired one (sliver.Changes, derived from the Spec type). NetNS is not
// compared: netcfg decides it at apply time.
func specDiff(got, want sliver.Spec) []string {
	got.NetNS = want.NetNS
	return sliver.Changes(got, want)
}

// RenderPlan renders a plan as canonical text, one op per line.
func RenderPlan(ops []Op) string {
	var b strings.Builder
	for _, o := range ops {
		b.WriteString(o.String())
		b.WriteByte('\n')
	}
	return b.String()
}
