package service

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// outboxTo returns the undelivered messages to rcpt, oldest first.
func (e *env) outboxTo(rcpt string) []store.Mail {
	e.t.Helper()
	var due []store.Mail
	e.must(e.s.db.Read(e.ctx, func(tx *store.Tx) error {
		var err error
		due, err = tx.DueMail(e.ctx, e.s.now()+86400*365, 1000)
		return err
	}))
	var out []store.Mail
	for _, m := range due {
		if strings.Join(m.Recipients, ",") == rcpt {
			out = append(out, m)
		}
	}
	return out
}

var tokenInLink = regexp.MustCompile(`/(verify|reset)\?token=(\S+)`)

// linkToken returns the token of the last link mailed to rcpt.
func (e *env) linkToken(rcpt, path string) string {
	e.t.Helper()
	msgs := e.outboxTo(rcpt)
	for i := len(msgs) - 1; i >= 0; i-- {
		if m := tokenInLink.FindStringSubmatch(msgs[i].Body); m != nil && m[1] == path {
			tok, err := url.QueryUnescape(m[2])
			e.must(err)
			return tok
		}
	}
	e.t.Fatalf("no %s link mailed to %s", path, rcpt)
	return ""
}

func anonCaller() *core.Caller {
	return &core.Caller{Kind: core.Anonymous, Roles: []string{core.RoleAnonymous}}
}

// TestEmailVerification: sign-up mails a link that confirms the address
// once; a wrong or reused token is refused; an expired one too.
func TestEmailVerification(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		e.s.opts.PortalURL = "https://plc.example.org/"
		e.site("princeton", 10)
		anon := anonCaller()
		_, err := e.s.RegisterPerson(e.ctx, anon, core.Registration{FirstName: "Ada", LastName: "L", Email: "Ada@Princeton.edu", Site: "princeton", Password: "long-enough"})
		e.must(err)
		msgs := e.outboxTo("ada@princeton.edu")
		if len(msgs) != 1 || msgs[0].Kind != MailVerify || !strings.Contains(msgs[0].Body, "https://plc.example.org/verify?token=") {
			t.Fatalf("verification mail: %+v", msgs)
		}
		tok := e.linkToken("ada@princeton.edu", "verify")
		if len(tok) != 43 {
			t.Fatalf("token %q: want 32 random bytes in base64url", tok)
		}
		// Only the hash is stored.
		var key string
		e.must(e.s.db.Read(e.ctx, func(tx *store.Tx) error {
			_, err := tx.QueryRow(e.ctx, "SELECT verification_key FROM persons WHERE email = ?", []any{"ada@princeton.edu"}, &key)
			return err
		}))
		if strings.Contains(key, tok) || !strings.HasPrefix(key, "verify:") || len(key) != len("verify:")+64 {
			t.Fatalf("stored key %q", key)
		}
		if _, err := e.s.ConfirmEmail(e.ctx, anon, tok+"x"); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("wrong token: %v", err)
		}
		// A reset token is not a verification token.
		if err := e.s.CompletePasswordReset(e.ctx, anon, tok, "new-password"); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("verify token used for a reset: %v", err)
		}
		email, err := e.s.ConfirmEmail(e.ctx, anon, tok)
		if err != nil || email != "ada@princeton.edu" {
			t.Fatalf("confirm: %q %v", email, err)
		}
		if _, err := e.s.ConfirmEmail(e.ctx, anon, tok); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("second use: %v", err)
		}

		// Expired: 24 hours.
		_, err = e.s.RegisterPerson(e.ctx, anon, core.Registration{FirstName: "Bob", LastName: "L", Email: "bob@princeton.edu", Site: "princeton", Password: "long-enough"})
		e.must(err)
		tok = e.linkToken("bob@princeton.edu", "verify")
		e.clock.Add(TokenLifetime + time.Second)
		if _, err := e.s.ConfirmEmail(e.ctx, anon, tok); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired: %v", err)
		}
	})
}

