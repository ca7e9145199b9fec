package service

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// stats returns the read cache's hits and misses.
func stats(s *Service) (hits, misses int64) {
	s.rcache.mu.Lock()
	defer s.rcache.mu.Unlock()
	return s.rcache.hits, s.rcache.miss
}

// wantHit fails unless the last Get was served by the cache (hit) or by the
// store (miss); it compares the counters with the ones given.
func wantHit(t *testing.T, s *Service, hits0, miss0 int64, hit bool, what string) {
	t.Helper()
	h, m := stats(s)
	if hit && (h != hits0+1 || m != miss0) || !hit && (h != hits0 || m != miss0+1) {
		t.Fatalf("%s: hits %d->%d, misses %d->%d; want a %s", what, hits0, h, miss0, m, map[bool]string{true: "hit", false: "miss"}[hit])
	}
}

func hostnames(recs []core.Record) []any {
	var out []any
	for _, r := range recs {
		out = append(out, r["hostname"])
	}
	return out
}

// TestReadCacheInvalidation: a repeated Get is served from the cache; any
// committed write (service, a direct store write as last_contact's, and
// another handle on the same file: another process) makes the next Get
// read the store.
func TestReadCacheInvalidation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plc.db")
	e := newEnv(t, path)
	site := e.site("rc", 5)
	n := e.node(site, "a.rc.test")
	all := func() []core.Record { return get(t, e, e.admin, core.Node, nil) }

	all()
	h, m := stats(e.s)
	first := all()
	wantHit(t, e.s, h, m, true, "repeated GetNodes")

	// A write through the service.
	e.must(e.s.Update(e.ctx, e.admin, core.Node, n, core.Record{"hostname": "b.rc.test"}))
	h, m = stats(e.s)
	if got := hostnames(all()); !reflect.DeepEqual(got, []any{"b.rc.test"}) {
		t.Fatalf("after UpdateNode: %v", got)
	}
	wantHit(t, e.s, h, m, false, "GetNodes after UpdateNode")
	if first[0]["hostname"] != "a.rc.test" {
		t.Fatalf("an earlier answer changed: %v", first[0]["hostname"])
	}

	// A direct store write (as recordContact's).
	all()
	e.must(e.s.db.Write(e.ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(e.ctx, "UPDATE nodes SET last_contact = 12345 WHERE node_id = ?", n)
		return err
	}))
	if got := all()[0]["last_contact"]; got != int64(12345) {
		t.Fatalf("after a store write: last_contact %v", got)
	}

	// Another process on the same file.
	all()
	other, err := store.Open(e.ctx, path)
	e.must(err)
	defer other.Close()
	e.must(other.Write(e.ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(e.ctx, "UPDATE nodes SET hostname = 'c.rc.test' WHERE node_id = ?", n)
		return err
	}))
	if got := hostnames(all()); !reflect.DeepEqual(got, []any{"c.rc.test"}) {
		t.Fatalf("after another process's write: %v", got)
	}

	// A read-only call in between changes nothing.
	all()
	h, m = stats(e.s)
	get(t, e, e.admin, core.Site, nil)
	all()
	if h2, _ := stats(e.s); h2 != h+1 {
		t.Fatalf("GetNodes after a GetSites: hits %d->%d, want one more", h, h2)
	}
	_ = m
}

