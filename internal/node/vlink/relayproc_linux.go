package vlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/atomicfile"
)

// The relay process. With Config.RelayCommand the delay relays run in a
// process of their own (`pl node vlink-relay`), so that delayed links keep
// carrying while the node manager is stopped, crashes or is upgraded, as
// slivers and the SSH gateway do. The manager keeps the devices (the
// persistent TAPs, in the links' bridges, shaped) and tells the process
// which relays to run through a file:
//
//	<StateDir>/vlink-relay/relays.json  the relays (relaySpec), written atomically at every change
//	<StateDir>/vlink-relay/lock         flock held by the running process for its life
//	<StateDir>/vlink-relay/pid          its pid (written after the lock is taken)
//	<StateDir>/vlink-relay/log          its output (it outlives the manager's)
//
// After writing the file the manager sends the process SIGHUP; the
// process also re-reads it every second (and re-attaches a relay whose TAP
// was re-created). The manager checks every second that a process holds
// the lock and starts one when none does: a manager that starts while one
// runs adopts it. The process is in a session of its own (setsid), so
// signals to the manager's process group do not reach it. Teardown stops
// it.

const (
	relayDir       = "vlink-relay"
	relayFile      = "relays.json"
	relaySuperTick = time.Second
)

// relayProc is the manager's side: the relays it wants, the file, the
// supervision of the process.
type relayProc struct {
	cmd   []string
	dir   string
	log   *slog.Logger
	specs map[uint32]relaySpec // guarded by the manager's mutex

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newRelayProc(cfg Config, log *slog.Logger) *relayProc {
	cmd := append(slices.Clone(cfg.RelayCommand), "--state", cfg.StateDir)
	if cfg.NetNS != "" {
		cmd = append(cmd, "--netns", cfg.NetNS)
	}
	return &relayProc{cmd: cmd, dir: filepath.Join(cfg.StateDir, relayDir), log: log.With("relay_process", true),
		specs: map[uint32]relaySpec{}, stop: make(chan struct{})}
}

// publish writes the relay file and tells a running process to read it.
func (p *relayProc) publish() error {
	specs := make([]relaySpec, 0, len(p.specs))
	for _, s := range p.specs {
		specs = append(specs, s)
	}
	slices.SortFunc(specs, func(a, b relaySpec) int { return int(a.VNI) - int(b.VNI) })
	b, err := json.MarshalIndent(specs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(p.dir, relayFile), b, 0o600); err != nil {
		return err
	}
	if pid := p.running(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGHUP)
	}
	return nil
}

// running returns the pid of the process holding the lock, or 0.
func (p *relayProc) running() int {
	f, err := os.OpenFile(filepath.Join(p.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return 0
	}
	b, err := os.ReadFile(filepath.Join(p.dir, "pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// supervise starts the process when none runs, now and every second,
// until close.
func (p *relayProc) supervise() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(relaySuperTick)
		defer t.Stop()
		for {
			if p.running() == 0 {
				if err := p.start(); err != nil {
					p.log.Error("cannot start the delay relay process", "err", err)
				}
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// start starts the process and waits (up to 5 s) until it holds the lock.
func (p *relayProc) start() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(p.dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	c := exec.Command(p.cmd[0], p.cmd[1:]...) // hostdeps: self
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = c.Wait(); close(exited) }() // reaps it, whenever it ends
	deadline := time.Now().Add(5 * time.Second)
	for p.running() != c.Process.Pid {
		select {
		case <-exited:
			return fmt.Errorf("%s exited at once (see %s)", p.cmd[0], filepath.Join(p.dir, "log"))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) did not take its lock within 5 s", p.cmd[0], c.Process.Pid)
		}
	}
	p.log.Info("delay relay process started", "pid", c.Process.Pid)
	return nil
}

// close stops the supervision; the process keeps running.
func (p *relayProc) close() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// stopProcess stops the supervision and the process (Teardown).
func (p *relayProc) stopProcess() error {
	p.close()
	pid := p.running()
	if pid == 0 {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 250 {
		if p.running() == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("delay relay process %d did not stop on SIGTERM within 5 s; killed", pid)
}

// RelayProcessConfig configures RunRelayProcess.
type RelayProcessConfig struct {
	StateDir string // the manager's Config.StateDir
	NetNS    string // the node's network namespace; "" = the process's
	Logger   *slog.Logger
}

// RunRelayProcess is the relay process (`pl node vlink-relay`): it takes
// the lock, then runs the relays of the relay file until ctx is done,
// re-reading it on SIGHUP and every second. Its relays stop with it; the
// TAPs stay (the manager's). It also stops when its state directory
// disappears.
func RunRelayProcess(ctx context.Context, c RelayProcessConfig) error {
	if c.StateDir == "" {
		return errors.New("vlink-relay: --state is required")
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("subsystem", "vlink-relay")
	dir := filepath.Join(c.StateDir, relayDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("vlink-relay: another relay process holds %s", lock.Name())
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	var ns netns.NsHandle
	if c.NetNS != "" {
		ns, err = netns.GetFromPath(c.NetNS)
	} else {
		runtime.LockOSThread()
		ns, err = netns.Get()
		runtime.UnlockOSThread()
	}
	if err != nil {
		return fmt.Errorf("vlink-relay: node netns %q: %w", c.NetNS, err)
	}
	defer ns.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	relays := map[uint32]*relay{}
	defer func() {
		for _, r := range relays {
			r.close()
		}
	}()
	var last []byte
	reconcile := func() {
		b, err := os.ReadFile(filepath.Join(dir, relayFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Error("cannot read the relay file", "err", err)
			return
		}
		var specs []relaySpec
		if len(b) > 0 {
			if err := json.Unmarshal(b, &specs); err != nil {
				log.Error("bad relay file", "err", err)
				return
			}
		}
		changed := string(b) != string(last)
		last = b
		want := map[uint32]bool{}
		for _, s := range specs {
			want[s.VNI] = true
			r := relays[s.VNI]
			if r != nil && r.spec.equal(s) && !r.exited() {
				continue
			}
			if r != nil {
				r.close()
				delete(relays, s.VNI)
			}
			nr, err := openRelay(ns, s)
			if err != nil {
				if changed {
					log.Warn("cannot start a relay (retried every second)", "tap", s.TAP, "err", err)
				}
				continue
			}
			relays[s.VNI] = nr
			log.Info("relay running", "tap", s.TAP, "peers", s.Peers, "delay_us", s.DelayUS)
		}
		for vni, r := range relays {
			if !want[vni] {
				r.close()
				delete(relays, vni)
				log.Info("relay stopped", "tap", r.spec.TAP)
			}
		}
	}
	log.Info("delay relay process started", "pid", os.Getpid(), "state", c.StateDir, "netns", c.NetNS)
	reconcile()
	t := time.NewTicker(relaySuperTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("delay relay process stopping")
			return nil
		case <-hup:
			reconcile()
		case <-t.C:
			// The node's state is gone (pl dev down, a wiped node): there
			// is nothing left to relay for.
			if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
				log.Info("delay relay process stopping: its state directory is gone", "dir", dir)
				return nil
			}
			reconcile()
		}
	}
}
