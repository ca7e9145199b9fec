package portal_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/mail/mailtest"
)

// chromium finds Debian's chromium (scripts/deps.sh test installs it).
func chromium(t *testing.T) string {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Skip("chromium is not installed (scripts/deps.sh test installs it): no browser test")
	return ""
}

// TestBrowserJourney drives the portal in a real headless Chromium: sign
// up, PI approval, the PI creates a slice and adds the new user, log in,
// add a key, a user refused at the slice creation page, see the expiry colour, get the
// expiry warning mail from a real SMTP server, renew, add a node by the
// selection filter and see it on the world map, log out; a user who
// is no PI does not see the approval queue and is refused at its URL.
// Screenshots of the page are saved when it fails.
func TestBrowserJourney(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t)
	e.person("pi@princeton.edu", 20)
	smtp := mailtest.Start(t, "")
	sender, err := mail.NewSMTP(mail.Config{Relay: smtp.Addr, From: "plc@example.org", TLS: mail.TLSNone})
	e.must(err)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("ignore-certificate-errors", true), // httptest's certificate
		chromedp.NoSandbox,                               // root in CI
		chromedp.WindowSize(412, 915),                    // a phone
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	step := "start"
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		sctx, c := context.WithTimeout(ctx, 5*time.Second)
		defer c()
		if png, err := chromedp.Run(sctx, chromedp.FullScreenshot(80)); err == nil {
			dir := os.Getenv("PL_TEST_ARTIFACTS")
			if dir == "" {
				dir = os.TempDir()
			}
			p := filepath.Join(dir, "portal-"+strings.ReplaceAll(step, " ", "-")+".jpg")
			if os.WriteFile(p, png, 0o644) == nil {
				t.Logf("screenshot of the failed step %q: %s", step, p)
			}
		}
	})
	u := e.srv.URL
	run := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step = name
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	login := func(email, pw string) {
		t.Helper()
		run("log in "+email,
			chromedp.Navigate(u+"/login"),
			chromedp.SendKeys(chromedp.ID("email"), email),
			chromedp.SendKeys(chromedp.ID("password"), pw+"\n"),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"]`)))
	}
	logout := func() {
		t.Helper()
		// Wait for the login page: the page before may show a .flash too.
		run("log out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	}

	// Sign up.
	run("sign up",
		chromedp.Navigate(u+"/signup"),
		chromedp.SendKeys(chromedp.ID("first_name"), "Ada"),
		chromedp.SendKeys(chromedp.ID("last_name"), "Lovelace"),
		chromedp.SendKeys(chromedp.ID("email"), "ada@princeton.edu"),
		chromedp.SetValue(chromedp.ID("site"), "princeton"),
		chromedp.SendKeys(chromedp.ID("password"), "long-enough"),
		chromedp.SendKeys(chromedp.ID("password2"), "long-enough"),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if s := text(".flash"); !strings.Contains(s, "awaits the approval of a PI") {
		t.Fatalf("after sign-up: %q", s)
	}

	// The PI approves with one click.
	login("pi@princeton.edu", "pw-pi@princeton.edu")
	run("pending", chromedp.Navigate(u+"/pending"), chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Approve ada@princeton.edu"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Approve ada@princeton.edu"]`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if s := text(".flash"); s != "Approved ada@princeton.edu." {
		t.Fatalf("after approval: %q", s)
	}

	// The PI creates Ada's slice in the browser: a bad name first (the
	// service's error beside the field), then a good one; then adds Ada.
	run("new slice, bad name", chromedp.Navigate(u+"/slices"), chromedp.Click(chromedp.ID("new-slice")),
		chromedp.WaitVisible(chromedp.ID("short")),
		chromedp.SetValue(chromedp.ID("site"), "princeton"),
		chromedp.SendKeys(chromedp.ID("short"), "ada lab"),
		chromedp.SendKeys(chromedp.ID("description"), "Ada's experiment"),
		chromedp.SendKeys(chromedp.ID("url"), "https://example.org/ada"),
		chromedp.Click(chromedp.CSS(`form[action="/slices/new"] button`)),
		chromedp.WaitVisible(chromedp.ID("short-error")))
	if s := text("#short-error"); !strings.Contains(s, `Invalid slice name "princeton_ada lab"`) {
		t.Fatalf("bad slice name error: %q", s)
	}
	run("new slice", chromedp.SetValue(chromedp.ID("short"), "ada"),
		chromedp.Click(chromedp.CSS(`form[action="/slices/new"] button`)),
		chromedp.WaitVisible(chromedp.ID("member-email")))
	if s := text(".flash"); !strings.HasPrefix(s, "Slice created.") {
		t.Fatalf("after creating the slice: %q", s)
	}
	run("add member", chromedp.SendKeys(chromedp.ID("member-email"), "ada@princeton.edu"),
		chromedp.Click(chromedp.CSS(`form[action="/slices/princeton_ada/members"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Remove ada@princeton.edu"]`)))
	if s := text(".flash"); s != "Added ada@princeton.edu to the slice." {
		t.Fatalf("after adding the member: %q", s)
	}
	run("site as the PI", chromedp.Navigate(u+"/sites/princeton"),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Disable ada@princeton.edu"]`)))
	logout()

	// Ada logs in and adds a key; a bad one first.
	login("ada@princeton.edu", "long-enough")
	run("bad key", chromedp.Navigate(u+"/keys"),
		chromedp.SendKeys(chromedp.ID("key"), "ssh-ed25519 not-base64!"),
		chromedp.Click(chromedp.CSS(`form[action="/keys"] button`)),
		chromedp.WaitVisible(chromedp.ID("key-error")))
	if s := text("#key-error"); !strings.Contains(s, "key") {
		t.Fatalf("bad key error: %q", s)
	}
	run("good key",
		chromedp.SetValue(chromedp.ID("key"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ada@laptop"),
		chromedp.Click(chromedp.CSS(`form[action="/keys"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if s := text(".flash"); s != "Key added." {
		t.Fatalf("after adding a key: %q", s)
	}

	// Ada sees her slice but may not create one: no link, and the page
	// refuses her with the service's error.
	run("no new slice for a user", chromedp.Navigate(u+"/slices"), chromedp.WaitVisible(chromedp.CSS(`a[href="/slices/princeton_ada"]`)))
	if n, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.ID("new-slice"), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
		t.Fatalf("a user is offered to create a slice (%v)", err)
	}
	run("new slice as a user", chromedp.Navigate(u+"/slices/new"), chromedp.WaitVisible(chromedp.CSS(".error")))
	if s := text(".error"); s != "AddSlice: role not allowed (needs one of admin, pi)" {
		t.Fatalf("a user at /slices/new: %q", s)
	}

	// Eleven days pass (the admin moves the expiry 3 days ahead): amber,
	// and a warning mail.
	sid, err := e.svc.Resolve(e.ctx, e.admin, core.Slice, "princeton_ada")
	e.must(err)
	_, err = e.svc.RenewSlice(e.ctx, e.admin, sid, time.Now().Add(3*24*time.Hour).Unix())
	e.must(err)
	e.must(e.svc.QueueExpiryWarnings(e.ctx))
	_, err = e.svc.DeliverMail(e.ctx, sender)
	e.must(err)
	var warning *mailtest.Message
	for _, m := range smtp.Wait(3, 5*time.Second) {
		if strings.Contains(m.Subject, "slice princeton_ada expires") && strings.Contains(strings.Join(m.To, ","), "ada@princeton.edu") {
			warning = &m
		}
	}
	if warning == nil {
		t.Fatalf("no expiry warning mail to ada: %+v", smtp.Messages())
	}
	run("slices", chromedp.Navigate(u+"/slices"), chromedp.WaitVisible(chromedp.CSS(`a[href="/slices/princeton_ada"]`)))
	class, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`tbody tr td:nth-child(2)`), "class"))
	if err != nil || class.Value != "exp-warn" {
		t.Fatalf("a slice expiring in 3 days has class %q (%v), want exp-warn", class.Value, err)
	}
	run("renew", chromedp.Click(chromedp.CSS(`a[href="/slices/princeton_ada"]`)),
		chromedp.WaitVisible(chromedp.ID("for")),
		chromedp.SetValue(chromedp.ID("for"), "max"),
		chromedp.Click(chromedp.CSS(`form[action="/slices/princeton_ada/renew"] button`)),
		chromedp.WaitVisible(chromedp.ID("granted")))
	if s := text("#granted"); !strings.Contains(s, "in 56 days") {
		t.Fatalf("granted: %q", s)
	}

	// Two located nodes report; Ada adds the least loaded by the filter,
	// previewed first, and sees it on the slice's world map.
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, e.site, core.Record{"latitude": 40.35, "longitude": -74.65}))
	for host, load := range map[string]float64{"pl1.princeton.edu": 0.3, "pl2.princeton.edu": 2.5} {
		e.up(e.add(core.Node, core.Record{"site_id": e.site, "hostname": host}), load)
	}
	e.must(e.svc.MonitorStep(e.ctx))
	run("preview by filter", chromedp.Navigate(u+"/slices/princeton_ada/add"),
		chromedp.SendKeys(chromedp.ID("where"), "load < 1"),
		chromedp.Click(chromedp.CSS(`form[action="/slices/princeton_ada/nodes/select"] button`)),
		chromedp.WaitVisible(chromedp.ID("preview")))
	if s := text("#preview"); s != "The filter chooses 1 node (1 not in the slice yet)" {
		t.Fatalf("preview: %q", s)
	}
	run("confirm", chromedp.Click(chromedp.CSS(`#preview-section form button`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if s := text(".flash"); s != "Added 1 node." {
		t.Fatalf("after confirming: %q", s)
	}
	dots, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS(`figure.map svg circle.dot`)))
	if err != nil || len(dots) != 1 || !strings.Contains(dots[0].AttributeValue("class"), "st-up") {
		t.Fatalf("map dots %v (%v), want one up node", dots, err)
	}
	if title, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`figure.map svg circle.dot title`))); err != nil || title != "pl1.princeton.edu (princeton): up" {
		t.Fatalf("dot title %q (%v)", title, err)
	}
	if png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("figure.map"))); err == nil && os.Getenv("PL_TEST_ARTIFACTS") != "" {
		os.WriteFile(filepath.Join(os.Getenv("PL_TEST_ARTIFACTS"), "portal-map.png"), png, 0o644)
	}

	// Ada is no PI: no queue in the menu, and its URL refuses her.
	nav := text("nav")
	if strings.Contains(nav, "Pending") {
		t.Fatalf("a user's menu offers the approval queue: %q", nav)
	}
	run("pending as a user", chromedp.Navigate(u+"/pending"), chromedp.WaitVisible(chromedp.CSS(".error")))
	if s := text(".error"); !strings.Contains(s, "only PIs and admins") {
		t.Fatalf("a user at /pending: %q", s)
	}
	// Nor may she manage her site's people or read the outbox: no buttons,
	// and the URL refuses her with the API's error.
	run("site as a user", chromedp.Navigate(u+"/sites/princeton"), chromedp.WaitVisible(chromedp.ID("people")))
	if n, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS(`form[action*="/enabled"], form[action*="/roles/"]`), chromedp.AtLeast(0))); err != nil || len(n) != 0 {
		t.Fatalf("a user is offered %d person actions (%v)", len(n), err)
	}
	run("outbox as a user", chromedp.Navigate(u+"/outbox"), chromedp.WaitVisible(chromedp.CSS(".error")))
	if s := text(".error"); s != "GetOutbox: role not allowed (needs one of admin)" {
		t.Fatalf("a user at /outbox: %q", s)
	}
	logout()
	if s := text(".flash"); s != "You are logged out." {
		t.Fatalf("after logout: %q", s)
	}
	run("slices after logout", chromedp.Navigate(u+"/slices"), chromedp.WaitVisible(chromedp.ID("password")))
}
