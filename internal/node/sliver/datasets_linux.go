package sliver

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// datasetsDir is the bundle's directory whose mounts propagate into the
// sliver (Spec.Datasets).
const datasetsDir = "datasets"

// DatasetDir is the host directory of sliver name whose mounts appear in
// the sliver at DatasetsPath, when its spec has Datasets. A mount made
// there must be complete (read-only, ...) before it is attached: the copy
// the sliver receives keeps the flags it had when it propagated.
func (r *Runc) DatasetDir(name string) string {
	return filepath.Join(r.bundle(name), datasetsDir)
}

// sharedDir makes dir a mount point of its own with shared propagation
// (a bind mount of itself), unless it is one: a sliver's mount namespace
// then gets it as a slave (the "rslave" bind of ociConfig), receiving
// the mounts the node makes in it later. Idempotent; after a reboot the
// mount is made again.
func sharedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ms, err := mounts()
	if err != nil {
		return err
	}
	mounted := false
	for _, m := range ms {
		if m.Target == dir {
			mounted = true
		}
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("datasets directory %s: bind: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("datasets directory %s: make shared: %w", dir, err)
	}
	return nil
}
