package dev

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/planetlab/pl/internal/dev/wan"
	"github.com/planetlab/pl/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// cgroupMounts returns the mount points of the host's cgroup
// hierarchies, from its mount table (v1, v2 or both; nothing assumes
// /sys/fs/cgroup).
var cgroupMounts = func() []string {
	ms, err := mountinfo.Read()
	if err != nil {
		return nil
	}
	return mountinfo.CgroupLayout(ms).Mounts()
}

// cgroupDirs returns the directory of cgroup path rel in every mounted
// hierarchy (one on cgroup v2, one per controller mount on v1).
func cgroupDirs(rel string) []string {
	rel = strings.Trim(rel, "/")
	var out []string
	for _, m := range cgroupMounts() {
		out = append(out, filepath.Join(m, rel))
	}
	return out
}

// weighCgroup creates the planet's cgroup parent in every hierarchy and
// gives it the CPU weight of n processes of the host rather than one: the
// slivers of all n emulated nodes (and runc's container setup, which runs
// in the sliver's cgroup) live below it, and at the default weight they
// would share one process's CPU against everything else on the host
// (cgroup v1 cpu.shares 1024 per node; v2 cpu.weight 100 per node).
func weighCgroup(rel string, n int) error {
	for _, d := range cgroupDirs(rel) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for file, per := range map[string]int{"cpu.shares": 1024, "cpu.weight": 100} {
			path := filepath.Join(d, file)
			if _, err := os.Stat(path); err != nil {
				continue
			}
			w := per * n
			if file == "cpu.weight" {
				w = min(w, 10000)
			} else {
				w = min(w, 262144)
			}
			if err := os.WriteFile(path, []byte(strconv.Itoa(w)), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeCgroups kills every process in the cgroup subtree rel (in every
// hierarchy) and removes its directories, deepest first.
func removeCgroups(rel string) error {
	if !strings.HasPrefix(strings.Trim(rel, "/"), wan.NamePrefix) {
		return fmt.Errorf("refusing to remove cgroup %q: not ours", rel)
	}
	var errs []error
	var trees [][]string
	for _, top := range cgroupDirs(rel) {
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		trees = append(trees, dirs)
	}
	// Thaw frozen cgroups (a suspended sliver, a reservable node's slivers
	// without a lease) in every hierarchy before killing in any: a frozen
	// process ignores SIGKILL, and with cgroup v1 the freezer is its own
	// hierarchy, walked after blkio, cpu, ...
	for _, dirs := range trees {
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, "freezer.state")); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
				os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0)
			}
			if _, err := os.Stat(filepath.Join(d, "cgroup.freeze")); err == nil {
				os.WriteFile(filepath.Join(d, "cgroup.freeze"), []byte("0"), 0)
			}
		}
	}
	for _, dirs := range trees {
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := killCgroup(d); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := rmdirRetry(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func killCgroup(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err == nil {
		os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	}
	for i := 0; i < 200; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return nil // gone
		}
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			return nil
		}
		for _, s := range pids {
			if pid, err := strconv.Atoi(s); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("cgroup %s: processes survive SIGKILL", dir)
}

func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	var out []string
	for _, m := range ms {
		if m.Target == dir || strings.HasPrefix(m.Target, dir+"/") {
			out = append(out, m.Target)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

func unmountAll(dir string) error {
	var errs []error
	for round := 0; round < 5; round++ {
		mps, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

// detachLoops releases loop devices whose backing file is under dir.
func detachLoops(dir string) error {
	ents, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var errs []error
	for _, bf := range ents {
		b, err := os.ReadFile(bf)
		if err != nil {
			continue
		}
		back := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if back != dir && !strings.HasPrefix(back, dir+"/") {
			continue
		}
		dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(bf)))
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("open %s: %w", dev, err))
			continue
		}
		if err := unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
			errs = append(errs, fmt.Errorf("detach %s (%s): %w", dev, back, err))
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}

// Down removes everything the instance described by r created: its
// processes (and every process in its cgroups: slivers outlive their node
// manager by design), mounts, loop devices, cgroups, namespaces and links,
// the data directory if it was temporary, and the record itself. It is
// idempotent and works after the instance was killed.
func Down(r *Record, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !strings.HasPrefix(r.Prefix, wan.NamePrefix) {
		return fmt.Errorf("dev record: prefix %q is not ours", r.Prefix)
	}
	var errs []error
	// Nodes first (they must not recreate what we remove), PLC last.
	for i := len(r.Procs) - 1; i >= 0; i-- {
		errs = append(errs, stopProc(r.Procs[i], 10*time.Second))
	}
	if r.Cgroup != "" {
		errs = append(errs, removeCgroups(r.Cgroup))
	}
	if r.DataDir != "" {
		errs = append(errs, unmountAll(r.DataDir), detachLoops(r.DataDir))
	}
	if r.UserDataDir != "" {
		errs = append(errs, unmountAll(r.UserDataDir), detachLoops(r.UserDataDir))
	}
	errs = append(errs, wan.Remove(r.Prefix))
	if r.UserDataDir != "" && r.DataDir != "" {
		// The bind mount point, unmounted above; rmdir only: never remove
		// the user's data through a mount that stayed.
		if err := os.Remove(r.DataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove data bind mount point: %w", err))
		}
	}
	if data := r.userData(); r.TempData && data != "" {
		if err := os.RemoveAll(data); err != nil {
			errs = append(errs, fmt.Errorf("remove data dir: %w", err))
		}
	}
	if err := os.Remove(controlPathOf(r.Prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	if err == nil {
		if rerr := os.Remove(recordPath(r.Prefix)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
		log.Info("pl dev instance removed", "prefix", r.Prefix, "data", r.DataDir)
	}
	return err
}
