package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(c.t.Load(), 0) }

type harness struct {
	t     *testing.T
	dir   string
	plc   *fakePLC
	rt    *fakeRuntime
	net   *fakeNet
	clock *clock
	m     *Main
	done  chan error
	// figures, if set before start, is the agent's Figures hook.
	figures func() (*core.NodeFigures, error)
	bwmon   func(after time.Time) []core.BwmonEvent // BwmonEvents hook
	report  time.Duration                           // ReportInterval; 0 = default
	prefix6 netip.Prefix                            // IPv6Prefix (the node's own)
}

func newHarness(t *testing.T, st *core.NodeState) *harness {
	h := &harness{t: t, dir: t.TempDir(), plc: newFakePLC(st), rt: newFakeRuntime(), net: newFakeNet(), clock: &clock{}}
	h.clock.t.Store(1_000_000)
	return h
}

func (h *harness) start() {
	h.t.Helper()
	// Main is a type: build it as a literal, as the style guide says.
	m := &Main{Config: Config{
		StateDir: h.dir, PLC: h.plc, Runtime: h.rt, Net: h.net, NCPU: 2,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		WatchTimeout: time.Second, PollInterval: 100 * time.Millisecond, ResyncInterval: 50 * time.Millisecond,
		Now: h.clock.now, SSHHostKey: "ssh-ed25519 AAAAhost", Version: "test",
		Figures: h.figures, ReportInterval: h.report, BwmonEvents: h.bwmon, IPv6Prefix: h.prefix6,
	}}
	if err := m.init(); err != nil {
		h.t.Fatal(err)
	}
	h.m = m
	h.done = make(chan error, 1)
	go func() { h.done <- m.Run(context.Background()) }()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.m != nil {
		h.m.Close()
		<-h.done
		h.m = nil
	}
}

// eventually waits up to 10 s for cond and returns how long it took.
func (h *harness) eventually(what string, cond func() bool) time.Duration {
	h.t.Helper()
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s", what)
	return 0
}

func (h *harness) sliver(name string) (running, frozen bool, shares uint64, ok bool) {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	s, ok := h.rt.slivers[name]
	if !ok {
		return false, false, 0, false
	}
	return s.Running, s.Frozen, s.Spec.Resources.CPUShares, true
}

func (h *harness) exists(name string) bool { _, _, _, ok := h.sliver(name); return ok }

func (h *harness) hasNet(name string) bool {
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	_, ok := h.net.nets[name]
	return ok
}

func (h *harness) starts(name string) int {
	h.rt.mu.Lock()
	defer h.rt.mu.Unlock()
	return h.rt.starts[name]
}

func TestMainFollowsPLC(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1})
	h.start()
	h.eventually("first pass", func() bool { return h.m.Status().Passes > 0 })

	h.plc.set(func(st *core.NodeState) { st.Slivers = []core.Sliver{sliverOf("pl_a", 1), sliverOf("pl_b", 2)} })
	took := h.eventually("slivers created", func() bool { return h.exists("pl_a") && h.exists("pl_b") })
	t.Logf("bind -> sliver running: %v", took)

	h.plc.set(func(st *core.NodeState) { st.Slivers[0] = sliverOf("pl_a", 1, "cpu_share", "3") })
	h.eventually("cpu_share applied", func() bool { _, _, s, _ := h.sliver("pl_a"); return s == 3072 })
	if n := h.starts("pl_a"); n != 1 {
		t.Fatalf("pl_a started %d times; live updates must not restart", n)
	}

	h.plc.set(func(st *core.NodeState) { st.Slivers[0] = sliverOf("pl_a", 1, "enabled", "0") })
	h.eventually("pl_a frozen", func() bool { _, f, _, _ := h.sliver("pl_a"); return f })
	h.plc.set(func(st *core.NodeState) { st.Slivers[0] = sliverOf("pl_a", 1) })
	h.eventually("pl_a thawed", func() bool { r, f, _, _ := h.sliver("pl_a"); return r && !f })

	// A bad tag: reported, sliver keeps its configuration, others unaffected.
	h.plc.set(func(st *core.NodeState) {
		st.Slivers[0] = sliverOf("pl_a", 1, "disk_max", "lots")
		st.Slivers[1] = sliverOf("pl_b", 2, "cpu_share", "2")
	})
	h.eventually("pl_b updated", func() bool { _, _, s, _ := h.sliver("pl_b"); return s == 2048 })
	h.eventually("error reported", func() bool {
		r, _ := h.plc.lastReport()
		return strings.Contains(r.SliverErrors["pl_a"], "disk_max") && r.RunLevel == "boot" && r.BootState == "boot" && r.SSHHostKey != ""
	})
	if !h.exists("pl_a") {
		t.Fatal("refused slice destroyed")
	}
	h.plc.set(func(st *core.NodeState) { st.Slivers[0] = sliverOf("pl_a", 1) })
	h.eventually("error cleared", func() bool { r, _ := h.plc.lastReport(); return len(r.SliverErrors) == 0 })

	// Unbind.
	h.plc.set(func(st *core.NodeState) { st.Slivers = st.Slivers[1:] })
	h.eventually("pl_a destroyed and its xid released", func() bool {
		return !h.exists("pl_a") && !h.hasNet("pl_a") && h.m.xids.Get("pl_a") == 0
	})
}

