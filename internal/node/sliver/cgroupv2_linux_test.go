package sliver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/mountinfo"
)

// withCgroupLayout makes the sliver code see the mount table in
// ../../mountinfo/testdata/<table> with its cgroup mounts moved to copies
// of the trees given (mount point -> tree), for the test's duration.
func withCgroupLayout(t *testing.T, table string, trees map[string]string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "mountinfo", "testdata", table))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mountinfo.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if !m.IsCgroup() {
			continue
		}
		dir := t.TempDir()
		if src, ok := trees[m.Target]; ok {
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
		}
		ms[i].Target = dir
	}
	old := mountTable
	mountTable = func() ([]mountinfo.Mount, error) { return ms, nil }
	t.Cleanup(func() { mountTable = old })
}

// TestCgroupV2Layout runs the sliver runtime's cgroup code against the
// unified layout of a Debian 12 host (transcribed: mountinfo/testdata):
// one hierarchy found from the mount table, the sliver's pids directory
// in it, its workload child with its own pids limit (pids enabled in the
// sliver's subtree_control), the process-limit check, and swap
// accounting read from the root's children.
func TestCgroupV2Layout(t *testing.T) {
	withCgroupLayout(t, "cgroup2-debian12.mountinfo", map[string]string{
		"/sys/fs/cgroup": filepath.Join("..", "..", "mountinfo", "testdata", "cgroup2-debian12", "root"),
	})
	roots, err := cgroupMounts()
	if err != nil || len(roots) != 1 {
		t.Fatalf("cgroup mounts on v2: %v %v", roots, err)
	}
	root := roots[0]
	if !swapAccounting() {
		t.Fatal("v2 with memory.swap.max in the root's children: no swap accounting")
	}
	if pidsDir("pl", "s1") != "" {
		t.Fatal("pids directory of a sliver that has no cgroup")
	}
	// What runc makes for a sliver on v2: its cgroup with the interface
	// files of the controllers the parent delegates.
	dir := filepath.Join(root, "pl", "s1")
	os.MkdirAll(dir, 0o755)
	for f, v := range map[string]string{"pids.max": "100\n", "pids.current": "3\n", "cgroup.procs": "", "cgroup.subtree_control": "", "memory.max": "max\n"} {
		os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644)
	}
	if got := pidsDir("pl", "s1"); got != dir {
		t.Fatalf("pidsDir = %q, want %q", got, dir)
	}
	if err := confineWorkload("pl", "s1", 90, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); string(b) != "+pids" {
		t.Fatalf("subtree_control = %q, want +pids", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, workloadCgroup, "pids.max")); string(b) != "90" {
		t.Fatalf("workload pids.max = %q", b)
	}
	if atProcessLimit("pl", "s1") {
		t.Fatal("3 of 100 processes: at the limit")
	}
	os.WriteFile(filepath.Join(dir, "pids.current"), []byte("100\n"), 0o644)
	if !atProcessLimit("pl", "s1") {
		t.Fatal("100 of 100 processes: not at the limit")
	}
	// Without swap accounting (kernel booted with swapaccount=0, or
	// memory not delegated to the children) it says so.
	for _, s := range []string{"system.slice", "user.slice"} {
		os.Remove(filepath.Join(root, s, "memory.swap.max"))
	}
	if swapAccounting() {
		t.Fatal("no memory.swap.max anywhere: swap accounting claimed")
	}
}

// TestCgroupHybridLayout: the layout of the machine the tests run on
// (recorded): v1 controllers plus an empty cgroup2 mount; the sliver's
// pids directory is the v1 pids hierarchy's, and swap accounting is read
// from the v1 memory hierarchy.
func TestCgroupHybridLayout(t *testing.T) {
	withCgroupLayout(t, "hybrid-buildhost.mountinfo", nil)
	roots, err := cgroupMounts()
	if err != nil || len(roots) != 10 {
		t.Fatalf("hybrid cgroup mounts: %v %v", roots, err)
	}
	l, _ := cgroupLayout()
	pids := l.V1["pids"]
	os.MkdirAll(filepath.Join(pids, "pl", "s1"), 0o755)
	os.WriteFile(filepath.Join(pids, "pl", "s1", "pids.max"), []byte("max\n"), 0o644)
	if got := pidsDir("pl", "s1"); got != filepath.Join(pids, "pl", "s1") {
		t.Fatalf("pidsDir = %q", got)
	}
	if swapAccounting() {
		t.Fatal("swap accounting without memory.memsw.limit_in_bytes")
	}
	os.WriteFile(filepath.Join(l.V1["memory"], "memory.memsw.limit_in_bytes"), []byte("9223372036854771712\n"), 0o644)
	if !swapAccounting() {
		t.Fatal("v1 memsw present: no swap accounting")
	}
	if strings.HasPrefix(pids, "/sys/fs/cgroup") {
		t.Fatal("the test reads the host's cgroups")
	}
}
