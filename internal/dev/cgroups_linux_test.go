package dev

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/mountinfo"
)

// TestCgroupDirsLayouts: the planet's cgroup directories follow the mount
// table of a v2 host (one hierarchy) and of this host (recorded hybrid).
func TestCgroupDirsLayouts(t *testing.T) {
	old := cgroupMounts
	defer func() { cgroupMounts = old }()
	for table, want := range map[string][]string{
		"cgroup2-debian12.mountinfo": {"/sys/fs/cgroup/pldev/n1"},
		"hybrid-buildhost.mountinfo": {"/sys/fs/cgroup/blkio/pldev/n1", "/sys/fs/cgroup/cpu/pldev/n1"},
	} {
		f, err := os.Open(filepath.Join("..", "mountinfo", "testdata", table))
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := mountinfo.Parse(f)
		f.Close()
		cgroupMounts = func() []string { return mountinfo.CgroupLayout(ms).Mounts() }
		got := cgroupDirs("/pldev/n1/")
		if len(got) < len(want) {
			t.Fatalf("%s: %v", table, got)
		}
		for i, w := range want {
			if got[i] != w {
				t.Fatalf("%s: %v, want %v first", table, got, want)
			}
		}
	}
}

// TestRemoveFrozenCgroups: a frozen process (a reservable node's sliver
// without a lease) in every hierarchy is killed and its cgroups removed;
// the freezer must be thawed in all hierarchies before any kill.
func TestRemoveFrozenCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups")
	}
	const rel = "/pldevhl/n1/pl_frozen"
	dirs := cgroupDirs(rel)
	t.Cleanup(func() { removeCgroups("/pldevhl") })
	cmd := exec.Command("sleep", "600") // hostdeps: sleep
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pid := []byte(strconv.Itoa(cmd.Process.Pid))
	froze := false
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// cpuset refuses tasks until given cpus and mems: not needed here.
		os.WriteFile(filepath.Join(d, "cgroup.procs"), pid, 0)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "freezer.state"), []byte("FROZEN"), 0); err == nil {
			froze = true
		} else if err := os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("1"), 0); err == nil {
			froze = true
		}
	}
	if !froze {
		t.Skip("no cgroup freezer on this host")
	}
	if err := removeCgroups("/pldevhl"); err != nil {
		t.Fatalf("removeCgroups: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the frozen process survived")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left", d)
		}
	}
}
