package sshgw

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"golang.org/x/crypto/ssh"
)

func TestExecExitStatusAndStderr(t *testing.T) {
	requireTool(t, "ssh")
	e := newEnv(t, nil)
	out, errOut, code := e.ssh(testSlice, "echo out; echo err >&2; exit 3")
	if out != "out\n" {
		t.Errorf("stdout = %q, want %q", out, "out\n")
	}
	if errOut != "err\n" {
		t.Errorf("stderr = %q, want %q", errOut, "err\n")
	}
	if code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	// The process ran in the slice's home (the fake sliver), not the
	// gateway's directory.
	out, _, code = e.ssh(testSlice, "pwd")
	if code != 0 || strings.TrimSpace(out) != e.rt.home(testSlice) {
		t.Errorf("pwd = %q (code %d), want %q", out, code, e.rt.home(testSlice))
	}
}

// A sliver that cannot take a process says why in one line (issue 9.14);
// other runtime errors are not shown to the user.
func TestRuntimeRefusalOneLine(t *testing.T) {
	requireTool(t, "ssh")
	e := newEnv(t, nil)
	for _, c := range []struct {
		err  error
		want string
	}{
		{core.Errorf(core.Unavailable, "the sliver is at its process limit of 20"), "pl: the sliver is at its process limit of 20\n"},
		{errors.New("runc: exec failed: secret detail"), "pl: cannot start a process in the sliver\n"},
	} {
		e.rt.mu.Lock()
		e.rt.fail = c.err
		e.rt.mu.Unlock()
		_, errOut, code := e.ssh(testSlice, "true")
		if code != 1 || errOut != c.want {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", c.err, code, errOut, c.want)
		}
	}
}

func TestStdinStreamed(t *testing.T) {
	requireTool(t, "ssh")
	e := newEnv(t, nil)
	data := make([]byte, 3<<20)
	rand.Read(data)
	out, errOut, code := e.sshIn(bytes.NewReader(data), testSlice, "sha256sum")
	want := fmt.Sprintf("%x", sha256.Sum256(data))
	if code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("sha256sum over ssh = %q %q (code %d), want %s", out, errOut, code, want)
	}
	// Streaming: each line comes back before stdin ends.
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(pw, "line %d\n", i)
		}
		pw.Close()
	}()
	out, _, code = e.sshIn(pr, testSlice, "tr a-z A-Z")
	if code != 0 || out != "LINE 0\nLINE 1\nLINE 2\n" {
		t.Errorf("tr = %q (code %d)", out, code)
	}
}

func TestEnvAllowList(t *testing.T) {
	requireTool(t, "ssh")
	e := newEnv(t, nil)
	out, _, code := e.ssh(testSlice, "-o", "SetEnv=LANG=C.UTF-8 LC_TIME=C FOO=bar", `echo "$LANG|$LC_TIME|$FOO|${SSH_CONNECTION%% *}"`)
	if code != 0 || out != "C.UTF-8|C||127.0.0.1\n" {
		t.Errorf("env = %q (code %d), want LANG and LC_TIME set, FOO ignored", out, code)
	}
}

func TestAuthRefusals(t *testing.T) {
	requireTool(t, "ssh")
	e := newEnv(t, nil)
	other := newUserKey(t, e.dir, "id_other")
	e.slices.set("pl_off", SliceAccess{Keys: []string{e.key.authorized}, Enabled: false, Running: true})
	e.slices.set("pl_expired", SliceAccess{Keys: []string{e.key.authorized}, Enabled: true, Running: true, Expires: time.Now().Add(-time.Hour)})
	e.slices.set("pl_absent", SliceAccess{Keys: []string{e.key.authorized}, Enabled: true, Running: false})

	cases := []struct {
		user, key, banner, logReason string
	}{
		{"nobody_here", e.key.path, `no slice "nobody_here" on this node`, "unknown slice"},
		{testSlice, other.path, "", "is not a key of the slice's members"},
		{"pl_off", e.key.path, "slice pl_off is disabled on this node", "sliver is disabled"},
		{"pl_expired", e.key.path, "slice pl_expired has expired", "sliver has expired"},
		{"pl_absent", e.key.path, "slice pl_absent is not running", "sliver is not running"},
	}
	for _, c := range cases {
		t.Run(c.user, func(t *testing.T) {
			args := append([]string{"-o", "LogLevel=INFO"}, e.sshOpts(c.key)...)
			args = append(args, "-p", strconv.Itoa(e.port), c.user+"@127.0.0.1", "true")
			_, errOut, code := run(t, nil, "ssh", args...)
			if code != 255 || !strings.Contains(errOut, "Permission denied (publickey)") {
				t.Errorf("ssh = code %d, stderr %q; want 255 and Permission denied (publickey)", code, errOut)
			}
			if c.banner != "" && !strings.Contains(errOut, c.banner) {
				t.Errorf("stderr %q lacks banner %q", errOut, c.banner)
			}
			if !strings.Contains(e.logs.String(), c.logReason) {
				t.Errorf("node log lacks reason %q", c.logReason)
			}
		})
	}
}

