package nodecmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/planetlab/pl/internal/mountinfo"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/sshgw"
	"golang.org/x/sys/unix"
)

// The SSH gateway runs as a process of its own (`pl node sshgw`), so that
// logins survive the node manager (a crash, an upgrade) as slivers do. The
// node manager starts and supervises it and hands it the slices through
// <state>/sshgw/slices.json; the gateway serves from the last file it read.
//
//	<state>/sshgw/lock         flock held by the running gateway for its life
//	<state>/sshgw/pid          its pid (written after the lock is taken)
//	<state>/sshgw/slices.json  the node manager's view of the slices
//	<state>/sshgw/log          the gateway's log (it outlives our stderr)
//
// A node manager that starts while a gateway runs (the lock is held)
// adopts it; one that finds none starts one. Its cgroup is
// <cgroup parent>/pl-sshgw (not a valid slice name), apart from the node
// manager's.

const (
	gatewayDir    = "sshgw"
	gatewayCgroup = "pl-sshgw"
)

// GatewayOptions configure the gateway process.
type GatewayOptions struct {
	State        string // the node manager's state directory
	Listen       string // listen address (":22")
	CgroupParent string // the slivers' cgroup parent ("/pl")
	Logger       *slog.Logger
}

func (o GatewayOptions) args() []string {
	return []string{"--state", o.State, "--listen", o.Listen, "--cgroup-parent", o.CgroupParent}
}

