package sshcli

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
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/sshgw"
	"golang.org/x/crypto/ssh"
)

const slice = "pl_cli"

// hostRuntime runs "sliver" processes on the host in <root>/<slice>, with
// NODE set to the fake node's name.
type hostRuntime struct{ root, node string }

func (h hostRuntime) Command(ctx context.Context, name string, p sliver.Process) (*exec.Cmd, error) {
	home := filepath.Join(h.root, name)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	args := p.Args
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) // hostdeps: /bin/sh
	cmd.Dir = home
	cmd.Env = append([]string{"HOME=" + home, "PATH=/usr/bin:/bin", "NODE=" + h.node}, p.Env...)
	return cmd, nil
}

type staticSlices map[string]sshgw.SliceAccess

func (s staticSlices) Lookup(name string) (sshgw.SliceAccess, bool) { a, ok := s[name]; return a, ok }

// planet is a few fake nodes, each with its own gateway, plus the user.
type planet struct {
	dir     string
	keyPath string
	signer  ssh.Signer
	nodes   []Node
	homes   map[string]string // node -> slice home
}

func newPlanet(t *testing.T, n int, unreachable bool) *planet {
	t.Helper()
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "user")
	keyPath := filepath.Join(dir, "id_user")
	os.WriteFile(keyPath, pem.EncodeToMemory(blk), 0o600)
	signer, _ := ssh.NewSignerFromKey(priv)
	p := &planet{dir: dir, keyPath: keyPath, signer: signer, homes: map[string]string{}}
	slices := staticSlices{slice: {Keys: []string{sshgw.AuthorizedKey(signer.PublicKey())}, Enabled: true, Running: true}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("node%d.test", i)
		root := filepath.Join(dir, name)
		gw, err := sshgw.New(sshgw.Config{
			Addr: "127.0.0.1:0", HostKeyPath: filepath.Join(root, "host_key"),
			Runtime: hostRuntime{root: root, node: name}, Slices: slices,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		go gw.Serve(context.Background())
		t.Cleanup(func() { gw.Close() })
		p.nodes = append(p.nodes, Node{Hostname: name, Addr: gw.Addr().String(), HostKey: gw.HostKey()})
		p.homes[name] = filepath.Join(root, slice)
	}
	if unreachable {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens there any more
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, _ := ssh.NewSignerFromKey(priv)
		p.nodes = append(p.nodes, Node{Hostname: "down.test", Addr: addr, HostKey: s.PublicKey()})
	}
	return p
}

func (p *planet) runner(out, errw io.Writer) *Runner {
	return &Runner{Slice: slice, Auth: []ssh.AuthMethod{ssh.PublicKeys(p.signer)}, Parallel: 2, Timeout: 10 * time.Second, Out: out, Err: errw}
}

func sortedLines(s string) []string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return l
}

func TestExecSeveralNodesOneUnreachable(t *testing.T) {
	p := newPlanet(t, 3, true)
	var out, errb bytes.Buffer
	r := p.runner(&out, &errb)
	s := r.Exec(context.Background(), p.nodes, `echo "hello from $NODE"; echo "warn $NODE" >&2; printf partial; [ "$NODE" != node2.test ] || exit 4`)
	wantOut := []string{
		"node1.test: hello from node1.test", "node1.test: partial",
		"node2.test: hello from node2.test", "node2.test: partial",
		"node3.test: hello from node3.test", "node3.test: partial",
	}
	sort.Strings(wantOut)
	if got := sortedLines(out.String()); strings.Join(got, "\n") != strings.Join(wantOut, "\n") {
		t.Errorf("stdout:\n%s\nwant (any order):\n%s", out.String(), strings.Join(wantOut, "\n"))
	}
	for _, n := range []string{"node1.test: warn node1.test", "node3.test: warn node3.test"} {
		if !strings.Contains(errb.String(), n+"\n") {
			t.Errorf("stderr lacks %q:\n%s", n, errb.String())
		}
	}
	if s.Count(OK) != 2 || s.Count(Failed) != 2 || s.Count(TimedOut) != 0 || s.ExitCode() != 1 {
		t.Fatalf("summary %+v", s)
	}
	byNode := map[string]Result{}
	for _, r := range s.Results {
		byNode[r.Node] = r
	}
	if d := byNode["node2.test"].Detail; d != "exit status 4" {
		t.Errorf("node2 detail %q", d)
	}
	if d := byNode["down.test"].Detail; !strings.Contains(d, "connect") {
		t.Errorf("down detail %q", d)
	}
	var sum bytes.Buffer
	s.Print(&sum)
	if !strings.Contains(sum.String(), "2 ok, 2 failed, 0 timed out (of 4 nodes)") {
		t.Errorf("summary text %q", sum.String())
	}

	// All good: exit code 0.
	s = r.Exec(context.Background(), p.nodes[:3], "true")
	if s.ExitCode() != 0 || s.Count(OK) != 3 {
		t.Errorf("all ok: %+v", s)
	}
}

