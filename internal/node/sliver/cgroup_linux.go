package sliver

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/mountinfo"
)

// The sliver's cgroups: the workload's child group and its login reserve, emptying and removal.

// pidsDir returns the sliver's cgroup directory in the hierarchy that has
// the pids controller ("" when none does).
func pidsDir(parent, name string) string {
	roots, err := cgroupMounts()
	if err != nil {
		return ""
	}
	for _, root := range roots {
		d := filepath.Join(root, parent, name)
		if _, err := os.Stat(filepath.Join(d, "pids.max")); err == nil {
			return d
		}
	}
	return ""
}

// confineWorkload makes the child cgroup of the sliver's workload, limited
// to limit processes (0: none), and moves the sliver's processes into it
// when it is new or move is set: at creation the init and what it started
// so far (runc run --detach) or only the waiting init (runc create); a
// sliver made before the reserve existed gets all its processes moved
// once. A process forked while its parent moves is moved in the next round.
func confineWorkload(parent, name string, limit int64, move bool) error {
	dir := pidsDir(parent, name)
	if dir == "" {
		return nil // no pids controller: no limit to reserve from
	}
	w := filepath.Join(dir, workloadCgroup)
	// cgroup v2: let the child have its own pids limit (pids is a
	// threaded controller: the parent may keep processes, the logins).
	if _, err := os.Stat(filepath.Join(dir, "cgroup.subtree_control")); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+pids"), 0); err != nil {
			return fmt.Errorf("enable pids below %s: %w", dir, err)
		}
	}
	created := true
	if err := os.Mkdir(w, 0o755); errors.Is(err, fs.ErrExist) {
		created = false
	} else if err != nil {
		return fmt.Errorf("workload cgroup: %w", err)
	}
	max := "max"
	if limit > 0 {
		max = strconv.FormatInt(limit, 10)
	}
	if err := os.WriteFile(filepath.Join(w, "pids.max"), []byte(max), 0); err != nil {
		return fmt.Errorf("workload process limit: %w", err)
	}
	if !created && !move {
		return nil
	}
	for round := 0; round < 100; round++ {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return err
		}
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			err := os.WriteFile(filepath.Join(w, "cgroup.procs"), []byte(pid), 0)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("move process %s into the workload cgroup: %w", pid, err)
			}
		}
	}
	return fmt.Errorf("workload cgroup: processes keep appearing in %s", dir)
}

// atProcessLimit reports whether the sliver's cgroup lacks room for runc
// exec to start a process.
func atProcessLimit(parent, name string) bool {
	dir := pidsDir(parent, name)
	if dir == "" {
		return false
	}
	max, err1 := os.ReadFile(filepath.Join(dir, "pids.max"))
	cur, err2 := os.ReadFile(filepath.Join(dir, "pids.current"))
	m, err3 := strconv.ParseInt(strings.TrimSpace(string(max)), 10, 64)
	c, err4 := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
	return errors.Join(err1, err2, err3, err4) == nil && c+execTasks > m
}

