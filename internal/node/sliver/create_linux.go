package sliver

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/image"
	"golang.org/x/sys/unix"
)

// Creating a sliver: the overlay root, its files, the OCI config, runc run.

// create builds whatever is missing and starts the sliver.
func (r *Runc) create(ctx context.Context, rc *runcCLI, s Spec, want layout, p persisted, st runcState) error {
	t0 := time.Now()
	var steps []any // step name, time since t0: logged at debug level
	step := func(name string) { steps = append(steps, name, time.Since(t0).Round(time.Microsecond).String()) }
	defer func() { r.log.Debug("sliver create", append([]any{"sliver", s.Name}, steps...)...) }()
	bundle := r.bundle(s.Name)
	if err := os.MkdirAll(bundle, 0o711); err != nil {
		return err
	}
	p.Layout = &want
	if err := r.save(s.Name, p); err != nil {
		return err
	}
	// Writable layer with its quota.
	dd := r.diskDir(s.Name)
	upper, work := filepath.Join(dd, "upper"), filepath.Join(dd, "work")
	if err := createSubvol(r.cfg.DiskDir, s.Name); err != nil {
		return err
	}
	if err := os.Chmod(dd, 0o700); err != nil {
		return err
	}
	if err := setDiskLimit(dd, s.Resources.DiskBytes); err != nil {
		return err
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return err
	}
	if err := os.Chown(upper, int(s.UIDBase), int(s.UIDBase)); err != nil {
		return err
	}
	step("disk")
	// Root filesystem.
	if want.Image == image.Default {
		if err := r.cfg.Images.EnsureDefault(ctx); err != nil {
			return err
		}
	}
	lower, err := r.cfg.Images.Rootfs(want.Image)
	if err != nil {
		return err
	}
	if err := r.cfg.Images.Acquire(want.Image, s.Name); err != nil {
		return err
	}
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	userNS, ownNet, err := r.mountRoot(s, lower, upper, work, rootfs)
	if err != nil {
		return err
	}
	step("mount")
	if err := r.syncFiles(s, rootfs); err != nil {
		return err
	}
	step("files")
	if err := r.writeConfig(s, userNS, ownNet); err != nil {
		return err
	}
	if s.NetNS != "" {
		// Under gVisor the namespace's kernel must stay silent; under
		// runc it is the sliver's stack (netguard_linux.go).
		if err := setNetGuard(s.NetNS, s.Runtime == RuntimeGVisor); err != nil {
			return err
		}
	}
	// Container.
	if st.Status == stStopped || (st.Status != "" && st.Status != stCreated) {
		// The init is dead; let the kernel finish killing the rest
		// before runc tears the container down.
		waitCgroupEmpty(r.cfg.CgroupParent, s.Name, 5*time.Second)
		if err := rc.remove(ctx, s.Name); err != nil {
			return err
		}
		st.Status = ""
	}
	switch {
	case st.Status == "" && s.Enabled:
		// The common case, in one runc process.
		if err := rc.runDetached(ctx, s.Name, bundle, filepath.Join(bundle, "runc.log"), startOptions(s)); err != nil {
			return err
		}
		step("runc-run")
		if err := r.confine(s); err != nil {
			return err
		}
		p.Spec = &s
		return r.save(s.Name, p)
	case st.Status == "":
		if err := rc.create(ctx, s.Name, bundle, filepath.Join(bundle, "runc.log"), startOptions(s)); err != nil {
			return err
		}
	}
	step("runc-create")
	if err := r.confine(s); err != nil {
		return err
	}
	if err := rc.simple(ctx, "start", s.Name); err != nil {
		return err
	}
	step("runc-start")
	if !s.Enabled {
		if err := rc.simple(ctx, "pause", s.Name); err != nil {
			return err
		}
	}
	p.Spec = &s
	return r.save(s.Name, p)
}