func TestExecTimeoutAndGroup(t *testing.T) {
	p := newPlanet(t, 3, false)
	var out, errb bytes.Buffer
	r := p.runner(&out, &errb)
	r.Timeout = 1500 * time.Millisecond
	r.Group = true
	start := time.Now()
	s := r.Exec(context.Background(), p.nodes, `echo one; echo two; if [ "$NODE" = node3.test ]; then exec sleep 30; fi`)
	if time.Since(start) > 10*time.Second {
		t.Errorf("timeout not enforced: took %v", time.Since(start))
	}
	if s.Count(OK) != 2 || s.Count(TimedOut) != 1 {
		t.Fatalf("summary %+v", s)
	}
	for _, n := range []string{"node1.test", "node2.test"} {
		if !strings.Contains(out.String(), "=== "+n+" (ok)\none\ntwo\n") {
			t.Errorf("grouped output for %s missing:\n%s", n, out.String())
		}
	}
	if !strings.Contains(out.String(), "=== node3.test (timed out") {
		t.Errorf("timed-out node not reported:\n%s", out.String())
	}
}

func TestExecWrongHostKeyRefused(t *testing.T) {
	p := newPlanet(t, 1, false)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(priv)
	n := p.nodes[0]
	n.HostKey = other.PublicKey()
	var out, errb bytes.Buffer
	s := p.runner(&out, &errb).Exec(context.Background(), []Node{n}, "echo should-not-run")
	if s.ExitCode() == 0 || !strings.Contains(s.Results[0].Detail, "host key mismatch") {
		t.Fatalf("summary %+v", s)
	}
	n.HostKey = nil
	s = p.runner(&out, &errb).Exec(context.Background(), []Node{n}, "true")
	if s.ExitCode() == 0 || !strings.Contains(s.Results[0].Detail, "no ssh host key") {
		t.Fatalf("node without key: %+v", s)
	}
	if strings.Contains(out.String(), "should-not-run") {
		t.Fatal("command ran on a node with the wrong host key")
	}
}

func TestCopyTree(t *testing.T) {
	if _, err := os.Stat("/usr/lib/openssh/sftp-server"); err != nil {
		t.Skip("needs /usr/lib/openssh/sftp-server for the fake slivers")
	}
	p := newPlanet(t, 3, true)
	src := filepath.Join(p.dir, "app")
	files := map[string][]byte{"bin/run": []byte("#!/bin/sh\necho run\n"), "conf/a.txt": bytes.Repeat([]byte("a"), 100000), "README": []byte("hi\n")}
	for rel, data := range files {
		os.MkdirAll(filepath.Join(src, filepath.Dir(rel)), 0o755)
		os.WriteFile(filepath.Join(src, rel), data, 0o644)
	}
	os.Chmod(filepath.Join(src, "bin/run"), 0o755)
	var out, errb bytes.Buffer
	s := p.runner(&out, &errb).Copy(context.Background(), p.nodes, src, "deploy/")
	if s.Count(OK) != 3 || s.Count(Failed) != 1 {
		t.Fatalf("summary %+v\n%s", s, errb.String())
	}
	for _, n := range p.nodes[:3] {
		for rel, data := range files {
			got, err := os.ReadFile(filepath.Join(p.homes[n.Hostname], "deploy", "app", rel))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: %s: %v", n.Hostname, rel, err)
			}
		}
		st, err := os.Stat(filepath.Join(p.homes[n.Hostname], "deploy", "app", "bin", "run"))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode not kept: %v %v", n.Hostname, st, err)
		}
		if !strings.Contains(out.String(), n.Hostname+": copied 3 files, 100022 bytes") {
			t.Errorf("progress line for %s missing:\n%s", n.Hostname, out.String())
		}
	}
	// A single file to an explicit name.
	s = p.runner(&out, &errb).Copy(context.Background(), p.nodes[:1], filepath.Join(src, "README"), "R2")
	if got, _ := os.ReadFile(filepath.Join(p.homes["node1.test"], "R2")); s.ExitCode() != 0 || string(got) != "hi\n" {
		t.Errorf("single file: %+v %q", s, got)
	}
}

func TestSSHArgsWithOpenSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs the OpenSSH client")
	}
	p := newPlanet(t, 1, false)
	n := p.nodes[0]
	kh := filepath.Join(p.dir, "cfg", KnownHostsFile)
	// A stale entry for the node and an unrelated one.
	os.MkdirAll(filepath.Dir(kh), 0o700)
	os.WriteFile(kh, []byte("node1.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBogusBogusBogusBogus\nother.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600)
	if err := WriteKnownHost(kh, n); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(kh)
	if strings.Count(string(b), "node1.test ") != 1 || !strings.Contains(string(b), "other.test ") {
		t.Fatalf("known_hosts:\n%s", b)
	}
	argv, err := SSHArgs(n, slice, kh, 0, []string{"-F", "/dev/null", "-i", p.keyPath, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes"}, []string{"echo", "in-$NODE"})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || out.String() != "in-node1.test\n" {
		t.Fatalf("ssh %v: %v %q %q", argv, err, out.String(), errb.String())
	}
	// With another key for the node at PLC, ssh refuses to connect.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(priv)
	WriteKnownHost(kh, Node{Hostname: n.Hostname, Addr: n.Addr, HostKey: other.PublicKey()})
	cmd = exec.Command("ssh", argv[1:]...)
	out.Reset()
	errb.Reset()
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 || out.Len() != 0 {
		t.Fatalf("ssh with a wrong host key: %v %q %q", err, out.String(), errb.String())
	}
}

// fakeRegistry answers the Get calls RegistryDirectory makes.
type fakeRegistry struct {
	core.Registry
	mu    sync.Mutex
	recs  map[core.Class][]core.Record
	calls []string
}

func (f *fakeRegistry) Get(_ context.Context, _ *core.Caller, class core.Class, flt *core.Filter, fields []string) ([]core.Record, error) {
	f.mu.Lock()
	f.calls = append(f.calls, string(class))
	f.mu.Unlock()
	var out []core.Record
	for _, r := range f.recs[class] {
		if flt == nil || matches(r, class, flt) {
			out = append(out, r)
		}
	}
	return out, nil
}

func matches(r core.Record, class core.Class, f *core.Filter) bool {
	if f.IsList {
		pk := map[core.Class]string{core.Node: "node_id", core.Slice: "slice_id", core.Interface: "interface_id"}[class]
		name := map[core.Class]string{core.Node: "hostname", core.Slice: "name"}[class]
		for _, id := range f.IDs {
			if r[pk] == id {
				return true
			}
		}
		for _, n := range f.Names {
			if r[name] == n {
				return true
			}
		}
		return false
	}
	for _, t := range f.Terms {
		switch v := t.Value.(type) {
		case []any:
			found := false
			for _, e := range v {
				found = found || r[t.Field] == e
			}
			if !found {
				return false
			}
		default:
			if r[t.Field] != v {
				return false
			}
		}
	}
	return true
}

func TestRegistryDirectory(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, _ := ssh.NewSignerFromKey(priv)
	reg := &fakeRegistry{recs: map[core.Class][]core.Record{
		core.Slice: {{"slice_id": int64(7), "name": "pl_x", "node_ids": []int64{1, 2, 3}}},
		core.Node: {
			{"node_id": int64(1), "hostname": "b.example.org", "ssh_rsa_key": sshgw.AuthorizedKey(hk.PublicKey()), "interface_ids": []int64{11}},
			{"node_id": int64(2), "hostname": "a.example.org", "ssh_rsa_key": nil, "interface_ids": []int64{}},
			{"node_id": int64(3), "hostname": "c.example.org", "ssh_rsa_key": "", "interface_ids": []int64{13, 14}},
		},
		core.Interface: {
			{"interface_id": int64(11), "node_id": int64(1), "ip": "10.0.0.1", "is_primary": true},
			{"interface_id": int64(13), "node_id": int64(3), "ip": "2001:db8::3", "is_primary": true},
		},
		core.NodeTag: {
			{"node_id": int64(3), "tagname": PortTag, "value": "2222"},
			{"node_id": int64(1), "tagname": "arch", "value": "x86_64"},
		},
	}}
	d := RegistryDirectory{Reg: reg}
	nodes, err := d.SliceNodes(context.Background(), "pl_x")
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, n := range nodes {
		got = append(got, fmt.Sprintf("%s %s %v", n.Hostname, n.Addr, n.HostKey != nil))
	}
	want := "a.example.org a.example.org:22 false|b.example.org 10.0.0.1:22 true|c.example.org [2001:db8::3]:2222 false"
	if strings.Join(got, "|") != want {
		t.Errorf("nodes:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	if _, err := d.SliceNodes(context.Background(), "nope"); core.ErrorCode(err) != core.NotFound {
		t.Errorf("unknown slice: %v", err)
	}
	n, err := d.Node(context.Background(), "b.example.org")
	if err != nil || n.Addr != "10.0.0.1:22" {
		t.Errorf("Node = %+v %v", n, err)
	}
	if _, err := d.Node(context.Background(), "z.example.org"); core.ErrorCode(err) != core.NotFound {
		t.Errorf("unknown node: %v", err)
	}
	only, err := SelectNodes(context.Background(), d, "pl_x", []string{"c.example.org"})
	if err != nil || len(only) != 1 || only[0].Hostname != "c.example.org" {
		t.Errorf("SelectNodes = %v %v", only, err)
	}
	if _, err := SelectNodes(context.Background(), d, "pl_x", []string{"elsewhere.org"}); core.ErrorField(err) != "nodes" {
		t.Errorf("node not in slice: %v", err)
	}
	reg.recs[core.NodeTag] = append(reg.recs[core.NodeTag], core.Record{"node_id": int64(1), "tagname": PortTag, "value": "http"})
	if _, err := d.SliceNodes(context.Background(), "pl_x"); core.ErrorField(err) != PortTag {
		t.Errorf("bad port tag: %v", err)
	}
}

func TestAuthIdentityFiles(t *testing.T) {
	p := newPlanet(t, 1, false)
	t.Setenv("SSH_AUTH_SOCK", "")
	m, closeAuth, err := Auth([]string{p.keyPath}, func(string) {})
	if err != nil || len(m) != 1 {
		t.Fatalf("Auth: %v", err)
	}
	closeAuth()
	if _, _, err := Auth([]string{filepath.Join(p.dir, "missing")}, func(string) {}); err == nil {
		t.Error("missing identity file accepted")
	}
	enc, _ := ssh.MarshalPrivateKeyWithPassphrase(ed25519.NewKeyFromSeed(make([]byte, 32)), "", []byte("secret"))
	encPath := filepath.Join(p.dir, "enc")
	os.WriteFile(encPath, pem.EncodeToMemory(enc), 0o600)
	var warned string
	_, _, err = Auth([]string{encPath}, func(s string) { warned = s })
	if err == nil || !strings.Contains(warned, "encrypted") {
		t.Errorf("encrypted key only: err %v, warning %q", err, warned)
	}
}
