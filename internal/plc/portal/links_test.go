package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/mail/mailtest"
)

// mailbox delivers the service's outbox to a real SMTP server.
type mailbox struct {
	e      *env
	srv    *mailtest.Server
	sender mail.Sender
}

func (e *env) mailbox() *mailbox {
	e.t.Helper()
	srv := mailtest.Start(e.t.(*testing.T), "")
	s, err := mail.NewSMTP(mail.Config{Relay: srv.Addr, From: "plc@example.org", TLS: mail.TLSNone, Timeout: 2 * time.Second})
	e.must(err)
	return &mailbox{e: e, srv: srv, sender: s}
}

// to delivers the outbox and returns the messages received for rcpt.
func (m *mailbox) to(rcpt string) []mailtest.Message {
	m.e.t.Helper()
	_, err := m.e.svc.DeliverMail(m.e.ctx, m.sender)
	m.e.must(err)
	var out []mailtest.Message
	for _, msg := range m.srv.Messages() {
		if strings.Join(msg.To, ",") == rcpt {
			out = append(out, msg)
		}
	}
	return out
}

var linkRE = regexp.MustCompile(`(/(?:verify|reset)\?token=[A-Za-z0-9_%-]+)`)

// link returns the path of the last one-time link mailed to rcpt.
func (m *mailbox) link(rcpt, prefix string) string {
	m.e.t.Helper()
	msgs := m.to(rcpt)
	for i := len(msgs) - 1; i >= 0; i-- {
		if l := linkRE.FindString(msgs[i].Body); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	m.e.t.Fatalf("no %s link mailed to %s: %+v", prefix, rcpt, msgs)
	return ""
}

// TestForgotAndResetPassword: the forgot form answers the same for any
// address; the mailed link (through a real SMTP server) sets a new
// password once; the forms need their CSRF token.
func TestForgotAndResetPassword(t *testing.T) {
	e := newEnv(t)
	e.person("user@example.org", 30)
	mb := e.mailbox()
	b := e.browser()

	_, body := b.get("/login")
	wantBody(t, "login page", body, `href="/forgot"`)
	resp, body := b.post("/forgot", url.Values{"email": {"user@example.org"}})
	wantStatus(t, "forgot without CSRF", resp, body, http.StatusForbidden)
	if n := len(mb.to("user@example.org")); n != 0 {
		t.Fatalf("a refused form sent %d mails", n)
	}

	var pages []string
	for _, addr := range []string{"user@example.org", "nobody@example.org", adminEmail} {
		resp, body = b.post("/forgot", url.Values{"csrf": {b.csrf("/forgot")}, "email": {addr}})
		wantStatus(t, "forgot "+addr, resp, body, http.StatusOK)
		pages = append(pages, strings.ReplaceAll(body, addr, "ADDR"))
	}
	if pages[0] != pages[1] || pages[0] != pages[2] {
		t.Fatalf("the forgot answer differs between an account, no account and an admin:\n%s\n---\n%s", pages[0], pages[1])
	}
	if n := len(mb.to("nobody@example.org")) + len(mb.to(adminEmail)); n != 0 {
		t.Fatalf("%d reset mails to no account or an admin", n)
	}
	link := mb.link("user@example.org", "/reset")

	// Opening the link changes nothing; the form needs CSRF and matching
	// passwords.
	resp, body = b.get(link)
	wantStatus(t, "reset page", resp, body, http.StatusOK)
	u, _ := url.Parse(link)
	tok := u.Query().Get("token")
	wantBody(t, "reset page", body, `name="token" value="`+tok+`"`)
	resp, body = b.post("/reset", url.Values{"token": {tok}, "password": {"new-password-1"}, "password2": {"new-password-1"}})
	wantStatus(t, "reset without CSRF", resp, body, http.StatusForbidden)
	csrf := b.csrf(link)
	resp, body = b.post("/reset", url.Values{"csrf": {csrf}, "token": {tok}, "password": {"new-password-1"}, "password2": {"other-password"}})
	wantStatus(t, "reset, passwords differ", resp, body, http.StatusBadRequest)
	wantBody(t, "reset, passwords differ", body, `id="password2-error"`)
	resp, body = b.post("/reset", url.Values{"csrf": {csrf}, "token": {tok}, "password": {"new-password-1"}, "password2": {"new-password-1"}})
	wantStatus(t, "reset", resp, body, http.StatusOK)
	wantBody(t, "reset", body, "new password is set")
	b.login("user@example.org", "new-password-1")

	// Used once only.
	b2 := e.browser()
	resp, body = b2.post("/reset", url.Values{"csrf": {b2.csrf(link)}, "token": {tok}, "password": {"new-password-2"}, "password2": {"new-password-2"}})
	wantStatus(t, "second use", resp, body, http.StatusForbidden)
	wantBody(t, "second use", body, "not valid")
	if _, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "user@example.org", Password: "new-password-2"}, nil); err == nil {
		t.Fatal("a used link set a password")
	}
}

