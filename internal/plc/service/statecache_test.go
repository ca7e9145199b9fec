package service

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

func cacheStats(s *Service) (hits, misses int64) { return s.StateCacheStats() }

func hasInitScript(st *core.NodeState, name, script string) bool {
	for _, is := range st.InitScripts {
		if is.Name == name && is.Script == script {
			return true
		}
	}
	return false
}

// TestStateCacheInvalidation: a node's state is answered from the cache
// until a change the watch hub hears (its shared parts and its own part
// alike), and a write the hub does not hear is seen once the entry's
// lifetime is over; switched off, every fetch reads the store.
func TestStateCacheInvalidation(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		if e.s.db.Dialect == store.Postgres {
			e.runChanges() // the cache answers only while listening
		}
		site := e.site("sc", 10)
		pi := e.person("pi@sc.org", site, "pi")
		n := e.node(site, "n1.sc.org")
		n2 := e.node(site, "n2.sc.org")
		st0 := e.state(n)
		h0, _ := cacheStats(e.s)
		e.clock.Add(time.Second)
		st1 := e.state(n)
		if h, _ := cacheStats(e.s); h != h0+1 {
			t.Fatalf("second fetch without a change: hits %d -> %d, want one more", h0, h)
		}
		if st1.Version != st0.Version || st1.Timestamp != st0.Timestamp+1 {
			t.Fatalf("cached state: version %s (was %s), timestamp %d (was %d): want the same version, stamped now", st1.Version, st0.Version, st1.Timestamp, st0.Timestamp)
		}

		// Changes through the service, each reaching the node.
		steps := []struct {
			what   string
			change func()
			seen   func(st *core.NodeState) bool
		}{
			{"an init script (shared by every node)", func() {
				e.add(e.admin, core.InitScriptClass, core.Record{"name": "sc-init", "script": "v1"})
			}, func(st *core.NodeState) bool { return hasInitScript(st, "sc-init", "v1") }},
			{"a global conf file (shared)", func() {
				e.add(e.admin, core.ConfFile, core.Record{"source": "/etc/x", "dest": "/etc/sc.conf"})
			}, func(st *core.NodeState) bool {
				for _, cf := range st.ConfFiles {
					if cf["dest"] == "/etc/sc.conf" {
						return true
					}
				}
				return false
			}},
			{"a PI's key (the site's accounts)", func() {
				e.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": sshKey(t)})
			}, func(st *core.NodeState) bool {
				return len(st.Accounts) > 0 && len(st.Accounts[0].Keys) == 1
			}},
			{"a slice on the node (its own part)", func() {
				sl := e.slice(pi, "sc_one")
				e.must(e.s.Link(e.ctx, pi, core.SliceNode, sl, n, nil))
			}, func(st *core.NodeState) bool {
				for _, sv := range st.Slivers {
					if sv.Name == "sc_one" {
						return true
					}
				}
				return false
			}},
		}
		for _, s := range steps {
			before := e.state(n)
			e.state(n2) // the other node's entry and the shared parts are cached too
			if s.seen(before) {
				t.Fatalf("%s: seen before the change", s.what)
			}
			s.change()
			if st := e.state(n); !s.seen(st) || st.Version == before.Version {
				t.Fatalf("%s: not in the state fetched after the change (version %s, was %s)", s.what, st.Version, before.Version)
			}
		}
		if st := e.state(n2); !hasInitScript(st, "sc-init", "v1") {
			t.Fatal("the other node's state misses the init script")
		}

		// A write the hub does not hear: served from the cache until the
		// entry's lifetime is over.
		e.state(n)
		e.must(e.s.db.Write(e.ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(e.ctx, "UPDATE initscripts SET script = 'v2' WHERE name = 'sc-init'")
			return err
		}))
		if st := e.state(n); !hasInitScript(st, "sc-init", "v1") {
			t.Fatal("a write the hub did not hear was seen before the cache's lifetime ended (was the entry cached?)")
		}
		e.clock.Add(DefaultStateCacheTTL)
		if st := e.state(n); !hasInitScript(st, "sc-init", "v2") {
			t.Fatal("a write the hub did not hear is still unseen after the cache's lifetime")
		}
		if st := e.state(n2); !hasInitScript(st, "sc-init", "v2") {
			t.Fatal("the shared part outlived the cache's lifetime")
		}

		// Off: every fetch reads the store.
		e.s.SetStateCache(false)
		e.must(e.s.db.Write(e.ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(e.ctx, "UPDATE initscripts SET script = 'v3' WHERE name = 'sc-init'")
			return err
		}))
		h1, m1 := cacheStats(e.s)
		if st := e.state(n); !hasInitScript(st, "sc-init", "v3") {
			t.Fatal("cache off: a direct write is not seen")
		}
		if h, m := cacheStats(e.s); h != h1 || m != m1 {
			t.Fatalf("cache off but consulted: hits %d -> %d, misses %d -> %d", h1, h, m1, m)
		}
	})
}

