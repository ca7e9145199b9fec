package sshgw

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/planetlab/pl/internal/node/sliver"
	"golang.org/x/crypto/ssh"
)

func TestParsers(t *testing.T) {
	ok := []struct {
		name string
		err  error
	}{
		{"pty", func() error {
			_, err := parsePtyRequest(ssh.Marshal(ptyRequest{"xterm", 80, 24, 0, 0, "\x35\x00\x00\x00\x01\x00"}))
			return err
		}()},
		{"env", func() error { _, err := parseEnv(ssh.Marshal(envRequest{"LANG", "C"})); return err }()},
		{"exec", func() error { _, err := parseExec(ssh.Marshal(execRequest{"uname -a"})); return err }()},
		{"direct", func() error {
			_, err := parseDirectTCPIP(ssh.Marshal(directTCPIP{"127.0.0.1", 80, "1.2.3.4", 5}))
			return err
		}()},
	}
	for _, c := range ok {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	bad := []struct {
		err  error
		want string
	}{
		{func() error {
			_, err := parsePtyRequest(ssh.Marshal(ptyRequest{"xterm\n", 80, 24, 0, 0, ""}))
			return err
		}(), "bad TERM"},
		{func() error {
			_, err := parsePtyRequest(ssh.Marshal(ptyRequest{"xterm", 1 << 20, 24, 0, 0, ""}))
			return err
		}(), "columns 1048576 out of range"},
		{func() error { _, err := parsePtyRequest([]byte{0, 0}); return err }(), "pty-req: malformed"},
		{func() error { _, err := parseEnv(ssh.Marshal(envRequest{"A=B", "x"})); return err }(), "bad variable name"},
		{func() error {
			_, err := parseEnv(ssh.Marshal(envRequest{"LANG", strings.Repeat("x", 2000)}))
			return err
		}(), "bad value for LANG"},
		{func() error { _, err := parseExec(ssh.Marshal(execRequest{"a\x00b"})); return err }(), "NUL"},
		{func() error { _, err := parseSignal(ssh.Marshal(signalRequest{"STOP"})); return err }(), "unknown signal"},
		{func() error { _, err := parseDirectTCPIP(ssh.Marshal(directTCPIP{"h", 70000, "", 0})); return err }(), "port 70000 out of range"},
		{func() error { _, err := parseModes("\x35\x00\x00"); return err }(), "truncated terminal mode 53"},
		{func() error { _, err := forwardTarget("example.com"); return err }(), "must be an IP address"},
	}
	for _, c := range bad {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("err %v, want %q", c.err, c.want)
		}
	}
	if sig, err := parseSignal(ssh.Marshal(signalRequest{"USR1"})); err != nil || sig != syscall.SIGUSR1 {
		t.Errorf("USR1 = %v %v", sig, err)
	}
	m, err := parseModes("\x35\x00\x00\x00\x01\x01\x00\x00\x00\x03\xa0junk")
	if err != nil || len(m) != 2 || m[0] != (termMode{53, 1}) || m[1] != (termMode{1, 3}) {
		t.Errorf("modes = %v %v", m, err)
	}
}

// FuzzRequestPayloads feeds arbitrary bytes to every request decoder and
// applies decoded terminal modes to a real pty: nothing may panic, and
// accepted values must respect the limits.
func FuzzRequestPayloads(f *testing.F) {
	f.Add(ssh.Marshal(ptyRequest{"xterm-256color", 80, 24, 640, 480, "\x01\x00\x00\x00\x03\x35\x00\x00\x00\x01\x00"}))
	f.Add(ssh.Marshal(windowChange{120, 40, 0, 0}))
	f.Add(ssh.Marshal(envRequest{"LC_ALL", "C.UTF-8"}))
	f.Add(ssh.Marshal(execRequest{"uname -a; exit 3"}))
	f.Add(ssh.Marshal(subsystemRequest{"sftp"}))
	f.Add(ssh.Marshal(signalRequest{"INT"}))
	f.Add(ssh.Marshal(directTCPIP{"localhost", 8080, "10.0.0.1", 4242}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	ptm, tty, err := pty.Open()
	if err != nil {
		f.Fatal(err)
	}
	defer ptm.Close()
	defer tty.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parsePtyRequest(b); err == nil {
			if r.Columns > maxDimension || len(r.Term) > maxTermLen || len(r.Modelist) > maxModesLen {
				t.Fatalf("accepted out-of-limit pty-req %+v", r)
			}
			if modes, err := parseModes(r.Modelist); err == nil {
				applyModes(tty, modes)
			}
		}
		parseModes(string(b))
		if r, err := parseWindowChange(b); err == nil && r.Rows > maxDimension {
			t.Fatalf("accepted window-change %+v", r)
		}
		if r, err := parseEnv(b); err == nil && (r.Name == "" || strings.Contains(r.Name, "=")) {
			t.Fatalf("accepted env %+v", r)
		}
		if r, err := parseExec(b); err == nil && len(r.Command) > maxCommandLen {
			t.Fatal("accepted oversized exec")
		}
		parseSubsystem(b)
		parseSignal(b)
		if r, err := parseDirectTCPIP(b); err == nil {
			if r.Port == 0 || r.Port > 65535 || r.Host == "" {
				t.Fatalf("accepted direct-tcpip %+v", r)
			}
			forwardTarget(r.Host)
		}
	})
}

