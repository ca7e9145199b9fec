package sshcli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sshgw"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

// asCaller is the registry as seen by one logged-in person (what the REST
// client does with its token).
type asCaller struct {
	core.Registry
	c *core.Caller
}

func (a asCaller) Get(ctx context.Context, _ *core.Caller, class core.Class, f *core.Filter, fields []string) ([]core.Record, error) {
	return a.Registry.Get(ctx, a.c, class, f, fields)
}

// TestRegistryDirectoryRealPLC resolves a slice's nodes through the real
// PLC service, as a slice member (not an admin): addresses from primary
// interfaces, ports from the ssh_port tag, host keys reported at join.
func TestRegistryDirectoryRealPLC(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := service.New(db, service.Options{PasswordCost: bcrypt.MinCost})
	defer s.Close()
	if _, err := s.Init(ctx, "root@plc.test", "rootpw"); err != nil {
		t.Fatal(err)
	}
	login := func(email, pw string) *core.Caller {
		c, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: email, Password: pw}, nil)
		if err != nil {
			t.Fatalf("login %s: %v", email, err)
		}
		return c
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	add := func(c *core.Caller, class core.Class, r core.Record) int64 {
		t.Helper()
		id, err := s.Add(ctx, c, class, r)
		if err != nil {
			t.Fatalf("add %s %v: %v", class, r, err)
		}
		return id
	}
	admin := login("root@plc.test", "rootpw")
	site := add(admin, core.Site, core.Record{"login_base": "pr", "name": "Princeton", "abbreviated_name": "pr", "max_slices": int64(5)})
	person := func(email, role string) *core.Caller {
		id := add(admin, core.Person, core.Record{"email": email, "first_name": "F", "last_name": "L", "password": "pw"})
		must(s.Update(ctx, admin, core.Person, id, core.Record{"enabled": true}))
		must(s.Link(ctx, admin, core.PersonSite, id, site, nil))
		rid, _ := service.RoleID(role)
		must(s.Link(ctx, admin, core.PersonRole, id, rid, nil))
		return login(email, "pw")
	}
	pi := person("pi@pr.org", "pi")
	user := person("user@pr.org", "user")

	hostKeys := map[string]ssh.PublicKey{}
	node := func(host, ip string, join bool) int64 {
		id := add(admin, core.Node, core.Record{"site_id": site, "hostname": host})
		if ip != "" {
			add(admin, core.Interface, core.Record{"node_id": id, "method": "static", "ip": ip, "network": "10.0.0.0", "netmask": "255.255.255.0", "broadcast": "10.0.0.255", "gateway": "10.0.0.254", "dns1": "10.0.0.254"})
		}
		if join {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			sg, _ := ssh.NewSignerFromKey(priv)
			secret, err := s.IssueJoinToken(ctx, admin, id)
			must(err)
			_, err = s.JoinNode(ctx, id, secret, sshgw.AuthorizedKey(sg.PublicKey()))
			must(err)
			hostKeys[host] = sg.PublicKey()
		}
		return id
	}
	n1 := node("n1.pr.org", "10.0.0.1", true)
	n2 := node("n2.pr.org", "10.0.0.2", true)
	n3 := node("n3.pr.org", "", false)
	node("other.pr.org", "10.0.0.9", true) // not in the slice

	portTag, err := s.Resolve(ctx, admin, core.TagType, PortTag) // seeded by PLC
	must(err)
	add(admin, core.NodeTag, core.Record{"node_id": n2, "tag_type_id": portTag, "value": "2222"})

	sid := add(pi, core.Slice, core.Record{"name": "pr_app", "url": "http://x.test", "description": "d"})
	must(s.Link(ctx, pi, core.SlicePerson, sid, user.PersonID, nil))
	for _, n := range []int64{n1, n2, n3} {
		must(s.Link(ctx, pi, core.SliceNode, sid, n, nil))
	}

	d := RegistryDirectory{Reg: asCaller{s, user}}
	nodes, err := d.SliceNodes(ctx, "pr_app")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ host, addr string }{{"n1.pr.org", "10.0.0.1:22"}, {"n2.pr.org", "10.0.0.2:2222"}, {"n3.pr.org", "n3.pr.org:22"}}
	if len(nodes) != len(want) {
		t.Fatalf("nodes = %+v", nodes)
	}
	for i, w := range want {
		n := nodes[i]
		if n.Hostname != w.host || n.Addr != w.addr {
			t.Errorf("node %d = %s %s, want %s %s", i, n.Hostname, n.Addr, w.host, w.addr)
		}
		hk := hostKeys[w.host]
		if (hk == nil) != (n.HostKey == nil) || hk != nil && string(hk.Marshal()) != string(n.HostKey.Marshal()) {
			t.Errorf("%s: host key %v, want %v", w.host, n.HostKey, hk)
		}
	}
	n, err := d.Node(ctx, "n2.pr.org")
	if err != nil || n.Addr != "10.0.0.2:2222" || n.HostKey == nil {
		t.Errorf("Node(n2) = %+v %v", n, err)
	}
	if _, err := d.SliceNodes(ctx, "pr_nothing"); core.ErrorCode(err) != core.NotFound {
		t.Errorf("unknown slice: %v", err)
	}
}
