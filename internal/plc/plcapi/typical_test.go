package plcapi_test

import (
	"context"
	"encoding/pem"
	"log/slog"
	"math/big"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"crypto/rsa"
	"crypto/tls"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/server"
)

// TestTypicalScriptAgainstPLC runs a typical PlanetLab script, written
// for the original API and unchanged, against a whole `pl plc` server
// (HTTPS, real service, SQLite), checking each step in the node's
// GetSlivers.
func TestTypicalScriptAgainstPLC(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: the script uses Python's xmlrpc.client")
	}
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := server.Init(ctx, server.Config{DataDir: dir}, server.InitOptions{Email: "root@plc.example.org", Password: "rootpw"}); err != nil {
		t.Fatal(err)
	}
	m := &server.Main{Config: server.Config{DataDir: dir, Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler)}}
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("PLC did not stop")
		}
	})

	// The site's PI, a member with a key and a joined node, made through the registry.
	reg := m.Registry()
	admin, err := reg.Authenticate(ctx, core.Credentials{Method: "password", Username: "root@plc.example.org", Password: "rootpw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	add := func(class core.Class, rec core.Record) int64 {
		t.Helper()
		id, err := reg.Add(ctx, admin, class, rec)
		if err != nil {
			t.Fatalf("add %s: %v", class, err)
		}
		return id
	}
	link := func(rel core.Relation, a, b int64) {
		t.Helper()
		if err := reg.Link(ctx, admin, rel, a, b, nil); err != nil {
			t.Fatalf("link %s: %v", rel, err)
		}
	}
	site := add(core.Site, core.Record{"login_base": "princeton", "name": "Princeton", "abbreviated_name": "Princeton", "max_slices": int64(10)})
	person := func(email, role string) int64 {
		id := add(core.Person, core.Record{"email": email, "first_name": "A", "last_name": "B", "password": "pw-" + email})
		if err := reg.Update(ctx, admin, core.Person, id, core.Record{"enabled": true}); err != nil {
			t.Fatal(err)
		}
		link(core.PersonSite, id, site)
		rid, err := reg.Resolve(ctx, admin, core.Role, role)
		if err != nil {
			t.Fatal(err)
		}
		link(core.PersonRole, id, rid)
		return id
	}
	person("pi@princeton.edu", "pi")
	member := person("student@princeton.edu", "user")
	n := new(big.Int).Rand(mrand.New(mrand.NewSource(7)), new(big.Int).Lsh(big.NewInt(1), 2048))
	pk, _ := ssh.NewPublicKey(&rsa.PublicKey{N: n.SetBit(n, 2047, 1).SetBit(n, 0, 1), E: 65537})
	add(core.Key, core.Record{"person_id": member, "key_type": "ssh", "key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))})
	node := add(core.Node, core.Record{"site_id": site, "hostname": "planetlab-1.cs.princeton.edu"})
	secret, err := reg.IssueJoinToken(ctx, admin, node)
	if err != nil {
		t.Fatal(err)
	}
	key, err := reg.JoinNode(ctx, node, secret, "")
	if err != nil {
		t.Fatal(err)
	}

	// The server's certificate, for the script's TLS context.
	conn, err := tls.Dial("tcp", m.URL()[len("https://"):], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "plc.pem")
	err = os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: conn.ConnectionState().PeerCertificates[0].Raw}), 0o644)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/typical_script.py") // hostdeps: python3
	cmd.Env = append(os.Environ(), "PLC_URL="+m.URL()+"/PLCAPI/", "PLC_CAFILE="+ca,
		"PLC_USER=pi@princeton.edu", "PLC_PASSWORD=pw-pi@princeton.edu", "PLC_MEMBER=student@princeton.edu",
		"PLC_NODE_ID="+strconv.FormatInt(node, 10), "PLC_NODE_KEY="+key)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("typical script failed: %v", err)
	}
}
