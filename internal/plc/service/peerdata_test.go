package service

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/peering"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

// plc is one PLC of a peering test: a service with a peer key served over
// HTTPS by the peer endpoints.
type plc struct {
	*env
	key  ed25519.PrivateKey
	url  string
	logs *logBuffer // what the service logged
}

// logged reports whether the service logged text (as is, or quoted by
// the text handler).
func (p *plc) logged(text string) bool {
	l := p.logs.String()
	return strings.Contains(l, text) || strings.Contains(l, strings.Trim(strconv.Quote(text), `"`))
}

// logBuffer collects a service's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newPLC(t *testing.T, dsn string) *plc {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	clk := &clock{t: time.Now()}
	logs := &logBuffer{}
	s := New(db, Options{Now: clk.Now, PasswordCost: bcrypt.MinCost, PeerKey: key, ReadCacheSize: -1, Log: slog.New(slog.NewTextHandler(logs, nil))})
	t.Cleanup(func() { s.Close() })
	if _, err := s.Init(ctx, adminEmail, adminPass); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, s: s, clock: clk}
	e.admin = e.login(adminEmail, adminPass)
	srv := httptest.NewTLSServer(peering.Handler(s, key, slog.Default(), time.Now))
	t.Cleanup(srv.Close)
	return &plc{env: e, key: key, url: srv.URL + "/", logs: logs}
}

// peerWith records q as a peer of p and returns its peer id at p.
func (p *plc) peerWith(name string, q *plc) int64 {
	p.t.Helper()
	return p.add(p.admin, core.Peer, core.Record{"peername": name, "peer_url": q.url, "key": peering.FormatPublicKey(q.key.Public().(ed25519.PublicKey))})
}

func (p *plc) refresh(peer int64) core.Record {
	p.t.Helper()
	r, err := p.s.RefreshPeer(p.ctx, p.admin, peer)
	if err != nil {
		p.t.Fatalf("RefreshPeer: %v", err)
	}
	return r
}

// sliverKeys returns the keys of slice name in node's desired state (nil:
// no sliver).
func (p *plc) sliverKeys(node int64, name string) []string {
	p.t.Helper()
	for _, sl := range p.state(node).Slivers {
		if sl.Name == name {
			var keys []string
			for _, k := range sl.Keys {
				keys = append(keys, k.Key)
			}
			if keys == nil {
				keys = []string{}
			}
			return keys
		}
	}
	return nil
}

// sliverAttr returns the attributes of slice name in node's desired state.
func (p *plc) sliverAttr(node int64, name string) map[string]string {
	p.t.Helper()
	out := map[string]string{}
	for _, sl := range p.state(node).Slivers {
		if sl.Name == name {
			for _, a := range sl.Attributes {
				out[a.TagName] = a.Value
			}
		}
	}
	return out
}

// twoPLCs builds A and B peered both ways, each with a site and a node,
// each having refreshed the other once.
func twoPLCs(t *testing.T, dsnA, dsnB string) (a, b *plc, bAtA, aAtB, nodeA, nodeB int64) {
	a, b = newPLC(t, dsnA), newPLC(t, dsnB)
	bAtA, aAtB = a.peerWith("PLB", b), b.peerWith("PLA", a)
	nodeA = a.node(a.site("pla", 10), "n1.pla.test")
	nodeB = b.node(b.site("plb", 10), "n1.plb.test")
	a.refresh(bAtA)
	b.refresh(aAtB)
	return
}

