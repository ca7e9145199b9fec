package dev

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/dev/wan"
)

// TestDownAfterKill plays a killed pl dev run: a WAN whose process is gone
// (namespaces left), a "sliver" process in the instance's cgroup, a mount
// under the data directory, a recorded child, then runs DownAll as
// `pl dev down` would and checks that nothing is left.
func TestDownAfterKill(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces, cgroups and mounts")
	}
	oldRun := RunDir
	RunDir = t.TempDir()
	t.Cleanup(func() { RunDir = oldRun })

	plan, err := wan.NewPlan(wan.Config{ID: "dk", Prefix: netip.MustParsePrefix("10.94.0.0/16"), Nodes: 2, Sites: wanSites(DemoSites)})
	if err != nil {
		t.Fatal(err)
	}
	wan.Remove(plan.Prefix)
	w, err := wan.Up(context.Background(), plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.MkdirTemp("", "pl-dev-")
	if err != nil {
		t.Fatal(err)
	}
	rec := &Record{Prefix: plan.Prefix, DataDir: data, TempData: true, Cgroup: "/pldevdk", PID: 1 << 30}
	t.Cleanup(func() { DownAll(plan.Prefix, nil); os.RemoveAll(data) })

	// A recorded child (a node manager) and an unrecorded process in the
	// instance's cgroup (a sliver that outlived its node manager).
	child := exec.Command("sleep", "600")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	go child.Wait()
	rec.Procs = append(rec.Procs, ProcInfo{Name: "node n1", PID: child.Process.Pid, Start: procStart(child.Process.Pid)})
	sliver := exec.Command("sleep", "600")
	if err := sliver.Start(); err != nil {
		t.Fatal(err)
	}
	go sliver.Wait()
	var cgs []string
	for _, d := range cgroupDirs("/pldevdk/n1/sliver") {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		cgs = append(cgs, d)
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(sliver.Process.Pid)), 0); err != nil {
			t.Logf("join %s: %v", d, err) // some hierarchies refuse (e.g. cpuset without cpus)
		}
	}
	// A mount under the data directory (a sliver root).
	mnt := filepath.Join(data, "nodes", "n1", "rootfs")
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if err := rec.Save(); err != nil {
		t.Fatal(err)
	}
	// pl dev is "killed": its namespaces, cgroups, mounts and processes
	// stay. (Its pumps still run in this test process; they are stopped
	// after DownAll.)
	n, err := DownAll(plan.Prefix, nil)
	if err != nil {
		t.Fatalf("DownAll: %v", err)
	}
	if n != 1 {
		t.Errorf("DownAll removed %d instances, want 1", n)
	}
	if err := w.Close(); err != nil {
		t.Errorf("closing the pumps after DownAll: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, p := range []*os.Process{child.Process, sliver.Process} {
		if err := p.Signal(syscall.Signal(0)); err == nil {
			if procStart(p.Pid) != 0 && !isZombie(p.Pid) {
				t.Errorf("process %d survived", p.Pid)
			}
		}
	}
	for _, d := range cgs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left", d)
		}
	}
	if mps, _ := mountsUnder(data); len(mps) > 0 {
		t.Errorf("mounts left: %v", mps)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("temporary data dir %s left: %v", data, err)
	}
	if left, _ := wan.Leftovers(plan.Prefix); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if recs, _ := LoadRecords(); len(recs) > 0 {
		t.Errorf("records left: %+v", recs)
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := len(b)
	for j := range b {
		if b[j] == ')' {
			i = j
		}
	}
	return i+2 < len(b) && b[i+2] == 'Z'
}
