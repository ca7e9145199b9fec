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
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	// Runsc is gVisor's runsc binary, for slivers whose Spec.Runtime is
	// RuntimeGVisor. Default DefaultRunsc; when it is not installed those
	// slivers are refused (Unavailable) and runc slivers are unaffected.
	Runsc string
	// RunscPlatform is gVisor's platform (runsc --platform): how the
	// sentry intercepts system calls. Default "ptrace", which needs no
	// hardware virtualization ("kvm" needs /dev/kvm).
	RunscPlatform string
	// Init is a static init for PID 1 in slivers, bind-mounted read-only.
	// Default /usr/bin/tini-static (Debian package tini).
	Init   string
	Logger *slog.Logger
}

// DefaultRunsc is where scripts/deps.sh installs the gVisor runsc it
// builds from the pinned module in third_party/runsc (Debian's runsc,
// /usr/bin/runsc, is too old for this: see docs/slivers.md). A fixed path
// rather than $PATH, so that the node never picks up another runsc.
const DefaultRunsc = "/usr/local/bin/runsc" // hostdeps: /usr/local/bin/runsc

// Runc runs slivers with runc. It implements Runtime.
type Runc struct {
	cfg  Config
	rc   runcCLI
	gv   *runcCLI // runsc; nil when it is not installed
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
	for _, d := range []string{"runc", "runsc"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("sliver state: %w", err)
		}
	}
	if err := ensureDisk(ctx, cfg.DiskDir, filepath.Join(cfg.StateDir, "disk.btrfs"), cfg.DiskImageSize); err != nil {
		return nil, err
	}
	r := &Runc{
		cfg:   cfg,
		rc:    runcCLI{bin: cfg.Runc, root: filepath.Join(cfg.StateDir, "runc"), name: "runc"},
		gv:    gvisorCLI(cfg),
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
		rc:    runcCLI{bin: cfg.Runc, root: filepath.Join(cfg.StateDir, "runc"), name: "runc"},
		gv:    gvisorCLI(cfg),
		log:   cfg.Logger.With("subsystem", "sliver"),
		locks: map[string]*sync.Mutex{},
	}, nil
}

// gvisorCLI returns runsc's command line, or nil when runsc is not
// installed.
func gvisorCLI(cfg Config) *runcCLI {
	bin, platform := cfg.Runsc, cfg.RunscPlatform
	if bin == "" {
		bin = DefaultRunsc
	}
	if platform == "" {
		platform = "ptrace"
	}
	if _, err := exec.LookPath(bin); err != nil { // hostdeps: /usr/local/bin/runsc
		return nil
	}
	// --net-raw: sliver root keeps CAP_NET_RAW (raw sockets of the
	// sentry's network stack), as under runc. --file-access=shared: the
	// runtime rewrites files of a running sliver from the host (keys,
	// accounts, initscript), which the sentry must not cache past.
	// --overlay2=none: writes go to the sliver's writable layer (its disk
	// quota), not to the sentry's memory. --allow-suid: setuid programs
	// work as under runc (su, busybox's ping, which has no unprivileged
	// fallback); runsc ignores the setuid bit by default.
	return &runcCLI{bin: bin, root: filepath.Join(cfg.StateDir, "runsc"), name: "runsc",
		flags: []string{"--platform=" + platform, "--net-raw", "--file-access=shared", "--overlay2=none", "--allow-suid"}, idSuffix: gvisorIDSuffix}
}

// Runtimes returns the OCI runtimes this node can run slivers under
// (Spec.Runtime values).
func (r *Runc) Runtimes() []string {
	if r.gv != nil {
		return []string{RuntimeRunc, RuntimeGVisor}
	}
	return []string{RuntimeRunc}
}

