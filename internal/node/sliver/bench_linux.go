package sliver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FloorConfig configures BenchFloor.
type FloorConfig struct {
	Dir          string // scratch directory (runc root and bundles); removed afterwards
	Rootfs       string // root filesystem to run, e.g. an image's Rootfs
	Init         string // static init, default /usr/bin/tini-static
	Runc         string // default "runc"
	CgroupParent string // default "/pl-bench"
	N            int    // containers to start
	// UserNS runs the floor containers in a user namespace too (the
	// sliver's mapping, over a root-owned rootfs), isolating what the
	// runtime adds beyond runc from what user namespaces cost runc.
	UserNS bool
}

// BenchFloor measures the floor of sliver creation: for each of N
// containers, the time of a bare `runc create` + `runc start` of the same
// root filesystem, running the same init and idle process with the same
// namespaces except the user namespace, no overlay, no quota, no files.
// Containers accumulate (like slivers in a benchmark) and are all deleted
// at the end. The rootfs is copied once into Dir first (runc creates mount
// points in it). `pl bench sliver` reports these beside Apply latencies.
func BenchFloor(ctx context.Context, c FloorConfig) ([]time.Duration, error) {
	if c.Init == "" {
		c.Init = "/usr/bin/tini-static" // hostdeps: /usr/bin/tini-static
	}
	if c.Runc == "" {
		c.Runc = "runc"
	}
	if c.CgroupParent == "" {
		c.CgroupParent = "/pl-bench"
	}
	rc := runcCLI{bin: c.Runc, root: filepath.Join(c.Dir, "runc"), name: "runc"}
	if err := os.MkdirAll(rc.root, 0o700); err != nil {
		return nil, err
	}
	var ids []string
	defer func() {
		for _, id := range ids {
			rc.remove(context.Background(), id)
			removeCgroups(c.CgroupParent, id)
		}
		os.RemoveAll(c.Dir)
	}()
	root := filepath.Join(c.Dir, "rootfs")
	if out, err := exec.CommandContext(ctx, "cp", "-a", c.Rootfs, root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy rootfs: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(root, initPath), nil, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.Dir, 0o711); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := 0; i < c.N; i++ {
		id := fmt.Sprintf("floor%d", i)
		bundle := filepath.Join(c.Dir, id)
		if err := os.MkdirAll(bundle, 0o700); err != nil {
			return nil, err
		}
		s := Spec{Name: id, XID: i + 1, UIDBase: UIDCount, Enabled: true}
		cfg := ociConfig(s, ociParams{Rootfs: root, Init: c.Init, CgroupParent: c.CgroupParent, OwnNetNS: true, NoFileMax: 1024})
		cfg.Root.Readonly = true
		cfg.Process.Args = []string{initPath, "--", "/bin/sh", "-c", "exec sleep 2147483647"}
		if !c.UserNS {
			cfg.Linux.UIDMappings, cfg.Linux.GIDMappings = nil, nil
			var ns []specs.LinuxNamespace
			for _, n := range cfg.Linux.Namespaces {
				if n.Type != specs.UserNamespace {
					ns = append(ns, n)
				}
			}
			cfg.Linux.Namespaces = ns
		}
		if err := writeJSONAtomic(filepath.Join(bundle, "config.json"), cfg, false); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := rc.create(ctx, id, bundle, filepath.Join(bundle, "runc.log"), startOpts{}); err != nil {
			return nil, err
		}
		ids = append(ids, id)
		if err := rc.simple(ctx, "start", id); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// Quantile returns the q-quantile (0..1) of ds by nearest rank.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
