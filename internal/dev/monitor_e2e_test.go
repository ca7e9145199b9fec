package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/geo"
)

// TestMonitorEndToEnd runs `pl dev --nodes 3` (Princeton, ETH Zurich,
// Tokyo) and uses the commands its summary prints, as an operator would
// (issue 11):
//
//   - every node appears up in `pl top nodes` with its ssh gateway
//     answering (ssh_ok);
//   - `pl slice add-nodes --where ... --near <site>` chooses the nearest
//     sites first, by the planet's real coordinates;
//   - a CPU burner in a sliver appears in `pl top slices` (the delay is
//     the benchmark of docs/monitoring.md, printed beside the report
//     interval and the cost of one `pl top` call);
//   - `pl dev stop n2`: within the monitor's configured time the node is
//     down in `pl top nodes`, a notice to its site exists (`pl monitor
//     notices`) and the selection skips it; `pl dev start n2`: it is up
//     again.
func TestMonitorEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"ssh", "runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: ssh runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const id = "mon"
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self
	before := snapshotHost(t)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dev := exec.Command(pl, "dev", "--nodes", "3", "--id", id, "--wan", "10.86.0.0/16", "--plc-port", "18446") // hostdeps: self
	d := startDev(t, dev, id, "Try:", 10*time.Minute, 2*time.Minute)
	sum := d.summary.String()
	t.Logf("pl dev summary:\n%s", sum)

	// The summary's monitoring lines, and the admin session they use.
	for _, want := range []string{
		" top nodes\n", " monitor notices\n",
		fmt.Sprintf(" dev stop n2 --id %s\n", id), fmt.Sprintf(" dev start n2 --id %s ", id),
		fmt.Sprintf("PLC's monitor marks a node down after %v without a report", DownAfter),
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	cfgDir, _ := match1(t, sum, `(?m)^admin CLI\s+.*?PL_CONFIG_DIR=(\S+) ()`)
	admin := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + cfgDir}}
	jsonOf := func(v any, args ...string) {
		t.Helper()
		out := admin.run(append(args, "--json")...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("pl %s --json: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	nodeLines := regexp.MustCompile(`(?m)^\s+(n\d+)\s+(10\.86\.\d+\.\d+)\s+(\S+)\s+(\S+) \(`).FindAllStringSubmatch(sum, -1)
	if len(nodeLines) != 3 {
		t.Fatalf("summary lists %d nodes, want 3", len(nodeLines))
	}
	type node struct{ name, addr, host, site string }
	var nodes []node
	for _, m := range nodeLines {
		nodes = append(nodes, node{m[1], m[2], m[3], m[4]})
	}
	n2 := nodes[1]

	// Every node up, reporting, its ssh gateway answering.
	rows := map[string]core.NodeRow{}
	topNodes := func() {
		var rs []core.NodeRow
		jsonOf(&rs, "top", "nodes")
		clear(rows)
		for _, r := range rs {
			rows[r.Hostname] = r
		}
	}
	waitFor(t, 2*time.Minute, "every node up with figures and ssh_ok", func() error {
		topNodes()
		for _, n := range nodes {
			if r := rows[n.host]; !r.Up || r.LastReport == 0 || !r.SSHOK {
				return fmt.Errorf("%s: %+v", n.name, r)
			}
		}
		return nil
	})
	if out := admin.run("node", "show", n2.host); !regexp.MustCompile(`status:\s+up`).MatchString(out) ||
		!regexp.MustCompile(`ssh gateway:\s+up`).MatchString(out) {
		t.Errorf("pl node show %s:\n%s", n2.host, out)
	}

	// Selection by measurement and place: nearest sites first by the
	// planet's coordinates (DemoSites), as core/geo measures them.
	demoSlice, _ := match1(t, sum, `(?m)^Demo slice (\S+) on every node, member \S+ \(password in \S+\), ssh key (\S+)\.$`)
	where := func(login string) DemoSite {
		for _, s := range DemoSites {
			if s.LoginBase == login {
				return s
			}
		}
		t.Fatalf("no demo site %q", login)
		return DemoSite{}
	}
	nearest := func(from DemoSite, skip string) []string {
		var ns []node
		for _, n := range nodes {
			if n.name != skip {
				ns = append(ns, n)
			}
		}
		dist := func(n node) float64 {
			s := where(n.site)
			return geo.Distance(from.Lat, from.Lon, s.Lat, s.Lon)
		}
		sort.SliceStable(ns, func(i, j int) bool { return dist(ns[i]) < dist(ns[j]) })
		var hosts []string
		for _, n := range ns {
			hosts = append(hosts, n.host)
		}
		return hosts
	}
	selectNodes := func(args ...string) []string {
		t.Helper()
		var chosen []core.Selected
		jsonOf(&chosen, append([]string{"slice", "add-nodes", demoSlice}, args...)...)
		var hosts []string
		for _, c := range chosen {
			hosts = append(hosts, c.Hostname)
		}
		return hosts
	}
	for _, near := range []string{"ethz", "tokyo", "princeton"} {
		want := nearest(where(near), "")
		if got := selectNodes("--where", "up && ssh_ok && disk_free_gb > 0", "--near", near, "--dry-run"); !slices.Equal(got, want) {
			t.Errorf("--near %s: chose %v, want %v", near, got, want)
		}
	}
	sydney := DemoSite{LoginBase: "-", Location: where("sydney").Location}
	if got, want := selectNodes("--where", "up", "--near", fmt.Sprintf("%g,%g", sydney.Lat, sydney.Lon), "--count", "2", "--dry-run"), nearest(sydney, "")[:2]; !slices.Equal(got, want) {
		t.Errorf("--near Sydney --count 2: chose %v, want %v", got, want)
	}

	// Benchmark: a sliver's load change until `pl top slices` shows it.
	benchLoadToTop(ctx, t, admin, sum, demoSlice, nodes[0].host, nodes[0].addr)

	// Outage: stop n2's node manager.
	devCtl := func(op, name string) {
		t.Helper()
		if out, err := exec.Command(pl, "dev", op, name, "--id", id).CombinedOutput(); err != nil { // hostdeps: self
			t.Fatalf("pl dev %s %s: %v\n%s", op, name, err, out)
		}
	}
	devCtl("stop", n2.name)
	stoppedAt := time.Now()
	waitFor(t, DownAfter+DownAfter/4+2*ReportInterval+10*time.Second, n2.name+" down in pl top nodes", func() error {
		topNodes()
		if r := rows[n2.host]; r.Status != "down" {
			return fmt.Errorf("status %s", r.Status)
		}
		return nil
	})
	r := rows[n2.host]
	silent := time.Since(time.Unix(r.LastContact, 0))
	t.Logf("%s marked down %v after pl dev stop, %v after its last contact (down after %v, monitor step %v)",
		n2.name, time.Since(stoppedAt).Round(100*time.Millisecond), silent.Round(time.Second), DownAfter, DownAfter/4)
	// The monitor steps every DownAfter/4; the poll adds its own period.
	if limit := DownAfter + DownAfter/4 + 3*time.Second; silent > limit {
		t.Errorf("%s marked down %v after its last contact; want within %v (down after %v, one monitor step)", n2.name, silent, limit, DownAfter)
	}
	if r.Up || r.SSHOK {
		t.Errorf("down node row: up %v ssh_ok %v", r.Up, r.SSHOK)
	}
	var notices []core.Notice
	jsonOf(&notices, "monitor", "notices")
	var told bool
	for _, n := range notices {
		if n.Kind == "node_down" && n.NodeID == r.NodeID && n.SiteID == r.SiteID {
			told = true
			t.Logf("notice: %s", n.Subject)
		}
	}
	if !told {
		t.Errorf("no node_down notice to site %d for node %d: %+v", r.SiteID, r.NodeID, notices)
	}
	var actions []core.MonitorAction
	jsonOf(&actions, "monitor", "actions")
	if !slices.ContainsFunc(actions, func(a core.MonitorAction) bool { return a.Kind == "node_down" && a.NodeID == r.NodeID }) {
		t.Errorf("no node_down action for node %d: %+v", r.NodeID, actions)
	}
	// The selection skips the down node.
	if got, want := selectNodes("--where", "up", "--near", n2.site, "--dry-run"), nearest(where(n2.site), n2.name); !slices.Equal(got, want) {
		t.Errorf("--near %s while %s is down: chose %v, want %v", n2.site, n2.name, got, want)
	}

	// It comes back.
	devCtl("start", n2.name)
	startedAt := time.Now()
	waitFor(t, time.Minute, n2.name+" up again", func() error {
		topNodes()
		if r := rows[n2.host]; !r.Up || !r.SSHOK {
			return fmt.Errorf("status %s ssh %s", r.Status, r.SSH)
		}
		return nil
	})
	t.Logf("%s up again (ssh_ok) %v after pl dev start", n2.name, time.Since(startedAt).Round(100*time.Millisecond))
	jsonOf(&notices, "monitor", "notices")
	if !slices.ContainsFunc(notices, func(n core.Notice) bool { return n.Kind == "node_up" && n.NodeID == r.NodeID }) {
		t.Errorf("no node_up notice for node %d: %+v", r.NodeID, notices)
	}

	d.stop()
	if t.Failed() {
		t.Logf("pl dev stderr:\n%s", d.stderr.String())
	}
	compareSnapshots(t, before, snapshotHost(t), pl)
}

// benchLoadToTop measures the end-to-end delay from a sliver's load change
// to its appearance in `pl top` (docs/monitoring.md; target: under one
// report interval, 15 s by default): a CPU burner starts in the demo
// sliver on host (over the stock ssh client, as the summary prints it),
// and `pl top slices` is polled until the sliver's CPU share shows it;
// then the burner stops and the poll waits for the share to fall. The
// baseline, measured in the same run, is the cost of one `pl top slices`
// call (the poll's resolution).
func benchLoadToTop(ctx context.Context, t *testing.T, admin *plCLI, sum, slice, host, addr string) {
	t.Helper()
	_, key := match1(t, sum, `(?m)^Demo slice (\S+) on every node, member \S+ \(password in \S+\), ssh key (\S+)\.$`)
	const busy = 5.0 // percent of the node: one busy loop is 100/CPUs
	share := func() (float64, time.Duration) {
		t.Helper()
		start := time.Now()
		var rows []core.SliceRow
		out := admin.run("top", "slices", "--where", fmt.Sprintf("name == %q", slice), "--json")
		took := time.Since(start)
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("pl top slices: %v\n%s", err, out)
		}
		for _, r := range rows {
			for _, s := range r.Slivers {
				if s.Hostname == host {
					return s.CPUPct, took
				}
			}
		}
		return 0, took
	}
	waitFor(t, time.Minute, "the demo sliver idle on "+host, func() error {
		if p, _ := share(); p >= busy {
			return fmt.Errorf("cpu %.1f%%", p)
		}
		return nil
	})
	burnCtx, stopBurn := context.WithCancel(ctx)
	defer stopBurn()
	burner := exec.CommandContext(burnCtx, "ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", // hostdeps: ssh
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", slice+"@"+addr, "while :; do :; done")
	var burnOut bytes.Buffer
	burner.Stdout, burner.Stderr = &burnOut, &burnOut
	start := time.Now()
	if err := burner.Start(); err != nil {
		t.Fatal(err)
	}
	var calls []time.Duration
	poll := func(what string, done func(float64) bool) time.Duration {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; {
			p, took := share()
			calls = append(calls, took)
			if done(p) {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute (cpu %.1f%%; burner: %s)", what, p, burnOut.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	up := poll("burner in pl top", func(p float64) bool { return p >= busy })
	stopBurn()
	burner.Wait()
	start = time.Now()
	down := poll("burner gone from pl top", func(p float64) bool { return p < busy })
	slices.Sort(calls)
	t.Logf("BENCH load change -> pl top: burner started %v, stopped %v (target < 15s, the default report interval; this planet reports every %v); one pl top slices call p50 %v (baseline, %d calls)",
		up.Round(10*time.Millisecond), down.Round(10*time.Millisecond), ReportInterval, calls[len(calls)/2].Round(time.Millisecond), len(calls))
	if up > 15*time.Second || down > 15*time.Second {
		t.Logf("over the 15 s target (a figure, not an assertion: the machine's load is part of it)")
	}
}