// TestPasswordResetLink: the forgot-password request answers the same for
// any address, mails only enabled non-admin accounts, and the link sets a
// password once, within its lifetime; requests are rate-limited.
func TestPasswordResetLink(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("princeton", 10)
		e.person("user@princeton.edu", site, core.RoleUser)
		e.person("boss@princeton.edu", site, core.RoleAdmin)
		anon := anonCaller()
		for _, addr := range []string{"nobody@princeton.edu", "boss@princeton.edu", "USER@princeton.edu"} {
			if err := e.s.RequestPasswordReset(e.ctx, anon, addr); err != nil {
				t.Fatalf("request for %s: %v", addr, err)
			}
		}
		if n := len(e.outboxTo("nobody@princeton.edu")) + len(e.outboxTo("boss@princeton.edu")); n != 0 {
			t.Fatalf("%d reset mails to a missing or admin account", n)
		}
		tok := e.linkToken("user@princeton.edu", "reset")
		if err := e.s.CompletePasswordReset(e.ctx, anon, tok, "short"); core.ErrorField(err) != "password" {
			t.Fatalf("short password: %v", err)
		}
		e.must(e.s.CompletePasswordReset(e.ctx, anon, tok, "brand-new-pass"))
		e.login("user@princeton.edu", "brand-new-pass")
		if _, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "user@princeton.edu", Password: "pw-user@princeton.edu"}, nil); err == nil {
			t.Fatal("the old password still works")
		}
		if err := e.s.CompletePasswordReset(e.ctx, anon, tok, "another-pass"); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("second use: %v", err)
		}

		// A newer request replaces the older link; an expired link fails.
		e.clock.Add(time.Hour) // past the backoff of the requests above
		e.must(e.s.RequestPasswordReset(e.ctx, anon, "user@princeton.edu"))
		old := e.linkToken("user@princeton.edu", "reset")
		e.clock.Add(time.Hour)
		e.must(e.s.RequestPasswordReset(e.ctx, anon, "user@princeton.edu"))
		tok = e.linkToken("user@princeton.edu", "reset")
		if tok == old {
			t.Fatal("the same token twice")
		}
		if err := e.s.CompletePasswordReset(e.ctx, anon, old, "another-pass"); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("replaced link: %v", err)
		}
		e.clock.Add(TokenLifetime + time.Second)
		if err := e.s.CompletePasswordReset(e.ctx, anon, tok, "another-pass"); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired link: %v", err)
		}

		// Many requests for one address are refused for a while, whether
		// the account exists or not.
		for _, addr := range []string{"user@princeton.edu", "ghost@princeton.edu"} {
			var err error
			for i := 0; i < 10 && err == nil; i++ {
				err = e.s.RequestPasswordReset(e.ctx, anon, addr)
			}
			if core.ErrorCode(err) != core.RateLimited {
				t.Fatalf("%s: 10 requests: %v", addr, err)
			}
		}
	})
}

