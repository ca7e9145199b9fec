package sliver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Destroying a sliver: container, cgroups, mounts and files.

// Destroy implements Runtime.
func (r *Runc) Destroy(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	defer r.lock(name)()
	if err := r.destroy(ctx, name); err != nil {
		return fmt.Errorf("sliver %q: destroy: %w", name, err)
	}
	return nil
}

func (r *Runc) destroy(ctx context.Context, name string) error {
	t0 := time.Now()
	var steps []any // logged at debug level
	step := func(n string) { steps = append(steps, n, time.Since(t0).Round(time.Microsecond).String()) }
	defer func() { r.log.Debug("sliver destroy", append([]any{"sliver", name}, steps...)...) }()
	p, err := r.load(name)
	if err != nil {
		return err
	}
	// The container may exist under either runtime (a state file lost
	// in a crash says nothing): remove it from both.
	for _, rc := range r.clis() {
		if err := rc.remove(ctx, name); err != nil {
			return err
		}
	}
	step("runc-delete")
	if err := removeCgroups(r.cfg.CgroupParent, name); err != nil {
		return err
	}
	step("cgroups")
	bundle := r.bundle(name)
	rootfs := filepath.Join(bundle, "rootfs")
	for _, m := range []string{rootfs, filepath.Join(bundle, "userns"), filepath.Join(bundle, datasetsDir)} {
		if err := unmountAll(m); err != nil {
			return err
		}
	}
	if isMountType(rootfs, "overlay") {
		return fmt.Errorf("%s is still mounted", rootfs)
	}
	step("unmount")
	if err := deleteSubvol(r.cfg.DiskDir, name); err != nil {
		return err
	}
	step("subvolume")
	if p.Layout != nil {
		if err := r.cfg.Images.Release(p.Layout.Image, name); err != nil {
			return err
		}
	} else {
		imgs, err := r.cfg.Images.List()
		if err != nil {
			return err
		}
		for _, im := range imgs {
			if err := r.cfg.Images.Release(im.Name, name); err != nil {
				return err
			}
		}
	}
	if err := os.RemoveAll(bundle); err != nil {
		return err
	}
	// runc forgets a container only when delete succeeds; a state dir
	// left by a crash of runc itself is removed here.
	if st, err := r.rc.state(ctx, name); err == nil && st.Status == "" {
		os.RemoveAll(filepath.Join(r.rc.root, name))
	}
	return nil
}

// UnmountState unmounts what a runtime with this StateDir leaves mounted
// there after its slivers are gone: the loop-mounted disk of writable
// layers (when DiskDir was the default) and the empty network namespace
// runsc pins for its gofers (<state>/runsc/null-netns, one for the
// node). Call it before removing a state directory (tests, pl bench).
func UnmountState(stateDir string) {
	for _, m := range []string{filepath.Join(stateDir, "disk"), filepath.Join(stateDir, "runsc", "null-netns")} {
		unmountAll(m)
	}
}
