package nodecmd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sliver"
)

// TestCPUFidelity measures what the CPU arbitration promises brokers
// (docs/brokering.md): real slivers busy-loop on every CPU and their
// cgroups' cpuacct.usage is read over a window. It prints measured
// against target; it fails only when a measurement is impossible, not on
// a miss (the machine's other load moves the figures; the table says
// which hold). Run: PL_BENCH_CPU=1 go test -run TestCPUFidelity -v
// ./internal/node/nodecmd (root; about two minutes).
func TestCPUFidelity(t *testing.T) {
	if os.Getenv("PL_BENCH_CPU") == "" {
		t.Skip("a measurement, not a check: set PL_BENCH_CPU=1 to run it")
	}
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })
	// PL_BENCH_CPU_PARENT_SHARES raises the weight of the slivers' parent
	// cgroup against the rest of the machine for the run (on a shared,
	// loaded machine the slivers otherwise get a small slice of it; the
	// ratios between slivers hold either way, absolute figures do not).
	if s := os.Getenv("PL_BENCH_CPU_PARENT_SHARES"); s != "" {
		path := "/sys/fs/cgroup/cpu" + l.parent + "/cpu.shares"
		os.MkdirAll("/sys/fs/cgroup/cpu"+l.parent, 0o755) // the runtime makes it at the first sliver otherwise
		old, _ := os.ReadFile(path)
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(path, old, 0o644) })
	}
	ncpu := runtime.NumCPU()
	window := 15 * time.Second
	if s := os.Getenv("PL_BENCH_CPU_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	type row struct {
		scenario, sliver, target, measured, verdict string
	}
	var rows []row
	load := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.Join(strings.Fields(string(b))[:3], " ")
	}

	// run sets the slivers, busy-loops ncpu processes in each, and returns
	// each sliver's CPU over the window in CPUs (1.0 = one CPU).
	run := func(slivers []core.Sliver) map[string]float64 {
		plc.Set(slivers)
		l.eventually("slivers running", 120*time.Second, func() bool {
			for _, s := range slivers {
				if !l.running(s.Name) {
					return false
				}
			}
			return true
		})
		var cmds []*exec.Cmd
		for _, s := range slivers {
			for range ncpu {
				cmd, err := l.node.Runtime.Command(context.Background(), s.Name, sliver.Process{Args: []string{"sh", "-c", "while :; do :; done"}})
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				cmds = append(cmds, cmd)
			}
		}
		defer func() {
			for _, c := range cmds {
				c.Process.Kill()
				c.Wait()
			}
		}()
		usage := func() map[string]float64 {
			out := map[string]float64{}
			for _, s := range slivers {
				v, err := strconv.ParseFloat(l.cgroupFile("cpuacct", s.Name, "cpuacct.usage"), 64)
				if err != nil {
					t.Fatalf("cpuacct.usage of %s: %v", s.Name, err)
				}
				out[s.Name] = v
			}
			return out
		}
		time.Sleep(2 * time.Second) // every loop started and running
		a, t0 := usage(), time.Now()
		time.Sleep(window)
		b, t1 := usage(), time.Now()
		out := map[string]float64{}
		for n := range a {
			out[n] = (b[n] - a[n]) / float64(t1.Sub(t0).Nanoseconds())
		}
		return out
	}
	verdict := func(got, want, tol float64) string {
		if got >= want-tol && got <= want+tol {
			return "holds"
		}
		return "MISS"
	}
	pct := func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

	// 1. Weights 1:3.
	before := load()
	u := run([]core.Sliver{liveSliver("pltest_w1", 1, "cpu_share", "1"), liveSliver("pltest_w3", 2, "cpu_share", "3")})
	tot := u["pltest_w1"] + u["pltest_w3"]
	if tot <= 0 {
		t.Fatalf("no CPU measured: %v", u)
	}
	rows = append(rows,
		row{"cpu_share 1:3", "pltest_w1", "25.0% of the pair (±5)", pct(u["pltest_w1"] / tot), verdict(u["pltest_w1"]/tot, 0.25, 0.05)},
		row{"cpu_share 1:3", "pltest_w3", "75.0% of the pair (±5)", pct(u["pltest_w3"] / tot), verdict(u["pltest_w3"]/tot, 0.75, 0.05)},
		row{"cpu_share 1:3", "(both)", fmt.Sprintf("%d CPUs", ncpu), fmt.Sprintf("%.2f CPUs", tot), "-"})

	// 2. A 25% guarantee against 10 busy slivers.
	sl := []core.Sliver{liveSliver("pltest_g", 10, "cpu_pct", "25")}
	for i := range 10 {
		sl = append(sl, liveSliver(fmt.Sprintf("pltest_b%d", i), int64(11+i)))
	}
	u = run(sl)
	tot = 0
	for _, v := range u {
		tot += v
	}
	rows = append(rows,
		row{"cpu_pct 25 + 10 busy", "pltest_g", "≥ 25.0% of the slivers' CPU", pct(u["pltest_g"] / tot), map[bool]string{true: "holds", false: "MISS"}[u["pltest_g"]/tot >= 0.25*0.97]},
		row{"cpu_pct 25 + 10 busy", "each other", "7.5% each (75/10)", pct(u["pltest_b0"] / tot), "-"},
		row{"cpu_pct 25 + 10 busy", "(all)", fmt.Sprintf("%d CPUs", ncpu), fmt.Sprintf("%.2f CPUs", tot), "-"})

	// 3. A cap of 50% of one CPU, alone and busy on every CPU, beside the
	// same-run baseline: an uncapped sliver alone (what the test's cgroup
	// gets of this machine). A cap can only be seen to hold when the
	// baseline exceeds it.
	u = run([]core.Sliver{liveSliver("pltest_free", 31)})
	base := u["pltest_free"]
	u = run([]core.Sliver{liveSliver("pltest_cap", 30, "cpu_cap_pct", "50")})
	quota := l.cgroupFile("cpu", "pltest_cap", "cpu.cfs_quota_us") + "/" + l.cgroupFile("cpu", "pltest_cap", "cpu.cfs_period_us")
	v := verdict(u["pltest_cap"], 0.5, 0.5*0.03)
	if base < 0.5*1.1 {
		v = fmt.Sprintf("not measurable: the uncapped baseline got %.3f CPU", base)
	}
	rows = append(rows,
		row{"baseline", "pltest_free", fmt.Sprintf("up to %d CPUs", ncpu), fmt.Sprintf("%.3f CPU", base), "-"},
		row{"cpu_cap_pct 50", "pltest_cap", "0.50 CPU (±3% of it), quota " + quota, fmt.Sprintf("%.3f CPU", u["pltest_cap"]), v})
	after := load()

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "SCENARIO\tSLIVER\tTARGET\tMEASURED\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.scenario, r.sliver, r.target, r.measured, r.verdict)
	}
	tw.Flush()
	t.Logf("CPU fidelity, %d CPUs, window %v per scenario, load average before %s, after %s:\n%s", ncpu, window, before, after, b.String())
}