// cli returns the command line of runtime rt (Spec.Runtime).
func (r *Runc) cli(rt string) (*runcCLI, error) {
	switch rt {
	case RuntimeRunc:
		return &r.rc, nil
	case RuntimeGVisor:
		if r.gv == nil {
			return nil, core.Errorf(core.Unavailable, "runtime runsc (gVisor) is not installed on this node (scripts/deps.sh builds it into %s)", DefaultRunsc)
		}
		return r.gv, nil
	}
	return nil, core.FieldErrorf("runtime", "unknown runtime %q", rt)
}

// gvisorTTYProcess returns a memfd holding the OCI process description of
// a terminal session for runsc exec --process.
func gvisorTTYProcess(uid uint32, dir string, env, argv []string, root bool) (*os.File, error) {
	proc := specs.Process{Terminal: true, User: specs.User{UID: uid, GID: uid}, Cwd: dir, Env: env, Args: argv}
	if root {
		caps := append([]string(nil), capabilities...)
		proc.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	b, err := json.Marshal(proc)
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("pl-exec", 0)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pl-exec")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// clis are the command lines of the runtimes installed.
func (r *Runc) clis() []*runcCLI {
	if r.gv != nil {
		return []*runcCLI{&r.rc, r.gv}
	}
	return []*runcCLI{&r.rc}
}

// runtime is the runtime a sliver was built for: its layout's.
func (p persisted) runtime() string {
	if p.Layout != nil {
		return p.Layout.Runtime
	}
	if p.Spec != nil {
		return p.Spec.Runtime
	}
	return RuntimeRunc
}

// swapAccounting reports whether cgroups can limit memory+swap: on v1 the
// memory hierarchy's root has memory.memsw.limit_in_bytes; on v2 (where
// the root cgroup has no memory.swap.max) the root's children have
// memory.swap.max. The hierarchies are found in the mount table.
func swapAccounting() bool {
	l, err := cgroupLayout()
	if err != nil {
		return false
	}
	m, unified := l.Controller("memory")
	if m == "" {
		return false
	}
	if !unified {
		_, err := os.Stat(filepath.Join(m, "memory.memsw.limit_in_bytes"))
		return err == nil
	}
	ents, _ := filepath.Glob(filepath.Join(m, "*", "memory.swap.max"))
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
	want := layout{Image: img, UIDBase: s.UIDBase, NetNS: s.NetNS, XID: s.XID, Runtime: s.Runtime}
	rc, err := r.cli(s.Runtime)
	if err != nil {
		return fmt.Errorf("sliver %q: %w", s.Name, err)
	}
	if l := p.Layout; l != nil && (l.Image != want.Image || l.UIDBase != want.UIDBase || l.XID != want.XID || l.Runtime != want.Runtime) {
		r.log.Info("re-creating sliver", "sliver", s.Name, "image", img, "old_image", l.Image, "runtime", rc.name)
		if err := r.destroy(ctx, s.Name); err != nil {
			return fmt.Errorf("sliver %q: re-create: %w", s.Name, err)
		}
		p = persisted{}
	}
	st, err := rc.state(ctx, s.Name)
	if err != nil {
		return fmt.Errorf("sliver %q: %w", s.Name, err)
	}
	if l := p.Layout; l != nil && st.Status != "" && (l.NetNS != want.NetNS || p.Spec != nil && (p.Spec.APISocket != s.APISocket || p.Spec.APIClient != s.APIClient || p.Spec.Datasets != s.Datasets)) {
		r.log.Info("restarting sliver in a new container", "sliver", s.Name, "netns", s.NetNS, "api_socket", s.APISocket, "api_client", s.APIClient, "datasets", s.Datasets)
		if err := rc.remove(ctx, s.Name); err != nil {
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
			err = r.update(ctx, rc, s, p, st)
			break
		}
		fallthrough
	default:
		err = r.create(ctx, rc, s, want, p, st)
	}
	if err != nil {
		return fmt.Errorf("sliver %q: %w", s.Name, err)
	}
	return nil
}

// liveChanges apply, in this order, the classes of change (change.go) of
// a running, paused or created sliver that are not handled by comparing
// the host's state (stateChanges).
var liveChanges = []struct {
	class string
	apply func(r *Runc, ctx context.Context, rc *runcCLI, s Spec, st runcState) error
}{
	{changeQuota, func(r *Runc, _ context.Context, _ *runcCLI, s Spec, _ runcState) error {
		return setDiskLimit(r.diskDir(s.Name), s.Resources.DiskBytes)
	}},
	{changeCgroup, func(r *Runc, ctx context.Context, rc *runcCLI, s Spec, _ runcState) error {
		if rc.gvisor() {
			// runsc has no update command: write the sandbox's cgroup.
			return setGVisorCgroup(r.cfg.CgroupParent, s.Name, ociResources(s, r.swap))
		}
		if err := rc.update(ctx, s.Name, linuxResources(s.Resources, r.swap)); err != nil {
			return err
		}
		return confineWorkload(r.cfg.CgroupParent, s.Name, s.Resources.Pids, false)
	}},
	{changeRlimit, func(r *Runc, ctx context.Context, rc *runcCLI, s Spec, _ runcState) error {
		if rc.gvisor() {
			// The sentry keeps its tasks' rlimits: a new limit applies
			// to processes started after it (config.json).
			return nil
		}
		return r.setNoFile(ctx, s.Name, s.Resources)
	}},
	{changeUTS, func(_ *Runc, _ context.Context, rc *runcCLI, s Spec, st runcState) error {
		if rc.gvisor() {
			// The sentry keeps its own UTS name, out of reach of
			// setns: it changes when the sliver restarts.
			return nil
		}
		if st.Pid > 0 {
			return setHostname(st.Pid, s.utsName())
		}
		return nil
	}},
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

// List implements Runtime.
func (r *Runc) List(ctx context.Context) ([]Status, error) {
	rl, err := r.rc.list(ctx)
	if err != nil {
		return nil, err
	}
	if r.gv != nil {
		gl, err := r.gv.list(ctx)
		if err != nil {
			return nil, err
		}
		rl = append(rl, gl...)
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
	ps, err := r.load(name)
	if err != nil {
		return nil, err
	}
	rc, err := r.cli(ps.runtime())
	if err != nil {
		return nil, fmt.Errorf("sliver %q: %w", name, err)
	}
	st, err := rc.state(ctx, name)
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
	if !rc.gvisor() && atProcessLimit(r.cfg.CgroupParent, name) {
		n := int64(0)
		if ps.Spec != nil {
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
	env := append([]string{defaultPATH}, p.Env...)
	env = append(env, "HOME="+home, "USER="+user, "LOGNAME="+user, "SHELL=/bin/sh")
	for _, e := range env {
		if strings.ContainsRune(e, 0) || !strings.Contains(e, "=") {
			return nil, core.FieldErrorf("env", "bad environment entry %q", e)
		}
	}
	argv := p.Args
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-l"}
	}
	args := rc.args("exec")
	var extra []*os.File
	if p.TTY && rc.gvisor() {
		// runsc exec has no -t: a process description with a terminal
		// makes it hand its stdin (the caller's pty slave) to the
		// sandbox as the process's terminal.
		f, err := gvisorTTYProcess(uint32(uid), dir, env, argv, p.Root)
		if err != nil {
			return nil, fmt.Errorf("sliver %q: %w", name, err)
		}
		extra = append(extra, f)
		args = append(args, "--process", "/dev/fd/3", rc.cid(name))
	} else {
		if p.TTY {
			args = append(args, "-t")
		}
		args = append(args, "--user", fmt.Sprintf("%d:%d", uid, uid), "--cwd", dir)
		for _, e := range env {
			args = append(args, "--env", e)
		}
		args = append(append(args, rc.cid(name)), argv...)
	}
	cmd := exec.CommandContext(ctx, rc.bin, args...) // hostdeps: runc runsc
	cmd.ExtraFiles = extra
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGHUP) }
	cmd.WaitDelay = 5 * time.Second
	if p.TTY {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	return cmd, nil
}