// TestReadCacheWriteDuringRead: a write committed between a Get's read and
// its store into the cache (made deterministic with the afterRead hook)
// leaves no entry: the next Get reads the store and sees the write.
func TestReadCacheWriteDuringRead(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "plc.db"))
	site := e.site("rw", 5)
	n := e.node(site, "a.rw.test")
	e.s.rcache.afterRead = func() {
		e.s.rcache.afterRead = nil
		e.must(e.s.Update(e.ctx, e.admin, core.Node, n, core.Record{"hostname": "b.rw.test"}))
	}
	if got := hostnames(get(t, e, e.admin, core.Node, nil)); !reflect.DeepEqual(got, []any{"a.rw.test"}) {
		t.Fatalf("the read before the write: %v", got)
	}
	if n := e.s.rcache.lru.Len(); n != 0 {
		t.Fatalf("a read overlapped by a write kept its answer (%d entries)", n)
	}
	h, m := stats(e.s)
	if got := hostnames(get(t, e, e.admin, core.Node, nil)); !reflect.DeepEqual(got, []any{"b.rw.test"}) {
		t.Fatalf("after a write during the previous read: %v (a stale entry)", got)
	}
	wantHit(t, e.s, h, m, false, "the Get after")

	// A write whose commit is in progress when a Get starts: the Get
	// neither serves nor keeps anything.
	get(t, e, e.admin, core.Node, nil) // cached now
	var during []core.Record
	var dh, dm int64
	store.SetCommitHook(func() {
		store.SetCommitHook(nil)
		h, m := stats(e.s)
		during = get(t, e, e.admin, core.Node, nil)
		dh, dm = stats(e.s)
		dh, dm = dh-h, dm-m
	})
	defer store.SetCommitHook(nil)
	e.must(e.s.Update(e.ctx, e.admin, core.Node, n, core.Record{"hostname": "c.rw.test"}))
	if dh != 0 || dm != 0 {
		t.Fatalf("a Get during a commit used the cache: %d hits, %d misses", dh, dm)
	}
	if got := hostnames(during); !reflect.DeepEqual(got, []any{"b.rw.test"}) {
		t.Fatalf("the Get during the commit: %v", got)
	}
	if got := hostnames(get(t, e, e.admin, core.Node, nil)); !reflect.DeepEqual(got, []any{"c.rw.test"}) {
		t.Fatalf("after the commit: %v", got)
	}
}

// TestReadCacheVisibility: callers do not share answers: a user does not
// get an admin's hidden fields nor objects it may not see, and every
// caller's cached answer equals what a service without the cache answers
// (on the same store).
func TestReadCacheVisibility(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plc.db")
	e := newEnv(t, path)
	site := e.site("vis", 5)
	other := e.site("oth", 5)
	pi := e.person("pi@vis.test", site, core.RolePI)
	user := e.person("user@vis.test", site, core.RoleUser)
	user2 := e.person("user2@vis.test", site, core.RoleUser) // same roles and site as user
	stranger := e.person("x@oth.test", other, core.RoleUser)
	for _, u := range []*core.Caller{user, user2} {
		e.add(u, core.Key, core.Record{"person_id": u.PersonID, "key_type": "ssh", "key": sshKey(t)})
	}
	n1 := e.node(site, "n1.vis.test")
	n2 := e.node(site, "n2.vis.test")
	sl := e.slice(pi, "vis_s")
	wl := e.slice(pi, "vis_wl")
	e.must(e.s.Link(e.ctx, e.admin, core.SliceNodeWhitelist, wl, n2, nil))
	e.must(e.s.Link(e.ctx, e.admin, core.SlicePerson, sl, user.PersonID, nil))
	_ = n1
	nodeC := e.nodeCaller(n1)

	db2, err := store.Open(e.ctx, path)
	e.must(err)
	t.Cleanup(func() { db2.Close() })
	plain := New(db2, Options{Now: e.clock.Now, PasswordCost: bcrypt.MinCost, ReadCacheSize: -1})
	t.Cleanup(func() { plain.Close() })
	if plain.rcache != nil {
		t.Fatal("ReadCacheSize -1 left the cache on")
	}

	queries := []struct {
		class  core.Class
		filter any
		fields []string
	}{
		{core.Person, nil, nil},
		{core.Person, nil, []string{"email", "password", "verification_key"}},
		{core.Node, nil, nil},
		{core.Node, nil, []string{"hostname", "key", "session"}},
		{core.Key, nil, nil},
		{core.Slice, nil, nil},
		{core.PCU, nil, nil},
	}
	callers := []*core.Caller{e.admin, pi, user, user2, stranger, nodeC, nil}
	for round := 0; round < 2; round++ { // the second round is served by the cache
		for _, q := range queries {
			for _, c := range callers {
				f, err := core.ParseFilter(q.filter)
				e.must(err)
				got, err1 := e.s.Get(e.ctx, c, q.class, f, q.fields)
				want, err2 := plain.Get(e.ctx, c, q.class, f, q.fields)
				if core.ErrorCode(err1) != core.ErrorCode(err2) || !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d, %s %v as %v: cached %v (%v), uncached %v (%v)", round, q.class, q.fields, c, got, err1, want, err2)
				}
			}
		}
	}
	if h, _ := stats(e.s); h == 0 {
		t.Fatal("the second round had no cache hit")
	}
	// The admin's cached answer has the hidden field; the user's never.
	for _, r := range get(t, e, e.admin, core.Node, nil, "hostname", "key") {
		if r["key"] == nil {
			t.Fatalf("admin: no node key in %v", r)
		}
	}
	for _, r := range get(t, e, user, core.Node, nil, "hostname", "key") {
		if _, ok := r["key"]; ok {
			t.Fatalf("user: node key in %v", r)
		}
	}
	if got := get(t, e, stranger, core.Node, nil, "hostname"); len(got) != 1 {
		t.Fatalf("stranger sees %v, want only the node not whitelisted", got)
	}
	// A role change (a write) changes the answer at once.
	rid, _ := RoleID(core.RoleAdmin)
	e.must(e.s.Link(e.ctx, e.admin, core.PersonRole, user.PersonID, rid, nil))
	if r := get(t, e, user, core.Node, nil, "hostname", "key"); len(r) != 2 || r[0]["key"] == nil {
		t.Fatalf("user made admin: %v", r)
	}
}

