package portal_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/portal"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
	"golang.org/x/crypto/bcrypt"
)

const adminEmail, adminPW = "admin@example.org", "admin-password"

// env is the real service over SQLite with the portal over TLS.
type env struct {
	t     testing.TB
	ctx   context.Context
	svc   *service.Service
	db    *store.DB
	admin *core.Caller
	srv   *httptest.Server
	site  int64
}

func newEnv(t testing.TB) *env { t.Helper(); return newEnvClock(t, nil) }

// newEnvClock is newEnv with the service's clock now (nil: time.Now).
func newEnvClock(t testing.TB, now func() time.Time) *env {
	t.Helper()
	return newEnvOpts(t, service.Options{Now: now}, portal.Options{})
}

// newEnvOpts is newEnv with options of the service and the portal (the
// test's store, planet, accounts and outbox are filled in).
func newEnvOpts(t testing.TB, so service.Options, po portal.Options) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	so.PasswordCost = bcrypt.MinCost
	svc := service.New(db, so)
	if _, err := svc.Init(ctx, adminEmail, adminPW); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, svc: svc, db: db}
	e.admin, err = svc.Authenticate(ctx, core.Credentials{Method: "password", Username: adminEmail, Password: adminPW}, nil)
	e.must(err)
	po.Planet, po.Accounts, po.Outbox = svc, svc, svc
	h := portal.New(svc, po)
	// As PLC's server does: the service learns each request's source.
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(service.WithRemoteAddr(r.Context(), "192.0.2.7")))
	}))
	t.Cleanup(e.srv.Close)
	e.site = e.add(core.Site, core.Record{"login_base": "princeton", "name": "Princeton", "abbreviated_name": "princeton", "max_slices": int64(10)})
	return e
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) add(class core.Class, rec core.Record) int64 {
	e.t.Helper()
	id, err := e.svc.Add(e.ctx, e.admin, class, rec)
	if err != nil {
		e.t.Fatalf("add %s %v: %v", class, rec, err)
	}
	return id
}

// person adds an enabled person of the site with roles.
func (e *env) person(email string, roles ...int64) int64 {
	e.t.Helper()
	id := e.add(core.Person, core.Record{"email": email, "first_name": "Ada", "last_name": "L", "password": "pw-" + email})
	e.must(e.svc.Update(e.ctx, e.admin, core.Person, id, core.Record{"enabled": true}))
	e.must(e.svc.Link(e.ctx, e.admin, core.PersonSite, id, e.site, nil))
	for _, r := range roles {
		e.must(e.svc.Link(e.ctx, e.admin, core.PersonRole, id, r, nil))
	}
	return id
}

// slice adds a slice expiring after d with the given members.
func (e *env) slice(name, desc string, d time.Duration, members ...int64) int64 {
	e.t.Helper()
	id := e.add(core.Slice, core.Record{"name": name, "description": desc, "url": "http://example.org/" + name})
	_, err := e.svc.RenewSlice(e.ctx, e.admin, id, time.Now().Add(d).Unix())
	e.must(err)
	for _, p := range members {
		e.must(e.svc.Link(e.ctx, e.admin, core.SlicePerson, id, p, nil))
	}
	return id
}

// browser is a client with a cookie jar.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	e.must(err)
	c := &http.Client{Transport: e.srv.Client().Transport, Jar: jar}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: c}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	resp, err := b.c.Do(req)
	b.e.must(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	b.e.must(err)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	req, err := http.NewRequest("GET", b.e.srv.URL+path, nil)
	b.e.must(err)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	req, err := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	b.e.must(err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the CSRF token of the form on a page.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	_, body := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.e.t.Fatalf("no CSRF token on %s:\n%s", path, body)
	}
	return m[1]
}

func (b *browser) login(email, pw string) {
	b.e.t.Helper()
	resp, body := b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "email": {email}, "password": {pw}})
	if resp.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("login %s: %d\n%s", email, resp.StatusCode, body)
	}
}

func cookieOf(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func wantStatus(t *testing.T, what string, resp *http.Response, body string, st int) {
	t.Helper()
	if resp.StatusCode != st {
		t.Fatalf("%s: status %d, want %d\n%s", what, resp.StatusCode, st, body)
	}
}

func wantBody(t *testing.T, what, body string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(body, s) {
			t.Fatalf("%s: page lacks %q:\n%s", what, s, body)
		}
	}
}

