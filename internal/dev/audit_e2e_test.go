package dev

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/nodecmd"
	"github.com/planetlab/pl/internal/nodeapi"
)

// TestAuditEndToEnd runs `pl dev` (2 nodes; PL_AUDIT_NODES=16 for the
// planet-wide figure of docs/audit.md) and plays the accountability
// scenario its summary prints, from the CLI only (issue 12):
//
//   - the demo sliver on the last node sends TCP (busybox wget to the
//     demo service) and UDP (busybox nslookup, port 53) to the first
//     node's address, over the stock ssh client;
//   - `pl audit who <address> --since 10m` as the admin names, for each,
//     the slice, the node that sent it, the slice's site and its PI; the
//     delay from the end of the send to the answer is logged;
//   - the demo user (a member of the slice) sees the flows, and `pl audit
//     slice` names the destination and the node; a user of another slice
//     sees none of them and may not ask for the slice's traffic;
//   - bwmon: with a daily budget of 16 KiB (net_max_kbyte), the sliver
//     serves its page to the host until past it; the slice's member reads
//     "slice X throttled on node Y: daily budget 16 KiB exceeded" in `pl
//     monitor notices`;
//   - BENCH: one planet-wide `pl audit who` beside one `pl top nodes`
//     (the same CLI and PLC round trip without the fan-out), p50 of a few
//     calls each.
func TestAuditEndToEnd(t *testing.T) {
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
	nodes := 2
	if s := os.Getenv("PL_AUDIT_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 || n > 64 {
			t.Fatalf("PL_AUDIT_NODES=%q: want a number of nodes from 2 to 64", s)
		}
		nodes = n
	}
	const id = "aud"
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self
	before := snapshotHost(t)

	dev := exec.Command(pl, "dev", "--nodes", strconv.Itoa(nodes), "--id", id, "--wan", "10.85.0.0/16", "--plc-port", "18447") // hostdeps: self
	started := time.Now()
	d := startDev(t, dev, id, "Try accountability:", time.Duration(5+nodes)*time.Minute, 3*time.Minute)
	sum := d.summary.String()
	t.Logf("pl dev --nodes %d ready in %v; summary:\n%s", nodes, time.Since(started).Round(time.Second), sum)

	cfgDir, _ := match1(t, sum, `(?m)^admin CLI\s+.*?PL_CONFIG_DIR=(\S+) ()`)
	admin := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + cfgDir}}
	plcURL, fp := match1(t, sum, `(?m)^PLC\s+(\S+)\s+\(certificate sha256 (\S+)\)`)
	m := regexp.MustCompile(`(?m)^Demo slice (\S+) on every node, member (\S+) \(password in (\S+)\), ssh key (\S+)\.$`).FindStringSubmatch(sum)
	if m == nil {
		t.Fatalf("summary names no demo slice")
	}
	slice, member, pwFile, key := m[1], m[2], m[3], m[4]
	site, _, _ := strings.Cut(slice, "_")
	pi := "pi@" + site + ".example.org" // the demo PI (setupDemo)

	// The summary's scenario: ssh into the last node's sliver, send to the
	// first node; ask PLC.
	to, _ := match1(t, sum, `(?m)pl audit who (\S+) --since 10m()$`)
	fromAddr, _ := match1(t, sum, `(?m)^Try accountability: .*\n  ssh .*?@(\S+) '()`)
	hostOf := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+n\d+\s+(\d+\.\d+\.\d+\.\d+)\s+(\S+)\s`).FindAllStringSubmatch(sum, -1) {
		hostOf[m[1]] = m[2]
	}
	if len(hostOf) != nodes {
		t.Fatalf("summary lists %d nodes, want %d", len(hostOf), nodes)
	}
	fromHost := hostOf[fromAddr]

	// Every node up first (the flow log answers once the node manager runs).
	waitFor(t, 3*time.Minute, "every node up", func() error {
		var rows []core.NodeRow
		if err := json.Unmarshal([]byte(admin.run("top", "nodes", "--json")), &rows); err != nil {
			return err
		}
		up := 0
		for _, r := range rows {
			if r.Up {
				up++
			}
		}
		if up != nodes {
			return fmt.Errorf("%d of %d up", up, nodes)
		}
		return nil
	})

	send := fmt.Sprintf("busybox wget -q -O - http://%s:%d/; busybox nslookup pl-audit.example %s; true", to, DemoPort, to)
	ssh := exec.Command("ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", // hostdeps: ssh
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", slice+"@"+fromAddr, send)
	out, err := ssh.CombinedOutput()
	sent := time.Now()
	if err != nil {
		t.Fatalf("ssh %s@%s %q: %v\n%s", slice, fromAddr, send, err, out)
	}
	if !strings.Contains(string(out), "hello from slice") {
		t.Errorf("the demo service did not answer the sliver: %s", out)
	}

	who := func(c *plCLI) core.AuditAnswer {
		t.Helper()
		var a core.AuditAnswer
		out := c.run("audit", "who", to, "--since", "10m", "--json")
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("pl audit who --json: %v\n%s", err, out)
		}
		return a
	}
	ours := func(a core.AuditAnswer, proto uint8, port uint16) *core.AuditFlow {
		for i, f := range a.Flows {
			if f.Slice == slice && f.Proto == proto && f.Remote.Port() == port && f.Hostname == fromHost && f.Dir == "out" {
				return &a.Flows[i]
			}
		}
		return nil
	}
	var ans core.AuditAnswer
	waitFor(t, time.Minute, "pl audit who names the TCP and UDP flows", func() error {
		ans = who(admin)
		if ours(ans, 6, DemoPort) == nil || ours(ans, 17, 53) == nil {
			return fmt.Errorf("%d flows, not answering %v", len(ans.Flows), ans.NotAnswering)
		}
		return nil
	})
	delay := time.Since(sent)
	if ans.Asked != nodes || len(ans.NotAnswering) != 0 {
		t.Errorf("asked %d nodes, not answering %v; want %d, none", ans.Asked, ans.NotAnswering, nodes)
	}
	for _, f := range []*core.AuditFlow{ours(ans, 6, DemoPort), ours(ans, 17, 53)} {
		if f.SiteName == "" || f.SliceID == 0 || f.SliceGone || f.XID == 0 {
			t.Errorf("flow %+v: want its slice's id, xid and site", f.Flow)
		}
		if !slices.ContainsFunc(f.PIs, func(c core.Contact) bool { return c.Email == pi }) {
			t.Errorf("flow to %v: PIs %+v lack the demo PI %s", f.Remote, f.PIs, pi)
		}
		if f.BytesSent == 0 || f.PacketsSent == 0 {
			t.Errorf("flow to %v: nothing counted sent: %+v", f.Remote, f.Flow)
		}
	}
	t.Logf("BENCH send -> pl audit who: %v from the end of the send until the admin's answer named both flows (target: within seconds)", delay.Round(10*time.Millisecond))
	if table := admin.run("audit", "who", to, "--since", "10m"); !strings.Contains(table, slice) || !strings.Contains(table, pi) || !strings.Contains(table, fromHost) {
		t.Errorf("pl audit who's table lacks the slice, the PI or the node:\n%s", table)
	}

	// The demo user, a member of the slice, sees its flows.
	pw := filepath.Join(tmp, "pw")
	b, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, b, 0o600); err != nil {
		t.Fatal(err)
	}
	user := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "user")}}
	user.run("login", plcURL, "--fingerprint", fp, "--email", member, "--password-file", pw)
	if a := who(user); ours(a, 6, DemoPort) == nil || ours(a, 17, 53) == nil {
		t.Errorf("the slice's member does not see its flows: %+v", a.Flows)
	}

	// The member's traffic summary of the slice names the destination and
	// the sending node.
	var tr core.SliceTraffic
	if out := user.run("audit", "slice", slice, "--since", "10m", "--json"); json.Unmarshal([]byte(out), &tr) != nil {
		t.Fatalf("pl audit slice --json:\n%s", out)
	}
	if len(tr.Top) == 0 || !slices.ContainsFunc(tr.Top, func(d core.TrafficDest) bool { return d.Remote.String() == to && d.Flows >= 2 && d.BytesSent > 0 }) ||
		!slices.ContainsFunc(tr.Nodes, func(n core.TrafficNode) bool { return n.Hostname == fromHost }) || tr.Asked != nodes || len(tr.Days) == 0 {
		t.Errorf("pl audit slice %s: %+v", slice, tr)
	}
	if table := user.run("audit", "slice", slice, "--since", "10m"); !strings.Contains(table, to) || !strings.Contains(table, fromHost) {
		t.Errorf("pl audit slice's table lacks the destination or the node:\n%s", table)
	}

	// A user of another slice sees nothing of them.
	other := "other@" + site + ".example.org"
	admin.run("person", "add", other, "--first", "Otto", "--last", "Ther", "--site", site, "--role", "user", "--password-file", pw)
	admin.run("person", "enable", other)
	admin.run("slice", "create", site+"_other", "--url", "https://example.org/other", "--description", "another slice")
	admin.run("slice", "add-users", site+"_other", other)
	stranger := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "other")}}
	stranger.run("login", plcURL, "--fingerprint", fp, "--email", other, "--password-file", pw)
	if a := who(stranger); len(a.Flows) != 0 {
		t.Errorf("a user of another slice sees %d flows: %+v", len(a.Flows), a.Flows)
	}
	cmd := exec.Command(pl, "audit", "slice", slice, "--since", "10m") // hostdeps: self
	cmd.Env = append(os.Environ(), stranger.env...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "only the slice's members") {
		t.Errorf("a user of another slice asks for the slice's traffic: %v\n%s", err, out)
	}

	// BENCH: the planet-wide query beside one call without the fan-out.
	timeIt := func(args ...string) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			admin.run(args...)
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	whoTime := timeIt("audit", "who", to, "--since", "10m", "--json")
	sliceTime := timeIt("audit", "slice", slice, "--since", "10m", "--json")
	topTime := timeIt("top", "nodes", "--json")
	// The one-node query: the sending node's /flows asked directly,
	// signed with its key as PLC signs.
	dataDir, _ := match1(t, sum, `(?m)^data\s+(\S+)()`)
	fromName, _ := match1(t, sum, `(?m)^\s+(n\d+)\s+`+regexp.QuoteMeta(fromAddr)+`\s()`)
	nf, err := nodecmd.LoadNodeFile(filepath.Join(dataDir, "nodes", fromName))
	if err != nil {
		t.Fatal(err)
	}
	var one []time.Duration
	for range 5 {
		uri := nodeapi.FlowsPath + "?" + url.Values{"addr": {to}, "since": {"10m"}}.Encode()
		req, _ := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(fromAddr, SensorPort)+uri, nil)
		req.Header.Set("Authorization", nodeapi.SignPLC(nf.NodeKey, nf.NodeID, http.MethodGet, uri, time.Now()))
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page nodeapi.FlowPage
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		one = append(one, time.Since(start))
		if err != nil || resp.StatusCode != http.StatusOK || len(page.Flows) == 0 {
			t.Fatalf("asking %s directly: %d %v %+v", fromName, resp.StatusCode, err, page)
		}
	}
	slices.Sort(one)
	t.Logf("BENCH pl audit who on %d nodes: p50 %v (target < 3s on 16); pl audit slice p50 %v; baselines: pl top nodes (CLI and PLC, no fan-out) p50 %v, one node's /flows asked directly p50 %v; 5 calls each",
		nodes, whoTime.Round(time.Millisecond), sliceTime.Round(time.Millisecond), topTime.Round(time.Millisecond), one[len(one)/2].Round(100*time.Microsecond))

	// bwmon: a daily budget of 16 KiB; the host fetches the demo page from
	// the sliver on the sending node a hundred times at a time (each
	// answer, ~500 bytes with TCP's, is the sliver's egress), past the
	// budget. The throttle reaches the slice's member as a notice.
	admin.run("slice", "set", slice, "net_max_kbyte", "16")
	wantSubject := fmt.Sprintf("slice %s throttled on node %s: daily budget 16 KiB exceeded", slice, fromHost)
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	served := time.Now()
	lastGet := time.Time{}
	waitFor(t, 2*time.Minute, "a bwmon_throttled notice to the slice's member", func() error {
		if time.Since(lastGet) > 10*time.Second { // until the node has the tag
			lastGet = time.Now()
			for range 100 {
				if resp, err := hc.Get(fmt.Sprintf("http://%s:%d/", fromAddr, DemoPort)); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
		var ns []core.Notice
		if err := json.Unmarshal([]byte(user.run("monitor", "notices", "--json")), &ns); err != nil {
			return err
		}
		for _, n := range ns {
			if n.Kind == "bwmon_throttled" && n.Subject == wantSubject {
				if !slices.Contains(n.Recipients, member) {
					t.Errorf("notice recipients %v lack the member %s", n.Recipients, member)
				}
				return nil
			}
		}
		return fmt.Errorf("%d notices, none %q", len(ns), wantSubject)
	})
	t.Logf("BENCH budget exceeded -> notice: %v from the first download until the member's pl monitor notices showed %q (bwmon reads every %v, reports every %v)",
		time.Since(served).Round(100*time.Millisecond), wantSubject, ReportInterval, ReportInterval)

	d.stop()
	if t.Failed() {
		t.Logf("pl dev stderr:\n%s", d.stderr.String())
	}
	compareSnapshots(t, before, snapshotHost(t), pl)
}
