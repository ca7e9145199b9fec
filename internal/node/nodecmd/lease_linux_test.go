package nodecmd

import (
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// A lease switches which sliver holds a reservable node: before the
// leases both slivers are frozen, in pltest_la's lease it runs and
// pltest_lb is frozen, at the boundary they swap. The switch latency
// after each boundary is logged (docs/brokering.md).
func TestLeaseSwitchesHolder(t *testing.T) {
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })
	t0 := time.Now().Unix() + 6 // time to create both slivers first
	plc.SetState(core.NodeState{ReservationPolicy: "lease_or_idle",
		Slivers: []core.Sliver{liveSliver("pltest_la", 1), liveSliver("pltest_lb", 2)},
		Leases: []core.SliverLease{
			{SliceID: 1, Name: "pltest_la", TFrom: t0, TUntil: t0 + 4},
			{SliceID: 2, Name: "pltest_lb", TFrom: t0 + 4, TUntil: t0 + 8},
		}})
	state := func(name string) string { return l.cgroupFile("freezer", name, "freezer.state") }
	l.eventually("both created frozen before the leases", 30*time.Second, func() bool {
		return state("pltest_la") == "FROZEN" && state("pltest_lb") == "FROZEN"
	})
	if time.Now().Unix() >= t0 {
		t.Fatal("slivers took too long to create; the first lease already began")
	}
	for _, c := range []struct {
		at                 int64
		holder, other, why string
	}{
		{t0, "pltest_la", "pltest_lb", "pltest_la's lease begins"},
		{t0 + 4, "pltest_lb", "pltest_la", "pltest_la's lease ends, pltest_lb's begins"},
	} {
		l.eventually(c.why, 30*time.Second, func() bool {
			return state(c.holder) == "THAWED" && state(c.other) == "FROZEN"
		})
		took := time.Since(time.Unix(c.at, 0))
		t.Logf("%s: switched %v after the boundary", c.why, took.Round(time.Millisecond))
		if time.Now().Unix() < c.at {
			t.Fatalf("%s: switched before the boundary", c.why)
		}
		if !l.running(c.holder) {
			t.Fatalf("%s: %s is not running", c.why, c.holder)
		}
	}
	l.eventually("idle after the last lease: both frozen", 30*time.Second, func() bool {
		return state("pltest_la") == "FROZEN" && state("pltest_lb") == "FROZEN"
	})
	if time.Now().Unix() < t0+8 {
		t.Fatal("froze before the last lease ended")
	}
}
