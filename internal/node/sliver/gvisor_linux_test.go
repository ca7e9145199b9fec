package sliver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
)

// needGVisor skips unless runsc is installed where the runtime looks for
// it and can start a sandbox on this kernel with the platform the runtime
// uses.
func needGVisor(t testing.TB) {
	t.Helper()
	needRoot(t)
	if _, err := os.Stat(DefaultRunsc); err != nil {
		t.Skipf("needs gVisor's runsc at %s (scripts/deps.sh builds it): %v", DefaultRunsc, err)
	}
	root := t.TempDir()
	out, err := exec.Command(DefaultRunsc, "--root", root, "--platform=ptrace", "--network=none", "do", "true").CombinedOutput() // hostdeps: /usr/local/bin/runsc
	if err != nil {
		t.Skipf("runsc cannot start a sandbox on this kernel: runsc --platform=ptrace do true: %v: %s", err, strings.TrimSpace(string(out)))
	}
}

// TestGVisorSliver: a sliver under gVisor starts, runs commands through
// the same Command path ssh uses, sees gVisor's kernel, has its memory
// limit, changes it live, is re-created under runc when its runtime
// changes, and is destroyed without a trace.
func TestGVisorSliver(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	s := testSpec(t, "gv")
	s.Runtime = RuntimeGVisor
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)

	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
	if got := mustRun(t, r, s.Name, false, "uname", "-r"); got == hostRelease {
		t.Errorf("uname -r = %q, the host's kernel: not under gVisor", got)
	}
	if got := mustRun(t, r, s.Name, true, "dmesg"); !strings.Contains(got, "gVisor") {
		t.Errorf("dmesg does not mention gVisor: %q", got)
	}
	if got := mustRun(t, r, s.Name, false, "id"); !strings.HasPrefix(got, "uid=1000("+s.Name+")") {
		t.Errorf("id = %q", got)
	}
	if got := mustRun(t, r, s.Name, false, "cat", "/etc/slicename"); got != s.Name {
		t.Errorf("slicename = %q", got)
	}
	// gVisor's own user namespace: sliver root is root there, the image's
	// files are root's, and its memory is the limit.
	if got := mustRun(t, r, s.Name, true, "sh", "-c", "id -u; stat -c %u /etc/passwd; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping"); got != "0\n0\nping" {
		t.Errorf("as sliver root: id -u, owner of /etc/passwd, ping = %q, want 0, 0, ping", got)
	}
	if got := mustRun(t, r, s.Name, false, "sh", "-c", "grep MemTotal /proc/meminfo"); !strings.Contains(got, " 262144 kB") {
		t.Errorf("MemTotal under gVisor = %q, want the 256 MiB limit", got)
	}
	// Writes land in the writable layer (under the disk quota), and files
	// the runtime rewrites from the host are seen at once.
	mustRun(t, r, s.Name, false, "sh", "-c", "echo hello > ~/written")
	if b, err := os.ReadFile(filepath.Join(r.diskDir(s.Name), "upper", "home", s.Name, "written")); err != nil || string(b) != "hello\n" {
		t.Errorf("a file written in the gVisor sliver is not in its writable layer: %q %v", b, err)
	}
	s.Keys = append(s.Keys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondKeyForTests second@pl")
	apply(t, r, s)
	if got := mustRun(t, r, s.Name, false, "cat", ".ssh/authorized_keys"); !strings.Contains(got, "second@pl") {
		t.Errorf("authorized_keys in the running gVisor sliver after a key change = %q", got)
	}
	if got := cgroupValue(t, s.Name, "memory/memory.limit_in_bytes"); got != "268435456" {
		t.Errorf("memory limit = %s, want 268435456", got)
	}
	s.Resources.MemoryBytes = 128 << 20
	apply(t, r, s)
	if got := cgroupValue(t, s.Name, "memory/memory.limit_in_bytes"); got != "134217728" {
		t.Errorf("memory limit after the change = %s, want 134217728", got)
	}
	l, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range l {
		if st.Name == s.Name {
			found = st.Running && st.Spec != nil && st.Spec.Runtime == RuntimeGVisor
		}
	}
	if !found {
		t.Errorf("List does not show %s running under gVisor: %+v", s.Name, l)
	}
	// A restarted node manager adopts it: listed with its spec, and a
	// re-Apply changes it in place.
	st0, err := r.gv.state(context.Background(), s.Name)
	if err != nil || st0.Status != stRunning {
		t.Fatalf("runsc state: %+v %v", st0, err)
	}
	r2 := newTestRuntime(t)
	l, err = r2.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found = false
	for _, st := range l {
		found = found || (st.Name == s.Name && st.Running && st.Spec != nil && st.Spec.Runtime == RuntimeGVisor && st.XID == s.XID)
	}
	if !found {
		t.Errorf("a new runtime does not list %s running under gVisor: %+v", s.Name, l)
	}
	s.Resources.MemoryBytes = 192 << 20
	apply(t, r2, s)
	if st1, _ := r2.gv.state(context.Background(), s.Name); st1.Pid != st0.Pid {
		t.Errorf("re-Apply after restart restarted the gVisor sliver: pid %d -> %d", st0.Pid, st1.Pid)
	}
	if got := cgroupValue(t, s.Name, "memory/memory.limit_in_bytes"); got != "201326592" {
		t.Errorf("memory limit after the change by the new runtime = %s, want 201326592", got)
	}
	// Frozen and thawed (slice disabled, enabled).
	s.Enabled = false
	apply(t, r, s)
	if _, err := r.Command(context.Background(), s.Name, Process{Args: []string{"true"}}); core.ErrorCode(err) != core.Unavailable {
		t.Errorf("Command in a frozen gVisor sliver: %v, want Unavailable", err)
	}
	s.Enabled = true
	apply(t, r, s)
	mustRun(t, r, s.Name, false, "true")

	// Back to runc: re-created on the host's kernel.
	s.Runtime = RuntimeRunc
	apply(t, r, s)
	if got := mustRun(t, r, s.Name, false, "uname", "-r"); got != hostRelease {
		t.Errorf("under runc, uname -r = %q, want the host's %q", got, hostRelease)
	}
	if m, _ := filepath.Glob(filepath.Join(r.gv.root, s.Name+"*")); len(m) != 0 {
		t.Errorf("runsc state left after switching to runc: %v", m)
	}
	// And to gVisor again, then destroyed.
	s.Runtime = RuntimeGVisor
	apply(t, r, s)
	if got := mustRun(t, r, s.Name, false, "uname", "-r"); got == hostRelease {
		t.Errorf("back under gVisor, uname -r = %q", got)
	}
	if err := r.Destroy(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	tr, err := r.Traces(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 0 {
		t.Errorf("traces after destroy: %v", tr)
	}
	if m, _ := filepath.Glob(filepath.Join(r.gv.root, s.Name+"*")); len(m) != 0 {
		t.Errorf("runsc state left after destroy: %v", m)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", testCgroupParent, s.Name)); err == nil {
		t.Errorf("memory cgroup left after destroy")
	}
}

// TestGVisorJoinNetNS: a gVisor sliver in a network namespace prepared
// for it (owned by its user namespace, as netcfg makes them) starts, and
// the sentry's network stack has the namespace's loopback; the slice
// account pings (setuid busybox: runsc's --allow-suid). The namespace's
// own kernel is silenced (netguard_linux.go). TestSliverNetwork checks
// the traffic through netcfg's veth.
func TestGVisorJoinNetNS(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	s := testSpec(t, "gvnet")
	s.Runtime = RuntimeGVisor
	dir, _ := testEnv(t)
	s.NetNS = filepath.Join(dir, "netns-"+s.Name)
	if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountAll(s.NetNS)
		os.Remove(s.NetNS)
	})
	destroyAtEnd(t, r, s.Name)
	apply(t, r, s)
	if out, err := run(t, r, s.Name, false, "ping", "-c", "1", "-W", "2", "127.0.0.1"); err != nil {
		t.Errorf("ping in joined namespace under gVisor: %v: %s", err, out)
	}
	if got := mustRun(t, r, s.Name, false, "cat", "/proc/net/dev"); !strings.Contains(got, "lo:") {
		t.Errorf("/proc/net/dev under gVisor has no loopback: %q", got)
	}
	if !hasNetGuard(t, s.NetNS) {
		t.Errorf("no %s table in the gVisor sliver's network namespace", gvisorGuardTable)
	}
	// Re-created under runc in the same namespace: the guard goes.
	s.Runtime = RuntimeRunc
	apply(t, r, s)
	if hasNetGuard(t, s.NetNS) {
		t.Errorf("the %s table stayed when the sliver moved to runc", gvisorGuardTable)
	}
	if out, err := run(t, r, s.Name, false, "ping", "-c", "1", "-W", "2", "127.0.0.1"); err != nil {
		t.Errorf("ping under runc in the namespace gVisor left: %v: %s", err, out)
	}
}

