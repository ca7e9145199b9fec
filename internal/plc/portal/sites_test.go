package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// TestSitePagesByRole: what a PI, a tech, a user and an admin see and may
// do on the site, people and nodes pages, and the service's refusals of
// the URLs tried without the right.
func TestSitePagesByRole(t *testing.T) {
	e := newEnv(t)
	pi := e.person("pi@princeton.edu", 20)
	tech := e.person("tech@princeton.edu", 40)
	user := e.person("user@princeton.edu", 30)
	node := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "pl1.princeton.edu"})
	mit := e.add(core.Site, core.Record{"login_base": "mit", "name": "MIT", "abbreviated_name": "mit"})
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, mit, core.Record{"enabled": false}))
	e.slice("princeton_exp", "d", 48*3600e9, user)
	site := "/sites/princeton"

	// The PI: enable/disable and role buttons for the others, not herself;
	// the node's boot state; the site's slices.
	p := e.browser()
	p.login("pi@princeton.edu", "pw-pi@princeton.edu")
	_, body := p.get(site)
	wantBody(t, "PI site page", body, `aria-label="Disable user@princeton.edu"`, `aria-label="Disable tech@princeton.edu"`,
		`aria-label="Make user@princeton.edu tech"`, `aria-label="choose pl1.princeton.edu"`, `id="set-boot"`, `href="/slices/princeton_exp"`)
	if strings.Contains(body, `aria-label="Disable pi@princeton.edu"`) || strings.Contains(body, `Make user@princeton.edu pi"`) {
		t.Fatalf("a PI is offered to disable herself or to make PIs:\n%s", body)
	}
	tok := p.csrf(site)
	resp, body := p.post("/people/"+itoa(user)+"/enabled", url.Values{"csrf": {tok}, "enabled": {"false"}, "back": {site}})
	wantStatus(t, "disable", resp, body, http.StatusSeeOther)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, site+"?saved=") {
		t.Fatalf("after disabling: to %q", loc)
	}
	resp, body = p.post("/people/"+itoa(user)+"/roles/add", url.Values{"csrf": {tok}, "role": {"tech"}, "back": {site}})
	wantStatus(t, "grant", resp, body, http.StatusSeeOther)
	recs, err := e.svc.Get(e.ctx, e.admin, core.Person, &core.Filter{IsList: true, IDs: []int64{user}}, []string{"enabled", "roles"})
	e.must(err)
	if recs[0]["enabled"] != false || !strings.Contains(strings.Join(recs[0]["roles"].([]string), ","), "tech") {
		t.Fatalf("after the PI's changes: %v", recs[0])
	}
	// Not herself, not a PI role, not another site: the service's errors.
	resp, body = p.post("/people/"+itoa(pi)+"/enabled", url.Values{"csrf": {tok}, "enabled": {"false"}, "back": {site}})
	wantStatus(t, "disable herself", resp, body, http.StatusForbidden)
	wantBody(t, "disable herself", body, "only a pi of the person&#39;s site or an admin may enable or disable an account")
	resp, body = p.post("/sites/"+itoa(mit)+"/approve", url.Values{"csrf": {tok}, "back": {"/sites"}})
	wantStatus(t, "PI approves a site", resp, body, http.StatusForbidden)
	wantBody(t, "PI approves a site", body, "Permission denied: not a pi of site mit")
	resp, body = p.post("/people/"+itoa(user)+"/enabled", url.Values{"csrf": {tok}, "enabled": {"maybe"}, "back": {site}})
	wantStatus(t, "bad enabled", resp, body, http.StatusBadRequest)
	wantBody(t, "bad enabled", body, "enabled: want true or false")
	resp, body = p.post("/nodes/boot", url.Values{"csrf": {tok}, "node": {itoa(node)}, "boot_state": {"<nope>"}, "back": {site}})
	wantStatus(t, "bad boot state", resp, body, http.StatusBadRequest)
	wantBody(t, "bad boot state", body, "&lt;nope&gt;")
	resp, _ = p.post("/people/"+itoa(user)+"/enabled", url.Values{"enabled": {"true"}, "back": {site}})
	wantStatus(t, "no CSRF", resp, "", http.StatusForbidden)
	resp, body = p.post("/nodes/boot", url.Values{"csrf": {tok}, "boot_state": {"boot"}, "back": {site}})
	wantStatus(t, "no node chosen", resp, body, http.StatusBadRequest)
	wantBody(t, "no node chosen", body, "node: choose at least one node")

	// The tech: boot states, no person actions.
	tc := e.browser()
	tc.login("tech@princeton.edu", "pw-tech@princeton.edu")
	_, body = tc.get(site)
	wantBody(t, "tech site page", body, `aria-label="choose pl1.princeton.edu"`, `id="set-boot"`)
	if strings.Contains(body, `/enabled"`) || strings.Contains(body, `/roles/`) {
		t.Fatalf("a tech is offered person actions:\n%s", body)
	}
	resp, body = tc.post("/nodes/boot", url.Values{"csrf": {tc.csrf(site)}, "node": {itoa(node)}, "boot_state": {"disabled"}, "back": {site}})
	wantStatus(t, "tech boot state", resp, body, http.StatusSeeOther)
	_, body = tc.get(resp.Header.Get("Location"))
	wantBody(t, "after the boot state", body, "Saved: boot state disabled of 1 node.", "<td>disabled</td>")
	resp, body = tc.post("/people/"+itoa(pi)+"/enabled", url.Values{"csrf": {tc.csrf(site)}, "enabled": {"false"}, "back": {site}})
	wantStatus(t, "tech disables the PI", resp, body, http.StatusForbidden)

	// A user: nothing to do, and refused at the URLs with the API's errors.
	e.must(e.svc.Update(e.ctx, e.admin, core.Person, user, core.Record{"enabled": true}))
	e.must(e.svc.Unlink(e.ctx, e.admin, core.PersonRole, user, 40))
	u := e.browser()
	u.login("user@princeton.edu", "pw-user@princeton.edu")
	_, body = u.get(site)
	if strings.Contains(body, `/enabled"`) || strings.Contains(body, `/roles/`) || strings.Contains(body, `/nodes/boot"`) {
		t.Fatalf("a user is offered actions:\n%s", body)
	}
	if strings.Contains(body, `href="/people"`) {
		t.Fatalf("a user's menu has people:\n%s", body)
	}
	utok := u.csrf(site)
	resp, body = u.post("/nodes/boot", url.Values{"csrf": {utok}, "node": {itoa(node)}, "boot_state": {"boot"}, "back": {site}})
	wantStatus(t, "user boot state", resp, body, http.StatusForbidden)
	wantBody(t, "user boot state", body, "UpdateNode: role not allowed (needs one of admin, pi, tech)")
	resp, body = u.post("/people/"+itoa(tech)+"/roles/add", url.Values{"csrf": {utok}, "role": {"pi"}, "back": {site}})
	wantStatus(t, "user grants", resp, body, http.StatusForbidden)
	wantBody(t, "user grants", body, "AddRoleToPerson: role not allowed (needs one of admin, pi)")

	// The admin: the pending site, approved with one click; every node.
	a := e.browser()
	a.login(adminEmail, adminPW)
	_, body = a.get("/sites")
	wantBody(t, "admin sites", body, "Sites awaiting approval (1)", `aria-label="Approve site mit"`)
	resp, body = a.post("/sites/"+itoa(mit)+"/approve", url.Values{"csrf": {a.csrf("/sites")}, "back": {"/sites"}})
	wantStatus(t, "approve site", resp, body, http.StatusSeeOther)
	_, body = a.get("/sites?saved=x")
	if strings.Contains(body, "awaiting approval") {
		t.Fatalf("the site is still pending:\n%s", body)
	}
	_, body = a.get("/nodes")
	wantBody(t, "nodes", body, "pl1.princeton.edu", `href="/sites/princeton#nodes"`, "1 nodes")
	_, body = a.get("/people")
	wantBody(t, "people", body, `aria-label="Make tech@princeton.edu pi"`, `aria-label="Disable pi@princeton.edu"`)
}

func TestPeopleEscaping(t *testing.T) {
	e := newEnv(t)
	const evil = `<script>alert(1)</script>" onmouseover="alert(2)`
	id := e.add(core.Person, core.Record{"email": "x@princeton.edu", "first_name": evil, "last_name": evil, "password": "pw-long-enough"})
	e.must(e.svc.Link(e.ctx, e.admin, core.PersonSite, id, e.site, nil))
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, e.site, core.Record{"name": evil, "url": "javascript:alert(1)"}))
	a := e.browser()
	a.login(adminEmail, adminPW)
	for _, p := range []string{"/people", "/sites", "/sites/princeton", "/nodes"} {
		_, body := a.get(p)
		if strings.Contains(body, "<script>") || strings.Contains(body, `" onmouseover="`) || strings.Contains(body, `href="javascript:`) {
			t.Fatalf("%s renders input unescaped:\n%s", p, body)
		}
	}
	resp, body := a.post("/people/1/enabled", url.Values{"csrf": {a.csrf("/people")}, "enabled": {"true"}, "back": {"//evil.example.org/"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/slices") {
		t.Fatalf("an off-site back: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}
