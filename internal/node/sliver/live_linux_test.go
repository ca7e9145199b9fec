package sliver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/planetlab/pl/internal/core"
)

var cgroupV2 = func() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}()

// cgroupValue reads a limit of the sliver's cgroup by its v1 name,
// translated on cgroup v2.
func cgroupValue(t *testing.T, name, v1 string) string {
	t.Helper()
	var p string
	if cgroupV2 {
		d := filepath.Join("/sys/fs/cgroup", testCgroupParent, name)
		m := map[string]string{
			"cpu/cpu.shares": "cpu.weight", "cpu/cpu.cfs_quota_us": "cpu.max",
			"memory/memory.limit_in_bytes": "memory.max", "pids/pids.max": "pids.max", "pids/pids.current": "pids.current",
			"freezer/freezer.state": "cgroup.freeze",
		}
		p = filepath.Join(d, m[v1])
	} else {
		ctl, file, _ := strings.Cut(v1, "/")
		p = filepath.Join("/sys/fs/cgroup", ctl, testCgroupParent, name, file)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func initPid(t *testing.T, r *Runc, name string) int {
	t.Helper()
	p, err := r.load(name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.cli(p.runtime())
	if err != nil {
		t.Fatal(err)
	}
	st, err := rc.state(context.Background(), name)
	if err != nil || st.Pid == 0 {
		t.Fatalf("state of %s: %+v %v", name, st, err)
	}
	return st.Pid
}

func TestLiveUpdateFreezeInitscript(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "live")
	s.InitScript = "#!/bin/sh\necho first-$1 > /tmp/init.out\nexec sleep 1000\n"
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	pid := initPid(t, r, s.Name)

	if !cgroupV2 {
		if got := cgroupValue(t, s.Name, "cpu/cpu.shares"); got != "1024" {
			t.Errorf("cpu.shares = %s", got)
		}
		if got := cgroupValue(t, s.Name, "cpu/cpu.cfs_quota_us"); got != "-1" {
			t.Errorf("cfs_quota_us = %s", got)
		}
	}
	if got := cgroupValue(t, s.Name, "memory/memory.limit_in_bytes"); got != strconv.Itoa(256<<20) {
		t.Errorf("memory limit = %s", got)
	}
	if got := cgroupValue(t, s.Name+"/"+workloadCgroup, "pids/pids.max"); got != "256" {
		t.Errorf("pids.max = %s", got)
	}
	// The sliver's own cgroup keeps a reserve for logins (issue 9.14).
	if got := cgroupValue(t, s.Name, "pids/pids.max"); got != strconv.Itoa(256+LoginReserve) {
		t.Errorf("pids.max of the sliver's cgroup = %s, want the limit plus the login reserve", got)
	}
	waitFor(t, func() bool {
		out, _ := run(t, r, s.Name, false, "cat", "/tmp/init.out")
		return strings.TrimSpace(out) == "first-start"
	}, "initscript ran")

	// Live changes.
	s.Resources = Resources{CPUShares: 2048, CPUCapPct: 50, MemoryBytes: 128 << 20, Pids: 100, NoFile: 2048, DiskBytes: 32 << 20}
	s.Keys = append(s.Keys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondKey second@pl")
	s.InitScript = "#!/bin/sh\necho second-$1 > /tmp/init.out\nexec sleep 1000\n"
	apply(t, r, s)
	if got := initPid(t, r, s.Name); got != pid {
		t.Fatalf("init pid changed %d -> %d: the sliver was restarted", pid, got)
	}
	if cgroupV2 {
		if got := cgroupValue(t, s.Name, "cpu/cpu.cfs_quota_us"); got != "50000 100000" {
			t.Errorf("cpu.max = %s", got)
		}
	} else {
		if got := cgroupValue(t, s.Name, "cpu/cpu.shares"); got != "2048" {
			t.Errorf("cpu.shares = %s", got)
		}
		if got := cgroupValue(t, s.Name, "cpu/cpu.cfs_quota_us"); got != "50000" {
			t.Errorf("cfs_quota_us = %s", got)
		}
	}
	if got := cgroupValue(t, s.Name, "memory/memory.limit_in_bytes"); got != strconv.Itoa(128<<20) {
		t.Errorf("memory limit = %s", got)
	}
	if got := cgroupValue(t, s.Name+"/"+workloadCgroup, "pids/pids.max"); got != "100" {
		t.Errorf("pids.max = %s", got)
	}
	// The running init and new processes have the new open-file limit.
	for _, cmd := range []string{"grep 'open files' /proc/1/limits", "grep 'open files' /proc/self/limits"} {
		if got := mustRun(t, r, s.Name, true, "sh", "-c", cmd); !strings.Contains(got, "2048                 2048") {
			t.Errorf("%s: %q", cmd, got)
		}
	}
	if _, limit, err := diskUsage(r.diskDir(s.Name)); err != nil || limit != 32<<20 {
		t.Errorf("disk limit = %d, %v", limit, err)
	}
	if got := mustRun(t, r, s.Name, false, "cat", ".ssh/authorized_keys"); !strings.Contains(got, "second@pl") {
		t.Errorf("keys not updated: %q", got)
	}
	waitFor(t, func() bool {
		out, _ := run(t, r, s.Name, false, "cat", "/tmp/init.out")
		return strings.TrimSpace(out) == "second-start"
	}, "initscript re-ran")
	// Exactly one initscript runs: the first one was stopped.
	if got := mustRun(t, r, s.Name, true, "sh", "-c", "ps -o args | grep -c '^/bin/sh /etc/pl/initscript\\|^sleep 1000'"); got != "1" {
		t.Errorf("initscript processes = %s", got)
	}

	// Freeze and thaw.
	s.Enabled = false
	apply(t, r, s)
	if got := cgroupValue(t, s.Name, "freezer/freezer.state"); got != "FROZEN" && got != "1" {
		t.Errorf("freezer = %s", got)
	}
	if _, err := r.Command(context.Background(), s.Name, Process{Args: []string{"true"}}); core.ErrorCode(err) != core.Unavailable {
		t.Errorf("Command on frozen sliver: %v", err)
	}
	l, _ := r.List(context.Background())
	for _, st := range l {
		if st.Name == s.Name && (!st.Frozen || !st.Running) {
			t.Errorf("status of frozen sliver: %+v", st)
		}
	}
	s.Enabled = true
	apply(t, r, s)
	if got := mustRun(t, r, s.Name, false, "echo", "thawed"); got != "thawed" {
		t.Errorf("after thaw: %q", got)
	}
	if got := initPid(t, r, s.Name); got != pid {
		t.Errorf("init pid changed across freeze/thaw")
	}

	// Lifting limits.
	s.Resources = Resources{}
	apply(t, r, s)
	if got := cgroupValue(t, s.Name+"/"+workloadCgroup, "pids/pids.max"); got != "max" {
		t.Errorf("pids.max after lifting = %s", got)
	}
	if _, limit, _ := diskUsage(r.diskDir(s.Name)); limit != 0 && limit < 1<<62 {
		t.Errorf("disk limit after lifting = %d", limit)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAdoptionAfterRestart(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "adopt")
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	pid := initPid(t, r, s.Name)

	// A new runtime (a restarted agent) sees the sliver and its spec.
	r2 := newTestRuntime(t)
	l, err := r2.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got *Status
	for i := range l {
		if l[i].Name == s.Name {
			got = &l[i]
		}
	}
	if got == nil || !got.Running || got.Spec == nil || got.Spec.UIDBase != s.UIDBase || got.XID != s.XID {
		t.Fatalf("adopted status = %+v", got)
	}
	apply(t, r2, s)
	s.Resources.Pids = 99
	apply(t, r2, s)
	if p := initPid(t, r2, s.Name); p != pid {
		t.Fatalf("re-Apply after restart restarted the sliver: pid %d -> %d", pid, p)
	}
	if got := cgroupValue(t, s.Name+"/"+workloadCgroup, "pids/pids.max"); got != "99" {
		t.Errorf("pids.max = %s", got)
	}
}

// TestCrashBetweenSteps leaves a sliver at each intermediate step of
// creation, then checks that Apply converges and Destroy cleans up.
func TestCrashBetweenSteps(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	steps := []struct {
		name string
		stop func(s Spec) error // performs a prefix of create
	}{
		{"layout", func(s Spec) error {
			os.MkdirAll(r.bundle(s.Name), 0o711)
			return r.save(s.Name, persisted{Layout: &layout{Image: "default", UIDBase: s.UIDBase, XID: s.XID}})
		}},
		{"subvolume", func(s Spec) error { return createSubvol(r.cfg.DiskDir, s.Name) }},
		{"created", func(s Spec) error {
			// Everything up to runc create, but not start.
			if err := r.Apply(ctx, s); err != nil {
				return err
			}
			if err := r.rc.remove(ctx, s.Name); err != nil {
				return err
			}
			return r.rc.create(ctx, s.Name, r.bundle(s.Name), filepath.Join(r.bundle(s.Name), "runc.log"), startOpts{})
		}},
		{"stopped", func(s Spec) error {
			if err := r.Apply(ctx, s); err != nil {
				return err
			}
			_, err := r.rc.run(ctx, nil, "kill", s.Name, "KILL")
			waitFor(t, func() bool { st, _ := r.rc.state(ctx, s.Name); return st.Status == stStopped }, "stopped")
			return err
		}},
		{"unmounted", func(s Spec) error {
			// Host reboot: mounts and runc state gone, files remain.
			if err := r.Apply(ctx, s); err != nil {
				return err
			}
			if err := r.rc.remove(ctx, s.Name); err != nil {
				return err
			}
			return unmountAll(filepath.Join(r.bundle(s.Name), "rootfs"))
		}},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			// Converge with Apply.
			s := testSpec(t, "crash")
			if err := step.stop(s); err != nil {
				t.Fatal(err)
			}
			apply(t, r, s)
			if got := mustRun(t, r, s.Name, false, "cat", "/etc/slicename"); got != s.Name {
				t.Errorf("slicename = %q", got)
			}
			if err := r.Destroy(ctx, s.Name); err != nil {
				t.Fatal(err)
			}
			if tr, _ := r.Traces(s.Name); len(tr) != 0 {
				t.Errorf("traces: %v", tr)
			}
			// Clean up with Destroy.
			s = testSpec(t, "crash")
			if err := step.stop(s); err != nil {
				t.Fatal(err)
			}
			if err := r.Destroy(ctx, s.Name); err != nil {
				t.Fatal(err)
			}
			if tr, _ := r.Traces(s.Name); len(tr) != 0 {
				t.Errorf("traces after destroying a partial sliver: %v", tr)
			}
		})
	}
}

func TestDiskLimit(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "disk")
	s.Resources.DiskBytes = 8 << 20
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	out, err := run(t, r, s.Name, false, "sh", "-c", "dd if=/dev/zero of=big bs=1M count=16 && sync")
	if err == nil || !strings.Contains(out, "quota") {
		t.Fatalf("writing 16 MiB with an 8 MiB limit: err=%v out=%q", err, out)
	}
	mustRun(t, r, s.Name, false, "rm", "-f", "big")
	s.Resources.DiskBytes = 32 << 20
	apply(t, r, s)
	mustRun(t, r, s.Name, false, "sh", "-c", "dd if=/dev/zero of=big bs=1M count=16 2>/dev/null && sync")
	used, _, err := diskUsage(r.diskDir(s.Name))
	if err != nil || used < 16<<20 {
		t.Errorf("usage = %d, %v", used, err)
	}
}

func TestIsolation(t *testing.T) {
	r := newTestRuntime(t)
	a, b := testSpec(t, "isoa"), testSpec(t, "isob")
	a.Resources.Pids, a.Resources.MemoryBytes = 64, 64<<20 // room for the fork bomb below: 64 processes plus the login reserve
	for _, s := range []Spec{a, b} {
		apply(t, r, s)
		destroyAtEnd(t, r, s.Name)
	}
	mustRun(t, r, b.Name, false, "sh", "-c", "echo secret > /tmp/secret-b; (sleep 777 >/dev/null 2>&1 &)")
	// Processes: a sees only its own (init, idle sleep, the ps itself).
	ps := mustRun(t, r, a.Name, true, "ps", "-o", "pid,args")
	if strings.Contains(ps, "sleep 777") || strings.Count(ps, "\n") > 4 {
		t.Errorf("a sees foreign processes:\n%s", ps)
	}
	if out, err := run(t, r, a.Name, true, "sh", "-c", "cat /tmp/secret-b || ls /proc/*/root/tmp/secret-b"); err == nil {
		t.Errorf("a read b's file: %s", out)
	}
	// Sliver root's capabilities.
	status := mustRun(t, r, a.Name, true, "grep", "CapBnd", "/proc/self/status")
	bnd, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(status, "CapBnd:")), 16, 64)
	if err != nil {
		t.Fatal(status, err)
	}
	for capName, bit := range map[string]uint{"SYS_MODULE": 16, "SYS_ADMIN": 21, "SYS_TIME": 25, "NET_ADMIN": 12, "SYS_BOOT": 22, "SYS_RAWIO": 17} {
		if bnd&(1<<bit) != 0 {
			t.Errorf("sliver root has CAP_%s", capName)
		}
	}
	if bnd&(1<<13) == 0 {
		t.Errorf("sliver root lacks CAP_NET_RAW")
	}
	denied := map[string]string{
		"mount":         "mount -t tmpfs none /mnt",
		"module":        "head -c 64 /dev/zero > /tmp/x.ko; insmod /tmp/x.ko",
		"time":          "date -s 2001-01-01",
		"network":       "ip link set lo down",
		"sysctl":        "echo 1 > /proc/sys/net/ipv4/ip_forward",
		"hostname":      "hostname other",
		"raw devices":   "cat /dev/sda",
		"nested userns": "unshare -U -r true",
		"seccomp off":   "grep -q 'Seccomp:.*0$' /proc/self/status",
	}
	for what, cmd := range denied {
		// busybox date reports failure but exits 0: accept either signal.
		if out, err := run(t, r, a.Name, true, "sh", "-c", cmd); err == nil && !strings.Contains(out, "not permitted") {
			t.Errorf("%s allowed in sliver (%s): %s", what, cmd, out)
		}
	}
	// Raw sockets in its own network namespace: ping as the slice account.
	if out, err := run(t, r, a.Name, false, "ping", "-c", "1", "-W", "2", "127.0.0.1"); err != nil {
		t.Errorf("ping in sliver: %v: %s", err, out)
	}

	// Fork bomb: stopped by the process limit.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd, err := r.Command(ctx, a.Name, Process{Args: []string{"sh", "-c", "f() { f | f & }; f; sleep 3"}})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Run()
	// Run through runc exec (a login), it may use the login reserve too.
	if got, _ := strconv.Atoi(cgroupValue(t, a.Name, "pids/pids.current")); got > 64+LoginReserve {
		t.Errorf("pids.current = %d above the limit and the login reserve", got)
	}
	// Memory hog: killed by the memory limit.
	out, err := run(t, r, b.Name, false, "true")
	if err != nil {
		t.Errorf("b harmed by a's fork bomb: %v %s", err, out)
	}
	mustRun(t, r, a.Name, true, "sh", "-c", "kill -9 -1 || true")
	if out, err := run(t, r, a.Name, false, "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"); err == nil {
		t.Errorf("128 MiB buffer allowed under a 64 MiB limit: %s", out)
	}
	if got := mustRun(t, r, b.Name, false, "cat", "/tmp/secret-b"); got != "secret" {
		t.Errorf("b after a's memory hog: %q", got)
	}
}

