package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/dev/wan"
	"github.com/planetlab/pl/internal/node/nodecmd"
)

// Config configures an emulated planet. Zero values take the defaults.
type Config struct {
	Nodes    int           // emulated nodes; default 4
	DataDir  string        // default: a fresh temporary directory, removed on Close
	ID       string        // instance id (0-4 of [a-z0-9]) for concurrent planets; default ""
	WAN      netip.Prefix  // WAN address block; default 10.99.0.0/16
	Overhead time.Duration // added to every one-way WAN delay; default 2ms
	Loss     float64       // WAN packet loss probability per uplink crossing
	RateKbit uint64        // per-site uplink rate limit; 0 = none
	Binary   string        // the pl binary run for PLC and nodes; default this executable
	PLCPort  int           // default 8443
	GENIPort int           // the GENI aggregate's port (docs/geni.md); default DefaultGENIPort
	NoDemo   bool          // do not create the demo slice
	// Reservable makes the last node reservable once the demo runs
	// (leases.go; docs/dev.md): its slivers freeze until a lease.
	Reservable bool
	// Sites are the planet's sites in the order nodes are placed on
	// them; the first is where PLC stands (default DemoSites).
	Sites []DemoSite
	// NodeLogLevel is the node managers' --log-level ("" = their default).
	NodeLogLevel string
	Log          *slog.Logger
}

// DefaultNodes is the default number of emulated nodes.
const DefaultNodes = 4