func TestLoginSessionCookieLogout(t *testing.T) {
	e := newEnv(t)
	e.person("user@example.org", 30)
	b := e.browser()

	resp, _ := b.get("/slices")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fslices" {
		t.Fatalf("anonymous /slices: %d to %q, want the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := b.get("/login")
	wantStatus(t, "login page", resp, body, 200)
	ck := cookieOf(resp, portal.CSRFCookie)
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("CSRF cookie %+v: want Secure, HttpOnly, SameSite=Strict", ck)
	}
	tok := csrfRE.FindStringSubmatch(body)[1]

	// Without the token, or with another one, the login form is refused
	// before any password check.
	resp, body = b.post("/login", url.Values{"email": {"user@example.org"}, "password": {"pw-user@example.org"}})
	wantStatus(t, "login without CSRF token", resp, body, http.StatusForbidden)
	wantBody(t, "login without CSRF token", body, "CSRF")
	resp, body = b.post("/login", url.Values{"csrf": {strings.Repeat("0", 64)}, "email": {"user@example.org"}, "password": {"pw-user@example.org"}})
	wantStatus(t, "login with a wrong CSRF token", resp, body, http.StatusForbidden)

	resp, body = b.post("/login", url.Values{"csrf": {tok}, "email": {"user@example.org"}, "password": {"wrong"}})
	wantStatus(t, "wrong password", resp, body, http.StatusUnauthorized)
	wantBody(t, "wrong password", body, `value="user@example.org"`, `class="error"`)

	resp, body = b.post("/login", url.Values{"csrf": {tok}, "email": {"user@example.org"}, "password": {"pw-user@example.org"}, "next": {"/keys"}})
	wantStatus(t, "login", resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/keys" {
		t.Fatalf("login goes to %q, want /keys", loc)
	}
	sess := cookieOf(resp, portal.SessionCookie)
	if sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, with a lifetime", sess)
	}
	// The cookie is a service session: the API accepts it too.
	if _, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "session", Session: sess.Value}, nil); err != nil {
		t.Fatalf("the portal's session is not a service session: %v", err)
	}
	resp, body = b.get("/slices")
	wantStatus(t, "slices", resp, body, 200)
	wantBody(t, "slices", body, "Log out user@example.org")

	// An off-site next is not followed.
	b2 := e.browser()
	resp, _ = b2.post("/login", url.Values{"csrf": {b2.csrf("/login")}, "email": {"user@example.org"}, "password": {"pw-user@example.org"}, "next": {"//evil.example/"}})
	if loc := resp.Header.Get("Location"); loc != "/slices" {
		t.Fatalf("login with an off-site next goes to %q, want /slices", loc)
	}

	tok = b.csrf("/slices")
	resp, body = b.post("/logout", url.Values{"csrf": {tok}})
	wantStatus(t, "logout", resp, body, http.StatusSeeOther)
	if _, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "session", Session: sess.Value}, nil); err == nil {
		t.Fatal("the session still works after logging out")
	}
	resp, _ = b.get("/slices")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("/slices after logout: %d, want a redirect to the login page", resp.StatusCode)
	}
}

func TestLoginRateLimited(t *testing.T) {
	e := newEnv(t)
	e.person("user@example.org", 30)
	b := e.browser()
	tok := b.csrf("/login")
	var resp *http.Response
	var body string
	for i := 0; i < 10; i++ {
		resp, body = b.post("/login", url.Values{"csrf": {tok}, "email": {"user@example.org"}, "password": {"wrong"}})
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		wantStatus(t, "wrong password", resp, body, http.StatusUnauthorized)
	}
	wantStatus(t, "repeated failures", resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("a refused login carries no Retry-After")
	}
}

