package sshgw

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sliverProcs lists the command lines of the sliver's processes (busybox
// ps, run through a fresh login).
func sliverProcs(t *testing.T, e *env) string {
	t.Helper()
	out, errOut, code := e.ssh(realSliceName, "ps -o pid,args")
	if code != 0 {
		t.Fatalf("ps in the sliver: %d %s", code, errOut)
	}
	return out
}

// waitProcs polls the sliver's processes until check passes.
func waitProcs(t *testing.T, e *env, what string, check func(ps string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ps := sliverProcs(t, e)
		if check(ps) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: processes in the sliver:\n%s", what, ps)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRealSliverHangup: the end of an ssh session hangs up its processes
// as OpenSSH does (SIGHUP to the session's process group); those that
// ignore SIGHUP (nohup, coreutils' in the default image) or left the group
// (setsid) keep running. Real OpenSSH client, real runc sliver.
func TestRealSliverHangup(t *testing.T) {
	requireTool(t, "tmux")
	e, _, _ := newRealEnv(t)
	e.ssh(realSliceName, "pkill sleep; true")
	defer e.ssh(realSliceName, "pkill sleep; true")
	has := func(ps string, cmds ...string) bool {
		for _, c := range cmds {
			if !strings.Contains(ps, c) {
				return false
			}
		}
		return true
	}
	hasNone := func(ps string, cmds ...string) bool {
		for _, c := range cmds {
			if strings.Contains(ps, c) {
				return false
			}
		}
		return true
	}

	// An exec session that returns at once: its nohup child stays.
	out, errOut, code := e.ssh(realSliceName, "nohup sleep 1001 >/dev/null 2>&1 & echo started")
	if code != 0 || out != "started\n" {
		t.Fatalf("exec: %d %q %q", code, out, errOut)
	}

	// An exec session whose client goes away while it runs.
	args := append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port), realSliceName+"@127.0.0.1",
		"nohup sleep 1002 >/dev/null 2>&1 & setsid sleep 1003 >/dev/null 2>&1 & sleep 1004 & sleep 1005")
	client := exec.Command("ssh", args...)
	client.Env = cleanEnv()
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	// Started means nohup has exec'd sleep (before that, "nohup sleep 1002"
	// does not yet ignore the hangup).
	waitProcs(t, e, "exec session's processes started", func(ps string) bool {
		return has(ps, "sleep 1002", "sleep 1003", "sleep 1004", "sleep 1005") && hasNone(ps, "nohup ")
	})
	client.Process.Kill()
	client.Wait()
	waitProcs(t, e, "exec session hung up", func(ps string) bool { return hasNone(ps, "sleep 1004", "sleep 1005") })

	// An interactive session whose terminal closes, with a foreground job.
	sshCmd := "ssh " + strings.Join(append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port)), " ") + " " + realSliceName + "@127.0.0.1"
	p := newTmux(t, e.dir, 100, 30, sshCmd)
	p.waitFor(":~$")
	p.send("nohup sleep 1006 >/dev/null 2>&1 &", "Enter")
	p.send("setsid sleep 1007 >/dev/null 2>&1 &", "Enter")
	p.send("echo shell-$$; sleep 1008", "Enter")
	p.waitFor("shell-")
	waitProcs(t, e, "interactive session's processes started", func(ps string) bool {
		return has(ps, "sleep 1006", "sleep 1007", "sleep 1008") && hasNone(ps, "nohup ")
	})
	p.cmd("kill-server").Run() // the local terminal closes: ssh exits and drops the connection
	waitProcs(t, e, "interactive session hung up", func(ps string) bool { return hasNone(ps, "sleep 1008", "-sh") })

	time.Sleep(500 * time.Millisecond)
	ps := sliverProcs(t, e)
	for _, want := range []string{"sleep 1001", "sleep 1002", "sleep 1003", "sleep 1006", "sleep 1007"} {
		if !strings.Contains(ps, want) {
			t.Errorf("%s did not survive its session; processes:\n%s", want, ps)
		}
	}
}