func TestMainOfflineAndRestart(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1})
	h.plc.set(func(st *core.NodeState) {
		st.Slivers = []core.Sliver{sliverOf("pl_a", 1), sliverOf("pl_exp", 2)}
		st.Slivers[1].Expires = h.clock.t.Load() + 60
	})
	h.start()
	h.eventually("slivers created", func() bool { return h.exists("pl_a") && h.exists("pl_exp") })

	// PLC goes away: nothing is destroyed, but expiry is enforced locally.
	h.plc.setDown(true)
	h.eventually("offline noticed", func() bool { return !h.m.Online() })
	passes := h.m.Status().Passes
	h.eventually("more passes offline", func() bool { return h.m.Status().Passes > passes+3 })
	if !h.exists("pl_a") || !h.exists("pl_exp") {
		t.Fatal("a sliver was destroyed because PLC is unreachable")
	}
	h.clock.t.Add(120)
	h.eventually("expired sliver destroyed offline", func() bool { return !h.exists("pl_exp") })
	if !h.exists("pl_a") {
		t.Fatal("pl_a destroyed")
	}

	// Restart while PLC is down: the cache drives, running slivers are
	// adopted, not restarted.
	h.stop()
	h.rt.takeCalls()
	h.start()
	passes = h.m.Status().Passes
	h.eventually("passes after restart", func() bool { return h.m.Status().Passes > passes+3 })
	if calls := h.rt.takeCalls(); calls != "" {
		t.Fatalf("restart touched slivers:\n%s", calls)
	}
	if n := h.starts("pl_a"); n != 1 {
		t.Fatalf("pl_a started %d times", n)
	}

	// PLC back with a change: applied at once.
	h.plc.set(func(st *core.NodeState) { st.Slivers = append(st.Slivers, sliverOf("pl_c", 3)) })
	h.plc.setDown(false)
	h.eventually("pl_c created after PLC came back", func() bool { return h.exists("pl_c") })
	h.eventually("online", func() bool { return h.m.Online() })
}

func TestMainCorruptCacheDestroysNothing(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1})
	h.plc.set(func(st *core.NodeState) { st.Slivers = []core.Sliver{sliverOf("pl_a", 1)} })
	h.start()
	h.eventually("created", func() bool { return h.exists("pl_a") })
	h.stop()

	path := filepath.Join(h.dir, "desired.json")
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), "pl_a", "pl_x", 1)), 0o600)
	h.plc.setDown(true)
	h.rt.takeCalls()
	h.start()
	time.Sleep(300 * time.Millisecond)
	if h.m.Status().Passes != 0 || h.m.Status().Version != "" {
		t.Fatalf("acted on a corrupt cache: %+v", h.m.Status())
	}
	if calls := h.rt.takeCalls(); calls != "" || !h.exists("pl_a") {
		t.Fatalf("touched slivers without a trusted state: %q", calls)
	}
	// A PLC answer with no slivers is a real state: then the sliver goes.
	h.plc.set(func(st *core.NodeState) { st.Slivers = nil })
	h.plc.setDown(false)
	h.eventually("destroyed after PLC said so", func() bool { return !h.exists("pl_a") })
}