func TestPeeringSliceAcrossPLCs(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dsn := func() string {
				if dialect == "sqlite" {
					return filepath.Join(t.TempDir(), "plc.db")
				}
				return pgtestDSN(t)
			}
			a, b, bAtA, aAtB, nodeA, nodeB := twoPLCs(t, dsn(), dsn())
			// Each sees the other's site and node as foreign, read-only.
			nb := get(t, a.env, a.admin, core.Node, "n1.plb.test", "node_id", "peer_id", "peer_node_id")
			if len(nb) != 1 || nb[0]["peer_id"] != bAtA || nb[0]["peer_node_id"] != nodeB {
				t.Fatalf("B's node at A: %v", nb)
			}
			if r := get(t, b.env, b.admin, core.Site, "pla", "peer_id"); len(r) != 1 || r[0]["peer_id"] != aAtB {
				t.Fatalf("A's site at B: %v", r)
			}
			// A user of A makes a slice at A on nodes of both.
			pi := a.person("pi@pla.test", get(t, a.env, a.admin, core.Site, "pla", "site_id")[0]["site_id"].(int64), "pi", "user")
			key := sshKey(t)
			a.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": key})
			slice := a.slice(pi, "pla_demo")
			a.tag(pi, slice, "initscript_code", "#!/bin/sh\necho hi")
			a.tag(a.admin, slice, "cpu_pct", "50") // an admin's tag: stays at A
			a.must(a.s.Link(a.ctx, pi, core.SlicePerson, slice, pi.PersonID, nil))
			a.must(a.s.Link(a.ctx, pi, core.SliceNode, slice, nodeA, nil))
			a.must(a.s.Link(a.ctx, pi, core.SliceNode, slice, nb[0]["node_id"].(int64), nil))
			if got := b.sliverKeys(nodeB, "pla_demo"); got != nil {
				t.Fatalf("sliver at B before a refresh: %v", got)
			}
			r := b.refresh(aAtB)
			if r["added"].(int64) < 3 { // slice, person, key
				t.Fatalf("refresh stats %v", r)
			}
			if got := b.sliverKeys(nodeB, "pla_demo"); len(got) != 1 || !strings.HasPrefix(key, strings.Join(strings.Fields(got[0])[:2], " ")) {
				t.Fatalf("B's node's sliver keys %v, want %q", got, key)
			}
			if got := b.sliverAttr(nodeB, "pla_demo"); got["initscript_code"] != "#!/bin/sh\necho hi" || got["cpu_pct"] != "" {
				t.Fatalf("B's sliver attributes %v: want A's member tags only", got)
			}
			// B's admin suspends it: a refresh keeps the suspension (enabled is B's).
			fsID := get(t, b.env, b.admin, core.Slice, "pla_demo", "slice_id")[0]["slice_id"].(int64)
			b.must(b.s.SuspendSlice(b.ctx, b.admin, fsID, "B's policy"))
			b.refresh(aAtB)
			if got := b.sliverAttr(nodeB, "pla_demo"); got["enabled"] != "0" {
				t.Fatalf("a refresh undid B's suspension: %v", got)
			}
			b.must(b.s.ResumeSlice(b.ctx, b.admin, fsID, "B's policy"))
			// The slice at B is A's, read-only, with B's node only among its local nodes.
			fs := get(t, b.env, b.admin, core.Slice, "pla_demo", "slice_id", "peer_id", "peer_slice_id", "node_ids")
			if fs[0]["peer_id"] != aAtB || fs[0]["peer_slice_id"] != slice {
				t.Fatalf("foreign slice at B: %v", fs)
			}
			err := b.s.Update(b.ctx, b.admin, core.Slice, fs[0]["slice_id"].(int64), core.Record{"description": "mine now"})
			wantCode(t, err, core.Invalid, "UpdateSlice of a foreign slice")
			// Policy at B: refusing the slice removes the sliver; admitting brings it back.
			a.must(b.s.RefuseSlice(b.ctx, b.admin, fs[0]["slice_id"].(int64), true, "abuse report 17"))
			if b.sliverKeys(nodeB, "pla_demo") != nil {
				t.Fatal("refused slice still has a sliver")
			}
			b.refresh(aAtB) // a refresh keeps the refusal
			if b.sliverKeys(nodeB, "pla_demo") != nil {
				t.Fatal("refresh undid the refusal")
			}
			a.must(b.s.RefuseSlice(b.ctx, b.admin, fs[0]["slice_id"].(int64), false, ""))
			if b.sliverKeys(nodeB, "pla_demo") == nil {
				t.Fatal("admitted slice has no sliver")
			}
			// The per-peer cap.
			a.must(b.s.Update(b.ctx, b.admin, core.Peer, aAtB, core.Record{"max_slices": 0}))
			if b.sliverKeys(nodeB, "pla_demo") != nil {
				t.Fatal("a cap of 0 slices left the sliver")
			}
			a.must(b.s.Update(b.ctx, b.admin, core.Peer, aAtB, core.Record{"max_slices": 1}))
			// A key change at A reaches B.
			key2 := sshKey(t)
			a.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": key2})
			b.refresh(aAtB)
			if got := b.sliverKeys(nodeB, "pla_demo"); len(got) != 2 {
				t.Fatalf("after a second key: %v", got)
			}
			// Deleting at A removes the sliver at B.
			a.must(a.s.Delete(a.ctx, pi, core.Slice, slice))
			r = b.refresh(aAtB)
			if b.sliverKeys(nodeB, "pla_demo") != nil {
				t.Fatal("sliver at B survived the slice's deletion at A")
			}
			if len(get(t, b.env, b.admin, core.Slice, "pla_demo")) != 0 || r["deleted"].(int64) < 1 {
				t.Fatalf("slice at B after deletion at A: stats %v", r)
			}
			// GetPeerData for an admin is the original's struct.
			pd, err := a.s.GetPeerData(a.ctx, a.admin)
			a.must(err)
			for _, k := range []string{"Sites", "Keys", "Nodes", "Persons", "Slices", "db_time"} {
				if _, ok := pd[k]; !ok {
					t.Fatalf("GetPeerData lacks %s: %v", k, pd)
				}
			}
		})
	}
}