func (c *Config) defaults() error {
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if len(c.Sites) == 0 {
		c.Sites = DemoSites
	}
	if c.Nodes < 1 {
		return fmt.Errorf("nodes %d: want at least 1", c.Nodes)
	}
	if c.Reservable && c.Nodes < 2 {
		return fmt.Errorf("--reservable with %d node: want at least 2 (the demo keeps running on the others)", c.Nodes)
	}
	if !c.WAN.IsValid() {
		c.WAN = wan.DefaultPrefix
	}
	if c.Overhead == 0 {
		c.Overhead = 2 * time.Millisecond
	}
	if c.PLCPort == 0 {
		c.PLCPort = 8443
	}
	if c.GENIPort == 0 {
		c.GENIPort = DefaultGENIPort
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the pl binary: %w", err)
		}
		c.Binary = exe
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Planet is a running emulated planet: a WAN, a PLC on the host and nodes
// in their namespaces.
type Planet struct {
	Config
	Plan *wan.Plan
	WAN  *wan.WAN

	PLCURL      string // https://<host WAN address>:<port>
	Fingerprint string // SHA-256 of PLC's certificate
	GENIURL     string // the GENI AM API v3 aggregate: https://<host WAN address>:<GENI port>/
	AdminEmail  string
	AdminPWFile string // file holding the admin password
	Nodes       []*Node
	Demo        *Demo // nil with NoDemo
	// Reservable is the node made reservable (Config.Reservable), or nil.
	Reservable *Node

	rec     *Record
	invoker invoker // who ran pl dev: the printed commands are theirs
	mu      sync.Mutex
	procs   []*proc       // PLC first, then the nodes
	quit    chan struct{} // closed by Close: supervisors stop
	ctl     net.Listener  // the control socket
	closed  bool
}

// Node is one emulated node.
type Node struct {
	wan.NodePlan
	SiteName string // login_base of its site
	Hostname string
	NodeID   int64
	StateDir string
	Cgroup   string // cgroup parent of its slivers
	proc     *proc
}

// Up brings a planet up. On failure everything created so far is removed.
func Up(ctx context.Context, cfg Config) (_ *Planet, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("pl dev needs root: it creates network namespaces, cgroups and containers")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	plan, err := wan.NewPlan(wan.Config{
		ID: cfg.ID, Prefix: cfg.WAN, Host: cfg.Sites[0].Location, Sites: wanSites(cfg.Sites), Nodes: cfg.Nodes,
		Overhead: cfg.Overhead, Loss: cfg.Loss, RateKbit: cfg.RateKbit,
	})
	if err != nil {
		return nil, err
	}
	if old, err := findRecord(plan.Prefix); err != nil {
		return nil, err
	} else if old != nil {
		if old.PID > 0 && procStart(old.PID) != 0 && old.PID != os.Getpid() && isPlDev(old.PID) {
			return nil, fmt.Errorf("a pl dev instance (pid %d, data %s) is already running; stop it or use another --id", old.PID, old.DataDir)
		}
		cfg.Log.Info("removing leftovers of an earlier pl dev run", "prefix", old.Prefix, "data", old.DataDir)
		if err := Down(old, cfg.Log); err != nil {
			return nil, fmt.Errorf("leftovers of an earlier run: %w (try `pl dev down`)", err)
		}
	}
	if left, _ := wan.Leftovers(plan.Prefix); len(left) > 0 {
		if err := wan.Remove(plan.Prefix); err != nil {
			return nil, fmt.Errorf("leftover namespaces %v: %w", left, err)
		}
	}
	rec := &Record{Prefix: plan.Prefix, PID: os.Getpid(), Cgroup: "/" + strings.TrimSuffix(plan.Prefix, "-")}
	if cfg.DataDir == "" {
		d, err := os.MkdirTemp("", "pl-dev-")
		if err != nil {
			return nil, err
		}
		cfg.DataDir, rec.TempData = d, true
	} else {
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		if ents, err := os.ReadDir(abs); err == nil && len(ents) > 0 {
			return nil, fmt.Errorf("--data %s is not empty: give a new or empty directory", abs)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, err
		}
		cfg.DataDir = abs
	}
	// Traversable by the slivers' unprivileged uids (their root file
	// systems live below); secrets inside are files of mode 0600.
	if err := os.Chmod(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	if err := reachData(&cfg, rec); err != nil {
		if rec.TempData {
			os.RemoveAll(cfg.DataDir)
		}
		return nil, err
	}
	rec.DataDir = cfg.DataDir
	if err := rec.Save(); err != nil {
		if rec.TempData {
			os.RemoveAll(rec.DataDir)
		}
		return nil, err
	}
	p := &Planet{Config: cfg, Plan: plan, rec: rec, invoker: currentInvoker(), quit: make(chan struct{})}
	defer func() {
		if err != nil {
			if cerr := p.Close(); cerr != nil {
				cfg.Log.Error("cleanup after failed start", "err", cerr)
			}
		}
	}()
	log := cfg.Log
	if err := weighCgroup(rec.Cgroup, cfg.Nodes); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", rec.Cgroup, err)
	}
	start := time.Now()
	if p.WAN, err = wan.Up(ctx, plan, log.With("part", "wan")); err != nil {
		return nil, err
	}
	log.Info("WAN up", "sites", len(plan.SitePlans), "nodes", len(plan.NodePlans), "took", time.Since(start).Round(time.Millisecond))
	if err := p.startPLC(ctx); err != nil {
		return nil, fmt.Errorf("PLC: %w", err)
	}
	log.Info("PLC up", "url", p.PLCURL, "took", time.Since(start).Round(time.Millisecond))
	if err := p.startNodes(ctx); err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	log.Info("nodes up", "n", len(p.Nodes), "took", time.Since(start).Round(time.Millisecond))
	if err := p.serveControl(); err != nil {
		return nil, err
	}
	if !cfg.NoDemo {
		if err := p.setupDemo(ctx); err != nil {
			return nil, fmt.Errorf("demo slice: %w", err)
		}
		log.Info("demo slice running", "slice", p.Demo.Slice, "took", time.Since(start).Round(time.Millisecond))
	}
	if cfg.Reservable {
		if err := p.makeReservable(ctx); err != nil {
			return nil, fmt.Errorf("reservable node: %w", err)
		}
		log.Info("node reservable", "node", p.Reservable.Hostname)
	}
	return p, nil
}

// reachData makes the data directory reachable by the slivers' mapped
// root users, which must traverse every directory above their root file
// systems. When a parent of it is not searchable by others (mode 0700, as
// `mktemp -d` makes and /root is), the directory is bind-mounted at
// /run/pl-dev/<instance>.data, whose parents are, and the planet uses that
// path; Down unmounts it. cfg.DataDir becomes the path to use and
// rec.UserDataDir the one the user gave.
func reachData(cfg *Config, rec *Record) error {
	why := nodecmd.CheckTraversable(filepath.Join(cfg.DataDir, "nodes"))
	if why == nil {
		return nil
	}
	bind := dataBindPath(rec.Prefix)
	fail := func(err error) error {
		return fmt.Errorf("data directory %s: %v; bind-mounting it at %s (searchable) failed: %w. "+
			"Give --data a directory whose parents are all searchable (chmod o+x), e.g. under /var/tmp", cfg.DataDir, why, bind, err)
	}
	if err := os.MkdirAll(bind, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Chmod(RunDir, 0o755); err != nil {
		return fail(err)
	}
	if err := unix.Mount(cfg.DataDir, bind, "", unix.MS_BIND, ""); err != nil {
		os.Remove(bind)
		return fail(err)
	}
	if err := nodecmd.CheckTraversable(filepath.Join(bind, "nodes")); err != nil {
		unix.Unmount(bind, unix.MNT_DETACH)
		os.Remove(bind)
		return fail(err)
	}
	cfg.Log.Info("a parent of the data directory is not searchable by slivers: using it through a bind mount",
		"data", cfg.DataDir, "as", bind)
	rec.UserDataDir, cfg.DataDir = cfg.DataDir, bind
	return nil
}

// dataBindPath is where an instance's data directory is bind-mounted when
// its own path is not traversable.
func dataBindPath(prefix string) string {
	return filepath.Join(RunDir, strings.TrimSuffix(prefix, "-")+".data")
}

func findRecord(prefix string) (*Record, error) {
	recs, err := LoadRecords()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Prefix == prefix {
			return r, nil
		}
	}
	return nil, nil
}

// isPlDev reports whether pid runs a pl binary with "dev" among its args.
func isPlDev(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(b), "\x00") {
		if a == "dev" {
			return true
		}
	}
	return false
}