// nullChannel is an ssh.Channel that discards everything.
type nullChannel struct{}

func (nullChannel) Read([]byte) (int, error)                       { return 0, io.EOF }
func (nullChannel) Write(p []byte) (int, error)                    { return len(p), nil }
func (nullChannel) Close() error                                   { return nil }
func (nullChannel) CloseWrite() error                              { return nil }
func (nullChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }
func (nullChannel) Stderr() io.ReadWriter                          { return nullChannel{} }

type failingRuntime struct{}

func (failingRuntime) Command(context.Context, string, sliver.Process) (*exec.Cmd, error) {
	return nil, errors.New("no sliver in this test")
}

// FuzzSessionRequests sends arbitrary requests to a session: the handlers
// must refuse bad ones without panicking (process start fails by design).
func FuzzSessionRequests(f *testing.F) {
	for _, typ := range []string{"pty-req", "window-change", "env", "exec", "shell", "subsystem", "signal", "x11-req", "bogus"} {
		f.Add(typ, []byte{})
	}
	f.Add("pty-req", ssh.Marshal(ptyRequest{"xterm", 80, 24, 0, 0, "\x35\x00\x00\x00\x01\x00"}))
	f.Add("window-change", ssh.Marshal(windowChange{100, 30, 0, 0}))
	f.Add("env", ssh.Marshal(envRequest{"LANG", "C"}))
	f.Add("exec", ssh.Marshal(execRequest{"true"}))
	f.Add("subsystem", ssh.Marshal(subsystemRequest{"sftp"}))
	slices := &fakeSlices{}
	slices.set(testSlice, SliceAccess{Enabled: true, Running: true})
	g := &Gateway{cfg: Config{Runtime: failingRuntime{}, Slices: slices, Now: time.Now, SFTPServer: DefaultSFTPServer}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.Fuzz(func(t *testing.T, typ string, payload []byte) {
		c := &conn{g: g, slice: testSlice, log: g.log}
		s := newSession(context.Background(), c, nullChannel{})
		defer s.cleanup()
		for i := 0; i < 2; i++ { // twice: repeated requests take other paths
			ok, _ := s.dispatch(&ssh.Request{Type: typ, Payload: payload})
			if s.cmd != nil {
				t.Fatalf("%s started a process with a failing runtime", typ)
			}
			// Accepted only to end with the reason (see session.failed).
			if ok && (typ == "exec" || typ == "shell" || typ == "subsystem") && s.failed == "" {
				t.Fatalf("%s accepted with a failing runtime and no reason for the user", typ)
			}
		}
	})
}

func TestSliceFile(t *testing.T) {
	in := map[string]SliceAccess{
		"pl_a": {Keys: []string{"ssh-ed25519 AAAA a@x"}, Enabled: true, Running: true, Expires: time.Unix(2000000000, 0).UTC(), NetNS: "/run/netns/a"},
		"pl_b": {Enabled: false},
	}
	b, err := EncodeSlices(in)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeSlices(in)
	if string(again) != string(b) {
		t.Error("encoding is not deterministic")
	}
	out, err := DecodeSlices(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !out["pl_a"].Expires.Equal(in["pl_a"].Expires) || out["pl_a"].NetNS != "/run/netns/a" || out["pl_b"].Enabled {
		t.Errorf("round trip: %+v", out)
	}
	for _, bad := range []string{``, `{}`, `{"slices":{},"extra":1}`, `{"slices":{"a":{"keys":"x"}}}`, `{"slices":{}} {}`} {
		if _, err := DecodeSlices([]byte(bad)); err == nil {
			t.Errorf("DecodeSlices(%q) accepted", bad)
		}
	}
	// FileSlices keeps the last good view.
	path := filepath.Join(t.TempDir(), "slices.json")
	fs := NewFileSlices(path)
	if err := WriteSliceFile(path, in); err != nil {
		t.Fatal(err)
	}
	if old, err := fs.Reload(); err != nil || old == nil {
		t.Fatalf("first reload: %v %v", old, err)
	}
	if old, err := fs.Reload(); err != nil || old != nil {
		t.Fatalf("unchanged reload: %v %v", old, err)
	}
	os.WriteFile(path, []byte("{broken"), 0o600)
	if _, err := fs.Reload(); err == nil {
		t.Fatal("broken file accepted")
	}
	if a, ok := fs.Lookup("pl_a"); !ok || !a.Running {
		t.Errorf("after a broken file, pl_a = %+v %v; want the last good view", a, ok)
	}
}

func FuzzDecodeSlices(f *testing.F) {
	b, _ := EncodeSlices(map[string]SliceAccess{"pl_a": {Keys: []string{"k"}, Enabled: true}})
	f.Add(b)
	f.Add([]byte(`{"slices":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeSlices(data)
		if err != nil {
			return
		}
		enc, err := EncodeSlices(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSlices(enc); err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
	})
}
