package dev

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/dev/wan"
)

// Supervision: pl dev restarts a `pl plc` or `pl node` that exits without
// being asked to, after a backoff that doubles from MinRestartBackoff to
// MaxRestartBackoff (reset once a process ran for StableAfter), and says so
// on stderr. `pl dev stop|start <name>` stop and start one on purpose (to
// try outages); a stopped process stays stopped until started.
//
//	          start            exit (not asked)
//	stopped --------> running -----------------> backoff --+
//	   ^                 |  ^                              |
//	   |     stop        |  +------------------------------+
//	   +-----------------+              restart
var (
	MinRestartBackoff = 500 * time.Millisecond
	MaxRestartBackoff = 30 * time.Second
	StableAfter       = time.Minute
)

// child is one run of a supervised process.
type child struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	err     error
	log     *os.File
}

// proc is a supervised process of the planet: PLC or one node manager.
type proc struct {
	name    string // "plc" or the node's name ("n1")
	ns      string // network namespace ("" = host)
	logFile string
	args    []string

	mu       sync.Mutex
	cur      *child    // the current (or last) run
	want     bool      // it should be running
	restarts int       // restarts after unrequested exits
	lastExit string    // how the last unrequested exit went
	next     time.Time // restart time while backing off
	wake     chan struct{}
}

// ProcStatus is the state of a supervised process, as `pl dev status`
// shows it.
type ProcStatus struct {
	Name     string
	State    string // running, stopped, restarting
	PID      int
	Since    time.Time // start of the current run
	Restarts int
	LastExit string
}

func (s *proc) current() *child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *proc) wanted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want
}

func (s *proc) status() ProcStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ProcStatus{Name: s.name, Restarts: s.restarts, LastExit: s.lastExit}
	running := false
	if s.cur != nil {
		select {
		case <-s.cur.done:
		default:
			running = true
			st.PID, st.Since = s.cur.cmd.Process.Pid, s.cur.started
		}
	}
	switch {
	case running:
		st.State = "running"
	case s.want:
		st.State = "restarting"
		if d := time.Until(s.next); d > 0 {
			st.State += fmt.Sprintf(" in %v", d.Round(100*time.Millisecond))
		}
	default:
		st.State = "stopped"
	}
	return st
}

// newProc registers a supervised process (not yet started).
func (p *Planet) newProc(name, ns, logFile string, args ...string) *proc {
	s := &proc{name: name, ns: ns, logFile: logFile, args: args, want: true, wake: make(chan struct{}, 1)}
	p.mu.Lock()
	p.procs = append(p.procs, s)
	p.mu.Unlock()
	return s
}

// spawn starts one run of s (in its netns unless ""), logging to its log
// file, and records it so a killed run can be cleaned.
func (p *Planet) spawn(s *proc) (*child, error) {
	lf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.Binary, s.args...) // hostdeps: self
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = p.childEnv()
	// Children die with us even after SIGKILL; `pl dev down` removes the rest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if s.ns == "" {
		err = cmd.Start()
	} else {
		err = wan.StartIn(s.ns, cmd)
	}
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	c := &child{name: s.name, cmd: cmd, started: time.Now(), done: make(chan struct{}), log: lf}
	go func() {
		c.err = cmd.Wait()
		lf.Close()
		close(c.done)
	}()
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	info := ProcInfo{Name: s.name, PID: cmd.Process.Pid, Start: procStart(cmd.Process.Pid)}
	replaced := false
	for i := range p.rec.Procs {
		if p.rec.Procs[i].Name == s.name {
			p.rec.Procs[i], replaced = info, true
		}
	}
	if !replaced {
		p.rec.Procs = append(p.rec.Procs, info)
	}
	return c, p.rec.Save()
}

// supervise restarts s whenever it exits without being asked to, until the
// planet closes. s must have been spawned.
func (p *Planet) supervise(s *proc) {
	backoff := MinRestartBackoff
	for {
		c := s.current()
		select {
		case <-c.done:
		case <-p.quit:
			return
		}
		select { // a start request for a running process is moot
		case <-s.wake:
		default:
		}
		if s.wanted() {
			if time.Since(c.started) >= StableAfter {
				backoff = MinRestartBackoff
			}
			how := exitString(c.err)
			s.mu.Lock()
			s.restarts++
			s.lastExit = fmt.Sprintf("%s at %s", how, time.Now().Format("15:04:05"))
			s.next = time.Now().Add(backoff)
			n := s.restarts
			s.mu.Unlock()
			p.Log.Warn(fmt.Sprintf("pl dev: %s %s; restarting it in %v (restart %d; log %s)", s.title(), how, backoff, n, s.logFile))
			if !p.pause(s, backoff) {
				return
			}
			backoff = min(2*backoff, MaxRestartBackoff)
		}
		for !s.wanted() { // stopped on purpose: until `pl dev start`
			select {
			case <-s.wake:
			case <-p.quit:
				return
			}
			backoff = MinRestartBackoff
		}
		for {
			if _, err := p.spawn(s); err == nil {
				break
			} else {
				p.Log.Error(fmt.Sprintf("pl dev: cannot restart %s: %v; retrying in %v", s.title(), err, backoff))
			}
			if !p.pause(s, backoff) {
				return
			}
			backoff = min(2*backoff, MaxRestartBackoff)
		}
	}
}

// pause waits d, or less when s is started or stopped by hand; it returns
// false when the planet closes.
func (p *Planet) pause(s *proc, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.wake:
	case <-p.quit:
		return false
	}
	return true
}

func (s *proc) title() string {
	if s.name == "plc" {
		return "PLC (pl plc)"
	}
	return "node " + s.name + " (pl node)"
}

// exitString says how a process ended.
func exitString(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by " + unix.SignalName(ws.Signal())
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	if err == nil {
		return "exited with status 0"
	}
	return "exited: " + err.Error()
}

// lookup finds a supervised process by name ("plc", "n1", ...).
func (p *Planet) lookup(name string) (*proc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var names []string
	for _, s := range p.procs {
		if s.name == name {
			return s, nil
		}
		names = append(names, s.name)
	}
	return nil, fmt.Errorf("no process %q in this planet; there are: %s", name, strings.Join(names, ", "))
}

// StopProc stops a supervised process on purpose (it stays stopped).
func (p *Planet) StopProc(name string) (ProcStatus, error) {
	s, err := p.lookup(name)
	if err != nil {
		return ProcStatus{}, err
	}
	s.mu.Lock()
	s.want = false
	c := s.cur
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if c != nil {
		c.stop(10 * time.Second)
	}
	p.Log.Warn(fmt.Sprintf("pl dev: %s stopped on request; `pl dev start %s` starts it", s.title(), s.name))
	return s.status(), nil
}

// StartProc starts a process stopped with StopProc (or cuts short the
// backoff of one being restarted).
func (p *Planet) StartProc(name string) (ProcStatus, error) {
	s, err := p.lookup(name)
	if err != nil {
		return ProcStatus{}, err
	}
	s.mu.Lock()
	s.want = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	// Wait for the new run (the supervisor spawns it).
	for i := 0; i < 100; i++ {
		if st := s.status(); st.State == "running" {
			p.Log.Warn(fmt.Sprintf("pl dev: %s started on request", s.title()))
			return st, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s.status(), nil
}

// Status returns the state of every supervised process, PLC first.
func (p *Planet) Status() []ProcStatus {
	p.mu.Lock()
	procs := append([]*proc(nil), p.procs...)
	p.mu.Unlock()
	var out []ProcStatus
	for _, s := range procs {
		out = append(out, s.status())
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name == "plc" && out[j].Name != "plc" })
	return out
}
