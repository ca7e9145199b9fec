package service

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// The node-state cache (docs/replicas.md, "The herd"). A change that
// reaches every node (an init script, an admin's key, a system slice)
// wakes every watcher at once, and each woken node costs PLC several
// state computations: the watch handler's check, the answer, and the
// next watch's check and comparison. The cache cuts that in two ways:
//
//   - the parts of a state that do not depend on the node (the enabled
//     init scripts, the enabled conf files before the per-node choice,
//     the accounts of a site) are read once per change, not once per
//     node;
//   - a node's whole state, once computed, answers the same node again
//     until the next change.
//
// Both are keyed by the epoch, a counter the watch hub bumps before it
// wakes watchers for any change (local writes after their commit,
// other replicas' changes as the listener hears them, slice expiry, the
// listener's reconnection). What is read at epoch e was read after e was
// taken, so a change committed later bumps the epoch past e and the
// entry is never served again; an entry is stored only if the epoch is
// still e. Writes the hub does not hear (another process writing the
// SQLite file, a peer refresh's own tables) are bounded by the entries'
// lifetime, StateCacheTTL, the same bound as a node's periodic refetch.
//
// On PostgreSQL the cache is used only while this replica's change
// listener is connected: without it, other replicas' changes would not
// bump the epoch.

// DefaultStateCacheTTL is how long a cached node state or shared part
// may answer without a change (Options.StateCacheTTL).
const DefaultStateCacheTTL = 5 * time.Second

// stateCache holds node states and their shared parts for one epoch.
type stateCache struct {
	off   atomic.Bool   // SetStateCache(false): every state is computed afresh
	epoch atomic.Uint64 // bumped by the hub before it wakes watchers
	ttl   time.Duration
	now   func() time.Time
	max   int // node states kept per epoch

	mu     sync.Mutex
	at     uint64 // the epoch of nodes and shared
	nodes  map[int64]cachedState
	shared *sharedParts

	hits, misses atomic.Int64
}

type cachedState struct {
	st   *core.NodeState
	made time.Time
}

// sharedParts are the node-independent parts of node states at one
// epoch. ready is closed once the first reader has filled them (or
// failed: err); the others wait for it instead of reading the same rows.
type sharedParts struct {
	made        time.Time
	ready       chan struct{}
	err         error
	initScripts []core.InitScript
	confFiles   []core.Record // every enabled conf file; each node picks its own

	mu       sync.Mutex
	accounts map[int64][]core.Account // by site
}

func newStateCache(ttl time.Duration, now func() time.Time) *stateCache {
	if ttl == 0 {
		ttl = DefaultStateCacheTTL
	}
	c := &stateCache{ttl: ttl, now: now, max: 1 << 20, nodes: map[int64]cachedState{}}
	if ttl < 0 {
		c.off.Store(true)
	}
	return c
}

// bump starts a new epoch: nothing cached so far is served again.
func (c *stateCache) bump() { c.epoch.Add(1) }

// sync makes the cache's maps those of epoch e; false when e is not the
// current epoch (a reader that began before a change). c.mu is held.
func (c *stateCache) sync(e uint64) bool {
	if e != c.epoch.Load() {
		return false
	}
	if c.at != e {
		c.at, c.nodes, c.shared = e, map[int64]cachedState{}, nil
	}
	return true
}

// get returns node's state cached at epoch e, if fresh, as a copy
// stamped now (the slices inside are shared: callers must not modify
// them).
func (c *stateCache) get(e uint64, node int64, now int64) (*core.NodeState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sync(e) {
		return nil, false
	}
	cs, ok := c.nodes[node]
	if !ok || c.now().Sub(cs.made) >= c.ttl {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	st := *cs.st
	st.Timestamp = now
	return &st, true
}

// put keeps node's state read at epoch e, unless a change came since.
func (c *stateCache) put(e uint64, node int64, st *core.NodeState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sync(e) || len(c.nodes) >= c.max {
		return
	}
	cp := *st
	c.nodes[node] = cachedState{st: &cp, made: c.now()}
}

// sharedAt returns the shared parts of epoch e, filling them with fill
// when this caller is the first of the epoch (or they are stale); nil
// when e is no longer current or the filling failed (the caller then
// reads them itself).
func (c *stateCache) sharedAt(e uint64, fill func(sp *sharedParts) error) *sharedParts {
	c.mu.Lock()
	if !c.sync(e) {
		c.mu.Unlock()
		return nil
	}
	sp := c.shared
	if sp != nil && c.now().Sub(sp.made) < c.ttl {
		c.mu.Unlock()
		<-sp.ready
		if sp.err != nil {
			return nil
		}
		return sp
	}
	sp = &sharedParts{made: c.now(), ready: make(chan struct{}), accounts: map[int64][]core.Account{}}
	c.shared = sp
	c.mu.Unlock()
	sp.err = fill(sp)
	close(sp.ready)
	if sp.err != nil {
		c.mu.Lock()
		if c.shared == sp {
			c.shared = nil // the next reader tries again
		}
		c.mu.Unlock()
		return nil
	}
	return sp
}

// siteAccounts returns site's accounts from sp, reading them with read
// the first time.
func (sp *sharedParts) siteAccounts(site int64, read func() ([]core.Account, error)) ([]core.Account, error) {
	sp.mu.Lock()
	a, ok := sp.accounts[site]
	sp.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := read()
	if err != nil {
		return nil, err
	}
	sp.mu.Lock()
	sp.accounts[site] = a
	sp.mu.Unlock()
	return a, nil
}

// stateCacheEpoch returns the epoch to read node states at, and whether
// the cache may be used now.
func (s *Service) stateCacheEpoch() (uint64, bool) {
	c := s.scache
	if c.off.Load() {
		return 0, false
	}
	if s.db.Dialect == store.Postgres && !s.repl.listening.Load() {
		return 0, false
	}
	return c.epoch.Load(), true
}

// SetStateCache turns the node-state cache on or off (`pl bench scale`
// measures both in one run); it is on unless Options.StateCacheTTL is
// negative.
func (s *Service) SetStateCache(on bool) {
	s.scache.off.Store(!on)
	s.scache.bump()
}

// StateCacheStats returns the node-state cache's hits and misses.
func (s *Service) StateCacheStats() (hits, misses int64) {
	return s.scache.hits.Load(), s.scache.misses.Load()
}

// ForgetStates starts a new epoch of the node-state cache without
// waking anyone, so that the next fetch of every node computes its state
// (`pl bench scale` times such fetches).
func (s *Service) ForgetStates() { s.scache.bump() }