func TestSlicesExpiryAndRenew(t *testing.T) {
	e := newEnv(t)
	u := e.person("user@example.org", 30)
	e.slice("princeton_far", "far away", 30*24*time.Hour, u)
	e.slice("princeton_soon", "soon", 3*24*time.Hour, u)
	id := e.slice("princeton_today", "today", 5*time.Hour, u)
	other := e.slice("princeton_other", "not mine", 30*24*time.Hour)
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")

	resp, body := b.get("/slices")
	wantStatus(t, "slices", resp, body, 200)
	for _, want := range []struct{ name, level string }{
		{"princeton_far", "exp-ok"}, {"princeton_soon", "exp-warn"}, {"princeton_today", "exp-danger"},
	} {
		re := regexp.MustCompile(`(?s)<a href="/slices/` + want.name + `">.*?<td class="([a-z-]+)">`)
		m := re.FindStringSubmatch(body)
		if m == nil || m[1] != want.level {
			t.Fatalf("slice %s: colour %v, want %s\n%s", want.name, m, want.level, body)
		}
	}
	wantBody(t, "slices", body, "in 3 days<", "in 5 hours<")
	if strings.Contains(body, "princeton_other") {
		t.Fatal("a user sees a slice he is not a member of")
	}

	resp, body = b.get("/slices/princeton_today")
	wantStatus(t, "slice", resp, body, 200)
	wantBody(t, "slice", body, "as long as allowed (8 weeks)", "Ada L &lt;user@example.org&gt;")
	tok := csrfRE.FindStringSubmatch(body)[1]

	// Without the token nothing changes.
	before := e.expires(id)
	resp, body = b.post("/slices/princeton_today/renew", url.Values{"for": {"max"}})
	wantStatus(t, "renew without CSRF token", resp, body, http.StatusForbidden)
	if e.expires(id) != before {
		t.Fatal("a renewal without a CSRF token changed the expiry")
	}

	start := time.Now()
	resp, body = b.post("/slices/princeton_today/renew", url.Values{"csrf": {tok}, "for": {"max"}})
	wantStatus(t, "renew as long as allowed", resp, body, 200)
	got := e.expires(id)
	if got < start.Add(core.MaxRenewal).Unix() || got > time.Now().Add(core.MaxRenewal).Unix() {
		t.Fatalf("granted expiry %v, want 8 weeks from now", time.Unix(got, 0))
	}
	wantBody(t, "renewed", body, `id="granted"`, time.Unix(got, 0).UTC().Format("2006-01-02 15:04 UTC"), "in 56 days")

	resp, body = b.post("/slices/princeton_today/renew", url.Values{"csrf": {tok}, "for": {"7"}})
	wantStatus(t, "renew for a week", resp, body, 200)
	if got := e.expires(id); got < start.Add(7*24*time.Hour).Unix() || got > time.Now().Add(7*24*time.Hour).Unix() {
		t.Fatalf("granted expiry %v, want a week from now", time.Unix(got, 0))
	}
	resp, body = b.post("/slices/princeton_today/renew", url.Values{"csrf": {tok}, "for": {"forever"}})
	wantStatus(t, "renew for a bad choice", resp, body, http.StatusBadRequest)
	wantBody(t, "renew for a bad choice", body, `renew: choose how long (got &#34;forever&#34;)`)

	// A slice of someone else: the service refuses (a user is no PI).
	before = e.expires(other)
	resp, body = b.post("/slices/princeton_other/renew", url.Values{"csrf": {tok}, "for": {"7"}})
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("renewing another's slice: %d\n%s", resp.StatusCode, body)
	}
	if e.expires(other) != before {
		t.Fatal("a user renewed a slice he is not a member of")
	}
}

func (e *env) expires(id int64) int64 {
	e.t.Helper()
	recs, err := e.svc.Get(e.ctx, e.admin, core.Slice, &core.Filter{IsList: true, IDs: []int64{id}}, []string{"expires"})
	e.must(err)
	return recs[0]["expires"].(int64)
}

