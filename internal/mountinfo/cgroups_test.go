package mountinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func layout(t *testing.T, file string) Cgroups {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return CgroupLayout(ms)
}

// TestCgroupLayouts: the three layouts a node may have, from recorded
// and transcribed mount tables (testdata/README.md).
func TestCgroupLayouts(t *testing.T) {
	v2 := layout(t, "cgroup2-debian12.mountinfo")
	if v2.Mode() != "v2" || v2.Unified != "/sys/fs/cgroup" || len(v2.V1) != 0 {
		t.Fatalf("v2 layout: %+v (%s)", v2, v2.Mode())
	}
	if m := v2.Mounts(); len(m) != 1 || m[0] != "/sys/fs/cgroup" {
		t.Fatalf("v2 mounts: %v", m)
	}
	hy := layout(t, "hybrid-buildhost.mountinfo")
	if hy.Mode() != "hybrid" || hy.Unified != "/sys/fs/cgroup/unified" || hy.V1["pids"] != "/sys/fs/cgroup/pids" || hy.V1["name=systemd"] != "/sys/fs/cgroup/systemd" {
		t.Fatalf("hybrid layout: %+v (%s)", hy, hy.Mode())
	}
	if m := hy.Mounts(); len(m) != 10 || m[len(m)-1] != "/sys/fs/cgroup/unified" {
		t.Fatalf("hybrid mounts: %v", m)
	}
	v1 := layout(t, "cgroup1-centos7.mountinfo")
	if v1.Mode() != "v1" || v1.V1["cpu"] != "/sys/fs/cgroup/cpu,cpuacct" || v1.V1["cpuacct"] != v1.V1["cpu"] || v1.V1["net_prio"] != "/sys/fs/cgroup/net_cls,net_prio" {
		t.Fatalf("v1 layout: %+v", v1)
	}
	if _, ok := v1.V1["seclabel"]; ok {
		t.Fatal("a mount option taken for a controller")
	}
	if m := v1.Mounts(); len(m) != 5 {
		t.Fatalf("v1 mounts (comounted hierarchies once): %v", m)
	}
	if (Cgroups{}).Mode() != "none" {
		t.Fatal("no cgroups")
	}
}

// TestCgroupController: v1 controllers by their mount; on v2 by the root's
// cgroup.controllers (a copy of the transcribed Debian 12 tree).
func TestCgroupController(t *testing.T) {
	v2 := layout(t, "cgroup2-debian12.mountinfo")
	root := t.TempDir()
	b, err := os.ReadFile("testdata/cgroup2-debian12/root/cgroup.controllers")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "cgroup.controllers"), b, 0o644)
	v2.Unified = root
	for _, c := range []string{"memory", "pids", "cpu", "io"} {
		if m, unified := v2.Controller(c); m != root || !unified {
			t.Errorf("v2 %s: %q %v", c, m, unified)
		}
	}
	if m, _ := v2.Controller("freezer"); m != "" {
		t.Errorf("v2 freezer (a v1-only controller): %q", m)
	}
	hy := layout(t, "hybrid-buildhost.mountinfo")
	hy.Unified = t.TempDir() // the hybrid unified mount has no controllers
	os.WriteFile(filepath.Join(hy.Unified, "cgroup.controllers"), nil, 0o644)
	if m, unified := hy.Controller("pids"); m != "/sys/fs/cgroup/pids" || unified {
		t.Errorf("hybrid pids: %q %v", m, unified)
	}
	if m, _ := hy.Controller("rdma"); m != "" {
		t.Errorf("hybrid rdma: %q", m)
	}
}

func FuzzCgroupLayout(f *testing.F) {
	b, _ := os.ReadFile("testdata/hybrid-buildhost.mountinfo")
	f.Add(string(b))
	f.Fuzz(func(t *testing.T, s string) {
		ms, _ := Parse(strings.NewReader(s))
		c := CgroupLayout(ms)
		for _, m := range c.Mounts() {
			if m == "" {
				t.Fatal("empty mount point")
			}
		}
		_ = c.Mode()
	})
}
