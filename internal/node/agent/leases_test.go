package agent

import (
	"io"
	"log/slog"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func leaseState() *core.NodeState {
	return &core.NodeState{Version: "v1", NodeID: 1, ReservationPolicy: "lease_or_idle",
		Slivers: []core.Sliver{sliverOf("pl_a", 1, "cpu_share", "2"), sliverOf("pl_b", 2), sliverOf("pl_sys", 3, "system", "1")},
		Leases:  []core.SliverLease{{SliceID: 1, Name: "pl_a", TFrom: 1000, TUntil: 2000}, {SliceID: 2, Name: "pl_b", TFrom: 2000, TUntil: 3000}}}
}

func enabledOf(t *testing.T, st *core.NodeState, now int64) map[string]bool {
	t.Helper()
	d := Compute(WithLeases(st, now), Env{Now: now, XIDs: map[string]int{"pl_a": 1, "pl_b": 2, "pl_sys": 3}, NCPU: 2})
	out := map[string]bool{}
	for n, s := range d.Slivers {
		out[n] = s.Spec.Enabled
	}
	if len(d.Errors) > 0 {
		t.Fatalf("errors %v", d.Errors)
	}
	return out
}

// The schedule: who holds the node at each instant around the
// boundaries, when the agent wakes, what the others get.
func TestLeaseSchedule(t *testing.T) {
	st := leaseState()
	for _, c := range []struct {
		now          int64
		holder       string
		a, b         bool
		nextBoundary int64
	}{
		{999, "", false, false, 1000},
		{1000, "pl_a", true, false, 2000},
		{1999, "pl_a", true, false, 2000},
		{2000, "pl_b", false, true, 3000},
		{2999, "pl_b", false, true, 3000},
		{3000, "", false, false, 0},
	} {
		if h := Holder(st, c.now); h != c.holder {
			t.Errorf("at %d holder %q, want %q", c.now, h, c.holder)
		}
		en := enabledOf(t, st, c.now)
		if en["pl_a"] != c.a || en["pl_b"] != c.b || !en["pl_sys"] {
			t.Errorf("at %d enabled %v", c.now, en)
		}
		if nb := NextBoundary(st, c.now); nb != c.nextBoundary {
			t.Errorf("at %d next boundary %d, want %d", c.now, nb, c.nextBoundary)
		}
	}
	// The holder gets the reserved share: cpu_pct 90 against the system
	// sliver, whatever its cpu_share.
	d := Compute(WithLeases(st, 1500), Env{Now: 1500, XIDs: map[string]int{"pl_a": 1, "pl_b": 2, "pl_sys": 3}, NCPU: 2})
	a, sys := d.Slivers["pl_a"].Spec.Resources.CPUShares, d.Slivers["pl_sys"].Spec.Resources.CPUShares
	if frac := float64(a) / float64(a+sys); frac < 0.9 || frac > 0.91 {
		t.Errorf("holder's weight fraction %.3f (%d vs %d), want 0.90", frac, a, sys)
	}
	// Not reservable: nothing changes.
	st.ReservationPolicy = "none"
	if WithLeases(st, 1500) != st || NextBoundary(st, 500) != 0 {
		t.Error("leases applied on a node that is not reservable")
	}
	if en := enabledOf(t, st, 500); !en["pl_a"] || !en["pl_b"] {
		t.Errorf("not reservable: %v", en)
	}
}

// The agent with a fake clock, one pass at a time: the pass at a
// boundary switches the holder, and each pass asks to be woken at the
// next boundary.
func TestLeaseSwitchWithFakeClock(t *testing.T) {
	h := newHarness(t, leaseState())
	m := &Main{Config: Config{StateDir: h.dir, PLC: h.plc, Runtime: h.rt, Net: h.net, NCPU: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: h.clock.now}}
	if err := m.init(); err != nil {
		t.Fatal(err)
	}
	m.setState(leaseState())
	frozen := func(name string) bool { _, f, _, _ := h.sliver(name); return f }
	for _, c := range []struct {
		now, wake int64
		a, b      bool // frozen
	}{
		{999, 1000, true, true},
		{1000, 2000, false, true},
		{1999, 2000, false, true},
		{2000, 3000, true, false},
		{3000, 2000000000, true, true}, // then only the slivers' expiry
	} {
		h.clock.t.Store(c.now)
		next := m.Reconcile(t.Context())
		if next.Unix() != c.wake || frozen("pl_a") != c.a || frozen("pl_b") != c.b || frozen("pl_sys") || !h.exists("pl_sys") {
			t.Errorf("at %d: wake %d (want %d), frozen a=%v b=%v sys=%v", c.now, next.Unix(), c.wake, frozen("pl_a"), frozen("pl_b"), frozen("pl_sys"))
		}
	}
}