func TestCommandTTY(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "tty")
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
	cmd, err := r.Command(ctx, s.Name, Process{Args: []string{"sh", "-c", "sleep 0.3; tty; stty size; sleep 1; stty size"}, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	time.Sleep(800 * time.Millisecond)
	pty.Setsize(ptm, &pty.Winsize{Rows: 40, Cols: 120}) // SIGWINCH to runc
	var out strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := ptm.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Logf("wait: %v", err)
	}
	got := out.String()
	if !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "33 99") || !strings.Contains(got, "40 120") {
		t.Errorf("tty session output = %q", got)
	}
}

func TestImageAndNetNSChange(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	_, imgs := testEnv(t)
	root, _ := imgs.Rootfs("default")
	if _, err := imgs.Rootfs("other"); err != nil {
		if err := imgs.ImportDir(ctx, "other", root); err != nil {
			t.Fatal(err)
		}
	}
	s := testSpec(t, "chg")
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	mustRun(t, r, s.Name, false, "touch", "mine")

	// A new network namespace restarts the sliver but keeps its files.
	pid := initPid(t, r, s.Name)
	dir, _ := testEnv(t)
	s.NetNS = filepath.Join(dir, "netns-"+s.Name)
	if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAll(s.NetNS); os.Remove(s.NetNS) })
	apply(t, r, s)
	if initPid(t, r, s.Name) == pid {
		t.Error("sliver not restarted in its new network namespace")
	}
	mustRun(t, r, s.Name, false, "test", "-e", "mine")

	// Another image re-creates it: files are gone, the image is in use.
	s.Image = "other"
	apply(t, r, s)
	if out, err := run(t, r, s.Name, false, "test", "-e", "mine"); err == nil {
		t.Errorf("files survived re-imaging: %s", out)
	}
	if err := imgs.Remove("other"); core.ErrorCode(err) != core.Conflict {
		t.Errorf("removing an image in use: %v", err)
	}
	l, _ := imgs.List()
	for _, im := range l {
		if im.Name == "default" && len(im.Users) > 0 {
			for _, u := range im.Users {
				if u == s.Name {
					t.Errorf("default image still lists %s as user", s.Name)
				}
			}
		}
	}
}

