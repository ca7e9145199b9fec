package dev

import (
	"os"
	"path/filepath"
	"testing"

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
