package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sliver"
)

func desiredOf(t *testing.T, slivers ...core.Sliver) Desired {
	t.Helper()
	st := &core.NodeState{Version: "v", NodeID: 1, Slivers: slivers}
	xids := map[string]int{}
	for _, s := range slivers {
		xids[s.Name] = int(s.SliceID)
	}
	return Compute(st, Env{Now: 1000, XIDs: xids, NCPU: 2})
}

func status(d Desired, name string, running, frozen bool) sliver.Status {
	spec := d.Slivers[name].Spec
	spec.NetNS = "/run/netns/x"
	return sliver.Status{Name: name, XID: spec.XID, Running: running, Frozen: frozen, Spec: &spec}
}

func TestPlanGolden(t *testing.T) {
	base := desiredOf(t,
		sliverOf("pl_same", 1),
		sliverOf("pl_cpu", 2),
		sliverOf("pl_off", 3),
		sliverOf("pl_on", 4, "enabled", "0"),
		sliverOf("pl_stopped", 5),
		sliverOf("pl_net", 6),
		sliverOf("pl_nonet", 7),
		sliverOf("pl_bad", 8),
	)
	want := desiredOf(t,
		sliverOf("pl_same", 1),
		sliverOf("pl_cpu", 2, "cpu_share", "4", "mem_max", "1048576"),
		sliverOf("pl_off", 3, "enabled", "0"),
		sliverOf("pl_on", 4),
		sliverOf("pl_stopped", 5),
		sliverOf("pl_net", 6, "net_max_rate", "2000", "ports", "tcp/8080"),
		sliverOf("pl_nonet", 7),
		sliverOf("pl_new", 9, "initscript_code", "echo hi"),
		sliverOf("pl_bad", 8, "disk_max", "lots"),
		sliverOf("pl_badnew", 10, "cpu_share", "-1"),
	)
	applied := map[string]netcfg.Sliver{}
	var sts []sliver.Status
	var nets []string
	for _, n := range []string{"pl_same", "pl_cpu", "pl_off", "pl_on", "pl_stopped", "pl_net", "pl_nonet", "pl_bad"} {
		sts = append(sts, status(base, n, n != "pl_stopped", n == "pl_on"))
		if n != "pl_nonet" {
			nets = append(nets, n)
			applied[n] = base.Slivers[n].Net
		}
	}
	// Left over on the host: a sliver PLC no longer lists, and a network
	// without a container (a crash between destroy steps).
	sts = append(sts, sliver.Status{Name: "pl_gone", XID: 20, Running: true})
	nets = append(nets, "pl_gone", "pl_halfgone")
	applied["pl_halfgone"] = netcfg.Sliver{Name: "pl_halfgone", XID: 21}

	got := RenderPlan(Plan(Actual{Slivers: sts, Net: nets, NetApplied: applied}, want))
	golden := `destroy pl_gone xid=20 (not wanted)
destroy pl_halfgone xid=21 (not wanted)
none pl_bad xid=8 (kept as is: disk_max: "lots" is not an integer)
update pl_cpu xid=2 (cpu_shares,memory)
update pl_net xid=6 (network ports,net_max_rate)
create pl_new xid=9
update pl_nonet xid=7 (network missing)
suspend pl_off xid=3 (enabled)
resume pl_on xid=4 (enabled)
none pl_same xid=1
update pl_stopped xid=5 (not running)
`
	if got != golden {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, golden)
	}
}

// TestPlanSeesEveryField: the change check is derived from the Spec type,
// so a field added to it (here the host name slivers see) is compared
// without anyone listing it.
func TestPlanSeesEveryField(t *testing.T) {
	compute := func(host string) Desired {
		st := &core.NodeState{Version: "v", NodeID: 1, Hostname: host, Slivers: []core.Sliver{sliverOf("pl_a", 1, "nofile", "2048")}}
		return Compute(st, Env{Now: 1000, XIDs: map[string]int{"pl_a": 1}, NCPU: 2})
	}
	old, want := compute("a.example.org"), compute("b.example.org")
	w := want.Slivers["pl_a"]
	w.Spec.Resources.NoFile++
	want.Slivers["pl_a"] = w
	actual := Actual{Slivers: []sliver.Status{status(old, "pl_a", true, false)}, Net: []string{"pl_a"},
		NetApplied: map[string]netcfg.Sliver{"pl_a": old.Slivers["pl_a"].Net}}
	if got := RenderPlan(Plan(actual, want)); got != "update pl_a xid=1 (nofile,hostname)\n" {
		t.Fatalf("plan: %q", got)
	}
}

