package plcapi

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/mail/mailtest"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestMailMethods drives VerifyPerson, ResetPassword, NotifyPersons and
// NotifySupport over XML-RPC against the real service; the mail goes
// through the outbox to a real SMTP server, and the key mailed by
// ResetPassword resets the password when given back.
func TestMailMethods(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := service.New(db, service.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), PasswordCost: bcrypt.MinCost,
		PortalURL: "https://plc.example.org", SupportEmail: "support@plc.example.org"})
	t.Cleanup(func() { s.Close() })
	if _, err := s.Init(ctx, itAdmin, itAdminPW); err != nil {
		t.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, core.Credentials{Method: "password", Username: itAdmin, Password: itAdminPW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	site, err := s.Add(ctx, admin, core.Site, core.Record{"login_base": "demo", "name": "Demo", "abbreviated_name": "demo", "max_slices": int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	uid, err := s.Add(ctx, admin, core.Person, core.Record{"email": "user@demo.org", "first_name": "U", "last_name": "Ser", "password": "user-password"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, admin, core.Person, uid, core.Record{"enabled": true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Link(ctx, admin, core.PersonSite, uid, site, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Link(ctx, admin, core.PersonRole, uid, int64(30), nil); err != nil {
		t.Fatal(err)
	}
	anon, _ := s.Authenticate(ctx, core.Credentials{Method: "anonymous"}, nil)
	newID, err := s.RegisterPerson(ctx, anon, core.Registration{FirstName: "New", LastName: "Comer", Email: "new@demo.org", Site: "demo", Password: "long-enough"})
	if err != nil {
		t.Fatal(err)
	}

	srv := mailtest.Start(t, "")
	sender, err := mail.NewSMTP(mail.Config{Relay: srv.Addr, From: "plc@example.org", TLS: mail.TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	inbox := func(rcpt string) []mailtest.Message {
		t.Helper()
		if _, err := s.DeliverMail(ctx, sender); err != nil {
			t.Fatal(err)
		}
		var out []mailtest.Message
		for _, m := range srv.Messages() {
			if strings.Join(m.To, ",") == rcpt {
				out = append(out, m)
			}
		}
		return out
	}
	keyRE := regexp.MustCompile(`\?token=(\S+)`)
	lastKey := func(rcpt string) string {
		t.Helper()
		msgs := inbox(rcpt)
		if len(msgs) == 0 {
			t.Fatalf("no mail to %s", rcpt)
		}
		m := keyRE.FindStringSubmatch(msgs[len(msgs)-1].Body)
		if m == nil {
			t.Fatalf("no link in %q", msgs[len(msgs)-1].Body)
		}
		k, err := url.QueryUnescape(m[1])
		if err != nil {
			t.Fatal(err)
		}
		return k
	}

	h := newHandler(s, Options{})
	root := map[string]any{"AuthMethod": "password", "Username": itAdmin, "AuthString": itAdminPW}
	user := map[string]any{"AuthMethod": "password", "Username": "user@demo.org", "AuthString": "user-password"}

	// Admin only.
	for _, c := range [][]any{{"VerifyPerson", user, newID}, {"ResetPassword", user, "user@demo.org"}, {"NotifySupport", user, "s", "b"},
		{"NotifyPersons", user, []any{uid}, "s", "b"}} {
		if _, f := rpc(t, h, c[0].(string), c[1:]...); f == nil || f.Code != faultPermission && f.Code != faultAuthentication {
			t.Fatalf("%s as a user: %v", c[0], f)
		}
	}

	// VerifyPerson: sign-up mailed a link already; its key verifies once.
	_, f := rpc(t, h, "VerifyPerson", root, newID)
	if f == nil || f.Code != faultPermission || !strings.Contains(f.String, "pending") {
		t.Fatalf("VerifyPerson while pending: %v", f)
	}
	key := lastKey("new@demo.org")
	if !strings.Contains(inbox("new@demo.org")[0].Body, "https://plc.example.org/verify?token=") {
		t.Fatalf("verification link: %q", inbox("new@demo.org")[0].Body)
	}
	if v, f := rpc(t, h, "VerifyPerson", root, "new@demo.org", key); f != nil || v != int64(1) {
		t.Fatalf("VerifyPerson with the key: %v %v", v, f)
	}
	if _, f := rpc(t, h, "VerifyPerson", root, "new@demo.org", key); f == nil || f.Code != faultPermission {
		t.Fatalf("VerifyPerson with a used key: %v", f)
	}
	if _, f := rpc(t, h, "VerifyPerson", root, "user@demo.org"); f == nil || f.Code != faultInvalidArgument {
		t.Fatalf("VerifyPerson of an enabled account: %v", f)
	}

	// ResetPassword: a link, then the key sets a random password, mailed.
	if _, f := rpc(t, h, "ResetPassword", root, itAdmin); f == nil || f.Code != faultInvalidArgument {
		t.Fatalf("ResetPassword of an admin: %v", f)
	}
	if v, f := rpc(t, h, "ResetPassword", root, "user@demo.org"); f != nil || v != int64(1) {
		t.Fatalf("ResetPassword: %v %v", v, f)
	}
	key = lastKey("user@demo.org")
	if v, f := rpc(t, h, "ResetPassword", root, uid, key); f != nil || v != int64(1) {
		t.Fatalf("ResetPassword with the key: %v %v", v, f)
	}
	msgs := inbox("user@demo.org")
	pw := regexp.MustCompile(`reset to:\s+(\S+)`).FindStringSubmatch(msgs[len(msgs)-1].Body)
	if pw == nil {
		t.Fatalf("no new password in %q", msgs[len(msgs)-1].Body)
	}
	if v, f := rpc(t, h, "AuthCheck", map[string]any{"AuthMethod": "password", "Username": "user@demo.org", "AuthString": pw[1]}); f != nil || v != int64(1) {
		t.Fatalf("AuthCheck with the mailed password: %v %v", v, f)
	}
	if _, f := rpc(t, h, "AuthCheck", user); f == nil {
		t.Fatal("the old password still works")
	}

	// NotifyPersons and NotifySupport.
	if v, f := rpc(t, h, "NotifyPersons", root, []any{"user@demo.org"}, "Maintenance", "PLC is down at noon."); f != nil || v != int64(1) {
		t.Fatalf("NotifyPersons: %v %v", v, f)
	}
	msgs = inbox("user@demo.org")
	if m := msgs[len(msgs)-1]; m.Subject != "Maintenance" || !strings.Contains(m.Body, "PLC is down at noon.") {
		t.Fatalf("NotifyPersons mail: %+v", m)
	}
	if _, f := rpc(t, h, "NotifyPersons", root, []any{int64(987654)}, "s", "b"); f == nil || f.Code != faultInvalidArgument {
		t.Fatalf("NotifyPersons to nobody: %v", f)
	}
	if v, f := rpc(t, h, "NotifySupport", root, "Help", "A node burns."); f != nil || v != int64(1) {
		t.Fatalf("NotifySupport: %v %v", v, f)
	}
	if got := inbox("support@plc.example.org"); len(got) != 1 || got[0].Subject != "Help" {
		t.Fatalf("NotifySupport mail: %+v", got)
	}
}