// TestReadCacheExpiry: a slice that expires disappears from a cached
// answer at its expiry, without any write.
func TestReadCacheExpiry(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "plc.db"))
	site := e.site("ex", 5)
	pi := e.person("pi@ex.test", site, core.RolePI)
	now := e.clock.Now().Unix()
	e.slice(pi, "ex_short") // expires in 14 days
	long := e.slice(pi, "ex_long")
	e.must(e.s.Update(e.ctx, e.admin, core.Slice, long, core.Record{"expires": now + 20*86400}))
	names := func() []any {
		var out []any
		for _, r := range get(t, e, pi, core.Slice, nil, "name") {
			out = append(out, r["name"])
		}
		return out
	}
	names()
	h, m := stats(e.s)
	if got := names(); len(got) != 2 {
		t.Fatalf("before expiry: %v", got)
	}
	wantHit(t, e.s, h, m, true, "GetSlices before expiry")
	e.clock.Add(14*24*time.Hour - time.Second)
	if got := names(); len(got) != 2 {
		t.Fatalf("a second before expiry: %v", got)
	}
	e.clock.Add(time.Second) // the short slice's expiry, exactly
	if got := names(); !reflect.DeepEqual(got, []any{"ex_long"}) {
		t.Fatalf("at expiry: %v (a stale entry)", got)
	}
}

// TestReadCacheBounds: entries and bytes are bounded; an answer bigger
// than a quarter of the bytes is not kept.
func TestReadCacheBounds(t *testing.T) {
	c := newReadCache(2, 1<<20)
	rec := []core.Record{{"hostname": "x"}}
	for i, k := range []string{"a", "b", "c"} {
		c.put(k, &cacheEntry{gen: 2, recs: rec, now: int64(i)})
	}
	if c.lru.Len() != 2 {
		t.Fatalf("%d entries, want 2", c.lru.Len())
	}
	if _, ok := c.get("a", 2, 5); ok {
		t.Fatal("the oldest entry was kept")
	}
	if c.bytes != 2*(1+recordsSize(rec)) {
		t.Fatalf("bytes %d, want %d", c.bytes, 2*(1+recordsSize(rec)))
	}
	big := []core.Record{{"x": string(make([]byte, 300<<10))}}
	c.put("big", &cacheEntry{gen: 2, recs: big})
	if _, ok := c.get("big", 2, 0); ok {
		t.Fatal("an answer of more than a quarter of the bytes was kept")
	}
	// A newer generation drops everything; an older one is refused.
	c.put("d", &cacheEntry{gen: 4, recs: rec})
	if c.lru.Len() != 1 || c.bytes != 1+recordsSize(rec) {
		t.Fatalf("after generation 4: %d entries, %d bytes", c.lru.Len(), c.bytes)
	}
	c.put("e", &cacheEntry{gen: 2, recs: rec})
	if _, ok := c.get("e", 4, 0); ok {
		t.Fatal("an entry of an older generation was kept")
	}
}