func TestCommandCancel(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "cancel")
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := r.Command(ctx, s.Name, Process{Args: []string{"sleep", "4242"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("command did not end after its context was cancelled")
	}
	if out := mustRun(t, r, s.Name, true, "ps"); strings.Contains(out, "sleep 4242") {
		t.Errorf("process left in the sliver:\n%s", out)
	}
	if _, err := r.Command(context.Background(), "nosuchsliver", Process{}); core.ErrorCode(err) != core.NotFound {
		t.Errorf("Command on a missing sliver: %v", err)
	}
}

// TestHostileRoot: sliver root plants a FIFO, symlinks and deletes the
// runtime's state; Apply neither hangs, nor writes outside the sliver,
// nor restarts it.
func TestHostileRoot(t *testing.T) { hostileRoot(t, RuntimeRunc) }

// hostileRoot: sliver root plants a FIFO and symlinks out of the sliver
// where the runtime writes files; Apply neither hangs nor writes outside.
func hostileRoot(t *testing.T, runtime string) {
	r := newTestRuntime(t)
	s := testSpec(t, "hostile")
	s.Runtime = runtime
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	pid := initPid(t, r, s.Name)
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("host file\n"), 0o644)
	mustRun(t, r, s.Name, true, "sh", "-c", "rm /etc/passwd && mkfifo /etc/passwd && ln -sf "+outside+" /etc/shadow && rm -rf /home/"+s.Name+"/.ssh && ln -s "+filepath.Dir(outside)+" /home/"+s.Name+"/.ssh")
	os.Remove(filepath.Join(r.bundle(s.Name), "state.json"))
	s.Keys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKey new@pl"}
	done := make(chan error, 1)
	go func() { done <- r.Apply(context.Background(), s) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Apply hangs on a FIFO planted by sliver root")
	}
	if b, _ := os.ReadFile(outside); string(b) != "host file\n" {
		t.Errorf("host file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(outside), "authorized_keys")); err == nil {
		t.Errorf("authorized_keys written outside the sliver")
	}
	if got := mustRun(t, r, s.Name, false, "grep", "-c", s.Name, "/etc/passwd"); got != "1" {
		t.Errorf("passwd not restored: %s", got)
	}
	if initPid(t, r, s.Name) != pid {
		t.Error("sliver restarted")
	}
}

// TestConcurrentApply applies independent slivers concurrently, as the
// agent does, some of them disabled from the start.
func TestConcurrentApply(t *testing.T) {
	r := newTestRuntime(t)
	var specs []Spec
	for i := 0; i < 6; i++ {
		s := testSpec(t, "conc")
		s.Enabled = i%3 != 0
		specs = append(specs, s)
		destroyAtEnd(t, r, s.Name)
	}
	errs := make(chan error, len(specs))
	for _, s := range specs {
		go func() { errs <- r.Apply(context.Background(), s) }()
	}
	for range specs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	l, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Status{}
	for _, st := range l {
		byName[st.Name] = st
	}
	for _, s := range specs {
		st := byName[s.Name]
		if !st.Running || st.Frozen == s.Enabled {
			t.Errorf("%s: enabled=%v status=%+v", s.Name, s.Enabled, st)
		}
	}
}

// TestDestroyAfterLostRuncState: runc's state is gone (a wiped runc root)
// while the sliver's processes run, frozen even; Destroy still kills them
// by their cgroup and leaves nothing.
func TestDestroyAfterLostRuncState(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "lost")
	s.Enabled = false
	apply(t, r, s)
	pid := initPid(t, r, s.Name)
	if err := os.RemoveAll(filepath.Join(r.rc.root, s.Name)); err != nil {
		t.Fatal(err)
	}
	if err := r.Destroy(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	if tr, _ := r.Traces(s.Name); len(tr) != 0 {
		t.Errorf("traces: %v", tr)
	}
	waitFor(t, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return err != nil
	}, "the orphaned init to die")
}

