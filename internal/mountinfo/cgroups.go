package mountinfo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Cgroups is a host's cgroup layout as its mount table shows it: the
// unified (v2) hierarchy, the v1 hierarchies, or both ("hybrid", as
// systemd mounts them on hosts that keep v1 controllers). Nothing here
// assumes /sys/fs/cgroup or any other fixed place.
type Cgroups struct {
	// Unified is the mount point of the cgroup2 hierarchy ("": none).
	Unified string
	// V1 maps each v1 controller (and named hierarchy, "name=systemd")
	// to its mount point.
	V1 map[string]string
}

// v1Controllers are the kernel's cgroup v1 controllers (the super
// options of a v1 mount also hold rw, seclabel, release_agent=...).
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true, "freezer": true,
	"net_cls": true, "net_prio": true, "blkio": true, "perf_event": true, "hugetlb": true, "pids": true,
	"rdma": true, "misc": true,
}

// CgroupLayout reads the layout from a mount table (Read, Parse). Of
// several mounts of one hierarchy the first (the host's) counts.
func CgroupLayout(ms []Mount) Cgroups {
	c := Cgroups{V1: map[string]string{}}
	for _, m := range ms {
		switch m.FSType {
		case "cgroup2":
			if c.Unified == "" {
				c.Unified = m.Target
			}
		case "cgroup":
			for opt := range strings.SplitSeq(m.Super, ",") {
				if !v1Controllers[opt] && !strings.HasPrefix(opt, "name=") {
					continue // rw, seclabel, xattr, release_agent=..., ...
				}
				if _, ok := c.V1[opt]; !ok {
					c.V1[opt] = m.Target
				}
			}
		}
	}
	return c
}

// Mode names the layout: "v2" (unified only), "v1", "hybrid" (both) or
// "none".
func (c Cgroups) Mode() string {
	switch {
	case c.Unified != "" && len(c.V1) == 0:
		return "v2"
	case c.Unified == "" && len(c.V1) > 0:
		return "v1"
	case c.Unified != "":
		return "hybrid"
	}
	return "none"
}

// Mounts returns every hierarchy's mount point once (v1 in name order,
// then the unified one).
func (c Cgroups) Mounts() []string {
	var out []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range c.V1 {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Contains(out, c.V1[k]) {
			out = append(out, c.V1[k])
		}
	}
	if c.Unified != "" && !slices.Contains(out, c.Unified) {
		out = append(out, c.Unified)
	}
	return out
}

// Controller returns the mount point of the hierarchy that has
// controller ctrl ("memory", "pids", "cpu", ...) and whether it is the
// unified one: a v1 hierarchy first, else the unified hierarchy when its
// root's cgroup.controllers lists ctrl; "" when none has it.
func (c Cgroups) Controller(ctrl string) (mount string, unified bool) {
	if m, ok := c.V1[ctrl]; ok {
		return m, false
	}
	if c.Unified == "" {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(c.Unified, "cgroup.controllers"))
	if err != nil || !slices.Contains(strings.Fields(string(b)), ctrl) {
		return "", false
	}
	return c.Unified, true
}
