package sliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Updating a running sliver in place: quota, cgroup limits, rlimits, host name.

// update changes a running (or paused, or created) sliver in place.
func (r *Runc) update(ctx context.Context, rc *runcCLI, s Spec, p persisted, st runcState) error {
	changed, all := changedClasses(p.Spec, s)
	// A sliver made before the login reserve gets it here, once.
	if dir := pidsDir(r.cfg.CgroupParent, s.Name); dir != "" && !all {
		if _, err := os.Stat(filepath.Join(dir, workloadCgroup)); errors.Is(err, fs.ErrNotExist) {
			if changed == nil {
				changed = map[string]bool{}
			}
			changed[changeCgroup] = true
		}
	}
	for _, c := range liveChanges {
		if all || changed[c.class] {
			if err := c.apply(r, ctx, rc, s, st); err != nil {
				return err
			}
		}
	}
	if rc.gvisor() && s.NetNS != "" {
		// Cheap when present; puts it in a namespace adopted from a
		// node manager that did not make it.
		if err := setNetGuard(s.NetNS, true); err != nil {
			return err
		}
	}
	userNS := ""
	if isNsfsMount(filepath.Join(r.bundle(s.Name), "userns")) {
		userNS = filepath.Join(r.bundle(s.Name), "userns")
	}
	if err := r.writeConfig(s, userNS, s.NetNS == "" || userNS != ""); err != nil {
		return err
	}
	initChanged, err := r.syncFilesChanged(s, filepath.Join(r.bundle(s.Name), "rootfs"))
	if err != nil {
		return err
	}
	status := st.Status
	if status == stCreated {
		if err := rc.simple(ctx, "start", s.Name); err != nil {
			return err
		}
		status = stRunning
	}
	if initChanged {
		if status == stPaused {
			if err := rc.simple(ctx, "resume", s.Name); err != nil {
				return err
			}
			status = stRunning
		}
		if _, err := rc.run(ctx, nil, "exec", "--user", "0:0", rc.cid(s.Name), "/bin/sh", initctl, "restart"); err != nil {
			return fmt.Errorf("restart initscript: %w", err)
		}
	}
	switch {
	case s.Enabled && status == stPaused:
		if err := rc.simple(ctx, "resume", s.Name); err != nil {
			return err
		}
	case !s.Enabled && status == stRunning:
		if err := rc.simple(ctx, "pause", s.Name); err != nil {
			return err
		}
	}
	p.Spec = &s
	return r.save(s.Name, p)
}

// setHostname sets the host name in the UTS namespace of process pid (the
// sliver's init), for every process of the sliver at once. It runs on a
// thread of its own that joins the namespace and is then discarded.
func setHostname(pid int, name string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/uts", pid))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
			errc <- fmt.Errorf("join the UTS namespace of pid %d: %w", pid, err)
			return
		}
		errc <- unix.Sethostname([]byte(name))
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("set host name %q: %w", name, err)
	}
	return nil
}

// setNoFile changes RLIMIT_NOFILE of every process of the sliver (new
// processes get it from config.json).
func (r *Runc) setNoFile(ctx context.Context, name string, res Resources) error {
	soft, hard := noFile(res, r.nofileMax)
	out, err := r.rc.run(ctx, nil, "ps", "--format", "json", name)
	if err != nil {
		return err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return fmt.Errorf("runc ps: %w", err)
	}
	lim := &unix.Rlimit{Cur: soft, Max: hard}
	for _, pid := range pids {
		err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, lim, nil)
		if errors.Is(err, unix.EPERM) {
			// Raising a hard limit needs CAP_SYS_RESOURCE, which a
			// confined agent may lack: new processes still get it.
			r.log.Warn("cannot raise the open-file limit of a running process", "sliver", name, "pid", pid, "limit", hard)
			continue
		}
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("set open-file limit of pid %d: %w", pid, err)
		}
	}
	return nil
}