// waitCgroupEmpty waits until the sliver's cgroups hold no process.
func waitCgroupEmpty(parent, name string, max time.Duration) {
	roots, err := cgroupMounts()
	if err != nil {
		return
	}
	deadline := time.Now().Add(max)
	for _, root := range roots {
		f := filepath.Join(root, parent, name, "cgroup.procs")
		for time.Now().Before(deadline) {
			b, err := os.ReadFile(f)
			if err != nil || len(strings.TrimSpace(string(b))) == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// cgroupMounts returns the mount points of the host's cgroup hierarchies
// (v1, v2 or both), as its mount table shows them: nothing assumes
// /sys/fs/cgroup (docs/slivers.md, "cgroup v1 and v2").
func cgroupMounts() ([]string, error) {
	l, err := cgroupLayout()
	if err != nil {
		return nil, err
	}
	return l.Mounts(), nil
}

func cgroupLayout() (mountinfo.Cgroups, error) {
	ms, err := mounts()
	if err != nil {
		return mountinfo.Cgroups{}, err
	}
	return mountinfo.CgroupLayout(ms), nil
}

// removeCgroups removes <hierarchy>/<parent>/<name> (and any child
// cgroups the sliver made) in every hierarchy.
func removeCgroups(parent, name string) error {
	roots, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, root := range roots {
		dir := filepath.Join(root, parent, name)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			// Up to 5 s: a process killed by runc delete stays a zombie,
			// holding a v1 cgroup busy, until its host-side parent (a
			// runc exec started by an ssh login) reaps it.
			for try := 0; try < 250; try++ {
				if err = unix.Rmdir(dirs[i]); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				if errors.Is(err, unix.EBUSY) && try%50 == 5 {
					// Still populated after runc deleted the container:
					// processes runc no longer knows (its state was
					// lost). The cgroup is the sliver's by name: kill them.
					killCgroup(roots, parent, name)
				}
				time.Sleep(20 * time.Millisecond) // dying processes leave late
			}
			if err != nil {
				return fmt.Errorf("remove cgroup %s (processes: %s): %w", dirs[i], describeProcs(dirs[i]), err)
			}
		}
	}
	return nil
}

// killCgroup thaws the sliver's cgroups (freezer in any hierarchy) and
// SIGKILLs every process in them.
func killCgroup(roots []string, parent, name string) {
	for _, root := range roots {
		dir := filepath.Join(root, parent, name)
		os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0) // v1
		os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)      // v2
	}
	for _, root := range roots {
		dir := filepath.Join(root, parent, name)
		if os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0) == nil {
			continue // v2, Linux 5.14+
		}
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
}

// describeProcs lists the processes of a cgroup as "pid:comm:state".
func describeProcs(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var out []string
	for _, pid := range strings.Fields(string(b)) {
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		state := ""
		if st, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) {
				state = string(st[i+2])
			}
		}
		out = append(out, pid+":"+strings.TrimSpace(string(comm))+":"+state)
	}
	return strings.Join(out, " ")
}

// setGVisorCgroup writes the limits of a gVisor sliver's sandbox cgroup
// (runsc has no update command). cgroup v1 hierarchies are written; on
// the unified hierarchy it refuses, naming what is missing.
func setGVisorCgroup(parent, name string, res *specs.LinuxResources) error {
	roots, err := cgroupMounts()
	if err != nil {
		return err
	}
	rel := filepath.Join(parent, name)
	files := map[string]string{}
	if res.Memory != nil && res.Memory.Limit != nil {
		files["memory/memory.limit_in_bytes"] = strconv.FormatInt(*res.Memory.Limit, 10)
		if res.Memory.Swap != nil {
			files["memory/memory.memsw.limit_in_bytes"] = strconv.FormatInt(*res.Memory.Swap, 10)
		}
	}
	if c := res.CPU; c != nil {
		files["cpu/cpu.shares"] = strconv.FormatUint(*c.Shares, 10)
		files["cpu/cpu.cfs_period_us"] = strconv.FormatUint(*c.Period, 10)
		files["cpu/cpu.cfs_quota_us"] = strconv.FormatInt(*c.Quota, 10)
	}
	// Lowering memory+swap below memory, or raising memory above
	// memory+swap, fails in one order: what failed is tried once more.
	var failed []string
	for _, pass := range []int{1, 2} {
		todo := slices.Sorted(maps.Keys(files))
		if pass == 2 {
			todo, failed = failed, nil
		}
		for _, f := range todo {
			if err := writeCgroupFile(roots, rel, f, files[f]); err != nil {
				if pass == 2 || !strings.HasPrefix(f, "memory/") {
					return fmt.Errorf("gVisor sliver %q: %w", name, err)
				}
				failed = append(failed, f)
			}
		}
	}
	return nil
}

// writeCgroupFile writes v to <ctrl>/<file> (f) of cgroup rel in the v1
// hierarchy that has controller ctrl.
func writeCgroupFile(roots []string, rel, f, v string) error {
	{
		ctrl, file, _ := strings.Cut(f, "/")
		dir := ""
		for _, root := range roots {
			if slices.Contains(strings.Split(filepath.Base(root), ","), ctrl) {
				dir = filepath.Join(root, rel)
			}
		}
		if dir == "" {
			return fmt.Errorf("no cgroup v1 %s hierarchy to set %s in (live limit changes of gVisor slivers need cgroup v1)", ctrl, file)
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0); err != nil {
			return fmt.Errorf("set %s: %w", file, err)
		}
	}
	return nil
}
