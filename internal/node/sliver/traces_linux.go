package sliver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Traces lists what exists on the host for sliver name, one line per
// trace: mounts under its bundle, cgroup directories in every hierarchy,
// its runc state, its directories, its image user markers and a non-zero
// disk quota. After Destroy it must be empty; tests (here and in the
// agent) compare it before and after.
func (r *Runc) Traces(name string) ([]string, error) {
	var out []string
	bundle := r.bundle(name)
	ms, err := mounts()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Target == bundle || strings.HasPrefix(m.Target, bundle+"/") {
			out = append(out, fmt.Sprintf("mount %s %s", m.FSType, m.Target))
		}
	}
	roots, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	for _, root := range roots {
		d := filepath.Join(root, r.cfg.CgroupParent, name)
		if _, err := os.Stat(d); err == nil {
			out = append(out, "cgroup "+d)
		}
	}
	l, err := r.rc.list(context.Background())
	if err != nil {
		return nil, err
	}
	for _, c := range l {
		if c.ID == name {
			out = append(out, "runc "+c.ID+" "+c.Status)
		}
	}
	for _, d := range []string{bundle, r.diskDir(name), filepath.Join(r.rc.root, name)} {
		if _, err := os.Lstat(d); err == nil {
			out = append(out, "dir "+d)
		}
	}
	if imgs, err := r.cfg.Images.List(); err == nil {
		for _, im := range imgs {
			for _, u := range im.Users {
				if u == name {
					out = append(out, "image-user "+im.Name)
				}
			}
		}
	}
	if isSubvol(r.diskDir(name)) {
		used, limit, _ := diskUsage(r.diskDir(name))
		out = append(out, fmt.Sprintf("subvolume %s used=%d limit=%d", r.diskDir(name), used, limit))
	}
	return out, nil
}
