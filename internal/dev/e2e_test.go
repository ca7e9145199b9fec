package dev

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/planetlab/pl/internal/dev/wan"
	"github.com/planetlab/pl/internal/mountinfo"
)

// The end-to-end test drives real binaries only: it builds pl, runs
// `pl dev --nodes 4` in the background, and then uses nothing but the pl CLI
// and the stock OpenSSH client, as a user would. It needs root.
//
// Host cleanliness: the test snapshots the host (links, network namespaces,
// mounts, nftables tables, top-level cgroups, processes running pl) before
// and after. Differences that carry this run's markers always fail the
// test; other differences fail it only when PL_E2E_EXCLUSIVE=1 (set by
// `make test`, which runs this package alone), since tests of other
// packages running in parallel legitimately create and remove objects.

const (
	e2eID  = "e2e"
	e2eWAN = "10.97.0.0/16"
)

func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"ssh", "ssh-keygen", "runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: ssh ssh-keygen runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	// A leftover of an earlier killed run of this test.
	if out, err := exec.Command(pl, "dev", "down", "--id", e2eID).CombinedOutput(); err != nil { // hostdeps: self
		t.Fatalf("pl dev down: %v\n%s", err, out)
	}
	before := snapshotHost(t)

	// pl dev in the background.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// A PLC port of its own: other tests may run a PLC on :8443.
	dev := exec.Command(pl, "dev", "--nodes", "4", "--id", e2eID, "--wan", e2eWAN, "--plc-port", "18443", "-v") // hostdeps: self
	d := startDev(t, dev, e2eID, "Try:", 10*time.Minute, 2*time.Minute)
	sum := d.summary.String()
	t.Logf("pl dev summary:\n%s", sum)

	// What the summary tells a user.
	plcURL, fp := match1(t, sum, `(?m)^PLC\s+(\S+)\s+\(certificate sha256 ([0-9a-f]+)\)`)
	adminEmail, adminPW := match1(t, sum, `(?m)^admin\s+(\S+)\s+password in (\S+)`)
	nodes := regexp.MustCompile(`(?m)^\s+(n\d+)\s+(10\.97\.\d+\.\d+)\s+(\S+)\s`).FindAllStringSubmatch(sum, -1)
	if len(nodes) != 4 {
		t.Fatalf("summary lists %d nodes, want 4", len(nodes))
	}
	type node struct{ name, addr, host string }
	var all []node
	for _, m := range nodes {
		all = append(all, node{m[1], m[2], m[3]})
	}

	// The admin CLI command works as printed, pasted into a shell (issue 9.9).
	adminCmd, _ := match1(t, sum, `(?m)^admin CLI\s+(.+?)\s+\(already logged in\)$()`)
	if out, err := exec.Command("sh", "-c", adminCmd).CombinedOutput(); err != nil || !strings.Contains(string(out), PLCSite.LoginBase+"_demo") {
		t.Errorf("the printed admin command %q: %v\n%s", adminCmd, err, out)
	}

	cli := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "admin")}}
	cli.run("login", plcURL, "--fingerprint", fp, "--email", adminEmail, "--password-file", adminPW)

	// Admin: a site and its PI.
	pw := filepath.Join(tmp, "password")
	os.WriteFile(pw, []byte("e2e-Secret-pass-123\n"), 0o600)
	cli.run("site", "add", "e2e", "--name", "End To End University", "--latitude", "52.52", "--longitude", "13.40", "--url", "https://e2e.example.org/", "--max-slices", "10", "--enabled")
	cli.run("person", "add", "pi@e2e.example.org", "--first", "Pia", "--last", "Eye", "--site", "e2e", "--role", "pi", "--password-file", pw)
	cli.run("person", "enable", "pi@e2e.example.org")

	// PI: a user, enabled.
	pi := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "pi")}}
	pi.run("login", plcURL, "--fingerprint", fp, "--email", "pi@e2e.example.org", "--password-file", pw)
	pi.run("person", "add", "user@e2e.example.org", "--first", "Ursula", "--last", "Ser", "--site", "e2e", "--role", "user", "--password-file", pw)
	pi.run("person", "enable", "user@e2e.example.org")

	// User: adds their own key (made by the stock ssh-keygen).
	key := filepath.Join(tmp, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	user := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "user")}}
	user.run("login", plcURL, "--fingerprint", fp, "--email", "user@e2e.example.org", "--password-file", pw)
	user.run("key", "add", "user@e2e.example.org", key+".pub")

	// PI: the slice, its service, its user, three nodes.
	const slice, port = "e2e_web", 8081
	script := filepath.Join(tmp, "init.sh")
	os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\nmkdir -p /tmp/w\necho \"e2e $(hostname)\" > /tmp/w/index.html\nexec busybox httpd -f -p %d -h /tmp/w\n", port)), 0o644)
	scriptCode, _ := os.ReadFile(script)
	pi.run("slice", "create", slice, "--url", "https://e2e.example.org/web", "--description", "end-to-end test slice")
	pi.run("slice", "add-users", slice, "user@e2e.example.org")
	pi.run("slice", "set", slice, "initscript_code", string(scriptCode))
	pi.run("slice", "set", slice, "ports", fmt.Sprintf("tcp/%d", port))
	on := all[:3]
	pi.run(append([]string{"slice", "add-nodes", slice}, on[0].host, on[1].host, on[2].host)...)

	knownHosts := filepath.Join(tmp, "known_hosts")
	ssh := func(addr, sliceName string, command ...string) (string, error) {
		args := append([]string{"-i", key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
			"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + knownHosts, "-o", "LogLevel=ERROR",
			sliceName + "@" + addr}, command...)
		out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
		return string(out), err
	}
	// Wait until the slivers run: ssh works on each node.
	start := time.Now()
	for _, n := range on {
		waitFor(t, 3*time.Minute, fmt.Sprintf("ssh %s@%s", slice, n.addr), func() error {
			_, err := ssh(n.addr, slice, "true")
			return err
		})
	}
	t.Logf("slivers on 3 nodes accept ssh %v after add-nodes", time.Since(start).Round(time.Millisecond))

	// ssh into each and run a command.
	for _, n := range on {
		out, err := ssh(n.addr, slice, "cat /etc/slicename; id -un; exit 3")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Errorf("ssh %s: exit %v, want status 3\n%s", n.name, err, out)
		}
		if !strings.Contains(out, slice) {
			t.Errorf("ssh %s: output %q does not name the slice", n.name, out)
		}
	}
	// pl exec on all slivers.
	out := user.run("exec", slice, "-i", key, "--", "cat", "/etc/slicename")
	for _, n := range on {
		if !strings.Contains(out, n.host) && !strings.Contains(out, n.addr) {
			t.Errorf("pl exec output does not mention %s:\n%s", n.host, out)
		}
	}
	if strings.Count(out, slice) < 3 {
		t.Errorf("pl exec: want the slice name from 3 slivers:\n%s", out)
	}
	// The initscript's service through the reserved port, from the host.
	for _, n := range on {
		url := fmt.Sprintf("http://%s:%d/", n.addr, port)
		waitFor(t, time.Minute, "GET "+url, func() error {
			body, err := httpGet(url)
			// The sliver's hostname is its node's (issue 9.11).
			if err == nil && strings.TrimSpace(body) != "e2e "+n.host {
				err = fmt.Errorf("body %q, want %q", body, "e2e "+n.host)
			}
			return err
		})
	}
	// The fourth node has no sliver of the slice.
	if out, err := ssh(all[3].addr, slice, "true"); err == nil {
		t.Errorf("ssh to %s, not in the slice, succeeded: %s", all[3].name, out)
	}

	// Renew.
	out = pi.run("slice", "renew", slice, "--days", "30")
	if !strings.Contains(out, "expires") {
		t.Errorf("renew: %q", out)
	}

	// Remove one node; its sliver disappears, the others stay.
	gone := on[2]
	pi.run("slice", "remove-nodes", slice, gone.host)
	waitFor(t, time.Minute, "sliver on "+gone.name+" removed", func() error {
		if _, err := httpGet(fmt.Sprintf("http://%s:%d/", gone.addr, port)); err == nil {
			return fmt.Errorf("the service still answers")
		}
		if _, err := ssh(gone.addr, slice, "true"); err == nil {
			return fmt.Errorf("ssh still works")
		}
		return nil
	})
	if _, err := ssh(on[0].addr, slice, "true"); err != nil {
		t.Errorf("sliver on %s broken after removing %s: %v", on[0].name, gone.name, err)
	}

	// A short-lived slice: the admin sets its expiry a few seconds ahead.
	const short = "e2e_short"
	pi.run("slice", "create", short, "--url", "https://e2e.example.org/short", "--description", "expires soon")
	pi.run("slice", "add-users", short, "user@e2e.example.org")
	pi.run("slice", "add-nodes", short, all[0].host, all[1].host)
	for _, n := range all[:2] {
		waitFor(t, 2*time.Minute, fmt.Sprintf("ssh %s@%s", short, n.addr), func() error {
			_, err := ssh(n.addr, short, "true")
			return err
		})
	}
	expires := time.Unix(time.Now().Add(8*time.Second).Unix(), 0) // PLC keeps whole seconds
	cli.run("slice", "renew", short, "--until", strconv.FormatInt(expires.Unix(), 10))
	if _, err := ssh(all[0].addr, short, "true"); err != nil && time.Now().Before(expires.Add(-2*time.Second)) {
		t.Errorf("short slice unusable before its expiry: %v", err)
	}
	for _, n := range all[:2] {
		waitFor(t, time.Minute, "expired sliver on "+n.name+" removed", func() error {
			if _, err := ssh(n.addr, short, "true"); err == nil {
				return fmt.Errorf("ssh still works")
			}
			return nil
		})
	}
	if d := time.Since(expires); d < 0 {
		t.Errorf("expired sliver gone %v before the expiry", -d)
	}
	// The long-lived slice is untouched.
	if _, err := ssh(on[0].addr, slice, "true"); err != nil {
		t.Errorf("%s broken after %s expired: %v", slice, short, err)
	}

	// Tear down and check the host.
	d.stop()
	if t.Failed() {
		t.Logf("pl dev stderr:\n%s", d.stderr.String())
	}
	after := snapshotHost(t)
	compareSnapshots(t, before, after, pl)
}