func pgtestDSN(t *testing.T) string { return pgtest.DSN(t) }

// TestPeeringPush: with RunPeers on both sides, a change at A reaches B's
// node's desired state within seconds, without an explicit refresh.
func TestPeeringPush(t *testing.T) {
	a, b, _, _, _, nodeB := twoPLCs(t, filepath.Join(t.TempDir(), "a.db"), filepath.Join(t.TempDir(), "b.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	go func() { a.s.RunPeers(ctx, time.Hour); done <- struct{}{} }()
	go func() { b.s.RunPeers(ctx, time.Hour); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	site := get(t, a.env, a.admin, core.Site, "pla", "site_id")[0]["site_id"].(int64)
	pi := a.person("pi@pla.test", site, "pi")
	a.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": sshKey(t)})
	slice := a.slice(pi, "pla_push")
	a.must(a.s.Link(a.ctx, pi, core.SlicePerson, slice, pi.PersonID, nil))
	remote := get(t, a.env, a.admin, core.Node, "n1.plb.test", "node_id")[0]["node_id"].(int64)
	start := time.Now()
	a.must(a.s.Link(a.ctx, pi, core.SliceNode, slice, remote, nil))
	for b.sliverKeys(nodeB, "pla_push") == nil {
		if time.Since(start) > 10*time.Second {
			t.Fatal("B's node has no sliver 10 s after the change at A")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("change at A to B's desired state: %v", time.Since(start))
	// A member's new key at A is pushed too.
	start = time.Now()
	a.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": sshKey(t)})
	for len(b.sliverKeys(nodeB, "pla_push")) != 2 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("B's sliver keys 10 s after a new key at A: %v", b.sliverKeys(nodeB, "pla_push"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	start = time.Now()
	a.must(a.s.Delete(a.ctx, pi, core.Slice, slice))
	for b.sliverKeys(nodeB, "pla_push") != nil {
		if time.Since(start) > 10*time.Second {
			t.Fatal("B's sliver still desired 10 s after the deletion at A")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakePeer serves hand-made peer data signed with its own key.
type fakePeer struct {
	key  ed25519.PrivateKey
	body []byte
}

func (f *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	peering.Sign(w.Header(), f.key, peering.KindResponse, r.Method, r.URL.RequestURI(), time.Now(), f.body)
	w.Write(f.body)
}

// TestPeerRefusals: a peer that sends garbage, duplicate ids, or objects
// that would overwrite local ones is refused with a precise error; nothing
// changes and the reason is kept in refresh_error.
func TestPeerRefusals(t *testing.T) {
	b := newPLC(t, filepath.Join(t.TempDir(), "b.db"))
	local := b.site("plb", 10)
	b.node(local, "n1.plb.test")
	_, fk, _ := ed25519.GenerateKey(rand.Reader)
	fp := &fakePeer{key: fk}
	srv := httptest.NewTLSServer(fp)
	defer srv.Close()
	peer := b.add(b.admin, core.Peer, core.Record{"peername": "EVIL", "peer_url": srv.URL + "/", "key": peering.FormatPublicKey(fk.Public().(ed25519.PublicKey))})
	site := `{"site_id": 1, "login_base": "evl", "name": "Evil"}`
	cases := []struct{ name, body, want string }{
		{"garbage", `{"Sites": [`, "peer data"},
		{"duplicate ids", `{"Sites": [` + site + `, ` + site + `]}`, "Sites[1]: duplicate id 1"},
		{"claim a foreign node as ours", `{"Sites": [` + site + `], "PeerNodes": [{"node_id": 5, "hostname": "x", "site_id": 1, "peer_node_id": 999}]}`, "not a local node here"},
		{"unknown boot state", `{"Sites": [` + site + `], "Nodes": [{"node_id": 1, "hostname": "n.evl", "site_id": 1, "boot_state": "pwned"}]}`, `unknown boot_state "pwned"`},
		{"bad key", `{"Sites": [` + site + `], "Persons": [{"person_id": 1, "email": "a@evl"}], "Keys": [{"key_id": 1, "person_id": 1, "key": "not a key"}]}`, "Keys[0] (key_id 1)"},
		{"not JSON", "\x00\xff garbage", "peer data"},
		{"wrong type", `{"Persons": {"person_id": 1}}`, "Persons"},
		{"duplicate key in an object", `{"Sites": [{"site_id": 1, "site_id": 2, "login_base": "evl", "name": "Evil"}]}`, "site_id"},
		{"duplicate member", `{"Sites": [` + site + `], "Persons": [{"person_id": 1, "email": "a@evl"}], "Slices": [{"slice_id": 1, "name": "evl_s", "site_id": 1, "person_ids": [1, 1]}]}`, "person_ids names 1 twice"},
		{"two of its nodes as one of ours", `{"PeerNodes": [{"node_id": 5, "peer_node_id": 1}, {"node_id": 6, "peer_node_id": 1}]}`, "peer_node_id 1 already named"},
		{"oversized name", `{"Sites": [{"site_id": 1, "login_base": "` + strings.Repeat("e", 40) + `", "name": "Evil"}]}`, "login_base is 40 bytes"},
	}
	before := snapshot(t, b.env)
	for _, c := range cases {
		fp.body = []byte(c.body)
		_, err := b.s.RefreshPeer(b.ctx, b.admin, peer)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
			continue
		}
		if after := snapshot(t, b.env); after != before {
			t.Fatalf("%s: refused refresh changed the registry", c.name)
		}
		if r := get(t, b.env, b.admin, core.Peer, peer, "refresh_error")[0]; !strings.Contains(r["refresh_error"].(string), c.want) {
			t.Errorf("%s: refresh_error %v", c.name, r)
		}
		if !b.logged(c.want) {
			t.Errorf("%s: %q not logged", c.name, c.want)
		}
	}
	// Objects that would overwrite local ones are refused one by one, with
	// what depends on them; the rest is stored.
	fp.body = []byte(`{"Sites": [{"site_id": 1, "login_base": "plb", "name": "Mine"}, {"site_id": 2, "login_base": "evl", "name": "Evil"}],
		"Nodes": [{"node_id": 1, "hostname": "N1.plb.test", "site_id": 2}, {"node_id": 2, "hostname": "n9.plb.test", "site_id": 1},
		          {"node_id": 3, "hostname": "n1.evl", "site_id": 2}]}`)
	r, err := b.s.RefreshPeer(b.ctx, b.admin, peer)
	b.must(err)
	refused := strings.Join(r["refused"].([]string), "\n")
	for _, want := range []string{`site "plb" (its id 1) would overwrite local site`, `node "N1.plb.test" (its id 1) would overwrite local node`, `node "n9.plb.test" (its id 2) is at a refused site`} {
		if !strings.Contains(refused, want) {
			t.Errorf("refused %q, want %q", refused, want)
		}
	}
	if got := get(t, b.env, b.admin, core.Site, "plb", "name", "peer_id")[0]; got["name"] != "Site plb" || got["peer_id"] != nil {
		t.Fatalf("local site after the attempt: %v", got)
	}
	if got := get(t, b.env, b.admin, core.Node, map[string]any{"peer_id": peer}, "hostname"); len(got) != 1 || got[0]["hostname"] != "n1.evl" {
		t.Fatalf("the peer's nodes: %v", got)
	}
	if e := get(t, b.env, b.admin, core.Peer, peer, "refresh_error")[0]["refresh_error"].(string); !strings.Contains(e, "would overwrite local site") {
		t.Fatalf("refresh_error %q", e)
	}
	if !b.logged(`would overwrite local site`) {
		t.Fatal("the refused site was not logged")
	}
	// A local person, a local slice and a slice member that claims to be
	// a local person who does not exist: each refused alone, nothing of
	// the local ones changed.
	bp := b.person("pi@plb.test", local, "pi")
	b.slice(bp, "plb_mine")
	before = snapshot(t, b.env)
	fp.body = []byte(`{"Sites": [{"site_id": 2, "login_base": "evl", "name": "Evil"}],
		"Persons": [{"person_id": 1, "email": "PI@plb.test", "first_name": "Mallory"}, {"person_id": 2, "email": "m@evl"}],
		"PeerPersons": [{"person_id": 3, "email": "ghost@plb.test", "peer_person_id": 9999}],
		"Slices": [{"slice_id": 1, "name": "plb_mine", "site_id": 2, "person_ids": [1]}, {"slice_id": 2, "name": "evl_s", "site_id": 2, "expires": 1900000000, "person_ids": [1, 2, 3]}]}`)
	r, err = b.s.RefreshPeer(b.ctx, b.admin, peer)
	b.must(err)
	refused = strings.Join(r["refused"].([]string), "\n")
	for _, want := range []string{`person "PI@plb.test" (its id 1) would overwrite local person`, `slice "plb_mine" (its id 1) would overwrite local slice`,
		`member "ghost@plb.test" (its id 3) claims to be local person 9999, which is not a local person here`} {
		if !strings.Contains(refused, want) {
			t.Errorf("refused %q, want %q", refused, want)
		}
		if !b.logged(want) {
			t.Errorf("%q not logged", want)
		}
	}
	if got := get(t, b.env, b.admin, core.Person, "pi@plb.test", "first_name", "peer_id")[0]; got["first_name"] == "Mallory" || got["peer_id"] != nil {
		t.Fatalf("local person after the attempt: %v", got)
	}
	if got := get(t, b.env, b.admin, core.Slice, "plb_mine", "peer_id", "person_ids")[0]; got["peer_id"] != nil || len(got["person_ids"].([]int64)) != 0 {
		t.Fatalf("local slice after the attempt: %v", got)
	}
	es := get(t, b.env, b.admin, core.Slice, "evl_s", "person_ids")
	if len(es) != 1 || len(es[0]["person_ids"].([]int64)) != 1 {
		t.Fatalf("the peer's slice should have only its own member m@evl: %v", es)
	}
	_ = before
	// Signed by another key than the one recorded: refused.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	fp.key, fp.body = other, []byte(`{}`)
	if _, err := b.s.RefreshPeer(b.ctx, b.admin, peer); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("answer signed by another key: %v", err)
	}
	// The data endpoint refuses unknown and forged callers.
	h := peering.Handler(b.s, b.key, slog.Default(), time.Now)
	for name, sign := range map[string]func(r *http.Request){
		"unsigned": func(r *http.Request) {},
		"unknown key": func(r *http.Request) {
			peering.Sign(r.Header, other, peering.KindRequest, "GET", r.URL.RequestURI(), time.Now(), nil)
		},
		"forged": func(r *http.Request) {
			peering.Sign(r.Header, other, peering.KindRequest, "GET", r.URL.RequestURI(), time.Now(), nil)
			r.Header.Set(peering.HeaderKey, peering.FormatPublicKey(fk.Public().(ed25519.PublicKey)))
		},
	} {
		req := httptest.NewRequest("GET", "/"+peering.DataPath, nil)
		sign(req)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}
	req := httptest.NewRequest("GET", "/"+peering.DataPath, nil)
	peering.Sign(req.Header, fk, peering.KindRequest, "GET", req.URL.RequestURI(), time.Now(), nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var d peering.Data
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &d) != nil || len(d.Sites) == 0 {
		t.Fatalf("signed by the peer: %d %s", w.Code, w.Body)
	}
}
