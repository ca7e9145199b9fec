package sshgw

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/node/sliver"
	"golang.org/x/crypto/ssh"
)

// fakeRuntime runs "sliver" processes on the host, in a per-slice home
// directory. It is enough for protocol tests; the real runtime is tested in
// integration_test.go.
type fakeRuntime struct {
	root string
	mu   sync.Mutex
	runs []sliver.Process
	fail error // returned by Command when set
}

func (f *fakeRuntime) home(name string) string { return filepath.Join(f.root, name) }

func (f *fakeRuntime) Command(ctx context.Context, name string, p sliver.Process) (*exec.Cmd, error) {
	f.mu.Lock()
	f.runs = append(f.runs, p)
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	home := f.home(name)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	args := p.Args
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) // hostdeps: /bin/sh
	cmd.Dir = home
	cmd.Env = append([]string{"HOME=" + home, "PATH=/usr/local/bin:/usr/bin:/bin", "PS1=fake$ ", "USER=" + name}, p.Env...)
	return cmd, nil
}

// fakeSlices is a mutable Slices.
type fakeSlices struct {
	mu sync.Mutex
	m  map[string]SliceAccess
}

func (f *fakeSlices) Lookup(name string) (SliceAccess, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.m[name]
	return a, ok
}

func (f *fakeSlices) set(name string, a SliceAccess) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]SliceAccess{}
	}
	f.m[name] = a
}

func (f *fakeSlices) update(name string, fn func(*SliceAccess)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.m[name]
	fn(&a)
	f.m[name] = a
}

// userKey is a client key pair written to a file for OpenSSH.
type userKey struct {
	path       string
	signer     ssh.Signer
	authorized string
}

func newUserKey(t testing.TB, dir, name string) userKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return userKey{path: path, signer: s, authorized: AuthorizedKey(s.PublicKey()) + " " + name}
}

// env is a gateway with a fake runtime, a slice "pl_test" and a client key.
type env struct {
	t          testing.TB
	dir        string
	gw         *Gateway
	rt         *fakeRuntime
	slices     *fakeSlices
	key        userKey
	knownHosts string
	port       int
	logs       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testSlice = "pl_test"

func newEnv(t testing.TB, tweak func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, func(_ *env, c *Config) {
		if tweak != nil {
			tweak(c)
		}
	})
}

// newEnvWith is newEnv with a tweak that sees the environment (its key).
func newEnvWith(t testing.TB, tweak func(*env, *Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, rt: &fakeRuntime{root: filepath.Join(dir, "slivers")}, slices: &fakeSlices{}, logs: &syncBuffer{}}
	e.key = newUserKey(t, dir, "id_user")
	e.slices.set(testSlice, SliceAccess{Keys: []string{e.key.authorized}, Enabled: true, Running: true})
	cfg := Config{
		Addr:        "127.0.0.1:0",
		HostKeyPath: filepath.Join(dir, "host_key"),
		Runtime:     e.rt,
		Slices:      e.slices,
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	tweak(e, &cfg)
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.gw = gw
	e.port = gw.Addr().(*net.TCPAddr).Port
	done := make(chan error, 1)
	go func() { done <- gw.Serve(context.Background()) }()
	t.Cleanup(func() {
		gw.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", e.logs.String())
		}
	})
	e.knownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", e.port, AuthorizedKey(gw.HostKey()))
	if err := os.WriteFile(e.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// sshOpts are the OpenSSH client options for the test gateway.
func (e *env) sshOpts(key string) []string {
	return []string{"-F", "/dev/null",
		"-o", "UserKnownHostsFile=" + e.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "IdentityFile=" + key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"}
}

// ssh runs the OpenSSH client with extra args against the gateway.
func (e *env) ssh(user string, extra ...string) (stdout, stderr string, code int) {
	return e.sshIn(nil, user, extra...)
}

func (e *env) sshIn(stdin io.Reader, user string, extra ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	args := append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port))
	args = append(args, extra[:len(extra)-1]...)
	args = append(args, user+"@127.0.0.1", extra[len(extra)-1])
	return run(e.t, stdin, "ssh", args...)
}

func run(t testing.TB, stdin io.Reader, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...) // hostdeps: ssh
	cmd.Env = cleanEnv()
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), errb.String(), code
}

// cleanEnv is the environment of client commands: no agent, no user config.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSH_AUTH_SOCK=") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// goClient dials the gateway with the x/crypto client.
func (e *env) goClient(user string) (*ssh.Client, error) {
	cb, err := hostKeyCallback(e.gw.HostKey())
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", e.gw.Addr().String(), &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.key.signer)},
		HostKeyCallback: cb,
		Timeout:         10 * time.Second,
	})
}

func hostKeyCallback(want ssh.PublicKey) (ssh.HostKeyCallback, error) {
	return ssh.FixedHostKey(want), nil
}

func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil { // hostdeps: ssh scp sftp rsync tmux
			t.Skipf("needs %s: %v", n, err)
		}
	}
}