func TestMainDirectory(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1})
	h.plc.set(func(st *core.NodeState) { st.Slivers = []core.Sliver{sliverOf("pl_a", 1, "enabled", "0")} })
	h.start()
	h.eventually("directory", func() bool { _, ok := h.m.LookupSlice("pl_a"); return ok })
	info, _ := h.m.LookupSlice("pl_a")
	if info.Enabled || !info.Running || len(info.Keys) != 1 {
		t.Fatalf("directory entry: %+v", info)
	}
	if _, ok := h.m.LookupSlice("pl_nope"); ok {
		t.Fatal("unknown slice found")
	}
}

// TestReportCarriesFigures: each periodic report carries the sensor
// summary, cut to its bounds; a collection failure sends the report
// without figures.
func TestReportCarriesFigures(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1})
	var calls atomic.Int32
	h.figures = func() (*core.NodeFigures, error) {
		n := calls.Add(1)
		if n == 2 {
			return nil, errors.New("sensor broke")
		}
		f := &core.NodeFigures{Time: time.Now(), Load1: float64(n)}
		for i := range core.MaxSliverFigures + 1 {
			f.Slivers = append(f.Slivers, core.SliverFigures{Slice: fmt.Sprintf("pl_%d", i), LastError: strings.Repeat("x", 500)})
		}
		return f, nil
	}
	h.report = 50 * time.Millisecond
	h.start()
	h.eventually("three reports", func() bool { _, n := h.plc.lastReport(); return n >= 3 })
	h.plc.mu.Lock()
	reps := slices.Clone(h.plc.reports)
	h.plc.mu.Unlock()
	withFigures, without := 0, 0
	for _, r := range reps {
		if r.Figures == nil {
			without++
			continue
		}
		withFigures++
		if err := r.Figures.Validate(); err != nil {
			t.Fatalf("reported figures invalid: %v", err)
		}
		if len(r.Figures.Slivers) != core.MaxSliverFigures || r.Figures.SliverCount != core.MaxSliverFigures+1 {
			t.Fatalf("figures not bounded: %d slivers of %d", len(r.Figures.Slivers), r.Figures.SliverCount)
		}
	}
	if withFigures < 2 || without != 1 {
		t.Fatalf("%d reports with figures, %d without; want >= 2 and exactly 1", withFigures, without)
	}
}

// TestReportCarriesBwmonEvents: reports carry bwmon's events after the
// last event of an accepted report, so that each reaches PLC once.
func TestReportCarriesBwmonEvents(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1})
	t0 := time.Unix(1_800_000_000, 0)
	var evs []core.BwmonEvent
	for i, k := range []string{core.BwmonCapped, core.BwmonThrottled, core.BwmonReset} {
		evs = append(evs, core.BwmonEvent{At: t0.Add(time.Duration(i) * time.Minute), Slice: "pl_a", SliceID: 5, Kind: k, Until: t0.Add(time.Hour)})
	}
	h.bwmon = func(after time.Time) []core.BwmonEvent {
		var out []core.BwmonEvent
		for _, e := range evs {
			if e.At.After(after) && len(out) < 2 {
				out = append(out, e)
			}
		}
		return out
	}
	h.report = 30 * time.Millisecond
	h.start()
	h.eventually("four reports", func() bool { _, n := h.plc.lastReport(); return n >= 4 })
	h.plc.mu.Lock()
	reps := slices.Clone(h.plc.reports)
	h.plc.mu.Unlock()
	var got []string
	for _, r := range reps {
		for _, e := range r.BwmonEvents {
			got = append(got, e.Kind)
		}
	}
	if strings.Join(got, " ") != "capped throttled reset" {
		t.Fatalf("reports carried %v, want each event once, in order", got)
	}
	if len(reps[0].BwmonEvents) != 2 {
		t.Errorf("first report carried %d events, want the hook's 2", len(reps[0].BwmonEvents))
	}
}
