package planet

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakePlanet is a site's nodes reporting (or not) under a fake clock.
type fakePlanet struct {
	now   time.Time
	nodes []NodeHealth
}

func (f *fakePlanet) advance(d time.Duration, reporting ...int64) {
	f.now = f.now.Add(d)
	for i := range f.nodes {
		for _, id := range reporting {
			if f.nodes[i].NodeID == id {
				f.nodes[i].LastContact = f.now.Unix()
			}
		}
	}
}

func lines(acts []Action) string {
	var b strings.Builder
	for _, a := range acts {
		fmt.Fprintf(&b, "%s node=%d site=%d level=%d notify=%s\n", a.Kind, a.NodeID, a.SiteID, a.Level, strings.Join(a.Notify, ","))
	}
	return b.String()
}

func TestMonitorDownNoticePenaltyRecovery(t *testing.T) {
	p := Policy{DownAfter: 2 * time.Minute, SiteGrace: time.Hour, SuspendAfter: 3 * time.Hour}
	start := time.Unix(1_700_000_000, 0)
	f := &fakePlanet{now: start, nodes: []NodeHealth{
		{NodeID: 1, SiteID: 10, BootState: "boot", LastContact: start.Unix()},
		{NodeID: 2, SiteID: 10, BootState: "boot", LastContact: start.Unix()},
		{NodeID: 3, SiteID: 20, BootState: "boot", LastContact: start.Unix()},
		{NodeID: 4, SiteID: 20, BootState: "disabled", LastContact: start.Unix() - 86400}, // out of service: never counts
		{NodeID: 5, SiteID: 30, BootState: "reinstall"},                                   // never reported
	}}
	m := NewMonitor(p, nil, nil)
	step := func(want string) {
		t.Helper()
		got := lines(m.Step(f.now, f.nodes))
		if got != want {
			t.Fatalf("at +%s:\ngot\n%swant\n%s", f.now.Sub(start), got, want)
		}
	}
	step("")
	if m.Status(1) != Up || m.Status(4) != Unknown || m.Status(5) != Unknown {
		t.Fatalf("statuses %s %s %s", m.Status(1), m.Status(4), m.Status(5))
	}
	// Node 2 stops reporting; just under the limit nothing happens.
	f.advance(119*time.Second, 1, 3)
	step("")
	f.advance(time.Second, 1, 3)
	step("node_down node=2 site=10 level=0 notify=tech,pi\n")
	step("") // once only
	// Site 20 loses its only watched node: down, then penalties in order.
	f.advance(2*time.Minute, 1)
	step("node_down node=3 site=20 level=0 notify=tech,pi\n")
	f.advance(59*time.Minute, 1)
	step("")
	f.advance(time.Minute, 1)
	step("site_penalty node=0 site=20 level=1 notify=tech,pi\n")
	f.advance(2*time.Hour, 1)
	step("site_penalty node=0 site=20 level=2 notify=tech,pi,user\n")
	step("")
	if m.Level(20) != PenaltySuspended || m.Level(10) != PenaltyNone {
		t.Fatalf("levels %d %d", m.Level(20), m.Level(10))
	}
	// The state survives a restart: no repeated actions.
	ns, ss := m.States()
	m = NewMonitor(p, ns, ss)
	step("")
	// Node 3 returns: up, penalty lifted. Node 2 returns too.
	f.advance(time.Minute, 1, 2, 3)
	step("node_up node=2 site=10 level=0 notify=tech,pi\nnode_up node=3 site=20 level=0 notify=tech,pi\nsite_penalty_lifted node=0 site=20 level=0 notify=tech,pi\n")
	if _, ss := m.States(); len(ss) != 0 {
		t.Errorf("sites remembered after recovery: %+v", ss)
	}
	// An admin disables the only node of a penalised site: the penalty goes.
	f.advance(3*time.Minute, 1, 2)
	step("node_down node=3 site=20 level=0 notify=tech,pi\n")
	f.advance(3*time.Hour, 1, 2) // straight from none to suspended
	step("site_penalty node=0 site=20 level=2 notify=tech,pi,user\n")
	f.nodes[2].BootState = "disabled"
	step("site_penalty_lifted node=0 site=20 level=0 notify=tech,pi\n")
	// A deleted node is forgotten.
	f.nodes = f.nodes[:1]
	step("")
	if ns, _ := m.States(); len(ns) != 1 {
		t.Errorf("nodes remembered: %+v", ns)
	}
}

func TestPolicyDefaults(t *testing.T) {
	p := Policy{SiteGrace: 5 * time.Hour, SuspendAfter: time.Hour}.WithDefaults()
	if p.DownAfter != DefaultDownAfter || p.SuspendAfter != 5*time.Hour {
		t.Errorf("%+v", p)
	}
}