func TestLiveKeyChanges(t *testing.T) {
	requireTool(t, "ssh")
	e := newEnv(t, nil)
	second := newUserKey(t, e.dir, "id_second")
	sshWith := func(key string) int {
		args := append(e.sshOpts(key), "-p", strconv.Itoa(e.port), testSlice+"@127.0.0.1", "true")
		_, _, code := run(t, nil, "ssh", args...)
		return code
	}
	if code := sshWith(second.path); code != 255 {
		t.Fatalf("key not yet at PLC: code %d, want 255", code)
	}
	e.slices.update(testSlice, func(a *SliceAccess) { a.Keys = append(a.Keys, "# comment", "garbage", second.authorized) })
	if code := sshWith(second.path); code != 0 {
		t.Fatalf("key added: code %d, want 0", code)
	}
	e.slices.update(testSlice, func(a *SliceAccess) { a.Keys = []string{second.authorized} })
	if code := sshWith(e.key.path); code != 255 {
		t.Fatalf("key removed: code %d, want 255", code)
	}
	if code := sshWith(second.path); code != 0 {
		t.Fatalf("remaining key: code %d, want 0", code)
	}
}

func TestRefusedRequestsDoNotAffectSession(t *testing.T) {
	e := newEnv(t, nil)
	c, err := e.goClient(testSlice)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Remote forwarding (ssh -R) is refused.
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("tcpip-forward accepted, want refused")
	}
	// Unknown channel types are refused with UnknownChannelType.
	for _, typ := range []string{"x11", "auth-agent@openssh.com", "forwarded-tcpip", "bogus"} {
		_, _, err := c.OpenChannel(typ, nil)
		var oc *ssh.OpenChannelError
		if !errors.As(err, &oc) || oc.Reason != ssh.UnknownChannelType {
			t.Errorf("channel %q: err %v, want UnknownChannelType", typ, err)
		}
	}
	// A malformed direct-tcpip is refused.
	if _, _, err := c.OpenChannel("direct-tcpip", []byte{1, 2, 3}); err == nil {
		t.Error("malformed direct-tcpip accepted")
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, r := range []struct {
		typ     string
		payload []byte
	}{
		{"x11-req", ssh.Marshal(struct {
			Single bool
			Proto  string
			Cookie string
			Screen uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0})},
		{"auth-agent-req@openssh.com", nil},
		{"pty-req", []byte("short")},
		{"env", ssh.Marshal(envRequest{"BAD=NAME", "x"})},
		{"env", ssh.Marshal(envRequest{"LD_PRELOAD", "/tmp/x.so"})},
		{"subsystem", ssh.Marshal(subsystemRequest{"netconf"})},
		{"signal", ssh.Marshal(signalRequest{"TERM"})},             // no process yet
		{"window-change", ssh.Marshal(windowChange{80, 24, 0, 0})}, // no pty
		{"exec", []byte{0, 0, 0, 9, 'x'}},
		{"something@example.com", nil},
	} {
		ok, err := s.SendRequest(r.typ, true, r.payload)
		if err != nil || ok {
			t.Errorf("request %s: ok=%v err=%v, want refused", r.typ, ok, err)
		}
	}
	out, err := s.Output("echo still fine; echo ${LD_PRELOAD:-unset}")
	if err != nil || string(out) != "still fine\nunset\n" {
		t.Errorf("session after refusals: %q %v", out, err)
	}
}

func TestSignalAndExitSignal(t *testing.T) {
	e := newEnv(t, nil)
	c, err := e.goClient(testSlice)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, _ := s.StdoutPipe()
	if err := s.Start("echo ready; exec sleep 60"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q %v", buf, err)
	}
	time.Sleep(100 * time.Millisecond) // let exec replace the shell
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Fatalf("Wait = %v, want exit-signal TERM", err)
	}
}

func TestSessionLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSessionsPerSlice = 2 })
	c, err := e.goClient(testSlice)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var open []*ssh.Session
	for i := 0; i < 2; i++ {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		open = append(open, s)
	}
	_, err = c.NewSession()
	var oc *ssh.OpenChannelError
	if !errors.As(err, &oc) || oc.Reason != ssh.ResourceShortage {
		t.Fatalf("third session: %v, want ResourceShortage", err)
	}
	// The limit is per slice, across connections.
	c2, err := e.goClient(testSlice)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.NewSession(); err == nil {
		t.Fatal("session on a second connection exceeded the slice limit")
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := c2.NewSession()
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not released after close: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUnauthenticatedLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxUnauthPerSource = 2
		c.AuthTimeout = 500 * time.Millisecond
	})
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", e.gw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	readVersion := func(nc net.Conn) error {
		nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 8)
		_, err := io.ReadFull(nc, b)
		return err
	}
	a, b := dial(), dial()
	for _, nc := range []net.Conn{a, b} {
		if err := readVersion(nc); err != nil {
			t.Fatalf("admitted connection: %v", err)
		}
	}
	if err := readVersion(dial()); err == nil {
		t.Fatal("third unauthenticated connection from one source was served")
	}
	// Idle unauthenticated connections time out...
	start := time.Now()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, a)
	if err != nil || time.Since(start) > 4*time.Second {
		t.Fatalf("idle connection not closed by the auth timeout: %v after %v", err, time.Since(start))
	}
	// ...freeing a slot for a real client.
	time.Sleep(50 * time.Millisecond)
	b.Close()
	time.Sleep(50 * time.Millisecond)
	c, err := e.goClient(testSlice)
	if err != nil {
		t.Fatalf("client after slots freed: %v", err)
	}
	c.Close()
}