func TestPlanNothingKnownDestroysNothingKept(t *testing.T) {
	// A refused new slice is not created, and nothing else happens.
	d := desiredOf(t, sliverOf("pl_bad", 1, "cpu_share", "x"))
	if got := RenderPlan(Plan(Actual{}, d)); got != "" {
		t.Fatalf("plan: %q", got)
	}
}

// world is a fake host driven through the real Executor.
type world struct {
	rt   *fakeRuntime
	net  *fakeNet
	exec *Executor
}

func newWorld(t *testing.T) *world {
	dir := t.TempDir()
	xids, err := LoadXIDs(filepath.Join(dir, "xids.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := loadNetRecord(filepath.Join(dir, "net.json"))
	w := &world{rt: newFakeRuntime(), net: newFakeNet()}
	w.exec = &Executor{Runtime: w.rt, Net: w.net, XIDs: xids, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), rec: rec}
	return w
}

func (w *world) actual(t *testing.T) Actual {
	sts, _ := w.rt.List(context.Background())
	nets, _ := w.net.List(context.Background())
	return Actual{Slivers: sts, Net: nets, NetApplied: w.exec.rec.snapshot()}
}

// matches reports how the host differs from d ("" if it matches).
func (w *world) matches(d Desired) string {
	var diffs []string
	for name, want := range d.Slivers {
		st, ok := w.rt.slivers[name]
		if !ok {
			diffs = append(diffs, name+" missing")
			continue
		}
		got := *st.Spec
		got.NetNS = ""
		if specLine(got) != specLine(want.Spec) || !st.Running || st.Frozen == want.Spec.Enabled {
			diffs = append(diffs, fmt.Sprintf("%s: got %s running=%t frozen=%t want %s", name, specLine(got), st.Running, st.Frozen, specLine(want.Spec)))
		}
		if n, ok := w.net.nets[name]; !ok || fmt.Sprint(n) != fmt.Sprint(want.Net) {
			diffs = append(diffs, fmt.Sprintf("%s: net %v want %v", name, n, want.Net))
		}
	}
	for name := range w.rt.slivers {
		if _, ok := d.Slivers[name]; !ok && d.Errors[name] == "" {
			diffs = append(diffs, name+" should not exist")
		}
	}
	for name := range w.net.nets {
		if _, ok := d.Slivers[name]; !ok && d.Errors[name] == "" {
			diffs = append(diffs, name+" network should not exist")
		}
	}
	return strings.Join(diffs, "; ")
}

func randomState(r *rand.Rand, n int) []core.Sliver {
	var out []core.Sliver
	for i := 1; i <= n; i++ {
		if r.IntN(3) == 0 {
			continue // not bound
		}
		kv := []string{"cpu_share", fmt.Sprint(r.IntN(4)), "enabled", fmt.Sprint(r.IntN(2))}
		if r.IntN(3) == 0 {
			kv = append(kv, "net_max_rate", fmt.Sprint(1000*(1+r.IntN(3))))
		}
		if r.IntN(4) == 0 {
			kv = append(kv, "ports", fmt.Sprintf("tcp/%d", 8000+i))
		}
		if r.IntN(5) == 0 {
			kv = append(kv, "cpu_pct", fmt.Sprint(10*r.IntN(3)))
		}
		if r.IntN(8) == 0 {
			kv = append(kv, "disk_max", "lots") // refused: keeps the last good config
		}
		out = append(out, sliverOf(fmt.Sprintf("pl_s%d", i), int64(i), kv...))
	}
	return out
}

// TestReplayIdempotent drives a fake host through random desired states.
// Each transition runs a random prefix of the plan's ops in random order (a
// crash), then re-plans from what exists and runs the whole plan twice.
// The host must then match the desired state, and a further plan must be
// all "none".
func TestReplayIdempotent(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		w := newWorld(t)
		ctx := context.Background()
		lastGood := map[string]string{} // refused slivers must keep these
		for step := 0; step < 12; step++ {
			d := desiredOf(t, randomState(r, 8)...)
			ops := Plan(w.actual(t), d)
			r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
			w.exec.Run(ctx, ops[:r.IntN(len(ops)+1)]) // crash part-way
			for i := 0; i < 2; i++ {
				ops = Plan(w.actual(t), d)
				r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
				if errs := w.exec.Run(ctx, ops); len(errs) > 0 {
					t.Fatalf("seed %d step %d: %v", seed, step, errs)
				}
			}
			if diff := w.matches(d); diff != "" {
				t.Fatalf("seed %d step %d: host differs: %s", seed, step, diff)
			}
			for _, op := range Plan(w.actual(t), d) {
				if op.Kind != OpNone {
					t.Fatalf("seed %d step %d: converged plan still has %s", seed, step, op)
				}
			}
			for name := range d.Errors {
				if st, ok := w.rt.slivers[name]; ok {
					if want, had := lastGood[name]; had && specLine(*st.Spec) != want {
						t.Fatalf("seed %d step %d: refused %s changed from %s to %s", seed, step, name, want, specLine(*st.Spec))
					}
				}
			}
			lastGood = map[string]string{}
			for name, st := range w.rt.slivers {
				lastGood[name] = specLine(*st.Spec)
			}
		}
	}
}

