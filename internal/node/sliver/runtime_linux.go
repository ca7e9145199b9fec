package sliver

// The runc implementation of Runtime.
//
// Host layout under Config.StateDir:
//
//	runc/                      runc's --root (container states)
//	slivers/<name>/            OCI bundle: config.json, state.json, runc.log
//	slivers/<name>/rootfs      overlay mount: idmapped image + upper layer
//	slivers/<name>/userns      bind mount of the sliver's user namespace,
//	                           when it joins a netns owned by one
//	disk/                      btrfs with quotas (or the loop-mounted disk.btrfs)
//	disk/<name>/{upper,work}   the writable layer: a subvolume whose qgroup
//	                           limit is disk_max
//
// Lifecycle of one sliver (every arrow is one idempotent step; Apply
// re-runs from the first step whose effect is missing, so a crash anywhere
// converges on the next Apply, and Destroy undoes any prefix):
//
//	absent -> layout recorded (state.json) -> subvolume + qgroup limit ->
//	image acquired -> overlay mounted -> files synced -> config.json ->
//	runc created -> running [-> paused when !Enabled] -> spec recorded
//
// A running sliver whose image, uid base or xid changes is destroyed and
// re-created (its files are lost, as with the original's re-imaging); a
// change of network namespace restarts it keeping its files; everything
// else (resources, keys, initscript, enabled) changes live.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/image"
)

// Config configures a Runc runtime.
type Config struct {
	// StateDir holds everything the runtime keeps on the host; required.
	StateDir string
	// Images is the reference image store; required.
	Images *image.Store
	// CgroupParent is the cgroup under which slivers live, as
	// <CgroupParent>/<name> in every hierarchy. Default "/pl". pl dev gives
	// each emulated node its own, e.g. "/pl-dev/node3".
	CgroupParent string
	// DiskDir is a directory on btrfs (quotas are enabled on first use)
	// for the slivers' writable layers. Default <StateDir>/disk,
	// loop-mounted from the sparse image <StateDir>/disk.btrfs of
	// DiskImageSize bytes when it is not on btrfs.
	DiskDir       string
	DiskImageSize int64 // default 64 GiB (sparse: costs only what is used)
	// Runc is the runc binary. Default "runc".
	Runc string
	// Init is a static init for PID 1 in slivers, bind-mounted read-only.
	// Default /usr/bin/tini-static (Debian package tini).
	Init   string
	Logger *slog.Logger
}

// Runc runs slivers with runc. It implements Runtime.
type Runc struct {
	cfg  Config
	rc   runcCLI
	log  *slog.Logger
	swap bool
	// nofileMax is the runtime's own open-file hard limit: the default
	// for slivers cannot exceed it without CAP_SYS_RESOURCE.
	nofileMax uint64

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

var _ Runtime = (*Runc)(nil)

// New prepares the state directory (and the quota filesystem) and returns
// the runtime. Slivers already on the host are left untouched.
func New(ctx context.Context, cfg Config) (*Runc, error) {
	if cfg.StateDir == "" || cfg.Images == nil {
		return nil, errors.New("sliver: StateDir and Images are required")
	}
	var err error
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/pl"
	}
	if !strings.HasPrefix(cfg.CgroupParent, "/") || strings.Contains(cfg.CgroupParent, "..") {
		return nil, core.FieldErrorf("cgroup_parent", "cgroup parent %q must be an absolute path without ..", cfg.CgroupParent)
	}
	if cfg.DiskDir == "" {
		cfg.DiskDir = filepath.Join(cfg.StateDir, "disk")
	}
	if cfg.DiskImageSize == 0 {
		cfg.DiskImageSize = 64 << 30
	}
	if cfg.Runc == "" {
		cfg.Runc = "runc"
	}
	if cfg.Init == "" {
		cfg.Init = "/usr/bin/tini-static" // hostdeps: /usr/bin/tini-static
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := os.Stat(cfg.Init); err != nil {
		return nil, fmt.Errorf("sliver init %s (install tini): %w", cfg.Init, err)
	}
	if _, err := exec.LookPath(cfg.Runc); err != nil { // hostdeps: runc
		return nil, fmt.Errorf("sliver: %w", err)
	}
	// Slivers' user namespaces must traverse the state directory to reach
	// their bundles.
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "slivers")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("sliver state: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("sliver state: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, "runc"), 0o700); err != nil {
		return nil, fmt.Errorf("sliver state: %w", err)
	}
	if err := ensureDisk(ctx, cfg.DiskDir, filepath.Join(cfg.StateDir, "disk.btrfs"), cfg.DiskImageSize); err != nil {
		return nil, err
	}
	r := &Runc{
		cfg:   cfg,
		rc:    runcCLI{bin: cfg.Runc, root: filepath.Join(cfg.StateDir, "runc")},
		log:   cfg.Logger.With("subsystem", "sliver"),
		locks: map[string]*sync.Mutex{},
	}
	r.swap = swapAccounting()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil {
		r.nofileMax = lim.Max
	}
	return r, nil
}