// TestResetLinkExpires: a link is refused after 24 hours.
func TestResetLinkExpires(t *testing.T) {
	var skew atomic.Int64 // what the clock is ahead of time.Now
	e := newEnvClock(t, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	e.person("user@example.org", 30)
	mb := e.mailbox()
	e.must(e.svc.RequestPasswordReset(e.ctx, &core.Caller{Kind: core.Anonymous, Roles: []string{core.RoleAnonymous}}, "user@example.org"))
	link := mb.link("user@example.org", "/reset")
	skew.Store(int64(25 * time.Hour))
	b := e.browser()
	u, _ := url.Parse(link)
	resp, body := b.post("/reset", url.Values{"csrf": {b.csrf(link)}, "token": {u.Query().Get("token")}, "password": {"new-password-1"}, "password2": {"new-password-1"}})
	wantStatus(t, "expired link", resp, body, http.StatusForbidden)
	wantBody(t, "expired link", body, "expired")
}

// TestSignupVerifyLink: sign-up mails a verification link; its page
// confirms the address once, by a POST with the CSRF token.
func TestSignupVerifyLink(t *testing.T) {
	e := newEnv(t)
	e.person("pi@example.org", 20)
	mb := e.mailbox()
	b := e.browser()
	resp, body := b.post("/signup", url.Values{"csrf": {b.csrf("/signup")}, "first_name": {"Grace"}, "last_name": {"H"},
		"email": {"grace@example.org"}, "site": {"princeton"}, "password": {"long-enough"}, "password2": {"long-enough"}})
	wantStatus(t, "sign-up", resp, body, http.StatusOK)
	wantBody(t, "sign-up", body, "confirm your address")
	link := mb.link("grace@example.org", "/verify")
	resp, body = b.get(link)
	wantStatus(t, "verify page", resp, body, http.StatusOK)
	wantBody(t, "verify page", body, "Confirm my address")
	u, _ := url.Parse(link)
	tok := u.Query().Get("token")
	resp, body = b.post("/verify", url.Values{"token": {tok}})
	wantStatus(t, "verify without CSRF", resp, body, http.StatusForbidden)
	resp, body = b.post("/verify", url.Values{"csrf": {b.csrf(link)}, "token": {tok}})
	wantStatus(t, "verify", resp, body, http.StatusOK)
	wantBody(t, "verify", body, "grace@example.org is confirmed", "approval of a PI")
	resp, body = b.post("/verify", url.Values{"csrf": {b.csrf(link)}, "token": {tok}})
	wantStatus(t, "verify again", resp, body, http.StatusForbidden)
	// The token is escaped where it is shown.
	resp, body = b.get(`/verify?token="><script>alert(1)</script>`)
	wantStatus(t, "verify page with an injected token", resp, body, http.StatusOK)
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("token rendered unescaped:\n%s", body)
	}
}
