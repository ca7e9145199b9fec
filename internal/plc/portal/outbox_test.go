package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/portal"
	"github.com/planetlab/pl/internal/plc/service"
)

// TestOutboxPage: the admin sees every message with its state, attempts
// and last error (a real failed delivery: nothing listens at the relay's
// address); a user has no link and is refused at the URL with the
// service's error; /mailbox does not exist outside pl dev.
func TestOutboxPage(t *testing.T) {
	e := newEnv(t)
	e.person("user@princeton.edu", 30)
	e.person("pi@princeton.edu", 20)
	to := &core.Filter{IsList: true, Names: []string{"user@princeton.edu"}}
	e.must(e.svc.NotifyPersons(e.ctx, e.admin, to, "PlanetLab: first news", "Hello."))
	dead, err := mail.NewSMTP(mail.Config{Relay: "127.0.0.1:1", From: "plc@example.org", TLS: mail.TLSNone, Timeout: time.Second})
	e.must(err)
	_, err = e.svc.DeliverMail(e.ctx, dead) // fails
	e.must(err)
	const evil = `<script>alert(1)</script>`
	e.must(e.svc.NotifyPersons(e.ctx, e.admin, to, "Subject "+evil, "Body "+evil))

	a := e.browser()
	a.login(adminEmail, adminPW)
	_, body := a.get("/slices")
	wantBody(t, "admin menu", body, `<a href="/outbox">Outbox</a>`)
	resp, body := a.get("/outbox")
	wantStatus(t, "outbox", resp, body, http.StatusOK)
	wantBody(t, "outbox", body, "PlanetLab: first news", `class="mail-failed">failed`, "next try ", "connect", "Subject &lt;script&gt;")
	if strings.Contains(body, evil) {
		t.Fatalf("the outbox renders a subject unescaped:\n%s", body)
	}
	_, body = a.get("/outbox?state=queued")
	if strings.Contains(body, "first news") || !strings.Contains(body, "Subject &lt;script&gt;") {
		t.Fatalf("queued only:\n%s", body)
	}
	resp, body = a.get("/outbox?state=lost")
	wantStatus(t, "bad state", resp, body, http.StatusBadRequest)
	wantBody(t, "bad state", body, "state: want queued, failed or sent")

	u := e.browser()
	u.login("user@princeton.edu", "pw-user@princeton.edu")
	_, body = u.get("/slices")
	if strings.Contains(body, "/outbox") || strings.Contains(body, "/mailbox") {
		t.Fatalf("a user's menu offers the outbox:\n%s", body)
	}
	resp, body = u.get("/outbox")
	wantStatus(t, "a user", resp, body, http.StatusForbidden)
	wantBody(t, "a user", body, "GetOutbox: role not allowed (needs one of admin)")
	resp, body = e.browser().get("/mailbox")
	wantStatus(t, "no mailbox", resp, body, http.StatusNotFound)
}

// TestDevMailbox: under pl dev (the service's OpenOutbox and the portal's
// Mailbox) a newcomer reads the verification link of her sign-up at
// /mailbox before she may log in, and the link works.
func TestDevMailbox(t *testing.T) {
	e := newEnvOpts(t, service.Options{OpenOutbox: true}, portal.Options{Mailbox: true})
	e.svc.SetPortalURL(e.srv.URL)
	e.person("pi@princeton.edu", 20)
	b := e.browser()
	resp, body := b.post("/signup", url.Values{"csrf": {b.csrf("/signup")}, "first_name": {"Ada"}, "last_name": {"L"},
		"email": {"ada@princeton.edu"}, "site": {"princeton"}, "password": {"long-enough"}, "password2": {"long-enough"}})
	wantStatus(t, "sign-up", resp, body, http.StatusOK)
	_, body = b.get("/signup")
	wantBody(t, "menu", body, `<a href="/mailbox">Mailbox (dev)</a>`)
	resp, body = b.get("/mailbox")
	wantStatus(t, "mailbox", resp, body, http.StatusOK)
	wantBody(t, "mailbox", body, "ada@princeton.edu", "PlanetLab: confirm your e-mail address", `class="mail-queued">queued`)
	m := linkRE.FindString(body)
	if m == "" || !strings.HasPrefix(m, "/verify?token=") {
		t.Fatalf("no verification link in the mailbox:\n%s", body)
	}
	_, body = b.get(m)
	wantBody(t, "the link", body, `action="/verify"`)
}