// OpenExec returns a runtime over an existing state directory that only
// runs processes in slivers (Command): the SSH gateway's process uses it.
// It prepares nothing and needs no image store; Apply, Destroy and List
// are the node manager's.
func OpenExec(cfg Config) (*Runc, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("sliver: StateDir is required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/pl"
	}
	if cfg.Runc == "" {
		cfg.Runc = "runc"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if _, err := exec.LookPath(cfg.Runc); err != nil { // hostdeps: runc
		return nil, fmt.Errorf("sliver: %w", err)
	}
	return &Runc{
		cfg:   cfg,
		rc:    runcCLI{bin: cfg.Runc, root: filepath.Join(cfg.StateDir, "runc")},
		log:   cfg.Logger.With("subsystem", "sliver"),
		locks: map[string]*sync.Mutex{},
	}, nil
}

// swapAccounting reports whether cgroups can limit memory+swap.
func swapAccounting() bool {
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	ents, _ := filepath.Glob("/sys/fs/cgroup/*/memory.swap.max")
	return len(ents) > 0
}

func (r *Runc) lock(name string) func() {
	r.mu.Lock()
	l := r.locks[name]
	if l == nil {
		l = &sync.Mutex{}
		r.locks[name] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// diskDir is the btrfs subvolume holding the sliver's writable layer.
func (r *Runc) diskDir(name string) string { return filepath.Join(r.cfg.DiskDir, name) }

func (r *Runc) bundle(name string) string { return filepath.Join(r.cfg.StateDir, "slivers", name) }

// persisted is a sliver's state.json.
type persisted struct {
	Layout *layout `json:"layout,omitempty"` // what host structures are built for
	Spec   *Spec   `json:"spec,omitempty"`   // last spec applied successfully
}

func (r *Runc) load(name string) (persisted, error) {
	var p persisted
	b, err := os.ReadFile(filepath.Join(r.bundle(name), "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("sliver %q state: %w", name, err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		// A corrupt state file only loses what we knew; the next Apply
		// rebuilds it.
		r.log.Warn("ignoring corrupt sliver state", "sliver", name, "err", err)
		return persisted{}, nil
	}
	return p, nil
}

func (r *Runc) save(name string, p persisted) error {
	return writeJSONAtomic(filepath.Join(r.bundle(name), "state.json"), p, true)
}

// writeJSONAtomic writes v to file through a temporary file and rename;
// with sync the data and the directory entry are flushed first.
func writeJSONAtomic(file string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if cur, err := os.ReadFile(file); err == nil && string(cur) == string(b) {
		return nil
	}
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", file, err)
	}
	if sync {
		if d, err := os.Open(filepath.Dir(file)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

func imageName(s Spec) string {
	if s.Image == "" {
		return image.Default
	}
	return s.Image
}

// Apply implements Runtime.
func (r *Runc) Apply(ctx context.Context, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	img := imageName(s)
	if err := image.ValidName(img); err != nil {
		return err
	}
	defer r.lock(s.Name)()
	p, err := r.load(s.Name)
	if err != nil {
		return err
	}
	want := layout{Image: img, UIDBase: s.UIDBase, NetNS: s.NetNS, XID: s.XID}
	if l := p.Layout; l != nil && (l.Image != want.Image || l.UIDBase != want.UIDBase || l.XID != want.XID) {
		r.log.Info("re-creating sliver", "sliver", s.Name, "image", img, "old_image", l.Image)
		if err := r.destroy(ctx, s.Name); err != nil {
			return fmt.Errorf("sliver %q: re-create: %w", s.Name, err)
		}
		p = persisted{}
	}
	st, err := r.rc.state(ctx, s.Name)
	if err != nil {
		return fmt.Errorf("sliver %q: %w", s.Name, err)
	}
	if l := p.Layout; l != nil && l.NetNS != want.NetNS && st.Status != "" {
		r.log.Info("restarting sliver in a new network namespace", "sliver", s.Name, "netns", s.NetNS)
		if err := r.rc.remove(ctx, s.Name); err != nil {
			return fmt.Errorf("sliver %q: %w", s.Name, err)
		}
		st = runcState{}
	}
	switch st.Status {
	case stRunning, stPaused, stCreated:
		if p.Layout == nil {
			// Running but its state file is lost or corrupt: adopt it
			// as it is rather than restart it.
			p.Layout = &want
			if err := r.save(s.Name, p); err != nil {
				return fmt.Errorf("sliver %q: %w", s.Name, err)
			}
		}
		if p.Layout.NetNS == want.NetNS {
			err = r.update(ctx, s, p, st)
			break
		}
		fallthrough
	default:
		err = r.create(ctx, s, want, p, st)
	}
	if err != nil {
		return fmt.Errorf("sliver %q: %w", s.Name, err)
	}
	return nil
}

// create builds whatever is missing and starts the sliver.
func (r *Runc) create(ctx context.Context, s Spec, want layout, p persisted, st runcState) error {
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
	// Container.
	if st.Status == stStopped || (st.Status != "" && st.Status != stCreated) {
		// The init is dead; let the kernel finish killing the rest
		// before runc tears the container down.
		waitCgroupEmpty(r.cfg.CgroupParent, s.Name, 5*time.Second)
		if err := r.rc.remove(ctx, s.Name); err != nil {
			return err
		}
		st.Status = ""
	}
	switch {
	case st.Status == "" && s.Enabled:
		// The common case, in one runc process.
		if err := r.rc.runDetached(ctx, s.Name, bundle, filepath.Join(bundle, "runc.log")); err != nil {
			return err
		}
		step("runc-run")
		if err := confineWorkload(r.cfg.CgroupParent, s.Name, s.Resources.Pids, true); err != nil {
			return err
		}
		p.Spec = &s
		return r.save(s.Name, p)
	case st.Status == "":
		if err := r.rc.create(ctx, s.Name, bundle, filepath.Join(bundle, "runc.log")); err != nil {
			return err
		}
	}
	step("runc-create")
	if err := confineWorkload(r.cfg.CgroupParent, s.Name, s.Resources.Pids, true); err != nil {
		return err
	}
	if err := r.rc.simple(ctx, "start", s.Name); err != nil {
		return err
	}
	step("runc-start")
	if !s.Enabled {
		if err := r.rc.simple(ctx, "pause", s.Name); err != nil {
			return err
		}
	}
	p.Spec = &s
	return r.save(s.Name, p)
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
	cfg := ociConfig(s, ociParams{
		Rootfs: "rootfs", Init: r.cfg.Init, CgroupParent: r.cfg.CgroupParent,
		UserNS: userNS, OwnNetNS: ownNet, Swap: r.swap, NoFileMax: r.nofileMax,
	})
	return writeJSONAtomic(filepath.Join(r.bundle(s.Name), "config.json"), cfg, false)
}

// update changes a running (or paused, or created) sliver in place.
func (r *Runc) update(ctx context.Context, s Spec, p persisted, st runcState) error {
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
			if err := c.apply(r, ctx, s, st); err != nil {
				return err
			}
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
		if err := r.rc.simple(ctx, "start", s.Name); err != nil {
			return err
		}
		status = stRunning
	}
	if initChanged {
		if status == stPaused {
			if err := r.rc.simple(ctx, "resume", s.Name); err != nil {
				return err
			}
			status = stRunning
		}
		if _, err := r.rc.run(ctx, nil, "exec", "--user", "0:0", s.Name, "/bin/sh", initctl, "restart"); err != nil {
			return fmt.Errorf("restart initscript: %w", err)
		}
	}
	switch {
	case s.Enabled && status == stPaused:
		if err := r.rc.simple(ctx, "resume", s.Name); err != nil {
			return err
		}
	case !s.Enabled && status == stRunning:
		if err := r.rc.simple(ctx, "pause", s.Name); err != nil {
			return err
		}
	}
	p.Spec = &s
	return r.save(s.Name, p)
}

// liveChanges apply, in this order, the classes of change (change.go) of
// a running, paused or created sliver that are not handled by comparing
// the host's state (stateChanges).
var liveChanges = []struct {
	class string
	apply func(r *Runc, ctx context.Context, s Spec, st runcState) error
}{
	{changeQuota, func(r *Runc, _ context.Context, s Spec, _ runcState) error {
		return setDiskLimit(r.diskDir(s.Name), s.Resources.DiskBytes)
	}},
	{changeCgroup, func(r *Runc, ctx context.Context, s Spec, _ runcState) error {
		if err := r.rc.update(ctx, s.Name, linuxResources(s.Resources, r.swap)); err != nil {
			return err
		}
		return confineWorkload(r.cfg.CgroupParent, s.Name, s.Resources.Pids, false)
	}},
	{changeRlimit, func(r *Runc, ctx context.Context, s Spec, _ runcState) error {
		return r.setNoFile(ctx, s.Name, s.Resources)
	}},
	{changeUTS, func(_ *Runc, _ context.Context, s Spec, st runcState) error {
		if st.Pid > 0 {
			return setHostname(st.Pid, s.utsName())
		}
		return nil
	}},
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
	if err := r.rc.remove(ctx, name); err != nil {
		return err
	}
	step("runc-delete")
	if err := removeCgroups(r.cfg.CgroupParent, name); err != nil {
		return err
	}
	step("cgroups")
	bundle := r.bundle(name)
	rootfs := filepath.Join(bundle, "rootfs")
	for _, m := range []string{rootfs, filepath.Join(bundle, "userns")} {
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

// LoginReserve is how many processes (tasks) beyond its limit a sliver's
// cgroup admits, for logins: the sliver's init and everything it starts live
// in the child cgroup <sliver>/sliver, limited to Resources.Pids, while
// runc exec (ssh logins, pl exec) joins the sliver's own cgroup, limited to
// Pids+LoginReserve. A sliver whose workload is at its limit can still be
// entered to clean up. (The original PlanetLab reserved nothing.)
const LoginReserve = 16

// execTasks is about how many tasks runc exec needs in the sliver's cgroup
// to start a process (its runc init is multithreaded until it execs).
const execTasks = 8

// workloadCgroup is the child cgroup of the sliver's workload.
const workloadCgroup = "sliver"

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

// cgroupMounts returns the mount points of all cgroup hierarchies.
func cgroupMounts() ([]string, error) {
	ms, err := mounts()
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, m := range ms {
		if (m.FSType == "cgroup" || m.FSType == "cgroup2") && !seen[m.Target] {
			seen[m.Target] = true
			out = append(out, m.Target)
		}
	}
	return out, nil
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

// List implements Runtime.
func (r *Runc) List(ctx context.Context) ([]Status, error) {
	rl, err := r.rc.list(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]runcState{}
	for _, c := range rl {
		byName[c.ID] = c
	}
	ents, err := os.ReadDir(filepath.Join(r.cfg.StateDir, "slivers"))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []Status
	add := func(name string) error {
		if seen[name] || ValidName(name) != nil {
			return nil
		}
		seen[name] = true
		p, err := r.load(name)
		if err != nil {
			return err
		}
		c := byName[name]
		s := Status{Name: name, Running: c.Status == stRunning || c.Status == stPaused, Frozen: c.Status == stPaused, Spec: p.Spec}
		if p.Spec != nil {
			s.XID = p.Spec.XID
		} else if p.Layout != nil {
			s.XID = p.Layout.XID
		}
		out = append(out, s)
		return nil
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := add(e.Name()); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range rl {
		if err := add(c.ID); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Command implements Runtime. It returns `runc exec` of p in the sliver:
//
//   - as the slice account (uid/gid 1000, HOME=/home/<slice>) or, with
//     p.Root, as sliver root (HOME=/root, sliver root's capabilities);
//   - with the environment PATH, then p.Env, then HOME, USER, LOGNAME and
//     SHELL=/bin/sh (identity variables cannot be overridden);
//   - running p.Args, or the login shell `/bin/sh -l` when empty;
//   - in p.Dir, or the home directory.
//
// Without p.TTY the process inherits the command's stdin/stdout/stderr
// directly (pipes work; EOF on stdin reaches it).
//
// With p.TTY the caller must give the command a pty slave as stdin,
// stdout and stderr; Command sets SysProcAttr Setsid+Setctty (Ctty 0) so
// runc leads a session whose controlling terminal is that slave. runc
// allocates a second pty inside the sliver, puts the caller's slave in raw
// mode and copies bytes both ways; on SIGWINCH (sent by the kernel when
// the caller resizes the master with TIOCSWINSZ) runc copies the slave's
// window size to the inner pty, so resizing the master is all the caller
// does. Set the initial size on the master before Start. runc applies the
// initial size just after the process starts, so for the first moments the
// process may see 0x0; the update reaches it as SIGWINCH (interactive
// shells handle it).
//
// Signals sent to the command (runc) are forwarded to the process. When
// ctx is done the command gets SIGHUP (forwarded, like a hang-up) and is
// killed 5 seconds later if still running. Command fails with Unavailable
// when the sliver is frozen and NotFound when it is not running.
func (r *Runc) Command(ctx context.Context, name string, p Process) (*exec.Cmd, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	st, err := r.rc.state(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("sliver %q: %w", name, err)
	}
	switch st.Status {
	case stRunning:
	case stPaused:
		return nil, core.Errorf(core.Unavailable, "sliver %q is frozen", name)
	default:
		return nil, core.Errorf(core.NotFound, "sliver %q is not running", name)
	}
	if atProcessLimit(r.cfg.CgroupParent, name) {
		n := int64(0)
		if ps, err := r.load(name); err == nil && ps.Spec != nil {
			n = ps.Spec.Resources.Pids
		}
		return nil, core.Errorf(core.Unavailable, "the sliver is at its process limit of %d", n)
	}
	uid, home, user := accountUID, "/home/"+name, name
	if p.Root {
		uid, home, user = 0, "/root", "root"
	}
	dir := p.Dir
	if dir == "" {
		dir = home
	}
	args := []string{"--root", r.rc.root, "exec"}
	if p.TTY {
		args = append(args, "-t")
	}
	args = append(args, "--user", fmt.Sprintf("%d:%d", uid, uid), "--cwd", dir)
	env := append([]string{defaultPATH}, p.Env...)
	env = append(env, "HOME="+home, "USER="+user, "LOGNAME="+user, "SHELL=/bin/sh")
	for _, e := range env {
		if strings.ContainsRune(e, 0) || !strings.Contains(e, "=") {
			return nil, core.FieldErrorf("env", "bad environment entry %q", e)
		}
		args = append(args, "--env", e)
	}
	args = append(args, name)
	if len(p.Args) == 0 {
		args = append(args, "/bin/sh", "-l")
	} else {
		args = append(args, p.Args...)
	}
	cmd := exec.CommandContext(ctx, r.rc.bin, args...) // hostdeps: runc
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGHUP) }
	cmd.WaitDelay = 5 * time.Second
	if p.TTY {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	return cmd, nil
}
