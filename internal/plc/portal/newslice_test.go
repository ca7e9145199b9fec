package portal_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/service"
)

func TestCreateSliceAndMembers(t *testing.T) {
	e := newEnv(t)
	e.person("pi@princeton.edu", 20)
	e.person("user@princeton.edu", 30)
	e.add(core.Site, core.Record{"login_base": "mit", "name": "MIT", "abbreviated_name": "mit", "max_slices": int64(10)})
	pi := e.browser()
	pi.login("pi@princeton.edu", "pw-pi@princeton.edu")

	_, body := pi.get("/slices")
	wantBody(t, "a PI's slices", body, `href="/slices/new"`)
	_, body = pi.get("/slices/new")
	wantBody(t, "the form", body, `<option value="princeton" selected>`)
	if strings.Contains(body, `value="mit"`) {
		t.Fatalf("a PI is offered another site:\n%s", body)
	}
	tok := pi.csrf("/slices/new")
	form := func(site, short string) url.Values {
		return url.Values{"csrf": {tok}, "site": {site}, "short": {short}, "description": {"d"}, "url": {"https://example.org"}}
	}

	// Without the token: refused, nothing created.
	f := form("princeton", "x")
	f.Del("csrf")
	resp, body := pi.post("/slices/new", f)
	wantStatus(t, "no CSRF", resp, body, http.StatusForbidden)

	// The service's errors, beside their fields, the input kept.
	resp, body = pi.post("/slices/new", form("princeton", "bad name"))
	wantStatus(t, "bad name", resp, body, http.StatusBadRequest)
	wantBody(t, "bad name", body, `id="short-error">Invalid slice name &#34;princeton_bad name&#34;`, `value="bad name"`)
	resp, body = pi.post("/slices/new", form("", "x"))
	wantStatus(t, "no site", resp, body, http.StatusBadRequest)
	wantBody(t, "no site", body, `id="site-error">choose the site`)
	resp, body = pi.post("/slices/new", form("mit", "x"))
	wantStatus(t, "another site", resp, body, http.StatusForbidden)
	wantBody(t, "another site", body, `must start with the login_base of one of your sites`)

	// Created; the name taken is a conflict.
	resp, body = pi.post("/slices/new", form("princeton", "exp1"))
	wantStatus(t, "create", resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); loc != "/slices/princeton_exp1?created=1" {
		t.Fatalf("after creating: to %q", loc)
	}
	recs, err := e.svc.Get(e.ctx, e.admin, core.Slice, &core.Filter{IsList: true, Names: []string{"princeton_exp1"}}, []string{"description", "url"})
	e.must(err)
	if len(recs) != 1 || recs[0]["description"] != "d" || recs[0]["url"] != "https://example.org" {
		t.Fatalf("created slice: %v", recs)
	}
	resp, body = pi.post("/slices/new", form("princeton", "exp1"))
	wantStatus(t, "again", resp, body, http.StatusConflict)
	wantBody(t, "again", body, `slice &#34;princeton_exp1&#34; already exists`)

	// Members: an unknown address beside the field; then a user.
	tok = pi.csrf("/slices/princeton_exp1")
	resp, body = pi.post("/slices/princeton_exp1/members", url.Values{"csrf": {tok}, "email": {"nobody@x.org"}})
	wantStatus(t, "unknown member", resp, body, http.StatusNotFound)
	wantBody(t, "unknown member", body, `id="email-error">`, `value="nobody@x.org"`)
	resp, body = pi.post("/slices/princeton_exp1/members", url.Values{"csrf": {tok}, "email": {"user@princeton.edu"}})
	wantStatus(t, "member", resp, body, http.StatusSeeOther)
	_, body = pi.get("/slices/princeton_exp1")
	wantBody(t, "members", body, `&lt;user@princeton.edu&gt;`, `aria-label="Remove user@princeton.edu"`)

	// The user sees the slice but no creation link nor member forms, and
	// is refused with the service's errors if she tries the URLs.
	u := e.browser()
	u.login("user@princeton.edu", "pw-user@princeton.edu")
	_, body = u.get("/slices")
	wantBody(t, "a user's slices", body, `href="/slices/princeton_exp1"`)
	if strings.Contains(body, `/slices/new`) {
		t.Fatalf("a user is offered to create slices:\n%s", body)
	}
	resp, body = u.get("/slices/new")
	wantStatus(t, "user form", resp, body, http.StatusForbidden)
	wantBody(t, "user form", body, "AddSlice: role not allowed (needs one of admin, pi)")
	_, body = u.get("/slices/princeton_exp1")
	if strings.Contains(body, `/members`) {
		t.Fatalf("a user is offered to change members:\n%s", body)
	}
	utok := u.csrf("/slices/princeton_exp1")
	resp, body = u.post("/slices/new", url.Values{"csrf": {utok}, "site": {"princeton"}, "short": {"mine"}})
	wantStatus(t, "user create", resp, body, http.StatusForbidden)
	wantBody(t, "user create", body, "AddSlice: role not allowed (needs one of admin, pi)")
	resp, body = u.post("/slices/princeton_exp1/members", url.Values{"csrf": {utok}, "email": {"pi@princeton.edu"}})
	wantStatus(t, "user adds member", resp, body, http.StatusForbidden)
	wantBody(t, "user adds member", body, "AddPersonToSlice: role not allowed")

	// The PI removes her.
	pid, err := e.svc.Resolve(e.ctx, e.admin, core.Person, "user@princeton.edu")
	e.must(err)
	resp, body = pi.post("/slices/princeton_exp1/members/remove", url.Values{"csrf": {tok}, "person": {itoa(pid)}})
	wantStatus(t, "remove member", resp, body, http.StatusSeeOther)
	_, body = pi.get("/slices/princeton_exp1")
	wantBody(t, "no member", body, "No members.")
}

