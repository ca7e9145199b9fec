package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/plc/rest"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/restapi"
	"github.com/planetlab/pl/internal/tlspin"
	"golang.org/x/crypto/bcrypt"
)

const adminEmail, adminPW = "admin@example.org", "admin-password"

// env is the real service over SQLite in t.TempDir(), served over TLS.
type env struct {
	t     *testing.T
	ctx   context.Context
	svc   *service.Service
	srv   *httptest.Server
	fp    string
	admin *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := service.New(db, service.Options{PasswordCost: bcrypt.MinCost})
	if _, err := svc.Init(ctx, adminEmail, adminPW); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, svc: svc}
	// The fingerprint is known only after the TLS server starts; the
	// handler reads it through the option at construction, so build the
	// server first and the handler after.
	mux := http.NewServeMux()
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.fp = tlspin.Fingerprint(e.srv.Certificate().Raw)
	mux.Handle("/", rest.NewHandler(svc, nil, rest.WithFingerprint(e.fp), rest.WithAccounts(svc), rest.WithOutbox(svc), rest.WithPlanet(svc)))
	e.admin = e.login(adminEmail, adminPW)
	return e
}

func (e *env) client(token string) *client.Client {
	c, err := client.New(e.srv.URL, client.Options{Fingerprint: e.fp, Token: token})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) login(email, pw string) *client.Client {
	e.t.Helper()
	c := e.client("")
	if _, err := c.Login(e.ctx, email, pw, 0); err != nil {
		e.t.Fatalf("login %s: %v", email, err)
	}
	return c
}

