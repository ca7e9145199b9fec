package sshgw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sliver"
	"golang.org/x/crypto/ssh"
)

// A session channel's lifecycle:
//
//	         pty-req, env, window-change
//	          +------+
//	          v      |
//	[open] --+-------+-- shell | exec | subsystem --> [running] --process exits--> [exited]
//	   |                                                  |                             |
//	   | peer closes                                      | peer closes: SIGHUP to its  | EOF, exit-status
//	   v                                                  | group, SIGKILL after grace  | or exit-signal,
//	[closed] <--------------------------------------------+-----------------------------+ close
//
// Only one process per session; requests after it started that would
// start another are refused, as are unknown ones.

// hangupGrace is how long a process may take to exit after the client
// went away and it was sent SIGHUP, before it is killed.
const hangupGrace = 2 * time.Second

// ptyDrain bounds the wait for the last terminal output after the process
// exited, when a background process keeps the terminal open.
const ptyDrain = time.Second

type session struct {
	c   *conn
	ch  ssh.Channel
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	env  map[string]string
	term string
	ptm  *os.File // pty master, nil without pty-req
	tty  *os.File // pty slave until the process started

	outR, errR *os.File // stdout and stderr of a process without pty

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process exited and output is flushed
	waitErr error
	failed  string // why the process could not start, for the user
}

func newSession(ctx context.Context, c *conn, ch ssh.Channel) *session {
	ctx, cancel := context.WithCancel(ctx)
	return &session{c: c, ch: ch, log: c.log, ctx: ctx, cancel: cancel, env: map[string]string{}}
}

// run serves the session's requests until it ends.
func (s *session) run(reqs <-chan *ssh.Request) {
	defer s.cleanup()
	var done <-chan struct{} // nil until a process started
	for {
		select {
		case req, ok := <-reqs:
			if !ok {
				s.hangup()
				return
			}
			s.handle(req)
			if s.failed != "" {
				eol := "\n"
				if s.ptm != nil {
					eol = "\r\n"
				}
				fmt.Fprintf(s.ch.Stderr(), "pl: %s%s", s.failed, eol)
				s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: 1}))
				s.ch.CloseWrite()
				s.ch.Close()
				go ssh.DiscardRequests(reqs)
				return
			}
			if s.done != nil {
				done = s.done
			}
		case <-done:
			s.finish()
			// Drain until the peer acknowledges the close.
			go ssh.DiscardRequests(reqs)
			return
		}
	}
}

func (s *session) handle(req *ssh.Request) {
	ok, err := s.dispatch(req)
	if err != nil {
		s.log.Info("ssh request refused", "request", req.Type, "err", err)
	}
	if req.WantReply {
		req.Reply(ok, nil)
	}
}

func (s *session) dispatch(req *ssh.Request) (bool, error) {
	switch req.Type {
	case "pty-req":
		if s.cmd != nil || s.ptm != nil {
			return false, errors.New("pty-req: too late or repeated")
		}
		r, err := parsePtyRequest(req.Payload)
		if err != nil {
			return false, err
		}
		modes, err := parseModes(r.Modelist)
		if err != nil {
			return false, err
		}
		return true, s.openPTY(r, modes)
	case "window-change":
		r, err := parseWindowChange(req.Payload)
		if err != nil {
			return false, err
		}
		if s.ptm == nil {
			return false, errors.New("window-change: no pty")
		}
		return true, pty.Setsize(s.ptm, &pty.Winsize{Rows: uint16(r.Rows), Cols: uint16(r.Columns), X: uint16(r.Width), Y: uint16(r.Height)})
	case "env":
		r, err := parseEnv(req.Payload)
		if err != nil {
			return false, err
		}
		if !envAllowed(r.Name) {
			return false, nil // silently ignored, as OpenSSH does
		}
		s.env[r.Name] = r.Value
		return true, nil
	case "shell":
		return s.start(req.Type, nil)
	case "exec":
		r, err := parseExec(req.Payload)
		if err != nil {
			return false, err
		}
		return s.start(req.Type, []string{"/bin/sh", "-c", r.Command})
	case "subsystem":
		r, err := parseSubsystem(req.Payload)
		if err != nil {
			return false, err
		}
		if r.Name != "sftp" {
			return false, fmt.Errorf("subsystem %q not supported", r.Name)
		}
		return s.start("subsystem sftp", s.c.g.cfg.SFTPServer)
	case "signal":
		sig, err := parseSignal(req.Payload)
		if err != nil {
			return false, err
		}
		if s.cmd == nil || s.cmd.Process == nil {
			return false, errors.New("signal: no process")
		}
		return true, s.cmd.Process.Signal(sig)
	case "x11-req", "auth-agent-req@openssh.com":
		return false, fmt.Errorf("%s: not supported", req.Type)
	default:
		return false, fmt.Errorf("%.64q: unknown request", req.Type)
	}
}