// RunGateway runs the gateway process until ctx is done: it takes the
// lock (failing if another gateway holds it), joins its cgroup, and serves
// logins from the slice file, cutting the sessions of slices the node
// manager revokes.
func RunGateway(ctx context.Context, o GatewayOptions) error {
	if o.State == "" {
		o.State = DefaultStateDir
	}
	if o.CgroupParent == "" {
		o.CgroupParent = "/pl"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger.With("subsystem", "sshgw")
	dir := filepath.Join(o.State, gatewayDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	// A supervisor probing the lock holds it for an instant: retry a bit.
	for try := 0; ; try++ {
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if try == 60 {
			pid, _ := os.ReadFile(filepath.Join(dir, "pid"))
			return fmt.Errorf("another ssh gateway serves %s (pid %s): %w", o.State, strings.TrimSpace(string(pid)), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	if err := joinCgroup(o.CgroupParent + "/" + gatewayCgroup); err != nil {
		log.Warn("ssh gateway stays in the node manager's cgroup", "err", err)
	}
	rt, err := sliver.OpenExec(sliver.Config{StateDir: filepath.Join(o.State, "slivers"), CgroupParent: o.CgroupParent, Logger: o.Logger})
	if err != nil {
		return err
	}
	slices := sshgw.NewFileSlices(filepath.Join(dir, "slices.json"))
	if _, err := slices.Reload(); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("slice file unreadable; serving no slices until the node manager rewrites it", "err", err)
	}
	gw, err := sshgw.New(sshgw.Config{
		Addr:        o.Listen,
		HostKeyPath: filepath.Join(o.State, hostKeyFileName),
		Runtime:     rt,
		Slices:      slices,
		Logger:      o.Logger,
	})
	if err != nil {
		return err
	}
	log.Info("ssh gateway listening", "addr", gw.Addr().String(), "pid", os.Getpid())
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		var lastErr string
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			old, err := slices.Reload()
			if err != nil {
				if err.Error() != lastErr && !errors.Is(err, os.ErrNotExist) {
					log.Warn("slice file unreadable; keeping the last one", "err", err)
				}
				lastErr = err.Error()
				continue
			}
			lastErr = ""
			if old != nil {
				for _, name := range gw.DisconnectRevoked(old) {
					log.Info("closed ssh sessions of a sliver no longer open to logins", "sliver", name)
				}
			}
		}
	}()
	return gw.Serve(ctx)
}

// joinCgroup moves this process into cgroup rel in every hierarchy.
func joinCgroup(rel string) error {
	ms, err := mountinfo.Read()
	if err != nil {
		return err
	}
	var errs []error
	self := []byte(strconv.Itoa(os.Getpid()))
	for _, m := range ms {
		if !m.IsCgroup() {
			continue
		}
		d := filepath.Join(m.Target, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), self, 0); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// gatewayRunning reports whether a gateway holds the lock of state, and
// its pid as recorded.
func gatewayRunning(state string) (bool, int) {
	dir := filepath.Join(state, gatewayDir)
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false, 0
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false, 0
	}
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return true, pid
}

// StopGateway stops the gateway process of state, if one runs: SIGTERM,
// then SIGKILL after timeout. The node manager never does this (logins
// outlive it); tests and uninstalls do.
func StopGateway(state string, timeout time.Duration) error {
	running, pid := gatewayRunning(state)
	if !running {
		return nil
	}
	if pid <= 1 {
		return fmt.Errorf("ssh gateway of %s: lock held but no pid recorded", state)
	}
	unix.Kill(pid, unix.SIGTERM)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if running, _ := gatewayRunning(state); !running {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	unix.Kill(pid, unix.SIGKILL)
	for i := 0; i < 100; i++ {
		if running, _ := gatewayRunning(state); !running {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("ssh gateway pid %d of %s survives SIGKILL", pid, state)
}

// gatewaySupervisor keeps one gateway process running for a node manager.
type gatewaySupervisor struct {
	opts    GatewayOptions
	command []string // program and leading arguments; GatewayOptions.args follow
	log     *slog.Logger
	slices  string // the slice file
	last    []byte // its last content written
}

// writeSlices hands the agent's slice directory to the gateway when it
// changed.
func (s *gatewaySupervisor) writeSlices(dir map[string]agent.SliceInfo) {
	m := make(map[string]sshgw.SliceAccess, len(dir))
	for name, info := range dir {
		m[name] = sliceAccess(info)
	}
	b, err := sshgw.EncodeSlices(m)
	if err == nil && string(b) == string(s.last) {
		return
	}
	if err == nil {
		err = atomicfile.WriteFile(s.slices, b, 0o600)
	}
	if err != nil {
		s.log.Error("cannot hand the slices to the ssh gateway", "err", err)
		return
	}
	s.last = b
}

// run adopts or starts the gateway and restarts it when it dies, with
// backoff, until ctx is done; the gateway keeps running after that.
func (s *gatewaySupervisor) run(ctx context.Context) {
	const minBackoff, maxBackoff, healthy = time.Second, 30 * time.Second, time.Minute
	backoff := minBackoff
	if running, pid := gatewayRunning(s.opts.State); running {
		s.log.Info("adopted the running ssh gateway", "pid", pid)
	}
	for ctx.Err() == nil {
		if running, _ := gatewayRunning(s.opts.State); !running {
			started := time.Now()
			pid, err := s.start()
			if err != nil {
				s.log.Error("cannot start the ssh gateway", "err", err, "retry_in", backoff)
			} else {
				s.log.Info("started the ssh gateway", "pid", pid, "addr", s.opts.Listen)
			}
			// Watch it; a quick death means backoff before the next try.
			for ctx.Err() == nil {
				if running, _ := gatewayRunning(s.opts.State); !running && time.Since(started) > 2*time.Second {
					break
				}
				sleep(ctx, 250*time.Millisecond)
			}
			if ctx.Err() != nil {
				return
			}
			if time.Since(started) > healthy {
				backoff = minBackoff
			}
			s.log.Warn("the ssh gateway stopped; restarting it", "after", backoff)
			sleep(ctx, backoff+rand.N(backoff/4))
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

// start starts a gateway process in a session of its own (a signal to the
// node manager's group does not reach it), logging to <state>/sshgw/log.
func (s *gatewaySupervisor) start() (int, error) {
	dir := filepath.Join(s.opts.State, gatewayDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := append(append([]string(nil), s.command[1:]...), s.opts.args()...)
	cmd := exec.Command(s.command[0], args...) // hostdeps: self
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go cmd.Wait() // reap it if it dies while we run
	return cmd.Process.Pid, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func sliceAccess(info agent.SliceInfo) sshgw.SliceAccess {
	return sshgw.SliceAccess{Keys: info.Keys, Enabled: info.Enabled, Running: info.Running, Expires: info.Expires, NetNS: info.NetNS}
}