// raw performs an HTTP request and returns status and body.
func (e *env) raw(method, path, auth, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) must(id int64, err error) int64 {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func wantCode(t *testing.T, what string, err error, code core.Code, field string) {
	t.Helper()
	if core.ErrorCode(err) != code || (field != "" && core.ErrorField(err) != field) {
		t.Fatalf("%s: got %v (code %s, field %q), want %s field %q", what, err, core.ErrorCode(err), core.ErrorField(err), code, field)
	}
}

// populate creates a site, an enabled PI and user, a node and a slice.
func (e *env) populate() (site, pi, user, node, slice int64) {
	ctx, a := e.ctx, e.admin
	site = e.must(a.Add(ctx, nil, core.Site, core.Record{"login_base": "princeton", "name": "Princeton", "abbreviated_name": "P", "max_slices": int64(10)}))
	pi = e.must(a.Add(ctx, nil, core.Person, core.Record{"email": "pi@princeton.edu", "first_name": "P", "last_name": "I", "password": "pi-pw"}))
	user = e.must(a.Add(ctx, nil, core.Person, core.Record{"email": "u@princeton.edu", "first_name": "U", "last_name": "Ser", "password": "u-pw"}))
	for _, p := range []int64{pi, user} {
		if err := a.Link(ctx, nil, core.PersonSite, p, site, nil); err != nil {
			e.t.Fatal(err)
		}
		if err := a.Update(ctx, nil, core.Person, p, core.Record{"enabled": true}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := a.Link(ctx, nil, core.PersonRole, pi, 20, nil); err != nil {
		e.t.Fatal(err)
	}
	if err := a.Link(ctx, nil, core.PersonRole, user, 30, nil); err != nil {
		e.t.Fatal(err)
	}
	node = e.must(a.Add(ctx, nil, core.Node, core.Record{"site_id": site, "hostname": "node1.princeton.edu"}))
	e.must(a.Add(ctx, nil, core.Interface, core.Record{"node_id": node, "type": "ipv4", "method": "dhcp", "is_primary": true}))
	slice = e.must(a.Add(ctx, nil, core.Slice, core.Record{"name": "princeton_codeen", "url": "http://x.org", "description": "d"}))
	return
}

func TestClientCRUDAndFilters(t *testing.T) {
	e := newEnv(t)
	ctx, a := e.ctx, e.admin
	site, pi, _, _, slice := e.populate()

	// Resolve by name and id; a name that does not exist.
	if id, err := a.Resolve(ctx, nil, core.Site, "princeton"); err != nil || id != site {
		t.Fatalf("resolve: %d %v", id, err)
	}
	if id, err := a.Resolve(ctx, nil, core.Slice, slice); err != nil || id != slice {
		t.Fatalf("resolve id: %d %v", id, err)
	}
	_, err := a.Resolve(ctx, nil, core.Site, "nosuch")
	wantCode(t, "resolve unknown", err, core.NotFound, "")

	// Filters travel through EncodeFilter -> ?filter= -> ParseFilter.
	e.must(a.Add(ctx, nil, core.Site, core.Record{"login_base": "mit", "name": "MIT", "abbreviated_name": "MIT", "latitude": 42.36, "longitude": -71.09}))
	e.must(a.Add(ctx, nil, core.Site, core.Record{"login_base": "mpi", "name": "MPI", "abbreviated_name": "MPI", "latitude": 48.0, "longitude": 9.0}))
	got := func(f *core.Filter) []string {
		t.Helper()
		recs, err := a.Get(ctx, nil, core.Site, f, []string{"login_base"})
		if err != nil {
			t.Fatalf("get %+v: %v", f, err)
		}
		var names []string
		for _, r := range recs {
			names = append(names, r["login_base"].(string))
		}
		return names
	}
	sortDesc := []core.SortKey{{Field: "login_base", Desc: true}}
	for _, tt := range []struct {
		f    *core.Filter
		want string
	}{
		{&core.Filter{Terms: []core.Term{{Field: "login_base", Op: core.Eq, Value: "m*"}}, Sort: sortDesc}, "mpi,mit"},
		{&core.Filter{Terms: []core.Term{{Field: "login_base", Op: core.Eq, Value: "m*"}}, Sort: sortDesc, Limit: 1, Offset: 1}, "mit"},
		{&core.Filter{IsList: true, IDs: []int64{site}, Names: []string{"mit"}}, "princeton,mit"},
		{&core.Filter{IsList: true}, ""},
		{&core.Filter{Terms: []core.Term{{Field: "latitude", Op: core.Gt, Value: 42.0}}, Sort: []core.SortKey{{Field: "site_id"}}}, "mit,mpi"},
		{&core.Filter{Terms: []core.Term{{Field: "latitude", Op: core.Lt, Value: 45.0}}}, "mit"},
		{&core.Filter{Terms: []core.Term{{Field: "login_base", Op: core.Eq, Value: []any{"pl", "mpi"}}}, Sort: []core.SortKey{{Field: "login_base"}}}, "mpi,pl"},
		{&core.Filter{Terms: []core.Term{{Field: "login_base", Op: core.Eq, Not: true, Value: "m*"}}, Sort: []core.SortKey{{Field: "site_id"}}}, "pl,princeton"},
		{&core.Filter{Or: true, Terms: []core.Term{{Field: "login_base", Op: core.Eq, Value: "pl"}, {Field: "name", Op: core.Eq, Value: "MIT"}}, Sort: []core.SortKey{{Field: "site_id"}}}, "pl,mit"},
	} {
		if g := strings.Join(got(tt.f), ","); g != tt.want {
			t.Errorf("filter %+v: got %q, want %q", tt.f, g, tt.want)
		}
	}
	_, err = a.Get(ctx, nil, core.Site, &core.Filter{Terms: []core.Term{{Field: "no_such_field", Op: core.Eq, Value: 1}}}, nil)
	wantCode(t, "unknown filter field", err, core.Invalid, "")

	// Records keep their types over the wire.
	recs, err := a.Get(ctx, nil, core.Site, &core.Filter{IsList: true, Names: []string{"mit"}}, nil)
	if err != nil || len(recs) != 1 {
		t.Fatal(recs, err)
	}
	if _, ok := recs[0]["site_id"].(int64); !ok {
		t.Errorf("site_id is %T", recs[0]["site_id"])
	}
	if v, ok := recs[0]["latitude"].(float64); !ok || v != 42.36 {
		t.Errorf("latitude is %T %v", recs[0]["latitude"], recs[0]["latitude"])
	}
	if _, ok := recs[0]["enabled"].(bool); !ok {
		t.Errorf("enabled is %T", recs[0]["enabled"])
	}

	// Update, relations, primary site, delete.
	if err := a.Update(ctx, nil, core.Site, site, core.Record{"name": "Princeton University"}); err != nil {
		t.Fatal(err)
	}
	err = a.Update(ctx, nil, core.Site, site, core.Record{"no_such": 1})
	wantCode(t, "update unknown field", err, core.Invalid, "")
	mit, _ := a.Resolve(ctx, nil, core.Site, "mit")
	if err := a.Link(ctx, nil, core.PersonSite, pi, mit, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPersonPrimarySite(ctx, nil, pi, mit); err != nil {
		t.Fatal(err)
	}
	p, _ := a.Get(ctx, nil, core.Person, &core.Filter{IsList: true, IDs: []int64{pi}}, []string{"site_ids"})
	if s := p[0]["site_ids"].([]int64); len(s) != 2 || s[0] != mit {
		t.Errorf("site_ids after primary change: %v", s)
	}
	if err := a.Delete(ctx, nil, core.Site, mit); err != nil {
		t.Fatal(err)
	}
	_, err = a.Resolve(ctx, nil, core.Site, "mit")
	wantCode(t, "deleted site", err, core.NotFound, "")

	// Renewal returns the granted expiry; leases; lookups.
	exp := time.Now().Add(20 * 24 * time.Hour).Unix()
	if got, err := a.RenewSlice(ctx, nil, slice, exp); err != nil || got != exp {
		t.Fatalf("renew: %d %v", got, err)
	}
	sessions, err := a.Get(ctx, nil, core.Session, nil, nil)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("sessions: %v %v", sessions, err)
	}
	states, err := a.Get(ctx, nil, core.BootState, nil, nil)
	if err != nil || len(states) == 0 {
		t.Fatalf("boot states: %v %v", states, err)
	}
	if err := a.DeleteLookup(ctx, nil, core.BootState, "no-such-state"); core.ErrorCode(err) != core.NotFound && err != nil {
		t.Errorf("delete unknown lookup: %v", err)
	}
}

func TestAuthAndErrors(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	site, _, _, _, _ := e.populate()
	piC := e.login("pi@princeton.edu", "pi-pw")
	userC := e.login("u@princeton.edu", "u-pw")

	// Whoami and Authenticate through the client.
	w, err := piC.Whoami(ctx)
	if err != nil || w.Kind != "person" || w.Email != "pi@princeton.edu" || len(w.SiteIDs) != 1 || w.SiteIDs[0] != site {
		t.Fatalf("whoami: %+v %v", w, err)
	}
	c, err := e.admin.Authenticate(ctx, core.Credentials{Method: "session", Session: piC.Token()}, nil)
	if err != nil || c.Kind != core.PersonCaller || !c.HasRole(core.RolePI) {
		t.Fatalf("authenticate: %+v %v", c, err)
	}
	_, err = e.admin.Authenticate(ctx, core.Credentials{Method: "password", Username: "pi@princeton.edu", Password: "wrong"}, nil)
	wantCode(t, "bad password", err, core.Unauthenticated, "")

	// Anonymous may list sites but not add them; a bad token is 401.
	if st, _ := e.raw("GET", "/api/v1/sites", "", ""); st != 200 {
		t.Errorf("anonymous GET sites: %d", st)
	}
	st, body := e.raw("POST", "/api/v1/sites", "", `{"login_base":"x","name":"x","abbreviated_name":"x"}`)
	if st != 401 || !bytes.Contains(body, []byte(`"code":"unauthenticated"`)) {
		t.Errorf("anonymous POST sites: %d %s", st, body)
	}
	if st, _ := e.raw("GET", "/api/v1/persons", "Bearer nosuchsession", ""); st != 401 {
		t.Errorf("bad token: %d", st)
	}
	if st, _ := e.raw("GET", "/api/v1/persons", "Basic abc", ""); st != 401 {
		t.Errorf("basic auth: %d", st)
	}

	// A PI may not change another site: forbidden, not unauthenticated.
	_, err = e.admin.Add(ctx, nil, core.Site, core.Record{"login_base": "other", "name": "O", "abbreviated_name": "O"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.admin.Resolve(ctx, nil, core.Site, "other")
	err = piC.Update(ctx, nil, core.Site, other, core.Record{"name": "mine now"})
	wantCode(t, "pi updates another site", err, core.Forbidden, "")
	// A user may not add sites (role set): 401 or 403, never success.
	_, err = userC.Add(ctx, nil, core.Site, core.Record{"login_base": "y", "name": "y", "abbreviated_name": "y"})
	if c := core.ErrorCode(err); c != core.Forbidden && c != core.Unauthenticated {
		t.Errorf("user adds a site: %v", err)
	}

	tok := "Bearer " + e.admin.Token()
	for _, tt := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/api/v1/sites", `{"login_base":"ok1","name":"n","abbreviated_name":"a","bogus":1}`, 400, "invalid", "bogus"},
		{"POST", "/api/v1/sites", `{"login_base":"ok2","name":"n","abbreviated_name":"a","max_slices":"ten"}`, 400, "invalid", "max_slices"},
		{"POST", "/api/v1/sites", `{"login_base":"BAD BASE","name":"n","abbreviated_name":"a"}`, 400, "invalid", "login_base"},
		{"POST", "/api/v1/sites", `{"login_base":"princeton","name":"n","abbreviated_name":"a"}`, 409, "conflict", ""},
		{"POST", "/api/v1/sites", `{"login_base":`, 400, "invalid", "body"},
		{"POST", "/api/v1/sites", `[1,2]`, 400, "invalid", "body"},
		{"POST", "/api/v1/sites", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "invalid", "body"},
		{"GET", "/api/v1/sites/nosuch", "", 404, "not_found", ""},
		{"GET", "/api/v1/sites?limit=-1", "", 400, "invalid", "limit"},
		{"GET", "/api/v1/sites?filter=%7Bbad", "", 400, "invalid", "filter"},
		{"GET", "/api/v1/nosuchthing", "", 404, "not_found", ""},
		{"POST", "/api/v1/sessions", `{"email":"a@b.org","password":"x","extra":true}`, 400, "invalid", "extra"},
		{"POST", "/api/v1/slices/princeton_codeen/renew", `{"expires":"tomorrow"}`, 400, "invalid", "expires"},
		{"POST", "/api/v1/slices/princeton_codeen/renew", `{}`, 400, "invalid", "expires"},
		{"GET", "/api/v1/resolve?class=site", "", 400, "invalid", "name"},
		{"GET", "/api/v1/nodes/node1.princeton.edu/watch?timeout=9999", "", 400, "invalid", "timeout"},
		// issue 9.7: ranges, duplicate keys, unknown operations
		{"POST", "/api/v1/sites", `{"login_base":"ok3","name":"n","abbreviated_name":"a","max_slices":-5}`, 400, "invalid", "max_slices"},
		{"PATCH", "/api/v1/sites/princeton", `{"max_slices":1099511627776}`, 400, "invalid", "max_slices"},
		{"PATCH", "/api/v1/sites/princeton", `{"max_slivers":-1}`, 400, "invalid", "max_slivers"},
		{"POST", "/api/v1/sites", `{"login_base":"ok4","name":"n","abbreviated_name":"a","max_slices":1,"max_slices":2}`, 400, "invalid", "max_slices"},
		{"POST", "/api/v1/sessions", `{"email":"a@b.org","email":"c@d.org","password":"x"}`, 400, "invalid", "email"},
		{"GET", "/api/v1/op-roles/NoSuchMethod", "", 404, "not_found", ""},
	} {
		st, body := e.raw(tt.method, tt.path, tok, tt.body)
		var eb restapi.ErrorBody
		json.Unmarshal(body, &eb)
		if st != tt.status || string(eb.Error.Code) != tt.code || (tt.field != "" && eb.Error.Field != tt.field) || eb.Error.Message == "" {
			t.Errorf("%s %s %.60s: %d %s, want %d %s field %q", tt.method, tt.path, tt.body, st, body, tt.status, tt.code, tt.field)
		}
	}
	// nothing half-done: the refused sites do not exist
	if st, body := e.raw("GET", "/api/v1/op-roles/AddSlice", "", ""); st != 200 || !bytes.Contains(body, []byte(`"pi"`)) {
		t.Errorf("op-roles AddSlice: %d %s", st, body)
	}
	if recs, err := e.admin.Get(ctx, nil, core.Site, &core.Filter{IsList: true, IDs: []int64{site}}, []string{"max_slices"}); err != nil || recs[0]["max_slices"] != int64(10) {
		t.Errorf("max_slices after refused updates: %v %v", recs, err)
	}
	for _, lb := range []string{"ok1", "ok2", "ok3", "ok4"} {
		if _, err := e.admin.Resolve(ctx, nil, core.Site, lb); core.ErrorCode(err) != core.NotFound {
			t.Errorf("site %s exists after a refused add: %v", lb, err)
		}
	}
}

func TestNodeAPI(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	_, _, user, node, slice := e.populate()

	// The join token names the node, a secret and PLC's fingerprint.
	jt, err := e.admin.JoinToken(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := nodeapi.ParseJoinToken(jt.Token)
	if err != nil || tok.NodeID != node || tok.Fingerprint != e.fp || tok.Secret != jt.Secret {
		t.Fatalf("join token %q: %+v %v", jt.Token, tok, err)
	}
	anon := e.client("")
	if _, err := anon.JoinNode(ctx, node, "wrong-secret", ""); err == nil {
		t.Fatal("join with a wrong secret succeeded")
	}
	st, body := e.raw("POST", nodeapi.JoinPath, "", `{"node_id":1,"secret":"x","extra":1}`)
	if st != 400 || !strings.Contains(string(body), `"field":"extra"`) {
		t.Fatalf("join with an unknown field: %d %s", st, body)
	}
	st, body = e.raw("POST", nodeapi.JoinPath, "", fmt.Sprintf(`{"node_id":%d,"secret":%q}`, node, tok.Secret))
	var jr nodeapi.JoinResponse
	if st != 200 || json.Unmarshal(body, &jr) != nil || jr.NodeKey == "" || jr.Hostname != "node1.princeton.edu" {
		t.Fatalf("join: %d %s", st, body)
	}
	auth := fmt.Sprintf("PLNode %d:%s", node, jr.NodeKey)
	if st, _ := e.raw("GET", nodeapi.StatePath, fmt.Sprintf("PLNode %d:wrong", node), ""); st != 401 {
		t.Errorf("state with a wrong key: %d", st)
	}
	if st, _ := e.raw("GET", nodeapi.StatePath, "Bearer "+e.admin.Token(), ""); st != 401 {
		t.Errorf("state with a person's token: %d", st)
	}
	state := func() core.NodeState {
		t.Helper()
		st, body := e.raw("GET", nodeapi.StatePath, auth, "")
		var s core.NodeState
		if st != 200 || json.Unmarshal(body, &s) != nil {
			t.Fatalf("state: %d %s", st, body)
		}
		return s
	}
	s0 := state()
	if s0.NodeID != node || s0.Version == "" {
		t.Fatalf("state %+v", s0)
	}

	// Watch: at once on a different version, 304 on timeout, 200 on change.
	if st, _ := e.raw("GET", nodeapi.WatchPath+"?version=old&timeout=5", auth, ""); st != 200 {
		t.Errorf("watch with a stale version: %d", st)
	}
	if st, _ := e.raw("GET", nodeapi.WatchPath+"?timeout=5", auth, ""); st != 200 {
		t.Errorf("watch without version: %d", st)
	}
	start := time.Now()
	if st, _ := e.raw("GET", nodeapi.WatchPath+"?timeout=1&version="+s0.Version, auth, ""); st != 304 {
		t.Errorf("idle watch: %d", st)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("idle watch answered after %v, before its timeout", d)
	}
	type res struct {
		st   int
		body []byte
		at   time.Time
	}
	ch := make(chan res, 1)
	go func() {
		st, body := e.raw("GET", nodeapi.WatchPath+"?timeout=30&version="+s0.Version, auth, "")
		ch <- res{st, body, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond)
	changed := time.Now()
	if err := e.admin.Link(ctx, nil, core.SliceNode, slice, node, nil); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	var s1 core.NodeState
	if r.st != 200 || json.Unmarshal(r.body, &s1) != nil || s1.Version == s0.Version || len(s1.Slivers) == 0 {
		t.Fatalf("watch after a change: %d %s", r.st, r.body)
	}
	t.Logf("watch answered %v after the change", r.at.Sub(changed))

	// The admin's view through the client equals the node's.
	as, err := e.admin.NodeState(ctx, nil, node)
	if err != nil || as.Version != s1.Version {
		t.Fatalf("admin node state: %v %v", as, err)
	}
	// Client-side watch closes its channel on a change.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch, err := e.admin.WatchNodeState(wctx, nil, node, s1.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.admin.Link(ctx, nil, core.SlicePerson, slice, user, nil); err != nil { // no keys: no change
		t.Fatal(err)
	}
	select {
	case <-wch:
		t.Fatal("client watch fired without a change of the state")
	case <-time.After(300 * time.Millisecond):
	}
	if err := e.admin.Unlink(ctx, nil, core.SliceNode, slice, node); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wch:
	case <-time.After(10 * time.Second):
		t.Fatal("client watch did not fire")
	}

	// Reports: unknown fields refused, run level recorded.
	st, body = e.raw("POST", nodeapi.ReportPath, auth, `{"run_level":"boot","bogus":1}`)
	if st != 400 || !strings.Contains(string(body), `"field":"bogus"`) {
		t.Errorf("report with an unknown field: %d %s", st, body)
	}
	if st, body := e.raw("POST", nodeapi.ReportPath, auth, `{"run_level":"boot","version":"test"}`); st != 204 {
		t.Fatalf("report: %d %s", st, body)
	}
	// Sensor figures: garbage is refused naming the field; a good
	// summary is taken.
	st, body = e.raw("POST", nodeapi.ReportPath, auth, `{"figures":{"time":"2025-01-01T00:00:00Z","load1":-3}}`)
	if st != 400 || !strings.Contains(string(body), `"field":"figures.load1"`) {
		t.Errorf("report with a negative load: %d %s", st, body)
	}
	st, body = e.raw("POST", nodeapi.ReportPath, auth, `{"figures":{"time":"2025-01-01T00:00:00Z","sliver_count":1,"slivers":[{"slice":"x","cpu_pct":101}]}}`)
	if st != 400 || !strings.Contains(string(body), `"field":"figures.slivers[0].cpu_pct"`) {
		t.Errorf("report with a sliver over 100%% CPU: %d %s", st, body)
	}
	if st, body := e.raw("POST", nodeapi.ReportPath, auth, `{"figures":{"time":"2025-01-01T00:00:00Z","load1":0.5,"cpus":2,"sliver_count":1,"slivers":[{"slice":"x","state":"running","cpu_pct":40}]}}`); st != 204 {
		t.Fatalf("report with figures: %d %s", st, body)
	}
	// Node API answers carry PLC's clock for the node's offset estimate.
	req, _ := http.NewRequest("GET", e.srv.URL+nodeapi.StatePath, nil)
	req.Header.Set("Authorization", auth)
	before := time.Now()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	plcTime, err := time.Parse(time.RFC3339Nano, resp.Header.Get(nodeapi.TimeHeader))
	if err != nil || plcTime.Before(before.Add(-time.Second)) || plcTime.After(time.Now().Add(time.Second)) {
		t.Errorf("%s header %q: %v", nodeapi.TimeHeader, resp.Header.Get(nodeapi.TimeHeader), err)
	}
	recs, _ := e.admin.Get(ctx, nil, core.Node, &core.Filter{IsList: true, IDs: []int64{node}}, []string{"run_level", "last_contact"})
	if recs[0]["run_level"] != "boot" {
		t.Errorf("run_level after report: %v", recs[0])
	}
}

// BenchmarkNodeState measures a node's state fetch (20 slivers) over HTTPS
// with the node API, reporting p50 and p99 latency.
func BenchmarkNodeState(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "plc.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc := service.New(db, service.Options{PasswordCost: bcrypt.MinCost})
	if _, err := svc.Init(ctx, adminEmail, adminPW); err != nil {
		b.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, core.Credentials{Method: "password", Username: adminEmail, Password: adminPW}, nil)
	if err != nil {
		b.Fatal(err)
	}
	site, _ := svc.Add(ctx, admin, core.Site, core.Record{"login_base": "bench", "name": "B", "abbreviated_name": "B", "max_slices": int64(100)})
	node, _ := svc.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": "n1.bench.org"})
	for i := range 20 {
		sl, err := svc.Add(ctx, admin, core.Slice, core.Record{"name": fmt.Sprintf("bench_s%d", i), "url": "http://x", "description": "d"})
		if err != nil {
			b.Fatal(err)
		}
		svc.Link(ctx, admin, core.SliceNode, sl, node, nil)
	}
	secret, _ := svc.IssueJoinToken(ctx, admin, node)
	key, err := svc.JoinNode(ctx, node, secret, "")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewTLSServer(rest.NewHandler(svc, nil))
	defer srv.Close()
	hc := srv.Client()
	auth := fmt.Sprintf("PLNode %d:%s", node, key)
	var lat []time.Duration
	defer func() {
		if len(lat) == 0 {
			return
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}()
	for b.Loop() {
		t0 := time.Now()
		req, _ := http.NewRequest("GET", srv.URL+nodeapi.StatePath, nil)
		req.Header.Set("Authorization", auth)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("HTTP %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
}

// TestClientFidelity checks that the client is a faithful core.Registry:
// every class read through REST equals what the service returns in
// process, value types included, and errors keep their code and field.
func TestClientFidelity(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	_, _, user, node, slice := e.populate()
	a := e.admin
	if err := a.Link(ctx, nil, core.SliceNode, slice, node, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Link(ctx, nil, core.SlicePerson, slice, user, nil); err != nil {
		t.Fatal(err)
	}
	tt, err := a.Resolve(ctx, nil, core.TagType, "cpu_share")
	if err != nil {
		t.Fatal(err)
	}
	e.must(a.Add(ctx, nil, core.SliceTag, core.Record{"slice_id": slice, "tag_type_id": tt, "value": "3", "node_id": node}))
	admin, err := e.svc.Authenticate(ctx, core.Credentials{Method: "session", Session: a.Token()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, class := range []core.Class{core.Site, core.Person, core.Node, core.Interface, core.Slice, core.SliceTag,
		core.TagType, core.Role, core.Key, core.BootState, core.NodeType, core.AddressType, core.InitScriptClass, core.NodeGroup} {
		direct, derr := e.svc.Get(ctx, admin, class, nil, nil)
		remote, rerr := a.Get(ctx, nil, class, nil, nil)
		if derr != nil || rerr != nil {
			t.Errorf("%s: direct %v, remote %v", class, derr, rerr)
			continue
		}
		if len(direct) == 0 && len(remote) == 0 {
			continue
		}
		compared++
		if !reflect.DeepEqual(normRecs(direct), normRecs(remote)) {
			t.Errorf("%s differs:\ndirect %#v\nremote %#v", class, direct, remote)
		}
	}
	if compared < 10 {
		t.Errorf("only %d classes compared", compared)
	}
	ds, err := e.svc.NodeState(ctx, admin, node)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := a.NodeState(ctx, nil, node)
	if err != nil {
		t.Fatal(err)
	}
	ds.Timestamp, rs.Timestamp = 0, 0
	if !reflect.DeepEqual(normState(ds), normState(rs)) {
		t.Errorf("node state differs:\ndirect %#v\nremote %#v", ds, rs)
	}
	// errors keep code and field
	_, derr := e.svc.Add(ctx, admin, core.Site, core.Record{"login_base": "x y", "name": "n", "abbreviated_name": "a"})
	_, rerr := a.Add(ctx, nil, core.Site, core.Record{"login_base": "x y", "name": "n", "abbreviated_name": "a"})
	if core.ErrorCode(derr) != core.ErrorCode(rerr) || core.ErrorField(derr) != core.ErrorField(rerr) || derr.Error() != rerr.Error() {
		t.Errorf("errors differ: direct %v (%s %s), remote %v (%s %s)", derr, core.ErrorCode(derr), core.ErrorField(derr), rerr, core.ErrorCode(rerr), core.ErrorField(rerr))
	}
}

// normRecs makes empty lists nil so that [] and nil compare equal.
func normRecs(recs []core.Record) []core.Record {
	out := make([]core.Record, len(recs))
	for i, r := range recs {
		n := core.Record{}
		for k, v := range r {
			n[k] = normVal(v)
		}
		out[i] = n
	}
	return out
}

func normVal(v any) any {
	switch x := v.(type) {
	case []int64:
		if len(x) == 0 {
			return nil
		}
	case []string:
		if len(x) == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case []core.Record:
		if len(x) == 0 {
			return nil
		}
		return normRecs(x)
	}
	return v
}

func normState(s *core.NodeState) *core.NodeState {
	c := *s
	c.Interfaces = normRecs(s.Interfaces)
	c.ConfFiles = normRecs(s.ConfFiles)
	if len(c.Interfaces) == 0 {
		c.Interfaces = nil
	}
	if len(c.ConfFiles) == 0 {
		c.ConfFiles = nil
	}
	b, _ := json.Marshal(c)
	var out core.NodeState
	json.Unmarshal(b, &out)
	out.Interfaces, out.ConfFiles = c.Interfaces, c.ConfFiles
	return &out
}

// TestRefusalsSayWhy: a role refusal names the operation, the roles it
// needs and who holds them at the caller's site (issue 9.12); a login
// refused by the backoff answers 429 with Retry-After (issue 9.4).
func TestRefusalsSayWhy(t *testing.T) {
	e := newEnv(t)
	admin, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "password", Username: adminEmail, Password: adminPW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	site := e.must(e.svc.Add(e.ctx, admin, core.Site, core.Record{"login_base": "princeton", "name": "Princeton", "abbreviated_name": "P", "max_slices": int64(5)}))
	person := func(email, role string) {
		id := e.must(e.svc.Add(e.ctx, admin, core.Person, core.Record{"email": email, "first_name": "F", "last_name": "L", "password": "pw"}))
		e.must(0, e.svc.Update(e.ctx, admin, core.Person, id, core.Record{"enabled": true}))
		e.must(0, e.svc.Link(e.ctx, admin, core.PersonSite, id, site, nil))
		rid, _ := service.RoleID(role)
		e.must(0, e.svc.Link(e.ctx, admin, core.PersonRole, id, rid, nil))
	}
	person("bob@princeton.edu", "pi")
	person("alice@princeton.edu", "pi")
	person("stu@princeton.edu", "user")
	stu := e.login("stu@princeton.edu", "pw")
	_, err = stu.Add(e.ctx, nil, core.Slice, core.Record{"name": "princeton_x", "url": "http://x", "description": "d"})
	wantCode(t, "user AddSlice", err, core.Forbidden, "")
	for _, want := range []string{"AddSlice", "needs role admin or pi", "(you have user)", "the PIs of site princeton are: alice@princeton.edu, bob@princeton.edu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}

	// A tag value nodes would refuse is refused when written: 400, naming
	// the tag and the reason (core/tags).
	sl := e.must(e.svc.Add(e.ctx, admin, core.Slice, core.Record{"name": "princeton_tags", "url": "http://x", "description": "d"}))
	tt, err := e.svc.Resolve(e.ctx, admin, core.TagType, "cpu_cap_pct")
	if err != nil {
		t.Fatal(err)
	}
	st, body := e.raw("POST", "/api/v1/slice-tags", "Bearer "+e.admin.Token(), fmt.Sprintf(`{"slice_id":%d,"tag_type_id":%d,"value":"409600"}`, sl, tt))
	var tb restapi.ErrorBody
	if err := json.Unmarshal(body, &tb); err != nil || st != http.StatusBadRequest || tb.Error.Code != core.Invalid ||
		tb.Error.Field != "cpu_cap_pct" || !strings.Contains(tb.Error.Message, "409600 is out of range 0..102400") {
		t.Errorf("bad cpu_cap_pct over REST: %d %s", st, body)
	}

	for i := 0; i < 6; i++ {
		st, _ := e.raw("POST", "/api/v1/sessions", "", `{"email":"stu@princeton.edu","password":"wrong"}`)
		if st != http.StatusUnauthorized {
			t.Fatalf("bad password %d: %d", i, st)
		}
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/sessions", strings.NewReader(`{"email":"stu@princeton.edu","password":"pw"}`))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb restapi.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" || eb.Error.Code != core.RateLimited || eb.Error.RetryAfter != 1 {
		t.Fatalf("locked-out login: %d Retry-After %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), eb)
	}
	_, err = e.client("").Login(e.ctx, "stu@princeton.edu", "pw", 0)
	if core.ErrorCode(err) != core.RateLimited || core.RetryAfter(err) != time.Second {
		t.Fatalf("client sees %v (retry after %v)", err, core.RetryAfter(err))
	}
}

// TestKeyWarnings: a key the original PLCAPI accepts but OpenSSH cannot
// use is created with a warning saying why; a usable key has none
// (issue 9.1).
func TestKeyWarnings(t *testing.T) {
	e := newEnv(t)
	e.populate()
	tok := "Bearer " + e.login("u@princeton.edu", "u-pw").Token()
	for _, tt := range []struct {
		key, warning string
	}{
		{"ssh-rsa QW55IHRleHQ= user@host", "is stored but not usable, so it is not installed on any node: not an OpenSSH public key"},
		{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEBmMe6lydVHC9XXJz3v+dXzYd6T1DDtyKPC/zL95e+H u@h", ""},
	} {
		b, _ := json.Marshal(map[string]string{"key": tt.key})
		st, body := e.raw("POST", "/api/v1/persons/u@princeton.edu/keys", tok, string(b))
		var c restapi.Created
		if err := json.Unmarshal(body, &c); err != nil || st != 201 || c.ID == 0 {
			t.Fatalf("%s: %d %s", tt.key, st, body)
		}
		if tt.warning == "" && len(c.Warnings) != 0 || tt.warning != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tt.warning)) {
			t.Errorf("%s: warnings %q, want %q", tt.key, c.Warnings, tt.warning)
		}
		st, body = e.raw("GET", fmt.Sprintf("/api/v1/keys/%d", c.ID), tok, "")
		var rec map[string]any
		json.Unmarshal(body, &rec)
		if st != 200 || rec["usable"] != (tt.warning == "") {
			t.Errorf("key %d: %d %s", c.ID, st, body)
		}
	}
}

// TestRegisterOverREST: sign-up is served to anonymous callers; the new
// account is disabled until enabled.
func TestRegisterOverREST(t *testing.T) {
	e := newEnv(t)
	if _, err := e.admin.Add(e.ctx, nil, core.Site, core.Record{"login_base": "princeton", "name": "P", "abbreviated_name": "P"}); err != nil {
		t.Fatal(err)
	}
	anon := e.client("")
	_, err := anon.RegisterPerson(e.ctx, nil, core.Registration{FirstName: "A", LastName: "L", Email: "a@example.org", Site: "princeton", Password: "short"})
	if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != "password" {
		t.Fatalf("short password: %v", err)
	}
	id, err := anon.RegisterPerson(e.ctx, nil, core.Registration{FirstName: "A", LastName: "L", Email: "a@example.org", Site: "princeton", Password: "long-enough"})
	if err != nil || id <= 0 {
		t.Fatalf("register: %d %v", id, err)
	}
	if _, err := e.client("").Login(e.ctx, "a@example.org", "long-enough", 0); err == nil {
		t.Fatal("a pending account logs in")
	}
	if err := e.admin.Update(e.ctx, nil, core.Person, id, core.Record{"enabled": true}); err != nil {
		t.Fatal(err)
	}
	e.login("a@example.org", "long-enough")
}

// TestOutboxOverREST: the admin reads the outbox through the client (the
// sign-up's mail queued); a user and an anonymous caller are refused; a
// bad state is an invalid field.
func TestOutboxOverREST(t *testing.T) {
	e := newEnv(t)
	e.populate()
	if _, err := e.client("").RegisterPerson(e.ctx, nil, core.Registration{FirstName: "A", LastName: "L", Email: "a@example.org", Site: "princeton", Password: "long-enough"}); err != nil {
		t.Fatal(err)
	}
	ms, err := e.admin.Outbox(e.ctx, nil, core.OutboxQuery{State: core.OutboxQueued})
	if err != nil {
		t.Fatal(err)
	}
	var verify, pending bool
	for _, m := range ms {
		if m.State != core.OutboxQueued || m.Attempts != 0 || m.NextTry == 0 {
			t.Fatalf("a queued message: %+v", m)
		}
		verify = verify || m.Kind == "email_verify" && strings.Join(m.Recipients, ",") == "a@example.org"
		pending = pending || m.Kind == "signup_pending" && strings.Join(m.Recipients, ",") == "pi@princeton.edu"
	}
	if !verify || !pending {
		t.Fatalf("outbox after a sign-up: %+v", ms)
	}
	if ms, err := e.admin.Outbox(e.ctx, nil, core.OutboxQuery{State: core.OutboxSent}); err != nil || len(ms) != 0 {
		t.Fatalf("sent: %v %v", ms, err)
	}
	_, err = e.admin.Outbox(e.ctx, nil, core.OutboxQuery{State: "lost"})
	wantCode(t, "bad state", err, core.Invalid, "state")
	_, err = e.login("u@princeton.edu", "u-pw").Outbox(e.ctx, nil, core.OutboxQuery{})
	wantCode(t, "a user", err, core.Forbidden, "")
	if st, body := e.raw("GET", "/api/v1/outbox", "", ""); st != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d %s", st, body)
	}
}

// TestPlanetHistoryOverREST: the monitor's samples through the client
// (admins), ?since= and a user refused.
func TestPlanetHistoryOverREST(t *testing.T) {
	e := newEnv(t)
	e.populate()
	if err := e.svc.MonitorStep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.MonitorStep(e.ctx); err != nil { // within the minute: no second sample
		t.Fatal(err)
	}
	hs, err := e.admin.PlanetHistory(e.ctx, nil, 0)
	if err != nil || len(hs) != 1 || hs[0].NodesUnknown != 1 || hs[0].At == 0 {
		t.Fatalf("history: %+v %v", hs, err)
	}
	if hs, err := e.admin.PlanetHistory(e.ctx, nil, hs[0].At); err != nil || len(hs) != 0 {
		t.Fatalf("since the sample: %+v %v", hs, err)
	}
	_, err = e.login("u@princeton.edu", "u-pw").PlanetHistory(e.ctx, nil, 0)
	wantCode(t, "a user", err, core.Forbidden, "")
}
