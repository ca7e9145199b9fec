package plcapi

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
)

const itAdmin, itAdminPW = "root@plc.example.org", "root-password"

// realService opens the real service on SQLite in a temporary directory,
// initialised with an admin.
func realService(t testing.TB) (*service.Service, *core.Caller) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := service.New(db, service.Options{
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		PasswordCost: bcrypt.MinCost, Logins: service.LoginPolicy{PairFree: 1000, SourceFree: 1000},
	})
	t.Cleanup(func() { s.Close() })
	if _, err := s.Init(ctx, itAdmin, itAdminPW); err != nil {
		t.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: itAdmin, Password: itAdminPW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, admin
}

// joinedNode adds a site and a node and joins the node; it returns the
// node's id and key.
func joinedNode(t testing.TB, s *service.Service, admin *core.Caller, loginBase, hostname string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	site, err := s.Add(ctx, admin, core.Site, core.Record{"login_base": loginBase, "name": "Site " + loginBase, "abbreviated_name": loginBase, "max_slices": int64(10)})
	if err != nil && core.ErrorCode(err) != core.Conflict {
		t.Fatal(err)
	}
	if site == 0 {
		if site, err = s.Resolve(ctx, admin, core.Site, loginBase); err != nil {
			t.Fatal(err)
		}
	}
	node, err := s.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": hostname})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.IssueJoinToken(ctx, admin, node)
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.JoinNode(ctx, node, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	return node, key
}

func plcapiServer(t testing.TB, reg core.Registry) *httptest.Server {
	h := NewHandler(reg, Options{Release: map[string]string{"version": "test"}})
	mux := http.NewServeMux()
	mux.Handle("/PLCAPI/", h)
	mux.Handle("/PLCAPI", h)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestPythonClientSuite drives the real handler and service over HTTPS
// with Python's standard xmlrpc.client (testdata/plcapi_suite.py).
func TestPythonClientSuite(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: the compatibility suite uses Python's xmlrpc.client")
	}
	s, admin := realService(t)
	nodeID, key := joinedNode(t, s, admin, "demo", "node1.demo.example.org")
	srv := plcapiServer(t, s)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/plcapi_suite.py") // hostdeps: python3
	cmd.Env = append(os.Environ(),
		"PLC_URL="+srv.URL+"/PLCAPI/", "PLC_CAFILE="+ca, "PLC_ADMIN="+itAdmin, "PLC_ADMIN_PW="+itAdminPW,
		"PLC_SITE=demo", "PLC_NODE_ID="+strconv.FormatInt(nodeID, 10), "PLC_NODE_KEY="+key)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("suite failed: %v", err)
	}
}

// TestRoleTableAgreesWithService keeps the method table's role sets equal
// to the service's (the service's win at run time).
func TestRoleTableAgreesWithService(t *testing.T) {
	n := 0
	for _, m := range methodTable() {
		want := service.OpRoles(m.name)
		if want == nil {
			continue
		}
		n++
		got := slices.Clone(m.roles)
		slices.Sort(got)
		want = slices.Clone(want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: table %v, service %v", m.name, got, want)
		}
	}
	if n < 100 {
		t.Fatalf("only %d methods have service role sets", n)
	}
}