// TestPLCAPILinks: VerifyPerson and ResetPassword with the original's
// semantics, NotifyPersons and NotifySupport.
func TestPLCAPILinks(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("princeton", 10)
		admin := e.admin
		user := e.person("user@princeton.edu", site, core.RoleUser)
		anon := anonCaller()
		id, err := e.s.RegisterPerson(e.ctx, anon, core.Registration{FirstName: "Ada", LastName: "L", Email: "ada@princeton.edu", Site: "princeton", Password: "long-enough"})
		e.must(err)

		// VerifyPerson: one pending at a time; the key checks once.
		if err := e.s.VerifyPerson(e.ctx, admin, id, "", 0); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "pending") {
			t.Fatalf("second request while pending: %v", err)
		}
		tok := e.linkToken("ada@princeton.edu", "verify")
		if err := e.s.VerifyPerson(e.ctx, admin, "ada@princeton.edu", "wrong", 0); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("wrong key: %v", err)
		}
		e.must(e.s.VerifyPerson(e.ctx, admin, "ada@princeton.edu", tok, 0))
		if err := e.s.VerifyPerson(e.ctx, admin, id, tok, 0); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("reused key: %v", err)
		}
		if err := e.s.VerifyPerson(e.ctx, admin, user.PersonID, "", 0); core.ErrorCode(err) != core.Invalid {
			t.Fatalf("enabled account: %v", err)
		}
		if err := e.s.VerifyPerson(e.ctx, admin, int64(987654), "", 0); core.ErrorCode(err) != core.NotFound {
			t.Fatalf("missing account: %v", err)
		}
		// An expired key mails a new link and is refused.
		e.must(e.s.VerifyPerson(e.ctx, admin, id, "", e.s.now()+60))
		tok = e.linkToken("ada@princeton.edu", "verify")
		e.clock.Add(2 * time.Minute)
		if err := e.s.VerifyPerson(e.ctx, admin, id, tok, 0); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "another e-mail") {
			t.Fatalf("expired key: %v", err)
		}
		if tok2 := e.linkToken("ada@princeton.edu", "verify"); tok2 == tok {
			t.Fatal("no new link after an expired key")
		}

		// ResetPassword: enabled non-admins only; with the key a random
		// password is set and mailed.
		if err := e.s.ResetPassword(e.ctx, admin, id, "", 0); core.ErrorCode(err) != core.Invalid {
			t.Fatalf("disabled account: %v", err)
		}
		if err := e.s.ResetPassword(e.ctx, admin, admin.PersonID, "", 0); core.ErrorCode(err) != core.Invalid || !strings.Contains(err.Error(), "admin") {
			t.Fatalf("admin account: %v", err)
		}
		e.must(e.s.ResetPassword(e.ctx, admin, "user@princeton.edu", "", 0))
		if err := e.s.ResetPassword(e.ctx, admin, "user@princeton.edu", "", 0); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("second request while pending: %v", err)
		}
		tok = e.linkToken("user@princeton.edu", "reset")
		e.must(e.s.ResetPassword(e.ctx, admin, user.PersonID, tok, 0))
		msgs := e.outboxTo("user@princeton.edu")
		last := msgs[len(msgs)-1]
		m := regexp.MustCompile(`reset to:\n\n  (\S+)\n`).FindStringSubmatch(last.Body)
		if last.Kind != MailResetPassword || m == nil {
			t.Fatalf("new password mail: %+v", last)
		}
		e.login("user@princeton.edu", m[1])
		if err := e.s.ResetPassword(e.ctx, admin, user.PersonID, tok, 0); core.ErrorCode(err) != core.Forbidden {
			t.Fatalf("reused key: %v", err)
		}

		// NotifyPersons and NotifySupport.
		e.must(e.s.NotifyPersons(e.ctx, admin, &core.Filter{IsList: true, Names: []string{"user@princeton.edu"}, IDs: []int64{id}}, "Hello\r\nBcc: x@evil", "the body"))
		got := e.outboxTo("user@princeton.edu,ada@princeton.edu")
		if len(got) == 0 {
			got = e.outboxTo("ada@princeton.edu,user@princeton.edu")
		}
		if len(got) != 1 || got[0].Kind != MailNotifyPersons || got[0].Subject != "Hello  Bcc: x@evil" || got[0].Body != "the body" {
			t.Fatalf("NotifyPersons: %+v", got)
		}
		if err := e.s.NotifyPersons(e.ctx, admin, &core.Filter{IsList: true, IDs: []int64{987654}}, "s", "b"); core.ErrorCode(err) != core.NotFound {
			t.Fatalf("NotifyPersons to nobody: %v", err)
		}
		if err := e.s.NotifySupport(e.ctx, admin, "s", "b"); core.ErrorCode(err) != core.Unimplemented {
			t.Fatalf("NotifySupport without an address: %v", err)
		}
		e.s.opts.SupportEmail = "support@plc.example.org"
		e.must(e.s.NotifySupport(e.ctx, admin, "help", "please"))
		if got := e.outboxTo("support@plc.example.org"); len(got) != 1 || got[0].Subject != "help" || got[0].Kind != MailNotifySupport {
			t.Fatalf("NotifySupport: %+v", got)
		}
	})
}
