package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/tlspin"
)

// The client against an httptest server that records each request and
// answers what the test says: the wire form of every call (method, path,
// query, Authorization, body), the decoding of answers and errors, TLS
// pinning, timeouts and the watch loop.

type request struct {
	Method, Path, Query, Auth, Body string
}

// fakePLC records requests; answer decides the response (default 200 {}).
type fakePLC struct {
	mu     sync.Mutex
	reqs   []request
	answer func(w http.ResponseWriter, r request)
}

func (f *fakePLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	req := request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), string(b)}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		w.Write([]byte("{}"))
		return
	}
	answer(w, req)
}

func (f *fakePLC) last(t *testing.T) request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return f.reqs[len(f.reqs)-1]
}

func (f *fakePLC) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakePLC) setAnswer(a func(w http.ResponseWriter, r request)) {
	f.mu.Lock()
	f.answer = a
	f.mu.Unlock()
}

func jsonAnswer(status int, body string) func(http.ResponseWriter, request) {
	return func(w http.ResponseWriter, _ request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func newFake(t *testing.T, opts Options) (*fakePLC, *Client) {
	t.Helper()
	f := &fakePLC{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// sameJSON compares two JSON texts as values.
func sameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	if got == "" || want == "" {
		return got == want
	}
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestRequests(t *testing.T) {
	f, c := newFake(t, Options{Token: "tok"})
	ctx := context.Background()
	sess := &core.Caller{Session: "other"}
	cases := []struct {
		name string
		call func() error
		want request // Body compared as JSON
	}{
		{"whoami", func() error { _, err := c.Whoami(ctx); return err },
			request{"GET", "/api/v1/whoami", "", "Bearer tok", ""}},
		{"get with filter and fields", func() error {
			_, err := c.Get(ctx, nil, core.Site, &core.Filter{Terms: []core.Term{{Field: "login_base", Op: core.Eq, Value: "p*"}}}, []string{"site_id", "name"})
			return err
		}, request{"GET", "/api/v1/sites", "fields=site_id%2Cname&filter=%7B%22login_base%22%3A%22p%2A%22%7D", "Bearer tok", ""}},
		{"get all, session of the caller", func() error { _, err := c.Get(ctx, sess, core.BootState, nil, nil); return err },
			request{"GET", "/api/v1/boot-states", "", "Bearer other", ""}},
		{"add keeps floats", func() error {
			_, err := c.Add(ctx, nil, core.Site, core.Record{"name": "x", "latitude": 42.0, "max_slices": int64(3)})
			return err
		}, request{"POST", "/api/v1/sites", "", "Bearer tok", `{"name":"x","latitude":42.0,"max_slices":3}`}},
		{"update", func() error { return c.Update(ctx, nil, core.Node, 7, core.Record{"boot_state": "boot"}) },
			request{"PATCH", "/api/v1/nodes/7", "", "Bearer tok", `{"boot_state":"boot"}`}},
		{"delete", func() error { return c.Delete(ctx, nil, core.Slice, 9) },
			request{"DELETE", "/api/v1/slices/9", "", "Bearer tok", ""}},
		{"delete lookup by name", func() error { return c.DeleteLookup(ctx, nil, core.BootState, "a b/c") },
			request{"DELETE", "/api/v1/boot-states/a%20b%2Fc", "", "Bearer tok", ""}},
		{"link", func() error { return c.Link(ctx, nil, core.SliceNode, 3, 4, nil) },
			request{"PUT", "/api/v1/slices/3/nodes/4", "", "Bearer tok", ""}},
		{"link with extra fields", func() error { return c.Link(ctx, nil, core.NodePCU, 3, 4, core.Record{"port": int64(2)}) },
			request{"PUT", "/api/v1/nodes/3/pcus/4", "", "Bearer tok", `{"port":2}`}},
		{"unlink", func() error { return c.Unlink(ctx, nil, core.PersonSite, 5, 6) },
			request{"DELETE", "/api/v1/persons/5/sites/6", "", "Bearer tok", ""}},
		{"primary site", func() error { return c.SetPersonPrimarySite(ctx, nil, 5, 6) },
			request{"PUT", "/api/v1/persons/5/primary-site/6", "", "Bearer tok", ""}},
		{"blacklist", func() error { return c.BlacklistKey(ctx, nil, 8) },
			request{"POST", "/api/v1/keys/8/blacklist", "", "Bearer tok", ""}},
		{"renew", func() error { _, err := c.RenewSlice(ctx, nil, 9, 1000); return err },
			request{"POST", "/api/v1/slices/9/renew", "", "Bearer tok", `{"expires":1000}`}},
		{"leases", func() error { _, _, err := c.AddLeases(ctx, nil, []int64{1, 2}, 9, 10, 20); return err },
			request{"POST", "/api/v1/leases", "", "Bearer tok", `{"node_ids":[1,2],"slice_id":9,"t_from":10,"t_until":20}`}},
		{"resolve by name", func() error { _, err := c.Resolve(ctx, nil, core.Site, "pl"); return err },
			request{"GET", "/api/v1/resolve", "class=" + string(core.Site) + "&name=pl", "Bearer tok", ""}},
		{"resolve by id", func() error { _, err := c.Resolve(ctx, nil, core.Node, 12); return err },
			request{"GET", "/api/v1/resolve", "class=" + string(core.Node) + "&id=12", "Bearer tok", ""}},
		{"token", func() error { _, err := c.CreateSession(ctx, nil, time.Hour); return err },
			request{"POST", "/api/v1/tokens", "", "Bearer tok", `{"ttl":3600}`}},
		{"delete session", func() error { return c.DeleteSession(ctx, nil, "s/1") },
			request{"DELETE", "/api/v1/sessions/s%2F1", "", "Bearer tok", ""}},
		{"join token", func() error { _, err := c.JoinToken(ctx, 4); return err },
			request{"POST", "/api/v1/nodes/4/join-token", "", "Bearer tok", ""}},
		{"join: no credentials", func() error { _, err := c.JoinNode(ctx, 4, "secret", "ssh-ed25519 AAAA"); return err },
			request{"POST", "/api/v1/node/join", "", "", `{"node_id":4,"secret":"secret","ssh_host_key":"ssh-ed25519 AAAA"}`}},
		{"node state", func() error { _, err := c.NodeState(ctx, nil, 4); return err },
			request{"GET", "/api/v1/nodes/4/state", "", "Bearer tok", ""}},
		{"report", func() error {
			return c.ReportNode(ctx, nil, 4, core.NodeReport{RunLevel: "boot", BootState: "boot", Version: "1.2", SliverErrors: map[string]string{"s": "broken"}})
		}, request{"POST", "/api/v1/nodes/4/report", "", "Bearer tok", `{"run_level":"boot","boot_state":"boot","version":"1.2","sliver_errors":{"s":"broken"}}`}},
		{"op roles: anonymous", func() error {
			if c.OpRoles("GetSites") == nil {
				return errors.New("no roles")
			}
			return nil
		}, request{"GET", "/api/v1/op-roles/GetSites", "", "", ""}},
	}
	f.setAnswer(func(w http.ResponseWriter, r request) {
		switch {
		case r.Path == "/api/v1/op-roles/GetSites":
			io.WriteString(w, `{"roles":["admin"]}`)
		case r.Method == "GET" && (r.Path == "/api/v1/sites" || r.Path == "/api/v1/boot-states"):
			io.WriteString(w, "[]")
		default:
			io.WriteString(w, "{}")
		}
	})
	for _, tc := range cases {
		if err := tc.call(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := f.last(t)
		body, wantBody := got.Body, tc.want.Body
		got.Body, tc.want.Body = "", ""
		if got != tc.want {
			t.Errorf("%s: sent %+v, want %+v", tc.name, got, tc.want)
		}
		if !sameJSON(t, body, wantBody) {
			t.Errorf("%s: body %s, want %s", tc.name, body, wantBody)
		}
		// PLC types 42 as an integer: a float field must read 42.0.
		if strings.Contains(wantBody, "42.0") && !strings.Contains(body, `"latitude":42.0`) {
			t.Errorf("%s: body %s lost the float", tc.name, body)
		}
	}
}

func TestLoginLogoutToken(t *testing.T) {
	f, c := newFake(t, Options{})
	ctx := context.Background()
	f.setAnswer(jsonAnswer(200, `{"token":"new","expires":99}`))
	s, err := c.Login(ctx, "a@b.org", "pw", 2*time.Minute)
	if err != nil || s.ID != "new" || s.Expires != 99 {
		t.Fatalf("login: %+v, %v", s, err)
	}
	r := f.last(t)
	if r.Method != "POST" || r.Path != "/api/v1/sessions" || r.Auth != "" || !sameJSON(t, r.Body, `{"email":"a@b.org","password":"pw","ttl":120}`) {
		t.Errorf("login sent %+v", r)
	}
	if c.Token() != "new" {
		t.Errorf("token %q after login", c.Token())
	}
	f.setAnswer(jsonAnswer(http.StatusNoContent, ""))
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.Method != "DELETE" || r.Path != "/api/v1/sessions" || r.Auth != "Bearer new" {
		t.Errorf("logout sent %+v", r)
	}
	if c.Token() != "" {
		t.Errorf("token %q after logout", c.Token())
	}
	// A failed logout keeps the token.
	c.SetToken("kept")
	f.setAnswer(jsonAnswer(500, `{"error":{"code":"internal","message":"boom"}}`))
	if err := c.Logout(ctx); err == nil || c.Token() != "kept" {
		t.Errorf("failed logout: %v, token %q", err, c.Token())
	}
}

func TestAuthenticate(t *testing.T) {
	f, c := newFake(t, Options{Token: "mine"})
	ctx := context.Background()
	whoami := `{"kind":"person","person_id":3,"email":"a@b.org","roles":["pi"],"site_ids":[1]}`
	f.setAnswer(func(w http.ResponseWriter, r request) {
		switch r.Path {
		case "/api/v1/sessions":
			io.WriteString(w, `{"token":"fresh","expires":5}`)
		case "/api/v1/whoami":
			if strings.HasPrefix(r.Auth, "PLNode") {
				io.WriteString(w, `{"kind":"node","node_id":4,"roles":[],"site_ids":[]}`)
			} else if r.Auth == "" {
				io.WriteString(w, `{"kind":"anonymous","roles":[],"site_ids":[]}`)
			} else {
				io.WriteString(w, whoami)
			}
		}
	})
	caller, err := c.Authenticate(ctx, core.Credentials{Method: "password", Username: "a@b.org", Password: "pw"}, []string{"pi", "admin"})
	if err != nil {
		t.Fatal(err)
	}
	want := &core.Caller{Kind: core.PersonCaller, PersonID: 3, Email: "a@b.org", Roles: []string{"pi"}, SiteIDs: []int64{1}, Session: "fresh"}
	if !reflect.DeepEqual(caller, want) {
		t.Errorf("caller %+v, want %+v", caller, want)
	}
	if r := f.last(t); r.Auth != "Bearer fresh" {
		t.Errorf("whoami with %q, want the new session", r.Auth)
	}
	if c.Token() != "mine" {
		t.Errorf("Authenticate replaced the client's token: %q", c.Token())
	}
	if _, err := c.Authenticate(ctx, core.Credentials{Method: "session", Session: "s1"}, []string{"admin"}); core.ErrorCode(err) != core.Unauthenticated {
		t.Errorf("role missing: %v", err)
	}
	if r := f.last(t); r.Auth != "Bearer s1" {
		t.Errorf("session auth sent %q", r.Auth)
	}
	caller, err = c.Authenticate(ctx, core.Credentials{Method: "node_key", NodeID: 4, NodeKey: "k"}, []string{"admin"})
	if err != nil || caller.Kind != core.NodeCaller || caller.NodeID != 4 {
		t.Errorf("node: %+v, %v (roles apply to persons only)", caller, err)
	}
	if r := f.last(t); r.Auth != "PLNode 4:k" {
		t.Errorf("node auth sent %q", r.Auth)
	}
	caller, err = c.Authenticate(ctx, core.Credentials{Method: "anonymous"}, nil)
	if err != nil || caller.Kind != core.Anonymous {
		t.Errorf("anonymous: %+v, %v", caller, err)
	}
	n := f.count()
	if _, err := c.Authenticate(ctx, core.Credentials{Method: "gpg"}, nil); core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != "AuthMethod" {
		t.Errorf("unknown method: %v", err)
	}
	if f.count() != n {
		t.Error("an unknown method reached the server")
	}
}

func TestDecodeAnswers(t *testing.T) {
	f, c := newFake(t, Options{})
	ctx := context.Background()
	f.setAnswer(jsonAnswer(200, `[{"site_id":1,"latitude":1.5,"name":"x","node_ids":[3,4],"url":null,"enabled":true}]`))
	got, err := c.Get(ctx, nil, core.Site, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []core.Record{{"site_id": int64(1), "latitude": 1.5, "name": "x", "node_ids": []int64{3, 4}, "url": nil, "enabled": true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records %#v,\nwant %#v", got, want)
	}
	f.setAnswer(jsonAnswer(200, `[]`))
	if got, err := c.Get(ctx, nil, core.Site, nil, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty answer: %#v, %v", got, err)
	}
	f.setAnswer(jsonAnswer(200, `{"id":17,"warnings":["w"]}`))
	if id, err := c.Add(ctx, nil, core.Node, core.Record{"hostname": "h"}); err != nil || id != 17 {
		t.Errorf("add: %d, %v", id, err)
	}
	f.setAnswer(jsonAnswer(200, `{"new_ids":[5],"errors":["node 2 is busy"]}`))
	if ids, errs, err := c.AddLeases(ctx, nil, []int64{1, 2}, 1, 0, 1); err != nil || !reflect.DeepEqual(ids, []int64{5}) || !reflect.DeepEqual(errs, []string{"node 2 is busy"}) {
		t.Errorf("leases: %v %v %v", ids, errs, err)
	}
	f.setAnswer(jsonAnswer(200, `{"node_id":4,"hostname":"h","node_key":"K"}`))
	if k, err := c.JoinNode(ctx, 4, "s", ""); err != nil || k != "K" {
		t.Errorf("join: %q, %v", k, err)
	}
	f.setAnswer(jsonAnswer(200, `[{"x":`))
	if _, err := c.Get(ctx, nil, core.Site, nil, nil); core.ErrorCode(err) != core.Internal || !strings.Contains(err.Error(), "decoding PLC answer to GET /sites") {
		t.Errorf("bad JSON: %v", err)
	}
	// Refused before anything is sent.
	n := f.count()
	if _, err := c.Get(ctx, nil, core.Class("Nope"), nil, nil); core.ErrorCode(err) != core.Invalid {
		t.Errorf("unknown class: %v", err)
	}
	if err := c.Link(ctx, nil, core.Relation("nope"), 1, 2, nil); core.ErrorCode(err) != core.Invalid {
		t.Errorf("unknown relation: %v", err)
	}
	if _, err := c.Add(ctx, nil, core.Lease, core.Record{}); core.ErrorCode(err) != core.Invalid {
		t.Errorf("add lease: %v", err)
	}
	if _, err := c.Resolve(ctx, nil, core.Site, 1.5); core.ErrorCode(err) != core.Invalid {
		t.Errorf("resolve a float: %v", err)
	}
	if _, err := c.Add(ctx, nil, core.Site, core.Record{"latitude": 1 / zero()}); core.ErrorCode(err) != core.Invalid {
		t.Errorf("infinite float: %v", err)
	}
	if f.count() != n {
		t.Errorf("%d refused calls reached the server", f.count()-n)
	}
}

func zero() float64 { return 0 }

func TestErrors(t *testing.T) {
	f, c := newFake(t, Options{})
	ctx := context.Background()
	// The error body is the truth; the field prefix is not repeated.
	f.setAnswer(jsonAnswer(400, `{"error":{"code":"invalid","field":"email","message":"email: not an address"}}`))
	err := c.Update(ctx, nil, core.Person, 1, core.Record{"email": "x"})
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Code != core.Invalid || ce.Field != "email" || ce.Message != "not an address" {
		t.Errorf("error body: %#v", err)
	}
	f.setAnswer(jsonAnswer(429, `{"error":{"code":"rate_limited","message":"slow down","retry_after":7}}`))
	err = c.Delete(ctx, nil, core.Site, 1)
	if core.ErrorCode(err) != core.RateLimited || core.RetryAfter(err) != 7*time.Second {
		t.Errorf("rate limited: %v, retry after %v", err, core.RetryAfter(err))
	}
	// Without an error body the status decides.
	for status, code := range map[int]core.Code{
		400: core.Invalid, 413: core.Invalid, 401: core.Unauthenticated, 403: core.Forbidden,
		404: core.NotFound, 409: core.Conflict, 429: core.RateLimited, 501: core.Unimplemented,
		502: core.Unavailable, 503: core.Unavailable, 504: core.Unavailable, 500: core.Internal, 418: core.Internal,
	} {
		f.setAnswer(func(w http.ResponseWriter, _ request) {
			w.WriteHeader(status)
			io.WriteString(w, "plain text "+strings.Repeat("x", 300))
		})
		err := c.Delete(ctx, nil, core.Site, 1)
		if core.ErrorCode(err) != code {
			t.Errorf("HTTP %d: %v, want %s", status, err, code)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("PLC answered HTTP %d: plain text", status)) || strings.Count(msg, "x") > 200 {
			t.Errorf("HTTP %d: message %q", status, msg)
		}
	}
	// No server: unavailable, naming the request but not the token.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	dead, err := New(srv.URL, Options{Token: "secret-token"})
	if err != nil {
		t.Fatal(err)
	}
	err = dead.Delete(ctx, nil, core.Site, 1)
	if core.ErrorCode(err) != core.Unavailable || !strings.Contains(err.Error(), "DELETE "+srv.URL+"/api/v1/sites/1") || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("no server: %v", err)
	}
	if dead.OpRoles("GetSites") != nil {
		t.Error("OpRoles without a server is not nil")
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f, c := newFake(t, Options{Timeout: 100 * time.Millisecond})
	f.setAnswer(func(w http.ResponseWriter, _ request) { <-release })
	start := time.Now()
	_, err := c.Whoami(context.Background())
	if core.ErrorCode(err) != core.Unavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow server: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

func TestWatchNodeState(t *testing.T) {
	f, c := newFake(t, Options{Token: "nodetok"})
	var polls int
	var mu sync.Mutex
	f.setAnswer(func(w http.ResponseWriter, r request) {
		mu.Lock()
		polls++
		n := polls
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, `{"version":"v2"}`)
	})
	ch, err := c.WatchNodeState(context.Background(), nil, 4, "v1")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not end when the state changed")
	}
	mu.Lock()
	defer mu.Unlock()
	if polls != 3 {
		t.Errorf("%d polls, want 3 (two unchanged, one changed)", polls)
	}
	if r := f.last(t); r.Method != "GET" || r.Path != "/api/v1/nodes/4/watch" || r.Query != "timeout=55&version=v1" || r.Auth != "Bearer nodetok" {
		t.Errorf("watch sent %+v", r)
	}
}

func TestWatchNodeStateCancel(t *testing.T) {
	f, c := newFake(t, Options{})
	f.setAnswer(func(w http.ResponseWriter, r request) { w.WriteHeader(http.StatusNotModified) })
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := c.WatchNodeState(ctx, nil, 4, "v1")
	if err != nil {
		t.Fatal(err)
	}
	for f.count() < 2 {
		time.Sleep(time.Millisecond)
	}
	select {
	case <-ch:
		t.Fatal("watch ended while the state was unchanged")
	default:
	}
	cancel()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not end with its context")
	}
}

func TestNew(t *testing.T) {
	for _, bad := range []string{"", "plc.example.org", "ftp://plc", "https://", "http://%zz"} {
		if _, err := New(bad, Options{}); core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != "url" {
			t.Errorf("New(%q): %v", bad, err)
		}
	}
	if _, err := New("http://plc", Options{Fingerprint: strings.Repeat("ab", 32)}); core.ErrorField(err) != "url" {
		t.Errorf("pin on plain HTTP: %v", err)
	}
	for _, fp := range []string{"xyz", "abcd", strings.Repeat("ab", 33)} {
		if _, err := New("https://plc", Options{Fingerprint: fp}); core.ErrorField(err) != "fingerprint" {
			t.Errorf("fingerprint %q: %v", fp, err)
		}
	}
	dir := t.TempDir()
	if _, err := New("https://plc", Options{CAFile: filepath.Join(dir, "none.pem")}); core.ErrorField(err) != "ca" {
		t.Errorf("missing CA file: %v", err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM"), 0o600)
	if _, err := New("https://plc", Options{CAFile: junk}); core.ErrorField(err) != "ca" || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("junk CA file: %v", err)
	}
	c, err := New("https://plc.example.org:8443/", Options{Token: "t"})
	if err != nil || c.URL() != "https://plc.example.org:8443" || c.Token() != "t" {
		t.Errorf("New: %v, URL %q", err, c.URL())
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"kind":"anonymous","roles":[],"site_ids":[]}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	fp := hex.EncodeToString(sum[:])
	if got := tlspin.Fingerprint(srv.Certificate().Raw); got != fp {
		t.Fatalf("Fingerprint %s, want %s", got, fp)
	}
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, strings.ToUpper(fp[i:i+2]))
	}
	ctx := context.Background()
	for name, opts := range map[string]Options{
		"pin":             {Fingerprint: fp},
		"pin with colons": {Fingerprint: strings.Join(colons, ":")},
		"CA pool":         {RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
	} {
		c, err := New(srv.URL, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := c.Whoami(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	wrong := strings.Repeat("00", 32)
	for name, opts := range map[string]Options{
		"wrong pin":   {Fingerprint: wrong},
		"not trusted": {},
	} {
		c, err := New(srv.URL, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = c.Whoami(ctx)
		if core.ErrorCode(err) != core.Unavailable {
			t.Errorf("%s: %v, want unavailable", name, err)
		}
		if name == "wrong pin" && !strings.Contains(err.Error(), "does not match the pinned "+wrong) {
			t.Errorf("wrong pin: %v", err)
		}
	}
}