func TestSliceNodesAndSSHCommand(t *testing.T) {
	e := newEnv(t)
	u := e.person("user@example.org", 30)
	id := e.slice("princeton_codeen", "CoDeeN", 30*24*time.Hour, u)
	n1 := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "planetlab1.cs.princeton.edu"})
	n2 := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "planetlab2.cs.princeton.edu"})
	tt, err := e.svc.Resolve(e.ctx, e.admin, core.TagType, "ssh_port")
	e.must(err)
	e.add(core.NodeTag, core.Record{"node_id": n2, "tag_type_id": tt, "value": "2202"})
	for _, n := range []int64{n1, n2} {
		e.must(e.svc.Link(e.ctx, e.admin, core.SliceNode, id, n, nil))
	}
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")
	resp, body := b.get("/slices/princeton_codeen")
	wantStatus(t, "slice", resp, body, 200)
	wantBody(t, "slice", body,
		"<code class=\"copy\">ssh princeton_codeen@planetlab1.cs.princeton.edu</code>",
		"<code class=\"copy\">ssh -p 2202 princeton_codeen@planetlab2.cs.princeton.edu</code>",
		"<td>never</td>", "Nodes (2)")
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	e.person("user@example.org", 30)
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")
	tok := b.csrf("/keys")

	resp, body := b.post("/keys", url.Values{"csrf": {tok}, "key": {"ssh-ed25519 not-base64!"}})
	wantStatus(t, "bad key", resp, body, http.StatusBadRequest)
	wantBody(t, "bad key", body, `class="field-error" id="key-error"`, "key: ", `aria-invalid="true"`, "ssh-ed25519 not-base64!</textarea>")

	const good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
	resp, body = b.post("/keys", url.Values{"csrf": {tok}, "key": {good}})
	wantStatus(t, "good key", resp, body, 200)
	wantBody(t, "good key", body, "Key added.", "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "installed on your slices")

	// A DSA key: the original accepted it; it is kept but not usable.
	const dsa = "ssh-dss AAAAB3NzaC1kc3MAAACBAP old@host"
	resp, body = b.post("/keys", url.Values{"csrf": {tok}, "key": {dsa}})
	wantStatus(t, "dsa key", resp, body, 200)
	wantBody(t, "dsa key", body, "not usable: ")

	recs, err := e.svc.Get(e.ctx, e.admin, core.Key, nil, []string{"key_id", "key"})
	e.must(err)
	if len(recs) != 2 {
		t.Fatalf("keys: %v", recs)
	}
	for _, k := range recs {
		id := k["key_id"].(int64)
		resp, body = b.post("/keys/"+itoa(id)+"/delete", url.Values{"csrf": {tok}})
		wantStatus(t, "delete key", resp, body, 200)
		wantBody(t, "delete key", body, "Key deleted.")
	}
	resp, body = b.get("/keys")
	wantStatus(t, "keys page", resp, body, 200)
	wantBody(t, "no keys", body, "You have no keys")
	resp, body = b.post("/keys/1/delete", url.Values{})
	wantStatus(t, "delete without CSRF token", resp, body, http.StatusForbidden)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestEscaping: what people type is never rendered unescaped.
func TestEscaping(t *testing.T) {
	e := newEnv(t)
	const evil = `<script>alert(1)</script>" onmouseover="alert(2)`
	id := e.add(core.Person, core.Record{"email": "user@example.org", "first_name": evil, "last_name": "L", "password": "pw"})
	e.must(e.svc.Update(e.ctx, e.admin, core.Person, id, core.Record{"enabled": true}))
	e.must(e.svc.Link(e.ctx, e.admin, core.PersonSite, id, e.site, nil))
	e.must(e.svc.Link(e.ctx, e.admin, core.PersonRole, id, 30, nil))
	e.slice("princeton_x", evil, 30*24*time.Hour, id)
	b := e.browser()
	b.login("user@example.org", "pw")
	for _, p := range []string{"/slices", "/slices/princeton_x"} {
		_, body := b.get(p)
		if strings.Contains(body, "<script>") || strings.Contains(body, `" onmouseover="`) {
			t.Fatalf("%s renders input unescaped:\n%s", p, body)
		}
		wantBody(t, p, body, html.EscapeString("<script>alert(1)</script>"))
	}
	_, body := b.get("/nowhere<script>")
	if strings.Contains(body, "<script>") {
		t.Fatalf("the not-found page renders the path unescaped:\n%s", body)
	}
}

func TestStaticEmbedded(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp, body := b.get("/static/style.css")
	wantStatus(t, "style", resp, body, 200)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ".exp-warn") {
		t.Fatalf("style.css: %s\n%s", resp.Header.Get("Content-Type"), body)
	}
}