// hasNetGuard says whether the network namespace at path has the guard
// table of gVisor slivers.
func hasNetGuard(t *testing.T, path string) bool {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == gvisorGuardTable {
			return true
		}
	}
	return false
}

// TestGVisorCreateTime prints the create time (Apply of a new sliver,
// p50 of a few) and the memory its cgroup holds once started, under runc
// and under runsc in the same run. No timed assertion.
func TestGVisorCreateTime(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	const n = 5
	measure := func(rt string) (time.Duration, int64) {
		var ds []time.Duration
		var mem int64
		for i := 0; i < n; i++ {
			s := testSpec(t, "gvb")
			s.Runtime = rt
			t0 := time.Now()
			apply(t, r, s)
			ds = append(ds, time.Since(t0))
			mustRun(t, r, s.Name, false, "true")
			v, _ := strconv.ParseInt(cgroupValue(t, s.Name, "memory/memory.usage_in_bytes"), 10, 64)
			mem += v
			if err := r.Destroy(context.Background(), s.Name); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(ds)
		return ds[n/2], mem / n
	}
	rcT, rcM := measure(RuntimeRunc)
	gvT, gvM := measure(RuntimeGVisor)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("BENCH sliver create p50 of %d: runc %v, runsc %v (%.1fx); memory after start: runc %d KiB, runsc %d KiB; load %s",
		n, rcT.Round(time.Millisecond), gvT.Round(time.Millisecond), float64(gvT)/float64(rcT), rcM>>10, gvM>>10, strings.Join(strings.Fields(string(load))[:3], " "))
}

// TestGVisorCommandTTY: a terminal session in a gVisor sliver (what ssh
// with a pty runs) has a terminal of the caller's size on stdin. (It has
// no name inside: it is the host's pty, passed through, so tty(1) says
// "not a tty" although isatty holds.)
func TestGVisorCommandTTY(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	s := testSpec(t, "gvtty")
	s.Runtime = RuntimeGVisor
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	ptm, pts, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 33, Cols: 99}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd, err := r.Command(ctx, s.Name, Process{Args: []string{"sh", "-c", "test -t 0 && echo isatty; stty size; id -u"}, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	var out strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := ptm.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	cmd.Wait()
	got := out.String()
	if !strings.Contains(got, "isatty") || !strings.Contains(got, "33 99") || !strings.Contains(got, "1000") {
		t.Errorf("tty session output under gVisor = %q", got)
	}
}

// TestGVisorHostileRoot: TestHostileRoot against a gVisor sliver.
func TestGVisorHostileRoot(t *testing.T) {
	needGVisor(t)
	hostileRoot(t, RuntimeGVisor)
}

// TestGVisorIsolation: what TestIsolation asks of runc slivers, under
// gVisor: no sight of another sliver's processes or files, sliver root
// cannot reach the node's kernel interfaces, processes beyond the
// process limit are refused (RLIMIT_NPROC in the sentry) and a memory hog
// is stopped by the memory limit, without harming the other sliver.
func TestGVisorIsolation(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	a, b := testSpec(t, "gvisoa"), testSpec(t, "gvisob")
	a.Resources.MemoryBytes, a.Resources.Pids = 64<<20, 20
	for _, s := range []*Spec{&a, &b} {
		s.Runtime = RuntimeGVisor
		apply(t, r, *s)
		destroyAtEnd(t, r, s.Name)
	}
	mustRun(t, r, b.Name, false, "sh", "-c", "echo secret > /tmp/secret-b; (sleep 777 >/dev/null 2>&1 &)")
	ps := mustRun(t, r, a.Name, true, "ps", "-o", "pid,args")
	if strings.Contains(ps, "sleep 777") || strings.Count(ps, "\n") > 4 {
		t.Errorf("a sees foreign processes:\n%s", ps)
	}
	if out, err := run(t, r, a.Name, true, "sh", "-c", "cat /tmp/secret-b || ls /proc/*/root/tmp/secret-b"); err == nil {
		t.Errorf("a read b's file: %s", out)
	}
	denied := map[string]string{
		"mount":       "mount -t tmpfs none /mnt",
		"module":      "head -c 64 /dev/zero > /tmp/x.ko; insmod /tmp/x.ko",
		"time":        "date -s 2001-01-01 && [ $(date +%Y) = 2001 ]",
		"network":     "ip link set lo down",
		"hostname":    "hostname other",
		"raw devices": "cat /dev/sda",
	}
	for what, cmd := range denied {
		if out, err := run(t, r, a.Name, true, "sh", "-c", cmd); err == nil && !strings.Contains(out, "not permitted") {
			t.Errorf("%s allowed in gVisor sliver (%s): %s", what, cmd, out)
		}
	}
	// /proc/sys is the sentry's: a write there changes the sliver's own
	// network stack at most, never the node's.
	hostFwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	flip := map[string]string{"0\n": "1", "1\n": "0"}[string(hostFwd)]
	run(t, r, a.Name, true, "sh", "-c", "echo "+flip+" > /proc/sys/net/ipv4/ip_forward")
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(hostFwd) {
		t.Errorf("sliver root changed the node's ip_forward: %q -> %q", hostFwd, now)
	}
	// Processes: the slice account and sliver root each stop at the
	// limit (RLIMIT_NPROC counts per user).
	for _, root := range []bool{false, true} {
		out, _ := run(t, r, a.Name, root, "sh", "-c", "for i in $(seq 40); do sleep 300 </dev/null >/dev/null 2>&1 & done; echo end")
		if !strings.Contains(out, "can't fork") {
			t.Errorf("40 processes under a limit of 20 (root %v): no fork refused: %q", root, out)
		}
		ps := mustRun(t, r, a.Name, true, "ps", "-o", "user,args")
		n := 0
		for _, line := range strings.Split(ps, "\n") {
			if strings.Contains(line, "sleep 300") && strings.HasPrefix(line, map[bool]string{false: a.Name, true: "root"}[root]) {
				n++
			}
		}
		t.Logf("root %v: %d processes started under a limit of 20", root, n)
		if n > 20 {
			t.Errorf("%d processes of one user under a limit of 20 (root %v):\n%s", n, root, ps)
		}
		// The owner still gets in (runsc exec is not refused by the
		// limit) and can clean up.
		if login, err := run(t, r, a.Name, root, "echo", "in"); err != nil || login != "in\n" {
			t.Errorf("login with the user at its process limit (root %v): %v %q", root, err, login)
		}
	}
	if out, err := run(t, r, b.Name, false, "true"); err != nil {
		t.Errorf("b harmed by a's processes: %v %s", err, out)
	}
	if out, err := run(t, r, a.Name, false, "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"); err == nil {
		t.Errorf("128 MiB buffer allowed under a 64 MiB limit: %s", out)
	}
	if got := mustRun(t, r, b.Name, false, "cat", "/tmp/secret-b"); got != "secret" {
		t.Errorf("b after a's memory hog: %q", got)
	}
}

// TestGVisorPrefixNames: two gVisor slivers, one's name the prefix of the
// other's (as bench_s1 and bench_s10), are run, entered and destroyed
// each on its own. runsc takes an id that prefixes another as ambiguous;
// the runtime's ids end with a character names never have.
func TestGVisorPrefixNames(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	a, b := testSpec(t, "gvpre"), testSpec(t, "gvpre")
	b.Name = a.Name + "0"
	for _, s := range []Spec{a, b} {
		s.Runtime = RuntimeGVisor
		apply(t, r, s)
		destroyAtEnd(t, r, s.Name)
	}
	for _, s := range []Spec{a, b} {
		if got := mustRun(t, r, s.Name, false, "cat", "/etc/slicename"); got != s.Name {
			t.Errorf("slicename in %s = %q", s.Name, got)
		}
	}
	if err := r.Destroy(context.Background(), a.Name); err != nil {
		t.Fatal(err)
	}
	l, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range l {
		if strings.HasPrefix(st.Name, "gvpre") {
			names = append(names, st.Name)
		}
	}
	if !slices.Equal(names, []string{b.Name}) {
		t.Errorf("after destroying %s, List has %v, want [%s]", a.Name, names, b.Name)
	}
	mustRun(t, r, b.Name, false, "true")
}

// TestGVisorNetAdmin: TestNetAdmin under gVisor. With NetAdmin, sliver
// root (a runsc exec session) configures addresses and routes of the
// sentry's network stack (netlink); without it, the same is refused.
// (Link up and down is left out: busybox's ip does it with the
// SIOCSIFFLAGS ioctl, which gVisor does not implement.)
func TestGVisorNetAdmin(t *testing.T) {
	needGVisor(t)
	r := newTestRuntime(t)
	cmds := "ip addr add 10.9.9.9/32 dev lo && ip route add 10.8.0.0/24 dev lo && ip route show"
	for _, netAdmin := range []bool{true, false} {
		s := testSpec(t, map[bool]string{true: "gvnadm", false: "gvnonadm"}[netAdmin])
		s.NetAdmin, s.Runtime = netAdmin, RuntimeGVisor
		dir, _ := testEnv(t)
		s.NetNS = filepath.Join(dir, "netns-"+s.Name)
		if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			unmountAll(s.NetNS)
			os.Remove(s.NetNS)
		})
		apply(t, r, s)
		destroyAtEnd(t, r, s.Name)
		out, err := run(t, r, s.Name, true, "sh", "-c", cmds)
		switch {
		case netAdmin && (err != nil || !strings.Contains(out, "10.8.0.0/24 dev lo")):
			t.Errorf("with NetAdmin: %v: %s", err, out)
		case !netAdmin && err == nil:
			t.Errorf("without NetAdmin the sliver configured its network: %s", out)
		}
	}
}