// TestCacheKey: keys differ whenever the answer may.
func TestCacheKey(t *testing.T) {
	admin := &core.Caller{Kind: core.PersonCaller, PersonID: 1, Roles: []string{"admin"}, SiteIDs: []int64{1}}
	user := &core.Caller{Kind: core.PersonCaller, PersonID: 1, Roles: []string{"user"}, SiteIDs: []int64{1}}
	f := func(v any) *core.Filter {
		return &core.Filter{Terms: []core.Term{{Field: "x", Op: core.Eq, Value: v}}}
	}
	type call struct {
		c      *core.Caller
		class  core.Class
		f      *core.Filter
		fields []string
	}
	calls := []call{
		{admin, core.Node, nil, nil},
		{user, core.Node, nil, nil},
		{nil, core.Node, nil, nil},
		{&core.Caller{Kind: core.NodeCaller, NodeID: 1, Roles: []string{"node"}, SiteIDs: []int64{1}}, core.Node, nil, nil},
		{&core.Caller{Kind: core.NodeCaller, NodeID: 1, Roles: []string{"node"}, SiteIDs: []int64{2}}, core.Node, nil, nil},
		{admin, core.Site, nil, nil},
		{admin, core.Node, nil, []string{}},
		{admin, core.Node, nil, []string{"a", "b"}},
		{admin, core.Node, nil, []string{"a,b"}},
		{admin, core.Node, &core.Filter{IsList: true}, nil},
		{admin, core.Node, &core.Filter{IsList: true, IDs: []int64{1}}, nil},
		{admin, core.Node, &core.Filter{IsList: true, Names: []string{"1"}}, nil},
		{admin, core.Node, f(int64(1)), nil},
		{admin, core.Node, f(1.0), nil},
		{admin, core.Node, f("1"), nil},
		{admin, core.Node, f(true), nil},
		{admin, core.Node, f(nil), nil},
		{admin, core.Node, f([]any{int64(1)}), nil},
		{admin, core.Node, &core.Filter{Terms: []core.Term{{Field: "x", Op: core.Eq, Not: true, Value: int64(1)}}}, nil},
		{admin, core.Node, &core.Filter{Terms: []core.Term{{Field: "x", Op: core.Lt, Value: int64(1)}}}, nil},
		{admin, core.Node, &core.Filter{Terms: f(int64(1)).Terms, Or: true}, nil},
		{admin, core.Node, &core.Filter{Sort: []core.SortKey{{Field: "x"}}}, nil},
		{admin, core.Node, &core.Filter{Sort: []core.SortKey{{Field: "x", Desc: true}}}, nil},
		{admin, core.Node, &core.Filter{Offset: 1}, nil},
		{admin, core.Node, &core.Filter{Limit: 1}, nil},
	}
	seen := map[string]int{}
	for i, c := range calls {
		k, ok := cacheKey(c.c, c.class, c.f, c.fields)
		if !ok {
			t.Fatalf("call %d: not cacheable", i)
		}
		if j, dup := seen[k]; dup {
			t.Fatalf("calls %d and %d share the key %q", j, i, k)
		}
		seen[k] = i
		if k2, _ := cacheKey(c.c, c.class, c.f, c.fields); k2 != k {
			t.Fatalf("call %d: key not stable", i)
		}
	}
	if _, ok := cacheKey(admin, core.Node, f(struct{}{}), nil); ok {
		t.Fatal("an unknown filter value made a key")
	}
}

var _ = context.Background