// startOptions are how the runtime starts the sliver of s. gVisor's
// sentry brings its own network stack up on the interfaces of the
// sliver's network namespace (netcfg's veth, whose addresses and routes
// it takes over); a sliver without one gets --network=none: the sentry's
// loopback only, as runc's new namespace.
func startOptions(s Spec) startOpts {
	if s.Runtime == RuntimeGVisor && s.NetNS == "" {
		return startOpts{flags: []string{"--network=none"}}
	}
	return startOpts{}
}

// confine moves a runc sliver's workload into its child cgroup and limits
// its processes there (LoginReserve). A gVisor sliver's cgroup holds the
// sandbox, whose host threads are not the sliver's processes: nothing to do.
func (r *Runc) confine(s Spec) error {
	if s.Runtime == RuntimeGVisor {
		return nil
	}
	return confineWorkload(r.cfg.CgroupParent, s.Name, s.Resources.Pids, true)
}

// mountRoot mounts the sliver's overlay root unless it is mounted, and
// finds the user namespace to join: the owner of the sliver's network
// namespace when that is not the host's (see NewNetNS).
func (r *Runc) mountRoot(s Spec, lower, upper, work, rootfs string) (userNS string, ownNet bool, err error) {
	bundle := r.bundle(s.Name)
	nsPath := filepath.Join(bundle, "userns")
	idmapFD := -1
	defer func() {
		if idmapFD >= 0 {
			unix.Close(idmapFD)
		}
	}()
	ownNet = s.NetNS == ""
	if s.NetNS != "" {
		ufd, err := netnsOwner(s.NetNS)
		if err != nil {
			return "", false, err
		}
		if ufd >= 0 {
			idmapFD, ownNet, userNS = ufd, true, nsPath
			if err := bindNS(ufd, nsPath); err != nil {
				return "", false, err
			}
		}
	}
	if isMountType(rootfs, "overlay") {
		return userNS, ownNet, nil
	}
	if idmapFD < 0 {
		if idmapFD, _, err = newNamespaces(s.UIDBase, false); err != nil {
			return "", false, err
		}
	}
	if err := mountOverlay(lower, upper, work, rootfs, idmapFD); err != nil {
		return "", false, err
	}
	// The image root is owned by host root, so through the idmapped layer
	// it must appear owned by sliver root: this catches a network
	// namespace whose user namespace has another mapping.
	var st unix.Stat_t
	if unix.Stat(filepath.Join(rootfs, "etc"), &st) == nil && st.Uid != s.UIDBase {
		unmountAll(rootfs)
		return "", false, core.FieldErrorf("netns", "the user namespace owning %s does not map root to uid %d", s.NetNS, s.UIDBase)
	}
	return userNS, ownNet, nil
}

func (r *Runc) syncFiles(s Spec, rootfs string) error {
	_, err := r.syncFilesChanged(s, rootfs)
	return err
}

func (r *Runc) syncFilesChanged(s Spec, rootfs string) (bool, error) {
	rfs, err := openRootFS(rootfs, s.UIDBase)
	if err != nil {
		return false, err
	}
	defer rfs.Close()
	rfs.warn = r.log.Warn
	return rfs.syncFiles(s)
}

func (r *Runc) writeConfig(s Spec, userNS string, ownNet bool) error {
	datasets := ""
	if s.Datasets && s.Runtime != RuntimeGVisor {
		datasets = r.DatasetDir(s.Name)
		if err := sharedDir(datasets); err != nil {
			return err
		}
	}
	cfg := ociConfig(s, ociParams{
		Rootfs: "rootfs", Init: r.cfg.Init, CgroupParent: r.cfg.CgroupParent,
		UserNS: userNS, OwnNetNS: ownNet, Swap: r.swap, NoFileMax: r.nofileMax,
		Datasets: datasets,
	})
	return writeJSONAtomic(filepath.Join(r.bundle(s.Name), "config.json"), cfg, false)
}