func TestCreateSliceEscaping(t *testing.T) {
	e := newEnv(t)
	e.person("pi@princeton.edu", 20)
	b := e.browser()
	b.login("pi@princeton.edu", "pw-pi@princeton.edu")
	const evil = `<script>alert(1)</script>" onmouseover="alert(2)`
	tok := b.csrf("/slices/new")
	// A bad name: every field echoed back escaped.
	_, body := b.post("/slices/new", url.Values{"csrf": {tok}, "site": {"princeton"}, "short": {evil}, "description": {evil}, "url": {evil}})
	if strings.Contains(body, "<script>") || strings.Contains(body, `" onmouseover="`) {
		t.Fatalf("the form renders input unescaped:\n%s", body)
	}
	// A good name with an evil description and URL: the slice page.
	b.post("/slices/new", url.Values{"csrf": {tok}, "site": {"princeton"}, "short": {"x"}, "description": {evil}, "url": {"javascript:alert(1)"}})
	_, body = b.get("/slices/princeton_x")
	if strings.Contains(body, "<script>") || strings.Contains(body, `" onmouseover="`) || strings.Contains(body, `href="javascript:`) {
		t.Fatalf("the slice page renders input unescaped:\n%s", body)
	}
	wantBody(t, "slice", body, html.EscapeString("<script>alert(1)</script>"))
	_, body = b.post("/slices/princeton_x/members", url.Values{"csrf": {tok}, "email": {evil}})
	if strings.Contains(body, "<script>") || strings.Contains(body, `" onmouseover="`) {
		t.Fatalf("the member form renders input unescaped:\n%s", body)
	}
}

// TestSignupRateLimited: the sign-up form counts per client address (the
// service's limit); beyond the free ones it answers 429 with Retry-After
// and the service's message.
func TestSignupRateLimited(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	tok := b.csrf("/signup")
	form := func(i int) url.Values {
		return url.Values{"csrf": {tok}, "first_name": {"A"}, "last_name": {"L"}, "email": {"a" + itoa(int64(i)) + "@princeton.edu"},
			"site": {"princeton"}, "password": {"long-enough"}, "password2": {"long-enough"}}
	}
	for i := range service.DefaultSignupsFree {
		resp, body := b.post("/signup", form(i))
		wantStatus(t, "sign-up", resp, body, http.StatusOK)
	}
	resp, body := b.post("/signup", form(99))
	wantStatus(t, "one too many", resp, body, http.StatusTooManyRequests)
	wantBody(t, "one too many", body, "too many sign-ups from 192.0.2.7; try again in 1 s")
	if resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
}
