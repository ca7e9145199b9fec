package plcapi

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
)

// GetSliceTicket is served over the real service: the answer is a ticket
// that verifies with the key nodes get in their state.
func TestGetSliceTicket(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pub, priv, _ := ed25519.GenerateKey(nil)
	s := service.New(db, service.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PasswordCost: bcrypt.MinCost, TicketKey: priv})
	t.Cleanup(func() { s.Close() })
	if _, err := s.Init(ctx, itAdmin, itAdminPW); err != nil {
		t.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: itAdmin, Password: itAdminPW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	node, _ := joinedNode(t, s, admin, "tk", "n1.tk.org")
	sid, err := s.Add(ctx, admin, core.Slice, core.Record{"name": "tk_slice", "url": "http://x", "description": "d"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Link(ctx, admin, core.SliceNode, sid, node, nil); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(s, Options{})
	auth := map[string]any{"AuthMethod": "password", "Username": itAdmin, "AuthString": itAdminPW}
	v, f := rpc(t, h, "GetSliceTicket", auth, "tk_slice")
	if f != nil {
		t.Fatalf("fault %v", f)
	}
	tk, err := ticket.Verify(v.(string), map[string]ed25519.PublicKey{ticket.KeyID(pub): pub})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Sliver.Name != "tk_slice" || !tk.For(node) {
		t.Errorf("ticket %+v", tk)
	}
	_, f = rpc(t, h, "GetSliceTicket", auth, "no_such_slice")
	if f == nil || f.Code != 102 {
		t.Errorf("unknown slice: %v", f)
	}
}