// DataPath returns a path in the data directory.
func (p *Planet) DataPath(elem ...string) string {
	return filepath.Join(append([]string{p.DataDir}, elem...)...)
}

// childEnv is the environment of children: ours, with the CLI's state kept
// in the data directory rather than the invoking user's home.
func (p *Planet) childEnv() []string {
	return append(os.Environ(), p.cliEnv()...)
}

// run runs a pl command in the host namespace and returns its stdout.
func (p *Planet) run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Binary, args...) // hostdeps: self
	cmd.Env = p.childEnv()
	cmd.Stdin = stdin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("pl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// runIn runs a pl command in a node's namespace.
func (p *Planet) runIn(ctx context.Context, ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Binary, args...) // hostdeps: self
	cmd.Env = p.childEnv()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := wan.StartIn(ns, cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return out.String(), fmt.Errorf("pl %s (in %s): %w: %s", strings.Join(args, " "), ns, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// waitTCP waits until addr accepts TCP connections (dialled from netns ns,
// or the host when ""), the child exits, or the timeout passes.
func waitTCP(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if c != nil {
			select {
			case <-c.done:
				return fmt.Errorf("%s exited before listening on %s: %v (log: %s)", c.name, addr, c.err, c.log.Name())
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop stops a child: SIGTERM, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// Close stops everything and removes every trace of the planet on the host.
func (p *Planet) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.quit)
	procs := p.procs
	ctl := p.ctl
	p.mu.Unlock()
	if ctl != nil {
		ctl.Close()
	}
	// Nodes in parallel, then PLC.
	var wg sync.WaitGroup
	for _, s := range procs {
		if c := s.current(); c != nil && s.name != "plc" {
			wg.Add(1)
			go func() { defer wg.Done(); c.stop(10 * time.Second) }()
		}
	}
	wg.Wait()
	for _, s := range procs {
		if c := s.current(); c != nil && s.name == "plc" {
			c.stop(10 * time.Second)
		}
	}
	// Slivers (in the nodes' cgroups), mounts, namespaces, data; then the
	// pumps, whose TUN devices vanish with them.
	errs := []error{Down(p.rec, p.Log)}
	if p.WAN != nil {
		errs = append(errs, p.WAN.Close())
	}
	return errors.Join(errs...)
}