func TestSFTPScpRsync(t *testing.T) {
	requireTool(t, "ssh", "scp", "sftp", "rsync")
	if _, err := os.Stat("/usr/lib/openssh/sftp-server"); err != nil {
		t.Skip("needs /usr/lib/openssh/sftp-server for the fake sliver")
	}
	e := newEnv(t, nil)
	opts := append(e.sshOpts(e.key.path), "-P", strconv.Itoa(e.port))
	src := filepath.Join(e.dir, "big.bin")
	data := make([]byte, 8<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	home := e.rt.home(testSlice)
	os.MkdirAll(home, 0o755)

	// scp (SFTP protocol, the default of modern scp) in and out.
	if _, errOut, code := run(t, nil, "scp", append(opts, src, testSlice+"@127.0.0.1:copy.bin")...); code != 0 {
		t.Fatalf("scp push: %d %s", code, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(home, "copy.bin")); !bytes.Equal(got, data) {
		t.Fatal("scp push: content differs")
	}
	back := filepath.Join(e.dir, "back.bin")
	if _, errOut, code := run(t, nil, "scp", append(opts, testSlice+"@127.0.0.1:copy.bin", back)...); code != 0 {
		t.Fatalf("scp pull: %d %s", code, errOut)
	}
	if got, _ := os.ReadFile(back); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("scp pull: checksum differs")
	}

	// sftp batch mode.
	batch := filepath.Join(e.dir, "batch")
	os.WriteFile(batch, []byte("mkdir d\nput "+src+" d/x.bin\nls d\n"), 0o644)
	out, errOut, code := run(t, nil, "sftp", append(opts, "-b", batch, testSlice+"@127.0.0.1")...)
	if code != 0 || !strings.Contains(out, "x.bin") {
		t.Fatalf("sftp: %d %q %q", code, out, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(home, "d", "x.bin")); !bytes.Equal(got, data) {
		t.Fatal("sftp put: content differs")
	}

	// rsync of a tree over ssh.
	tree := filepath.Join(e.dir, "tree")
	for i := 0; i < 20; i++ {
		p := filepath.Join(tree, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 1000*i), 0o644)
	}
	rsh := "ssh " + strings.Join(append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port)), " ")
	if _, errOut, code := run(t, nil, "rsync", "-a", "-e", rsh, tree+"/", testSlice+"@127.0.0.1:tree/"); code != 0 {
		t.Fatalf("rsync: %d %s", code, errOut)
	}
	if out, errOut, code := run(t, nil, "diff", "-r", tree, filepath.Join(home, "tree")); code != 0 {
		t.Fatalf("rsync tree differs: %s %s", out, errOut)
	}
}

func TestHostKeyPersistent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "host_key")
	k1, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) {
		t.Fatal("host key changed between loads")
	}
	if k1.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("host key type %s, want ed25519", k1.PublicKey().Type())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %v %v, want 0600", st.Mode(), err)
	}
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateHostKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt key: err %v, want one naming %s", err, path)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	e := newEnv(t, nil)
	c, err := e.goClient(testSlice)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("sleep 60"); err != nil {
		t.Fatal(err)
	}
	if n := e.gw.Disconnect(testSlice); n != 1 {
		t.Errorf("Disconnect = %d, want 1", n)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("session ended with success after disconnect")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session still running after Disconnect")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		e := newEnv(t, nil)
		c, err := e.goClient(testSlice)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"echo x", "cat >/dev/null; exit 2"} {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(cmd, "cat") {
				// Only a command that reads stdin gets some: the client
				// reports EOF when its stdin copy finds the channel
				// already closed by a command that exited first.
				s.Stdin = strings.NewReader("input")
			}
			out, err := s.Output(cmd)
			if cmd == "echo x" && (err != nil || string(out) != "x\n") {
				t.Fatalf("echo x: %q %v", out, err)
			}
			s.Close()
		}
		s, _ := c.NewSession()
		s.RequestPty("xterm", 24, 80, nil)
		if err := s.Start("sleep 30"); err != nil { // left running: Close must end it
			t.Fatal(err)
		}
		c.OpenChannel("bogus", nil)
		e.gw.Close()
		c.Close()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
