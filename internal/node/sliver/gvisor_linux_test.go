package sliver

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// needGVisor skips unless runsc is installed and can start a sandbox on
// this kernel with the platform the runtime uses.
func needGVisor(t testing.TB) {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("runsc"); err != nil {
		t.Skip("needs runsc (Debian package runsc): not installed")
	}
	root := t.TempDir()
	out, err := exec.Command("runsc", "--root", root, "--platform=ptrace", "--network=none", "do", "true").CombinedOutput() // hostdeps: runsc
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
