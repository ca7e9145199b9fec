package service

import (
	"context"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// hub wakes node watchers after committed changes. A watcher is a channel
// closed (once) when its node's state may have changed; the watcher then
// fetches the state again and compares versions.
type hub struct {
	mu       sync.Mutex
	watchers map[int64]map[*watcher]struct{}
	// changed runs for every change before any watcher is woken (the
	// node-state cache's new epoch, statecache.go); nil: nothing.
	changed func()
}

type watcher struct {
	ch   chan struct{}
	once sync.Once
}

func (w *watcher) fire() { w.once.Do(func() { close(w.ch) }) }

func newHub(changed func()) *hub {
	return &hub{watchers: map[int64]map[*watcher]struct{}{}, changed: changed}
}

func (h *hub) add(node int64) *watcher {
	w := &watcher{ch: make(chan struct{})}
	h.mu.Lock()
	m := h.watchers[node]
	if m == nil {
		m = map[*watcher]struct{}{}
		h.watchers[node] = m
	}
	m[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *hub) remove(node int64, w *watcher) {
	h.mu.Lock()
	if m := h.watchers[node]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(h.watchers, node)
		}
	}
	h.mu.Unlock()
}

// notify fires (and forgets) the watchers of the changed nodes.
func (h *hub) notify(ch changes) {
	if !ch.all && len(ch.nodes) == 0 {
		return
	}
	if h.changed != nil {
		h.changed()
	}
	h.mu.Lock()
	var fire []*watcher
	take := func(node int64) {
		for w := range h.watchers[node] {
			fire = append(fire, w)
		}
		delete(h.watchers, node)
	}
	if ch.all {
		for node := range h.watchers {
			take(node)
		}
	} else {
		for node := range ch.nodes {
			take(node)
		}
	}
	h.mu.Unlock()
	for _, w := range fire {
		w.fire()
	}
}

// Watchers returns the number of registered watchers.
func (s *Service) Watchers() int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	n := 0
	for _, m := range s.hub.watchers {
		n += len(m)
	}
	return n
}

// WatchedNodes returns the nodes that hold at least one watch here.
func (s *Service) WatchedNodes() []int64 {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	out := make([]int64, 0, len(s.hub.watchers))
	for n := range s.hub.watchers {
		out = append(out, n)
	}
	return out
}

// Watched tells whether node holds a watch here.
func (s *Service) Watched(node int64) bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.hub.watchers[node]) > 0
}

// WatchNodeState implements core.Registry. The channel is closed when a
// committed change may affect the node (at once if the state already
// differs from version), or when ctx ends.
func (s *Service) WatchNodeState(ctx context.Context, c *core.Caller, nodeID int64, version string) (<-chan struct{}, error) {
	if err := authorize(c, opWatchNodeState); err != nil {
		return nil, err
	}
	if isNode(c) && c.NodeID != nodeID {
		return nil, forbidden("Permission denied: a node may only watch itself")
	}
	// Register first so that no change between computing the state and
	// registering is lost.
	w := s.hub.add(nodeID)
	st, err := s.nodeState(ctx, c, nodeID, false)
	if err != nil {
		s.hub.remove(nodeID, w)
		return nil, err
	}
	if st.Version != version {
		s.hub.remove(nodeID, w)
		w.fire()
		return w.ch, nil
	}
	stop := context.AfterFunc(ctx, func() {
		s.hub.remove(nodeID, w)
		w.fire()
	})
	go func() {
		<-w.ch
		stop()
	}()
	return w.ch, nil
}

// --- change tracking: which nodes a change affects ---

// touchSlice: the slice's nodes, or every node for slices every node
// hosts (system, delegated, nm-controller).
func (o *op) touchSlice(id int64) error {
	if o.ch.all {
		return nil
	}
	var inst string
	found, err := o.tx.QueryRow(o.ctx, "SELECT instantiation FROM slices WHERE slice_id = ?", []any{id}, &inst)
	if err != nil || !found {
		return err
	}
	if inst == "delegated" || inst == "nm-controller" {
		o.ch.all = true
		return nil
	}
	sys, err := o.tx.Int(o.ctx, `SELECT COUNT(*) FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		WHERE st.slice_id = ? AND tt.tagname = 'system'`, id)
	if err != nil {
		return err
	}
	if sys > 0 {
		o.ch.all = true
		return nil
	}
	nodes, err := o.tx.Ints(o.ctx, "SELECT node_id FROM slice_node WHERE slice_id = ?", id)
	if err != nil {
		return err
	}
	o.ch.addNodes(nodes...)
	return nil
}

// touchPerson: the nodes of the person's slices (their keys), and the
// nodes of the person's sites (site_admin and root accounts); an admin's
// keys are on every node (root account).
func (o *op) touchPerson(id int64) error {
	if o.ch.all {
		return nil
	}
	admin, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM person_role WHERE person_id = ? AND role_id = 10", id)
	if err != nil {
		return err
	}
	if admin > 0 {
		o.ch.all = true
		return nil
	}
	slices, err := o.tx.Ints(o.ctx, "SELECT slice_id FROM slice_person WHERE person_id = ?", id)
	if err != nil {
		return err
	}
	for _, s := range slices {
		if err := o.touchSlice(s); err != nil {
			return err
		}
	}
	nodes, err := o.tx.Ints(o.ctx, "SELECT n.node_id FROM nodes n JOIN person_site ps ON ps.site_id = n.site_id WHERE ps.person_id = ? AND n.deleted = 0", id)
	if err != nil {
		return err
	}
	o.ch.addNodes(nodes...)
	return nil
}

// touchSite: the site's nodes (accounts) and the nodes of its slices.
func (o *op) touchSite(id int64) error {
	if o.ch.all {
		return nil
	}
	nodes, err := o.tx.Ints(o.ctx, "SELECT node_id FROM nodes WHERE site_id = ? AND deleted = 0", id)
	if err != nil {
		return err
	}
	o.ch.addNodes(nodes...)
	slices, err := o.tx.Ints(o.ctx, "SELECT slice_id FROM slices WHERE site_id = ? AND deleted = 0", id)
	if err != nil {
		return err
	}
	for _, s := range slices {
		if err := o.touchSlice(s); err != nil {
			return err
		}
	}
	return nil
}

var _ = core.NodeCaller

// expiry wakes all watchers when the next slice expires: an expiry changes
// node states without any write.
type expiry struct {
	mu     sync.Mutex
	timer  *time.Timer
	at     int64
	closed bool
}

func (s *Service) armExpiry(ctx context.Context) {
	var next int64
	err := s.db.Read(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		var err error
		next, err = tx.Int(ctx, "SELECT MIN(expires) FROM slices WHERE deleted = 0 AND expires > ?", s.now())
		return err
	})
	if err != nil {
		s.log.Warn("arm slice expiry timer", "err", err)
		return
	}
	e := &s.expiry
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || next == 0 || (e.timer != nil && e.at == next) {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.at = next
	d := time.Until(time.Unix(next, 0)) + time.Second
	e.timer = time.AfterFunc(d, func() {
		s.hub.notify(changes{all: true})
		s.armExpiry(context.Background())
	})
}

// Close stops the service's timers; the store stays open.
func (s *Service) Close() error {
	e := &s.expiry
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.timer != nil {
		e.timer.Stop()
	}
	s.hub.notify(changes{all: true})
	return nil
}
