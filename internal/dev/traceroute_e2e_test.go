package dev

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// TestTracerouteTutorial follows docs/tutorial.md on a `pl dev` of four
// nodes on four sites (issue 16): the demo PI creates a slice on every
// node and adds the demo user, who reserves the service's port, copies the
// server (examples/traceroute) into every sliver with `pl copy`, starts it
// with an initscript and runs the client from the host against the
// slice's nodes and one address where no server runs. The client's output
// names every node with a path that reached the target; each path crosses
// the emulated WAN's routers (the node's site router, the core, the
// target's site router), the merged tree joins them at the target's site
// router, and the dead server is reported as FAILED.
func TestTracerouteTutorial(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const (
		id    = "trc"
		wan   = "10.81.0.0/16"
		port  = "33434"
		slice = "princeton_trace"
		nodes = 4
	)
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	svr, clnt := buildTraceroute(t, tmp)
	exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self

	dev := exec.Command(pl, "dev", "--nodes", fmt.Sprint(nodes), "--id", id, "--wan", wan, "--plc-port", "18451") // hostdeps: self
	d := startDev(t, dev, id, "Try accountability:", 8*time.Minute, 3*time.Minute)
	sum := d.summary.String()

	cfgDir, _ := match1(t, sum, `(?m)^admin CLI\s+.*?PL_CONFIG_DIR=(\S+) ()`)
	admin := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + cfgDir}}
	plcURL, fp := match1(t, sum, `(?m)^PLC\s+(\S+)\s+\(certificate sha256 (\S+)\)`)
	m := regexp.MustCompile(`(?m)^Demo slice (\S+) on every node, member (\S+) \(password in (\S+)\), ssh key (\S+)\.$`).FindStringSubmatch(sum)
	if m == nil {
		t.Fatalf("summary names no demo slice")
	}
	member, pwFile, key := m[2], m[3], m[4]
	site, _, _ := strings.Cut(m[1], "_")
	pi := "pi@" + site + ".example.org"
	hostOf := map[netip.Addr]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+n\d+\s+(\d+\.\d+\.\d+\.\d+)\s+(\S+)\s`).FindAllStringSubmatch(sum, -1) {
		hostOf[netip.MustParseAddr(m[1])] = m[2]
	}
	if len(hostOf) != nodes {
		t.Fatalf("summary lists %d nodes, want %d", len(hostOf), nodes)
	}
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

	// The tutorial, as the PI, then as the user.
	pw := filepath.Join(tmp, "pw")
	b, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, b, 0o600); err != nil {
		t.Fatal(err)
	}
	piCLI := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "pi")}}
	piCLI.run("login", plcURL, "--fingerprint", fp, "--email", pi, "--password-file", pw)
	piCLI.run("slice", "create", slice, "--url", "https://"+site+".example.org/trace", "--description", "parallel traceroute service")
	piCLI.run("slice", "add-users", slice, member)
	piCLI.run("slice", "add-nodes", slice, "--where", "up")

	user := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "user")}}
	user.run("login", plcURL, "--fingerprint", fp, "--email", member, "--password-file", pw)
	user.run("slice", "set", slice, "ports", "tcp/"+port)
	if out := user.run("slice", "nodes", slice); strings.Count(out, "\n") != nodes+1 {
		t.Fatalf("pl slice nodes %s:\n%s", slice, out)
	}
	// The slivers appear within seconds; copy until every node took it.
	waitFor(t, 2*time.Minute, "pl copy of the server to every sliver", func() error {
		cmd := exec.Command(pl, "copy", slice, svr, "traceroutesvr", "-i", key) // hostdeps: self
		cmd.Env = append(os.Environ(), user.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	user.run("slice", "set", slice, "initscript_code",
		"#!/bin/sh\nexec /home/"+slice+"/traceroutesvr -p "+port+" >>/tmp/traceroutesvr.log 2>&1\n")

	// The client from the host: every node of the slice, plus the host's
	// own address on the WAN, where no server listens.
	var target netip.Addr
	for a := range hostOf {
		if a.As4()[2] == 3 { // the node on the third site (tokyo)
			target = a
		}
	}
	if !target.IsValid() {
		t.Fatalf("no node on the third site in %v", hostOf)
	}
	dead := netip.MustParsePrefix(wan).Addr().Next().String() // the host: 10.81.0.1
	var out string
	waitFor(t, 2*time.Minute, "every server answers", func() error {
		cmd := exec.Command(clnt, "-p", port, "--tree", "--slice", slice, "--pl", pl, "--timeout", "20s", target.String(), dead) // hostdeps: self
		cmd.Env = append(os.Environ(), user.env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		out = stdout.String()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			return fmt.Errorf("exit %v (want 1: one server failed): %s%s", err, out, stderr.String())
		}
		if !strings.Contains(stderr.String(), fmt.Sprintf("%d of %d servers answered", nodes, nodes+1)) {
			return fmt.Errorf("%s", stderr.String())
		}
		return nil
	})
	t.Logf("tracerouteclnt -p %s --tree --slice %s %v %s:\n%s", port, slice, target, dead, out)

	if !strings.Contains(out, dead+": FAILED: ") {
		t.Errorf("the dead server is not reported as failed")
	}
	tree := out[strings.Index(out, "Tree of paths"):]
	targetSite := target.As4()[2]
	var targetRouter string
	for addr, host := range hostOf {
		head := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(host) + ` \(` + regexp.QuoteMeta(addr.String()) + `\): (\d+) hops to ` + regexp.QuoteMeta(target.String()) + `, reached`).FindStringSubmatch(out)
		if head == nil {
			t.Errorf("no reached path from %s (%v)", host, addr)
			continue
		}
		if !strings.Contains(tree, "["+host+"]") {
			t.Errorf("tree lacks the server %s", host)
		}
		hops := hopsOf(out, host)
		if addr == target {
			if len(hops) != 1 {
				t.Errorf("%s traced its own address in %d hops: %v", host, len(hops), hops)
			}
			continue
		}
		// sliver gateway, own site router, core, target's site router, target
		siteRouter := fmt.Sprintf("10.81.%d.1", addr.As4()[2])
		if len(hops) != 5 || !strings.HasPrefix(hops[0], "10.42.") || hops[1] != siteRouter ||
			!strings.HasPrefix(hops[2], "10.81.254.") || !strings.HasPrefix(hops[3], "10.81.254.") || hops[4] != target.String() {
			t.Errorf("%s: hops %v, want 10.42.x.1, %s, the core, %v's site router, %v", host, hops, siteRouter, targetSite, target)
			continue
		}
		if targetRouter == "" {
			targetRouter = hops[3]
		} else if hops[3] != targetRouter {
			t.Errorf("%s enters the target's site at %s, another at %s", host, hops[3], targetRouter)
		}
		for _, h := range []string{siteRouter, hops[2]} {
			if !strings.Contains(tree, h) {
				t.Errorf("tree lacks the emulated hop %s", h)
			}
		}
	}
	// IPv6 (docs/networks.md): every sliver has an address in its node's
	// /64 of its site's unique-local /48; the server listens on all
	// addresses, so its reserved port answers over IPv6 across the
	// emulated WAN, from the host and from the sliver on another site.
	rec, err := findRecord("pldev" + id + "-")
	if err != nil || rec == nil {
		t.Fatalf("no record of the planet: %v", err)
	}
	var addrs6 []string
	var netnses []string
	for i := 1; i <= nodes; i++ {
		ns := filepath.Join(rec.DataDir, "nodes", fmt.Sprintf("n%d", i), "net", "netns", slice)
		out, err := exec.Command("nsenter", "--net="+ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global").CombinedOutput() // hostdeps: nsenter ip
		mm := regexp.MustCompile(`inet6 (fd0a:5100:[0-9a-f]+:([0-9a-f]+)::1:[0-9a-f]+)/128`).FindStringSubmatch(string(out))
		if err != nil || mm == nil || mm[2] != fmt.Sprintf("%x", i) {
			t.Fatalf("sliver on n%d: no IPv6 address in its node's prefix fd0a:5100:<site>:%d::/64: %v\n%s", i, i, err, out)
		}
		addrs6 = append(addrs6, mm[1])
		netnses = append(netnses, ns)
	}
	for i, a := range addrs6 {
		c, err := net.DialTimeout("tcp6", net.JoinHostPort(a, port), 5*time.Second)
		if err != nil {
			t.Errorf("host -> sliver on n%d [%s]:%s over IPv6: %v", i+1, a, port, err)
			continue
		}
		c.Close()
	}
	if out, err := exec.Command("nsenter", "--net="+netnses[0], "ping", "-6", "-n", "-c", "2", "-W", "3", addrs6[2]).CombinedOutput(); err != nil { // hostdeps: nsenter ping
		t.Errorf("sliver on n1 -> sliver on n3 (another site) over IPv6: %v\n%s", err, out)
	} else {
		t.Logf("sliver on n1 -> sliver on n3 over IPv6:\n%s", out)
	}
	// The prefixes came from PLC (pl dev registers each node with its
	// sliversipv6prefix); the reserved port answers on each node's own
	// IPv6 address too, as on its IPv4 one.
	for i := 1; i <= nodes; i++ {
		nodeNS := "/var/run/netns/" + rec.Prefix + fmt.Sprintf("n%d", i)
		out, err := exec.Command("nsenter", "--net="+nodeNS, "ip", "-6", "-o", "addr", "show", "scope", "global").CombinedOutput() // hostdeps: nsenter ip
		mm := regexp.MustCompile(`inet6 (fd0a:5100:[0-9a-f:]+)/64`).FindStringSubmatch(string(out))
		if err != nil || mm == nil {
			t.Fatalf("node n%d: no IPv6 address on its LAN: %v\n%s", i, err, out)
		}
		c, err := net.DialTimeout("tcp6", net.JoinHostPort(mm[1], port), 5*time.Second)
		if err != nil {
			t.Errorf("host -> node n%d's own address [%s]:%s over IPv6: %v", i, mm[1], port, err)
			continue
		}
		c.Close()
	}
	// PLC shows each sliver's IPv6 address as its node reports it.
	waitFor(t, time.Minute, "PLC shows every sliver's IPv6 address", func() error {
		var shown struct {
			Slivers []core.SliverRow `json:"slivers"`
		}
		if err := json.Unmarshal([]byte(user.run("slice", "show", slice, "--json")), &shown); err != nil {
			return err
		}
		var got []string
		for _, s := range shown.Slivers {
			got = append(got, s.IPv6)
		}
		slices.Sort(got)
		want := slices.Clone(addrs6)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			return fmt.Errorf("PLC shows %v, the slivers have %v", got, want)
		}
		return nil
	})

	// The planet's nodes share port 80 by host name (docs/networks.md):
	// the demo user names the demo slice's page, and every node serves it
	// through codemux; a name nobody claims gets the node's own page.
	user.run("slice", "set", m[1], "codemux", "demo.example.org,"+fmt.Sprint(DemoPort))
	for addr, host := range hostOf {
		waitFor(t, time.Minute, "the demo page through codemux on "+host, func() error {
			body, err := hostGet("http://"+addr.String()+"/", "Demo.Example.org")
			if err != nil || !strings.Contains(body, "hello from slice "+m[1]) {
				return fmt.Errorf("%q, %v", body, err)
			}
			return nil
		})
	}
	for addr, host := range hostOf {
		if body, err := hostGet("http://"+addr.String()+"/", "nobody.example.org"); !strings.Contains(body, "on node "+host) {
			t.Errorf("unknown host on %s: %q, %v", host, body, err)
		}
		break
	}

	// The paths from the other sites merge at the target's site router:
	// one line for it in the tree, right below the target.
	if targetRouter != "" && !regexp.MustCompile(`(?m)^(├|└)── `+regexp.QuoteMeta(targetRouter)+`$`).MatchString(tree) || strings.Count(tree, targetRouter) != 1 {
		t.Errorf("the tree does not merge the paths at the target's site router %s:\n%s", targetRouter, tree)
	}
}

// hopsOf returns the hop addresses of host's path in the client's output.
func hopsOf(out, host string) []string {
	i := strings.Index(out, host+" (")
	if i < 0 {
		return nil
	}
	var hops []string
	for _, line := range strings.Split(out[i:], "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(line, "  ") {
			break
		}
		hops = append(hops, f[1])
	}
	return hops
}

// buildTraceroute builds the example's server and client (static, as
// `make build`) into dir.
func buildTraceroute(t *testing.T, dir string) (svr, clnt string) {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./examples/traceroute/cmd/...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/traceroute/cmd/...: %v\n%s", err, out)
	}
	return filepath.Join(dir, "traceroutesvr"), filepath.Join(dir, "tracerouteclnt")
}

// hostGet fetches url with the given Host header.
func hostGet(url, host string) (string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