func TestSignupAndApproval(t *testing.T) {
	e := newEnv(t)
	e.person("pi@princeton.edu", 20)
	e.person("user@princeton.edu", 30)
	e.add(core.Site, core.Record{"login_base": "mit", "name": "MIT", "abbreviated_name": "mit"})
	b := e.browser()
	resp, body := b.get("/signup")
	wantStatus(t, "sign-up page", resp, body, 200)
	wantBody(t, "sign-up page", body, `<option value="princeton">Princeton (princeton)</option>`, `<option value="mit">MIT (mit)</option>`)
	tok := csrfRE.FindStringSubmatch(body)[1]

	const evil = `<script>alert(1)</script>" onfocus="x`
	form := func(edit func(url.Values)) url.Values {
		v := url.Values{"csrf": {tok}, "first_name": {"Ada"}, "last_name": {evil}, "email": {"ada@princeton.edu"}, "site": {"princeton"},
			"password": {"long-enough"}, "password2": {"long-enough"}}
		if edit != nil {
			edit(v)
		}
		return v
	}
	resp, body = b.post("/signup", form(func(v url.Values) { v.Del("csrf") }))
	wantStatus(t, "sign-up without CSRF token", resp, body, http.StatusForbidden)
	for _, tc := range []struct {
		name, field, msg string
		edit             func(url.Values)
	}{
		{"short password", "password", "must have at least 8 characters", func(v url.Values) { v.Set("password", "short"); v.Set("password2", "short") }},
		{"passwords differ", "password2", "the two passwords differ", func(v url.Values) { v.Set("password2", "other-one") }},
		{"bad key", "key", "", func(v url.Values) { v.Set("key", "ssh-ed25519 not-base64!") }},
		{"taken email", "email", "already registered", func(v url.Values) { v.Set("email", "pi@princeton.edu") }},
		{"no site", "site", "choose the site", func(v url.Values) { v.Set("site", "") }},
		{"bad email", "email", "not a valid e-mail address", func(v url.Values) { v.Set("email", evil) }},
	} {
		resp, body = b.post("/signup", form(tc.edit))
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusConflict {
			t.Fatalf("%s: status %d\n%s", tc.name, resp.StatusCode, body)
		}
		wantBody(t, tc.name, body, `<p class="field-error" id="`+tc.field+`-error">`, html.EscapeString(tc.msg), `aria-describedby="`+tc.field+`-error"`)
		if strings.Contains(body, "<script>") || strings.Contains(body, `" onfocus="`) {
			t.Fatalf("%s: input rendered unescaped:\n%s", tc.name, body)
		}
		if strings.Contains(body, "long-enough") {
			t.Fatalf("%s: the password is echoed back", tc.name)
		}
	}
	resp, body = b.post("/signup", form(nil))
	wantStatus(t, "sign-up", resp, body, 200)
	wantBody(t, "sign-up", body, "awaits the approval of a PI of your site (princeton)")

	// Pending: no login yet.
	resp, body = b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "email": {"ada@princeton.edu"}, "password": {"long-enough"}})
	wantStatus(t, "pending login", resp, body, http.StatusUnauthorized)

	// A user is no PI: no queue, no link, and the action is refused.
	u := e.browser()
	u.login("user@princeton.edu", "pw-user@princeton.edu")
	_, body = u.get("/slices")
	if strings.Contains(body, `href="/pending"`) {
		t.Fatal("a user is shown the pending accounts link")
	}
	resp, body = u.get("/pending")
	wantStatus(t, "user's pending page", resp, body, http.StatusForbidden)
	recs, err := e.svc.Get(e.ctx, e.admin, core.Person, &core.Filter{IsList: true, Names: []string{"ada@princeton.edu"}}, []string{"person_id"})
	e.must(err)
	ada := itoa(recs[0]["person_id"].(int64))
	resp, body = u.post("/pending/"+ada+"/approve", url.Values{"csrf": {u.csrf("/slices")}})
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a user approves: %d\n%s", resp.StatusCode, body)
	}

	pi := e.browser()
	pi.login("pi@princeton.edu", "pw-pi@princeton.edu")
	resp, body = pi.get("/pending")
	wantStatus(t, "PI's pending page", resp, body, 200)
	wantBody(t, "PI's pending page", body, "ada@princeton.edu", html.EscapeString(evil), `action="/pending/`+ada+`/approve"`)
	resp, body = pi.post("/pending/"+ada+"/approve", url.Values{})
	wantStatus(t, "approve without CSRF token", resp, body, http.StatusForbidden)
	_, body = pi.get("/pending")
	piTok := csrfRE.FindStringSubmatch(body)[1]
	resp, body = pi.post("/pending/"+ada+"/approve", url.Values{"csrf": {piTok}})
	wantStatus(t, "approve", resp, body, 200)
	wantBody(t, "approve", body, "Approved ada@princeton.edu.", "No account awaits approval.")
	resp, body = pi.post("/pending/"+ada+"/approve", url.Values{"csrf": {piTok}})
	wantStatus(t, "approve again", resp, body, 200)
	wantBody(t, "approve again", body, "ada@princeton.edu is already approved.")

	a := e.browser()
	a.login("ada@princeton.edu", "long-enough")

	// Reject: the account is deleted.
	resp, body = b.post("/signup", form(func(v url.Values) { v.Set("email", "eve@princeton.edu") }))
	wantStatus(t, "second sign-up", resp, body, 200)
	recs, err = e.svc.Get(e.ctx, e.admin, core.Person, &core.Filter{IsList: true, Names: []string{"eve@princeton.edu"}}, []string{"person_id"})
	e.must(err)
	eve := itoa(recs[0]["person_id"].(int64))
	resp, body = pi.post("/pending/"+eve+"/reject", url.Values{"csrf": {piTok}})
	wantStatus(t, "reject", resp, body, 200)
	wantBody(t, "reject", body, "Rejected eve@princeton.edu: the account is deleted.")
	recs, err = e.svc.Get(e.ctx, e.admin, core.Person, &core.Filter{IsList: true, Names: []string{"eve@princeton.edu"}}, []string{"person_id"})
	e.must(err)
	if len(recs) != 0 {
		t.Fatalf("a rejected account remains: %v", recs)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	e.person("user@example.org", 30)
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")
	tok := b.csrf("/account")
	for _, tc := range []struct {
		name, field, msg string
		st               int
		form             url.Values
	}{
		{"short", "new", "must have at least 8 characters", 400, url.Values{"current": {"pw-user@example.org"}, "new": {"short"}, "new2": {"short"}}},
		{"differ", "new2", "the two passwords differ", 400, url.Values{"current": {"pw-user@example.org"}, "new": {"long-enough"}, "new2": {"long-enougH"}}},
		{"wrong current", "current", "this is not your current password", 403, url.Values{"current": {"guess"}, "new": {"long-enough"}, "new2": {"long-enough"}}},
	} {
		tc.form.Set("csrf", tok)
		resp, body := b.post("/account/password", tc.form)
		wantStatus(t, tc.name, resp, body, tc.st)
		wantBody(t, tc.name, body, `<p class="field-error" id="`+tc.field+`-error">`+tc.msg)
	}
	resp, body := b.post("/account/password", url.Values{"current": {"pw-user@example.org"}, "new": {"long-enough"}, "new2": {"long-enough"}})
	wantStatus(t, "without CSRF token", resp, body, http.StatusForbidden)
	resp, body = b.post("/account/password", url.Values{"csrf": {tok}, "current": {"pw-user@example.org"}, "new": {"long-enough"}, "new2": {"long-enough"}})
	wantStatus(t, "change", resp, body, 200)
	wantBody(t, "change", body, "Password changed.")
	e.browser().login("user@example.org", "long-enough")
	if _, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "user@example.org", Password: "pw-user@example.org"}, nil); err == nil {
		t.Fatal("the old password still works")
	}
}

func TestCompression(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		ae   string
		gzip bool
	}{{"gzip", true}, {"br, gzip;q=0.5", true}, {"gzip;q=0", false}, {"", false}, {"identity", false}} {
		req, err := http.NewRequest("GET", e.srv.URL+"/static/style.css", nil)
		e.must(err)
		if tc.ae != "" {
			req.Header.Set("Accept-Encoding", tc.ae)
		}
		// A transport of its own: the default one would ask for gzip itself
		// and hide the encoding.
		tr := e.srv.Client().Transport.(*http.Transport).Clone()
		tr.DisableCompression = true
		resp, err := (&http.Client{Transport: tr}).Do(req)
		e.must(err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.must(err)
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", tc.ae, resp.Header.Get("Content-Encoding"))
		}
		body := raw
		if tc.gzip {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			e.must(err)
			body, err = io.ReadAll(zr)
			e.must(err)
			if len(raw) >= len(body) {
				t.Fatalf("gzip did not shrink the stylesheet: %d >= %d", len(raw), len(body))
			}
		}
		if !bytes.Contains(body, []byte(".exp-warn")) {
			t.Fatalf("Accept-Encoding %q: body %.100q", tc.ae, body)
		}
	}
}
