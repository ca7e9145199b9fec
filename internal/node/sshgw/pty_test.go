package sshgw

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tmuxPane drives an interactive program in a private tmux server.
type tmuxPane struct {
	t      testing.TB
	socket string
}

func newTmux(t testing.TB, dir string, cols, rows int, command string) *tmuxPane {
	t.Helper()
	requireTool(t, "tmux")
	conf := filepath.Join(dir, "tmux.conf")
	os.WriteFile(conf, []byte("set -g status off\nset -g default-terminal screen\nset -g remain-on-exit off\n"), 0o644)
	p := &tmuxPane{t: t, socket: fmt.Sprintf("pltest-sshgw-%d-%d", os.Getpid(), time.Now().UnixNano())}
	if out, err := p.cmd("-f", conf, "new-session", "-d", "-s", "t", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), command).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	t.Cleanup(func() { p.cmd("kill-server").Run() })
	return p
}

func (p *tmuxPane) cmd(args ...string) *exec.Cmd {
	c := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...)
	c.Env = append(cleanEnv(), "TMUX=")
	return c
}

func (p *tmuxPane) send(keys ...string) {
	p.t.Helper()
	if out, err := p.cmd(append([]string{"send-keys", "-t", "t"}, keys...)...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys: %v %s", err, out)
	}
}

func (p *tmuxPane) capture() string {
	out, _ := p.cmd("capture-pane", "-p", "-t", "t").Output()
	return string(out)
}

// waitFor polls the pane until it contains want.
func (p *tmuxPane) waitFor(want string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.capture(), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("pane never showed %q; it shows:\n%s", want, p.capture())
}

// askUntil types line until the pane shows want. For state that arrives
// asynchronously, such as a resize (tmux -> ssh window-change -> gateway pty
// -> the remote terminal), as with OpenSSH.
func (p *tmuxPane) askUntil(line, want string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		p.send(line, "Enter")
		time.Sleep(300 * time.Millisecond)
		if strings.Contains(p.capture(), want) {
			return
		}
	}
	p.t.Fatalf("pane never showed %q after %q; it shows:\n%s", want, line, p.capture())
}

func TestInteractivePTY(t *testing.T) {
	requireTool(t, "ssh", "tmux")
	e := newEnv(t, nil)
	rc := filepath.Join(e.dir, "rc")
	// The local terminal's interrupt character is ^X: the gateway must
	// carry the client's terminal modes to the remote pty.
	sshCmd := "ssh " + strings.Join(append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port)), " ") + " " + testSlice + "@127.0.0.1"
	p := newTmux(t, e.dir, 100, 30, fmt.Sprintf("stty intr ^X; %s; echo rc=$? > %s", sshCmd, rc))
	p.waitFor("fake$")

	p.send("stty size; echo TERM=$TERM; tty >/dev/null && echo has-tty", "Enter")
	p.waitFor("30 100")
	p.waitFor("TERM=screen")
	p.waitFor("has-tty")

	p.send("stty -a | grep -o 'intr = ^X'", "Enter")
	p.waitFor("intr = ^X")

	// Window change.
	if out, err := p.cmd("resize-window", "-t", "t", "-x", "120", "-y", "40").CombinedOutput(); err != nil {
		t.Fatalf("resize-window: %v %s", err, out)
	}
	p.askUntil("clear; stty size", "40 120")

	// The interrupt key reaches the remote foreground process as SIGINT.
	p.send("clear; sleep 30", "Enter")
	time.Sleep(300 * time.Millisecond)
	p.send("C-x")
	p.send("echo after-$?", "Enter")
	p.waitFor("after-130")

	p.send("exit 7", "Enter")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(rc)
		if strings.TrimSpace(string(b)) == "rc=7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh exit status file = %q, want rc=7", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