// buildPL builds the pl binary (static, as `make build`) into dir.
func buildPL(t *testing.T, dir string) string {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pl")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pl: %v\n%s", err, out)
	}
	return bin
}

type plCLI struct {
	t   *testing.T
	bin string
	env []string
}

func (c *plCLI) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...) // hostdeps: self
	cmd.Env = append(os.Environ(), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("pl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func match1(t *testing.T, s, re string) (string, string) {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("summary does not match %s", re)
	}
	return m[1], m[2]
}

func waitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func httpGet(url string) (string, error) {
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hostSnapshot is what a pl dev run could leave behind, as sorted lines
// per kind.
type hostSnapshot map[string][]string

func snapshotHost(t *testing.T) hostSnapshot {
	t.Helper()
	s := hostSnapshot{}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		s["link"] = append(s["link"], l.Attrs().Name)
	}
	s["netns"], _ = wan.Leftovers("")
	if ms, err := mountinfo.Read(); err == nil {
		for _, m := range ms {
			s["mount"] = append(s["mount"], m.Target)
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		s["nft"] = strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	for _, root := range cgroupDirs("/") {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() {
				s["cgroup"] = append(s["cgroup"], filepath.Join(root, e.Name()))
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		// Every process with its cgroups, so that a sliver process left in
		// one of this run's cgroups is recognised as ours.
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		s["proc"] = append(s["proc"], e.Name()+" "+strings.Join(args, " ")+" ["+strings.ReplaceAll(strings.TrimSpace(string(cg)), "\n", " ")+"]")
	}
	if ents, err := os.ReadDir(os.TempDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "pl-dev-") {
				s["tmp"] = append(s["tmp"], e.Name())
			}
		}
	}
	if ents, err := os.ReadDir(RunDir); err == nil {
		for _, e := range ents {
			s["record"] = append(s["record"], e.Name())
		}
	}
	for k := range s {
		sort.Strings(s[k])
	}
	return s
}

// compareSnapshots fails on any difference that carries this run's markers
// (the e2e prefix, the pl binary, pl-dev temp directories, this run's
// cgroups in a process's cgroup list) and, under PL_E2E_EXCLUSIVE=1, on
// any difference at all except processes (unrelated daemons such as a
// PostgreSQL autovacuum worker come and go; a process pl dev left behind
// is in its cgroups or runs its binary, so the markers catch it).
func compareSnapshots(t *testing.T, before, after hostSnapshot, bin string) {
	t.Helper()
	exclusive := os.Getenv("PL_E2E_EXCLUSIVE") == "1"
	ours := func(kind, v string) bool {
		return strings.Contains(v, wan.NamePrefix+e2eID) || strings.Contains(v, wan.NamePrefix+"kill") || strings.Contains(v, wan.NamePrefix+"pipe") || strings.Contains(v, bin) ||
			strings.Contains(v, "pl-dev-") || kind == "record" || kind == "tmp"
	}
	var foreign []string
	reported := 0
	fail := func(format string, args ...any) {
		if reported++; reported <= 30 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if reported > 30 {
			t.Errorf("... and %d more differences", reported-30)
		}
		if len(foreign) > 0 {
			sort.Strings(foreign)
			t.Logf("%d host changes during the test are not this run's (other tests running in parallel), e.g.:\n%s",
				len(foreign), strings.Join(foreign[:min(5, len(foreign))], "\n"))
		}
	}()
	kinds := map[string]bool{}
	for k := range before {
		kinds[k] = true
	}
	for k := range after {
		kinds[k] = true
	}
	for k := range kinds {
		b := map[string]bool{}
		for _, v := range before[k] {
			b[v] = true
		}
		a := map[string]bool{}
		for _, v := range after[k] {
			a[v] = true
		}
		for v := range a {
			if !b[v] {
				if ours(k, v) || (exclusive && k != "proc") {
					fail("host not clean: %s %q appeared", k, v)
				} else {
					foreign = append(foreign, fmt.Sprintf("+ %s %q", k, v))
				}
			}
		}
		for v := range b {
			if !a[v] {
				if exclusive && k != "proc" {
					fail("host changed: %s %q disappeared", k, v)
				} else {
					foreign = append(foreign, fmt.Sprintf("- %s %q", k, v))
				}
			}
		}
	}
}

// TestDevKilledThenDown kills pl dev with SIGKILL once its planet runs
// (slivers, mounts, loop devices, namespaces and cgroups are left behind,
// since slivers outlive their node manager by design) and checks that
// `pl dev down` leaves the host as it was.
func TestDevKilledThenDown(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	for _, tool := range []string{"runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const id = "kill"
	pl := buildPL(t, t.TempDir())
	exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self
	before := snapshotHost(t)
	dev := exec.Command(pl, "dev", "--nodes", "2", "--id", id, "--wan", "10.89.0.0/16", "--plc-port", "18444") // hostdeps: self
	var out, errb lockedBuffer
	dev.Stdout, dev.Stderr = &out, &errb
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(out.String(), "Try:") {
		select {
		case err := <-done:
			t.Fatalf("pl dev exited: %v\n%s\n%s", err, out.String(), errb.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			dev.Process.Kill()
			t.Fatalf("pl dev not ready after 5 minutes:\n%s", errb.String())
		}
	}
	dev.Process.Kill()
	<-done
	left := snapshotHost(t)
	var ours int
	for _, k := range []string{"netns", "mount", "cgroup", "record"} {
		for _, v := range left[k] {
			if strings.Contains(v, wan.NamePrefix+id) || strings.Contains(v, "pl-dev-") || k == "record" {
				ours++
			}
		}
	}
	t.Logf("after SIGKILL, %d namespaces, mounts, cgroups and records of the run remain", ours)
	if ours == 0 {
		t.Fatalf("nothing left after SIGKILL: the test does not test pl dev down")
	}
	if b, err := exec.Command(pl, "dev", "down", "--id", id).CombinedOutput(); err != nil { // hostdeps: self
		t.Fatalf("pl dev down: %v\n%s", err, b)
	}
	compareSnapshots(t, before, snapshotHost(t), pl)
}

// TestDevCleansUpWhenOutputPipeDies runs pl dev as `pl dev 2>&1 | tee log`
// does, kills the reader of the pipe (Ctrl-C kills tee as well), then sends
// SIGINT: pl dev must not die of SIGPIPE but clean up as usual, leaving the
// host as it was (issue 9.17).
func TestDevCleansUpWhenOutputPipeDies(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	for _, tool := range []string{"runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const id = "pipe"
	pl := buildPL(t, t.TempDir())
	exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self
	before := snapshotHost(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// hostdeps: self
	dev := exec.Command(pl, "dev", "--nodes", "1", "--id", id, "--wan", "10.88.0.0/16", "--plc-port", "18445", "-v")
	dev.Stdout, dev.Stderr = w, w // 2>&1 | ...
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- dev.Wait() }()
	t.Cleanup(func() {
		dev.Process.Kill()
		exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self
	})
	// The reader: like tee, until the planet is up.
	var out lockedBuffer
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "Try:") {
				close(ready)
				return
			}
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("pl dev exited before it was ready: %v\n%s", err, out.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("pl dev not ready after 5 minutes:\n%s", out.String())
	}
	r.Close() // the reader dies
	time.Sleep(100 * time.Millisecond)
	dev.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok && !ee.Exited() {
			t.Errorf("pl dev died of %v instead of cleaning up", ee.ProcessState)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("pl dev did not exit within 2 minutes of SIGINT")
	}
	compareSnapshots(t, before, snapshotHost(t), pl)
}
