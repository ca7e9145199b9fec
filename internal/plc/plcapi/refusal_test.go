package plcapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestRefusals: with the original's fault codes, a role refusal says what
// the method needs and who holds it at the caller's site (103 under
// password auth, 108 under session auth, issue 9.12), and a login refused
// by the backoff is an authentication fault, 103, not 106 (issue 9.4).
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := service.New(db, service.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PasswordCost: bcrypt.MinCost})
	t.Cleanup(func() { s.Close() })
	if _, err := s.Init(ctx, itAdmin, itAdminPW); err != nil {
		t.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: itAdmin, Password: itAdminPW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	site, err := s.Add(ctx, admin, core.Site, core.Record{"login_base": "princeton", "name": "Princeton", "abbreviated_name": "P", "max_slices": int64(5)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{"larry@princeton.edu", "pi"}, {"stu@princeton.edu", "user"}} {
		id, err := s.Add(ctx, admin, core.Person, core.Record{"email": p[0], "first_name": "F", "last_name": "L", "password": "pw"})
		if err != nil {
			t.Fatal(err)
		}
		rid, _ := service.RoleID(p[1])
		for _, err := range []error{
			s.Update(ctx, admin, core.Person, id, core.Record{"enabled": true}),
			s.Link(ctx, admin, core.PersonSite, id, site, nil),
			s.Link(ctx, admin, core.PersonRole, id, rid, nil),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	h := newHandler(s, Options{})
	fault := func(err error) *Fault {
		t.Helper()
		var f *Fault
		if !errors.As(err, &f) {
			t.Fatalf("want a fault, got %v", err)
		}
		return f
	}
	slice := map[string]any{"name": "princeton_x", "url": "http://x", "description": "d"}
	pw := map[string]any{"AuthMethod": "password", "Username": "stu@princeton.edu", "AuthString": "pw"}
	_, err = h.Call(ctx, "AddSlice", []any{pw, slice})
	f := fault(err)
	if f.Code != faultAuthentication || !strings.HasPrefix(f.String, ": AddSlice: Failed to authenticate call: needs role admin or pi (you have user); the PIs of site princeton are: larry@princeton.edu") {
		t.Errorf("password auth: %d %q", f.Code, f.String)
	}
	sess, err := h.Call(ctx, "GetSession", []any{pw})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Call(ctx, "AddSlice", []any{map[string]any{"AuthMethod": "session", "session": sess}, slice})
	f = fault(err)
	if f.Code != faultPermission || !strings.Contains(f.String, "AddSlice: Permission denied: needs role admin or pi (you have user); the PIs of site princeton are: larry@princeton.edu") {
		t.Errorf("session auth: %d %q", f.Code, f.String)
	}

	// A tag value nodes would refuse is refused when written: fault 102,
	// naming the tag and the reason (core/tags).
	larry := map[string]any{"AuthMethod": "password", "Username": "larry@princeton.edu", "AuthString": "pw"}
	if _, err := h.Call(ctx, "AddSlice", []any{larry, map[string]any{"name": "princeton_t", "url": "http://x", "description": "d"}}); err != nil {
		t.Fatal(err)
	}
	_, err = h.Call(ctx, "AddSliceTag", []any{larry, "princeton_t", "ports", "tcp/0"})
	f = fault(err)
	if f.Code != faultInvalidArgument || !strings.Contains(f.String, `AddSliceTag: Invalid ports value: port "tcp/0": 0 is out of range 1-65535`) {
		t.Errorf("bad ports value: %d %q", f.Code, f.String)
	}

	bad := map[string]any{"AuthMethod": "password", "Username": "larry@princeton.edu", "AuthString": "wrong"}
	for i := 0; i < 6; i++ {
		_, err = h.Call(ctx, "AuthCheck", []any{bad})
		if f := fault(err); f.Code != faultAuthentication {
			t.Fatalf("bad password: %d %q", f.Code, f.String)
		}
	}
	_, err = h.Call(ctx, "AuthCheck", []any{map[string]any{"AuthMethod": "password", "Username": "larry@princeton.edu", "AuthString": "pw"}})
	f = fault(err)
	if f.Code != faultAuthentication || !strings.Contains(f.String, "too many failed logins for larry@princeton.edu; try again in 1 s") {
		t.Errorf("locked-out login: %d %q", f.Code, f.String)
	}
}