func (s *session) openPTY(r ptyRequest, modes []termMode) error {
	ptm, tty, err := pty.Open()
	if err != nil {
		return fmt.Errorf("pty-req: %w", err)
	}
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: uint16(r.Rows), Cols: uint16(r.Columns), X: uint16(r.Width), Y: uint16(r.Height)}); err != nil {
		ptm.Close()
		tty.Close()
		return fmt.Errorf("pty-req: %w", err)
	}
	if err := applyModes(tty, modes); err != nil {
		s.log.Debug("ssh: terminal modes not applied", "err", err)
	}
	s.ptm, s.tty, s.term = ptm, tty, r.Term
	return nil
}

// environ is the environment the client asked for, plus what OpenSSH's
// sshd sets.
func (s *session) environ() []string {
	env := map[string]string{}
	for k, v := range s.env {
		env[k] = v
	}
	if s.term != "" {
		env["TERM"] = s.term
	}
	local, _ := s.c.local.(*net.TCPAddr)
	remote, _ := s.c.remote.(*net.TCPAddr)
	if local != nil && remote != nil {
		env["SSH_CLIENT"] = fmt.Sprintf("%s %d %d", remote.IP, remote.Port, local.Port)
		env["SSH_CONNECTION"] = fmt.Sprintf("%s %d %s %d", remote.IP, remote.Port, local.IP, local.Port)
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// start runs the session's process inside the sliver.
func (s *session) start(what string, args []string) (bool, error) {
	if s.cmd != nil {
		return false, fmt.Errorf("%s: a process is already running", what)
	}
	g := s.c.g
	// The sliver may have been stopped since the channel opened.
	acc, ok := g.cfg.Slices.Lookup(s.c.slice)
	if !ok || acc.refusal(g.cfg.Now()) != "" {
		fmt.Fprintf(s.ch.Stderr(), "pl: the sliver of %s is not available\r\n", s.c.slice)
		return false, fmt.Errorf("%s: sliver not available", what)
	}
	p := sliver.Process{Args: args, Env: s.environ(), TTY: s.ptm != nil}
	cmd, err := g.cfg.Runtime.Command(s.ctx, s.c.slice, p)
	if err != nil {
		// Unavailable says why in words meant for the user (the sliver
		// is frozen, or at its process limit); anything else stays in
		// the node's log.
		msg := "cannot start a process in the sliver"
		if core.ErrorCode(err) == core.Unavailable {
			msg = core.PublicMessage(err)
		}
		// Accepted, then ended with the reason and status 1, as sshd
		// does when it cannot run the command: OpenSSH's client drops
		// the stderr of a refused request.
		s.log.Info("ssh session could not start", "what", what, "err", err)
		s.failed = msg
		return true, nil
	}
	var stdin io.WriteCloser
	var outW, errW *os.File
	if s.ptm != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = s.tty, s.tty, s.tty
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		// The process leads a new session whose controlling terminal is
		// the pty (child fd 0). runc exec keeps it for the process in the
		// sliver. Setpgid would fail for a session leader.
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
		cmd.SysProcAttr.Setpgid = false
	} else {
		// Own pipes rather than exec's copying goroutines, so that a
		// hangup can stop the copies even if something in the sliver
		// still holds the write ends.
		if stdin, err = cmd.StdinPipe(); err != nil {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		if s.outR, outW, err = os.Pipe(); err != nil {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		if s.errR, errW, err = os.Pipe(); err != nil {
			outW.Close()
			return false, fmt.Errorf("%s: %w", what, err)
		}
		cmd.Stdout, cmd.Stderr = outW, errW
		// A group of its own: a hangup signals it and the process it
		// starts, never the node manager's group.
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Setpgid = true
	}
	err = cmd.Start()
	if outW != nil {
		outW.Close()
		errW.Close()
	}
	if err != nil {
		fmt.Fprintf(s.ch.Stderr(), "pl: cannot start a process in the sliver\r\n")
		return false, fmt.Errorf("%s: %w", what, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	s.log.Info("ssh session started", "what", what, "pty", s.ptm != nil, "pid", cmd.Process.Pid)
	if s.ptm != nil {
		s.tty.Close()
		s.tty = nil
		go s.runPTY()
		return true, nil
	}
	go func() {
		io.Copy(stdin, s.ch)
		stdin.Close()
	}()
	var copies sync.WaitGroup
	copies.Add(2)
	go func() {
		defer copies.Done()
		io.Copy(s.ch, s.outR)
	}()
	go func() {
		defer copies.Done()
		io.Copy(s.ch.Stderr(), s.errR)
	}()
	go func() {
		s.waitErr = cmd.Wait()
		// As OpenSSH, wait for the output to end (EOF), even if a
		// background process keeps it open after the command exited.
		copies.Wait()
		close(s.done)
	}()
	return true, nil
}

func (s *session) runPTY() {
	go io.Copy(s.ptm, s.ch) // ends when the channel or the master closes
	out := make(chan struct{})
	go func() {
		io.Copy(s.ch, s.ptm) // ends with EIO when the last slave fd closes
		close(out)
	}()
	s.waitErr = s.cmd.Wait()
	select {
	case <-out:
	case <-time.After(ptyDrain):
		s.ptm.SetReadDeadline(time.Now())
		<-out
	}
	close(s.done)
}

// finish reports the process's end to the client and closes the channel.
func (s *session) finish() {
	st := s.cmd.ProcessState
	var ws syscall.WaitStatus
	if st != nil {
		ws, _ = st.Sys().(syscall.WaitStatus)
	}
	switch {
	case st == nil:
		s.log.Info("ssh session ended abnormally", "err", s.waitErr)
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: 255}))
	case ws.Signaled() && signalName(ws.Signal()) != "":
		s.ch.SendRequest("exit-signal", false, ssh.Marshal(exitSignal{
			Signal: signalName(ws.Signal()), CoreDumped: ws.CoreDump()}))
		s.log.Info("ssh session ended", "signal", ws.Signal().String())
	case ws.Signaled():
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: 128 + uint32(ws.Signal())}))
		s.log.Info("ssh session ended", "signal", ws.Signal().String())
	default:
		s.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{Status: uint32(st.ExitCode())}))
		s.log.Info("ssh session ended", "status", st.ExitCode())
	}
	s.ch.CloseWrite()
	s.ch.Close()
}

// hangup ends a session the client closed, as OpenSSH does: the process
// group of the session's process gets SIGHUP (what a terminal's hangup
// sends), so its children in that group end too unless they ignore it
// (nohup) or left it (setsid, job-control jobs). The process is killed if
// it does not exit within hangupGrace; the processes that stayed keep
// running in the sliver.
func (s *session) hangup() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if !hangupGroup(s.cmd.Process.Pid) {
		s.cmd.Process.Signal(syscall.SIGHUP) // runc forwards it
	}
	if s.ptm != nil {
		s.ptm.Close()
	}
	select {
	case <-s.done:
	case <-time.After(hangupGrace):
		s.cmd.Process.Kill()
		s.cancel()
		// Whatever still holds the output pipes, stop copying.
		if s.outR != nil {
			s.outR.Close()
			s.errR.Close()
		}
		<-s.done
	}
}

func (s *session) cleanup() {
	s.cancel()
	if s.tty != nil {
		s.tty.Close()
	}
	if s.ptm != nil {
		s.ptm.Close()
	}
	if s.outR != nil {
		s.outR.Close()
		s.errR.Close()
	}
	s.ch.Close()
}