func TestExecutorDestroyOrderAndXIDRelease(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if err := w.exec.XIDs.Allocate([]string{"pl_a"}); err != nil {
		t.Fatal(err)
	}
	d := desiredOf(t, sliverOf("pl_a", 1))
	w.exec.Run(ctx, Plan(w.actual(t), d))
	w.rt.takeCalls()
	w.net.calls = nil
	w.exec.Run(ctx, Plan(w.actual(t), Desired{}))
	if got := w.rt.takeCalls(); got != "destroy pl_a" {
		t.Fatalf("runtime calls: %q", got)
	}
	if got := strings.Join(w.net.calls, "\n"); got != "remove pl_a xid=1" {
		t.Fatalf("net calls: %q", got)
	}
	if w.exec.XIDs.Get("pl_a") != 0 {
		t.Fatal("xid not released after destroy")
	}
	// A failed destroy keeps the xid: the uid range may still own files.
	w.exec.Run(ctx, Plan(w.actual(t), d))
	w.exec.XIDs.Adopt("pl_a", 1)
	w.rt.fail["pl_a"] = fmt.Errorf("busy")
	errs := w.exec.Run(ctx, Plan(w.actual(t), Desired{}))
	if errs["pl_a"] == nil || w.exec.XIDs.Get("pl_a") != 1 {
		t.Fatalf("failed destroy: errs %v xid %d", errs, w.exec.XIDs.Get("pl_a"))
	}
}

func TestExecutorConcurrency(t *testing.T) {
	w := newWorld(t)
	w.rt.delay = 20 * time.Millisecond
	w.exec.Parallel = 3
	var slivers []core.Sliver
	for i := 1; i <= 12; i++ {
		slivers = append(slivers, sliverOf(fmt.Sprintf("pl_c%d", i), int64(i)))
	}
	d := desiredOf(t, slivers...)
	ops := Plan(w.actual(t), d)
	// The same plan run twice at once: ops on one sliver must still be
	// serialized, and independent ones bounded by Parallel per run.
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); w.exec.Run(context.Background(), ops) }()
	}
	wg.Wait()
	if w.rt.overlap {
		t.Fatal("two operations on one sliver ran concurrently")
	}
	if w.rt.max < 2 || w.rt.max > 6 {
		t.Fatalf("max concurrent applies %d, want 2..6 (two runs of at most 3)", w.rt.max)
	}
	if diff := w.matches(d); diff != "" {
		t.Fatal(diff)
	}
}