// TestProcessLimitLoginReserve: a sliver whose workload is at its process
// limit can still be entered (runc exec joins the sliver's cgroup, which
// has LoginReserve more); when the reserve is used up too, Command says so
// in one line instead of runc's crash dump (issue 9.14).
func TestProcessLimitLoginReserve(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "nproc")
	s.Resources.Pids = 20
	// Start processes until the limit, and keep trying (a fork that fails
	// while a short-lived process holds a slot is retried); the wait is
	// the shell's own read, which needs no process.
	fill := func(fifo string) string {
		return "mkfifo " + fifo + "; while :; do sleep 1000 2>/dev/null & read -t 0.1 x <>" + fifo + "; done"
	}
	s.InitScript = "#!/bin/sh\n" + fill("/tmp/init.fifo") + "\n"
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	workload := s.Name + "/" + workloadCgroup
	waitFor(t, func() bool { return cgroupValue(t, workload, "pids/pids.current") == "20" }, "the workload at its limit of 20")

	// The owner gets in and can clean up.
	if got := mustRun(t, r, s.Name, false, "echo", "in"); got != "in" {
		t.Fatalf("login with the workload at its limit: %q", got)
	}
	// It lands in the sliver's cgroup (the root of its cgroup namespace),
	// not in the workload's.
	for _, l := range strings.Split(mustRun(t, r, s.Name, false, "cat", "/proc/self/cgroup"), "\n") {
		if (strings.Contains(l, ":pids:") || strings.HasPrefix(l, "0::")) && strings.HasSuffix(l, "/"+workloadCgroup) {
			t.Errorf("a login landed in the workload's cgroup: %s", l)
		}
	}

	// A login uses up the reserve as well.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hog, err := r.Command(ctx, s.Name, Process{Args: []string{"sh", "-c", fill("/tmp/hog.fifo")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := hog.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		mustKillCgroupProcs(t, s.Name)
		hog.Wait()
	}()
	// Its fill loop keeps the sliver within a process or two of the top.
	waitFor(t, func() bool {
		n, _ := strconv.Atoi(cgroupValue(t, s.Name, "pids/pids.current"))
		return n >= 20+LoginReserve-2
	}, "the sliver at its limit plus the reserve")
	_, err = r.Command(context.Background(), s.Name, Process{Args: []string{"true"}})
	if core.ErrorCode(err) != core.Unavailable || err.Error() != "the sliver is at its process limit of 20" {
		t.Fatalf("Command at the limit: %v, want Unavailable \"the sliver is at its process limit of 20\"", err)
	}
	// Killing the hog (from the host, as the node would not) frees it.
	cancel()
	mustKillCgroupProcs(t, s.Name)
	hog.Wait()
	waitFor(t, func() bool { _, err := run(t, r, s.Name, false, "true"); return err == nil }, "logins again after the hog is gone")
}

// mustKillCgroupProcs SIGKILLs the processes of the sliver's own cgroup
// that are not in its workload child (the logins').
func mustKillCgroupProcs(t *testing.T, name string) {
	t.Helper()
	dir := pidsDir(testCgroupParent, name)
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