// TestStateCacheNotListening: on PostgreSQL, a replica whose change
// listener is not connected never answers from the cache (it would not
// hear other replicas' changes).
func TestStateCacheNotListening(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		if e.s.db.Dialect != store.Postgres {
			t.Skip("PostgreSQL only")
		}
		site := e.site("nl", 10)
		n := e.node(site, "n1.nl.org")
		e.state(n)
		e.state(n)
		if h, m := cacheStats(e.s); h != 0 || m != 0 {
			t.Fatalf("not listening, yet the cache was consulted: %d hits, %d misses", h, m)
		}
	})
}

// TestStateCacheEpochs: an entry read at an epoch a change has ended is
// neither kept nor served, and entries expire.
func TestStateCacheEpochs(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c := newStateCache(time.Second, clk.Now)
	st := &core.NodeState{NodeID: 1, Version: "a", Timestamp: 5}
	e0 := c.epoch.Load()
	c.put(e0, 1, st)
	if got, ok := c.get(e0, 1, 7); !ok || got.Version != "a" || got.Timestamp != 7 {
		t.Fatalf("get = %+v, %v; want version a stamped 7", got, ok)
	}
	// A reader began at e0; a change came; what it read is not kept.
	c.bump()
	e1 := c.epoch.Load()
	if _, ok := c.get(e1, 1, 7); ok {
		t.Fatal("an entry of the previous epoch was served")
	}
	c.put(e0, 2, st)
	if _, ok := c.get(e1, 2, 7); ok {
		t.Fatal("an entry read at a previous epoch was kept")
	}
	if _, ok := c.get(e0, 2, 7); ok {
		t.Fatal("a reader of a previous epoch was served")
	}
	if sp := c.sharedAt(e0, func(*sharedParts) error { return nil }); sp != nil {
		t.Fatal("shared parts were filled for a previous epoch")
	}
	c.put(e1, 3, st)
	clk.Add(999 * time.Millisecond)
	if _, ok := c.get(e1, 3, 7); !ok {
		t.Fatal("a fresh entry was not served")
	}
	clk.Add(time.Millisecond)
	if _, ok := c.get(e1, 3, 7); ok {
		t.Fatal("an entry was served after its lifetime")
	}
	// Off (a negative lifetime) by default when asked.
	if !newStateCache(-1, clk.Now).off.Load() {
		t.Fatal("a negative lifetime did not switch the cache off")
	}
}

// TestStateCacheSharedOnce: many nodes fetching at once after a change
// read the shared parts once; a failed filling is not kept.
func TestStateCacheSharedOnce(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c := newStateCache(time.Minute, clk.Now)
	e := c.epoch.Load()
	var fills atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]*sharedParts, 50)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = c.sharedAt(e, func(sp *sharedParts) error {
				fills.Add(1)
				<-release
				sp.initScripts = []core.InitScript{{Name: "x"}}
				return nil
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := fills.Load(); n != 1 {
		t.Fatalf("shared parts filled %d times, want 1", n)
	}
	for i, sp := range got {
		if sp == nil || len(sp.initScripts) != 1 {
			t.Fatalf("reader %d got %+v", i, sp)
		}
	}
	// A failed filling: the reader reads itself, the next one fills again.
	c.bump()
	e = c.epoch.Load()
	if sp := c.sharedAt(e, func(*sharedParts) error { return core.Errorf(core.Internal, "boom") }); sp != nil {
		t.Fatal("a failed filling was returned")
	}
	if sp := c.sharedAt(e, func(*sharedParts) error { return nil }); sp == nil {
		t.Fatal("after a failed filling, the next reader could not fill")
	}
	// Accounts are read once per site.
	sp := c.sharedAt(e, func(*sharedParts) error { return nil })
	var reads int
	for range 3 {
		if _, err := sp.siteAccounts(7, func() ([]core.Account, error) { reads++; return []core.Account{{Name: "root"}}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Fatalf("site accounts read %d times, want 1", reads)
	}
}
