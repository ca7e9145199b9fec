package sshcli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/cli"
	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sshgw"
	"github.com/planetlab/pl/internal/plc/server"
	"github.com/planetlab/pl/internal/plc/service"
)

// TestCommandsEndToEnd runs `pl exec`, `pl copy` and `pl ssh` (the cobra
// commands, with a stored `pl login`) against a real PLC over HTTPS and
// three fake nodes whose gateways joined PLC with their host keys; one
// more node of the slice is down.
func TestCommandsEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := server.Config{DataDir: filepath.Join(dir, "plc"), Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler)}
	if _, err := server.Init(ctx, cfg, server.InitOptions{Email: "admin@pl.test", Password: "adminpw"}); err != nil {
		t.Fatal(err)
	}
	m := &server.Main{Config: cfg}
	sctx, cancel := context.WithCancel(ctx)
	if err := m.Open(sctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })

	s := m.Registry()
	admin, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@pl.test", Password: "adminpw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	add := func(c *core.Caller, class core.Class, r core.Record) int64 {
		t.Helper()
		id, err := s.Add(ctx, c, class, r)
		if err != nil {
			t.Fatalf("add %s %v: %v", class, r, err)
		}
		return id
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	site := add(admin, core.Site, core.Record{"login_base": "pr", "name": "Princeton", "abbreviated_name": "pr", "max_slices": int64(5)})
	uid := add(admin, core.Person, core.Record{"email": "user@pr.org", "first_name": "U", "last_name": "Ser", "password": "userpw"})
	must(s.Update(ctx, admin, core.Person, uid, core.Record{"enabled": true}))
	must(s.Link(ctx, admin, core.PersonSite, uid, site, nil))
	for _, r := range []string{"pi", "user"} {
		rid, _ := service.RoleID(r)
		must(s.Link(ctx, admin, core.PersonRole, uid, rid, nil))
	}
	user, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: "user@pr.org", Password: "userpw"}, nil)
	must(err)
	p := newPlanet(t, 0, false) // only the user key
	add(user, core.Key, core.Record{"person_id": uid, "key_type": "ssh", "key": sshgw.AuthorizedKey(p.signer.PublicKey()) + " user@pr"})
	sid := add(user, core.Slice, core.Record{"name": "pr_app", "url": "http://x.test", "description": "d"})
	must(s.Link(ctx, user, core.SlicePerson, sid, uid, nil))
	portTag, err := s.Resolve(ctx, admin, core.TagType, PortTag) // seeded by PLC
	must(err)

	// The slice's keys as a node would get them, for the gateways.
	slices := staticSlices{"pr_app": {Keys: []string{sshgw.AuthorizedKey(p.signer.PublicKey())}, Enabled: true, Running: true}}
	homes := map[string]string{}
	for i := 1; i <= 4; i++ {
		host := fmt.Sprintf("n%d.pr.org", i)
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		nid := add(admin, core.Node, core.Record{"site_id": site, "hostname": host})
		add(admin, core.Interface, core.Record{"node_id": nid, "method": "static", "ip": ip, "network": "127.0.0.0",
			"netmask": "255.0.0.0", "broadcast": "127.255.255.255", "gateway": "127.0.0.1", "dns1": "127.0.0.1"})
		must(s.Link(ctx, user, core.SliceNode, sid, nid, nil))
		root := filepath.Join(dir, host)
		var port int
		var hostKey string
		if i < 4 {
			gw, err := sshgw.New(sshgw.Config{Addr: ip + ":0", HostKeyPath: filepath.Join(root, "host_key"),
				Runtime: hostRuntime{root: root, node: host}, Slices: slices, Logger: slog.New(slog.DiscardHandler)})
			must(err)
			go gw.Serve(ctx)
			t.Cleanup(func() { gw.Close() })
			port = gw.Addr().(*net.TCPAddr).Port
			hostKey = sshgw.AuthorizedKey(gw.HostKey())
			homes[host] = filepath.Join(root, "pr_app")
		} else { // down: a port nothing listens on, and a key it reported once
			ln, _ := net.Listen("tcp", ip+":0")
			port = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
			k, _ := sshgw.LoadOrCreateHostKey(filepath.Join(root, "host_key"))
			hostKey = sshgw.AuthorizedKey(k.PublicKey())
		}
		secret, err := s.IssueJoinToken(ctx, admin, nid)
		must(err)
		_, err = s.JoinNode(ctx, nid, secret, hostKey)
		must(err)
		add(admin, core.NodeTag, core.Record{"node_id": nid, "tag_type_id": portTag, "value": strconv.Itoa(port)})
	}

	// `pl login` as the user.
	cfgDir := filepath.Join(dir, "cli")
	t.Setenv("PL_CONFIG_DIR", cfgDir)
	t.Setenv("PL_PLC", "")
	t.Setenv("SSH_AUTH_SOCK", "")
	cl, err := client.New(m.URL(), client.Options{Fingerprint: m.Fingerprint()})
	must(err)
	sess, err := cl.Login(ctx, "user@pr.org", "userpw", 0)
	must(err)
	conf := &cli.Config{Current: m.URL(), PLCs: map[string]*cli.PLCEntry{m.URL(): {URL: m.URL(), Email: "user@pr.org", Token: sess.ID, Fingerprint: m.Fingerprint()}}}
	must(conf.Save())

	pl := func(args ...string) (string, string, int) {
		root := cli.NewRoot()
		Attach(root)
		var out, errb bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errb)
		root.SetArgs(args)
		_, err := root.ExecuteContextC(ctx)
		if err != nil {
			fmt.Fprintln(&errb, "pl:", err)
		}
		return out.String(), errb.String(), cli.ExitCode(err)
	}

	out, errOut, code := pl("exec", "pr_app", "-i", p.keyPath, "--timeout", "10s", "--", "echo", "hi from", "$NODE")
	t.Logf("pl exec (exit %d):\n%s%s", code, out, errOut)
	for i := 1; i <= 3; i++ {
		if want := fmt.Sprintf("n%d.pr.org: hi from n%d.pr.org\n", i, i); !strings.Contains(out, want) {
			t.Errorf("pl exec stdout lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || !strings.Contains(errOut, "n4.pr.org: failed: connect") || !strings.Contains(errOut, "3 ok, 1 failed, 0 timed out (of 4 nodes)") {
		t.Errorf("pl exec: code %d stderr:\n%s", code, errOut)
	}
	out, errOut, code = pl("exec", "pr_app", "-i", p.keyPath, "--nodes", "n1.pr.org,n3.pr.org", "--", "true")
	if code != 0 || !strings.Contains(errOut, "2 ok, 0 failed, 0 timed out (of 2 nodes)") {
		t.Errorf("pl exec --nodes: code %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = pl("exec", "pr_app", "-i", p.keyPath, "--nodes", "elsewhere.org", "--", "true"); code != cli.ExitInvalid {
		t.Errorf("pl exec on a node outside the slice: code %d %s", code, errOut)
	}

	src := filepath.Join(dir, "payload.txt")
	os.WriteFile(src, []byte("payload\n"), 0o644)
	if _, err := os.Stat("/usr/lib/openssh/sftp-server"); err == nil {
		_, errOut, code = pl("copy", "pr_app", src, "dst.txt", "-i", p.keyPath, "--nodes", "n1.pr.org,n2.pr.org")
		if code != 0 {
			t.Errorf("pl copy: code %d %s", code, errOut)
		}
		for _, h := range []string{"n1.pr.org", "n2.pr.org"} {
			if b, _ := os.ReadFile(filepath.Join(homes[h], "dst.txt")); string(b) != "payload\n" {
				t.Errorf("pl copy to %s: %q", h, b)
			}
		}
	}

	out, errOut, code = pl("ssh", "--dry-run", "pr_app@n2.pr.org", "echo", "hello")
	if code != 0 {
		t.Fatalf("pl ssh --dry-run: %d %s", code, errOut)
	}
	argv := strings.Fields(out)
	kh := filepath.Join(cfgDir, KnownHostsFile)
	for _, w := range []string{"UserKnownHostsFile=" + kh, "StrictHostKeyChecking=yes", "HostKeyAlias=n2.pr.org", "pr_app@127.0.0.12"} {
		if !strings.Contains(out, w) {
			t.Errorf("pl ssh command %q lacks %q", out, w)
		}
	}
	if b, _ := os.ReadFile(kh); !strings.HasPrefix(string(b), "n2.pr.org ssh-ed25519 ") {
		t.Errorf("known_hosts = %q", b)
	}
	if _, err := exec.LookPath("ssh"); err == nil {
		// The printed command works with the stock client.
		args := append([]string{"-F", "/dev/null", "-i", p.keyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"}, argv[1:]...)
		cmd := exec.Command("ssh", args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil || o.String() != "hello\n" {
			t.Errorf("ssh %v: %v %q %q", args, err, o.String(), e.String())
		}
	}
	if _, _, code = pl("ssh", "--dry-run", "pr_app@nowhere.pr.org"); code != cli.ExitNotFound {
		t.Errorf("pl ssh to an unknown node: code %d", code)
	}
}
