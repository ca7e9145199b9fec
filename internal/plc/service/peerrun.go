package service

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/peering"
	"github.com/planetlab/pl/internal/plc/store"
)

// Refreshing peers: RefreshPeer on demand, RunPeers in the background
// (every PeerRefresh, and within a second of a peer's notification), and
// the push the other way: after a committed change that touches a slice
// on a peer's nodes (or a member or key of one), this PLC notifies that
// peer, which refreshes at once (docs/federation.md).

// DefaultPeerRefresh is how often every peer is refreshed without being
// notified.
const DefaultPeerRefresh = 5 * time.Minute

// peerRunner holds the peers waiting for a refresh and for a notification.
type peerRunner struct {
	mu       sync.Mutex
	refresh  map[int64]bool // peers that notified us
	notify   map[int64]bool // peers to notify
	wake     chan struct{}
	refreshM sync.Mutex // one refresh at a time
}

func newPeerRunner() *peerRunner {
	return &peerRunner{refresh: map[int64]bool{}, notify: map[int64]bool{}, wake: make(chan struct{}, 1)}
}

func (r *peerRunner) poke(peer int64) {
	r.mu.Lock()
	r.refresh[peer] = true
	r.mu.Unlock()
	r.kick()
}

func (r *peerRunner) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *peerRunner) take() (refresh, notify []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.refresh {
		refresh = append(refresh, p)
	}
	for p := range r.notify {
		notify = append(notify, p)
	}
	clear(r.refresh)
	clear(r.notify)
	return refresh, notify
}

// PeerKey returns this PLC's peer signing key (nil: peering is off).
func (s *Service) PeerKey() ed25519.PrivateKey { return s.opts.PeerKey }

func (s *Service) peerClient() (*peering.Client, error) {
	if s.opts.PeerKey == nil {
		return nil, core.Errorf(core.Unimplemented, "peering is not configured on this PLC (no peer key)")
	}
	return &peering.Client{Key: s.opts.PeerKey, Now: s.opts.Now}, nil
}

// peerOf reads where and who a peer is.
func (s *Service) peerOf(ctx context.Context, peerID int64) (peering.Peer, string, error) {
	var p peering.Peer
	var name, url, key string
	var pin *string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		found, err := tx.QueryRow(ctx, "SELECT peername, peer_url, key, cacert FROM peers WHERE peer_id = ? AND deleted = 0", []any{peerID}, &name, &url, &key, &pin)
		if err == nil && !found {
			err = notFound(core.Peer, peerID)
		}
		return err
	})
	if err != nil {
		return p, "", s.mapErr(err)
	}
	pub, err := peering.ParsePublicKey(key)
	if err != nil {
		return p, "", core.Errorf(core.Internal, "peer %s: stored key: %v", name, err)
	}
	p = peering.Peer{URL: url, Key: pub}
	if pin != nil && *pin != "" {
		if p.Pin, err = peering.ParsePin(*pin); err != nil {
			return p, "", core.Errorf(core.Internal, "peer %s: stored cacert: %v", name, err)
		}
	}
	return p, name, nil
}

// RefreshPeer implements core.Peering: it pulls the peer's data now and
// stores it; the answer is the original's dict of timers (seconds) plus
// the counts of objects added, updated and deleted.
func (s *Service) RefreshPeer(ctx context.Context, c *core.Caller, peerID int64) (core.Record, error) {
	if err := authorize(c, opRefreshPeer); err != nil {
		return nil, err
	}
	return s.refreshPeer(ctx, peerID)
}

func (s *Service) refreshPeer(ctx context.Context, peerID int64) (core.Record, error) {
	s.peers.refreshM.Lock()
	defer s.peers.refreshM.Unlock()
	cl, err := s.peerClient()
	if err != nil {
		return nil, err
	}
	p, name, err := s.peerOf(ctx, peerID)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	d, err := cl.Fetch(ctx, p)
	transport := time.Since(start)
	if err != nil {
		err = core.Errorf(core.Unavailable, "peer %s: %v", name, err)
		s.peerFailed(ctx, peerID, name, err)
		return nil, err
	}
	var stats PeerStats
	applyStart := time.Now()
	err = s.write(ctx, nil, func(o *op) error {
		var err error
		stats, err = o.applyPeerData(peerID, name, d)
		if err != nil {
			return err
		}
		var msg any
		if len(stats.Refused) > 0 {
			msg = "refused: " + strings.Join(stats.Refused, "; ")
		}
		_, err = o.tx.Exec(ctx, "UPDATE peers SET last_refresh = ?, refresh_error = ? WHERE peer_id = ?", o.now, msg, peerID)
		return err
	})
	if err != nil {
		s.peerFailed(ctx, peerID, name, err)
		return nil, err
	}
	for _, r := range stats.Refused {
		s.log.Warn("peer object refused; the rest of the refresh is stored", "peer", name, "why", r)
	}
	s.log.Info("peer refreshed", "peer", name, "added", stats.Added, "updated", stats.Updated, "deleted", stats.Deleted, "dur", time.Since(start).Round(time.Millisecond))
	return core.Record{
		"transport": transport.Seconds() - d.DBTime, "peer_db": d.DBTime, "apply": time.Since(applyStart).Seconds(),
		"added": int64(stats.Added), "updated": int64(stats.Updated), "deleted": int64(stats.Deleted),
		"refused": append([]string{}, stats.Refused...),
	}, nil
}

// peerFailed logs a failed or refused refresh and keeps its reason.
func (s *Service) peerFailed(ctx context.Context, peerID int64, name string, err error) {
	s.log.Warn("peer refresh failed; nothing changed", "peer", name, "err", err)
	msg := core.PublicMessage(err)
	if werr := s.db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE peers SET refresh_error = ? WHERE peer_id = ?", msg, peerID)
		return err
	}); werr != nil {
		s.log.Error("recording a peer's refresh error", "peer", name, "err", werr)
	}
}

// GetPeerData implements core.Peering: this PLC's peer data as the
// original's struct (for an admin: every local slice).
func (s *Service) GetPeerData(ctx context.Context, c *core.Caller) (core.Record, error) {
	if err := authorize(c, opGetPeerData); err != nil {
		return nil, err
	}
	var peer int64
	if c != nil && c.Kind == core.PeerCaller {
		peer = c.PeerID
	}
	d, err := s.PeerData(ctx, peer)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, core.Errorf(core.Internal, "encoding peer data: %v", err)
	}
	var rec core.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, core.Errorf(core.Internal, "encoding peer data: %v", err)
	}
	return normalizeJSON(rec).(core.Record), nil
}

// normalizeJSON turns decoded JSON numbers into the registry's types
// (int64 for integral numbers).
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := core.Record{}
		for k, e := range x {
			out[k] = normalizeJSON(e)
		}
		return out
	case core.Record:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
		return x
	case float64:
		if x == float64(int64(x)) && x < 1<<53 && x > -(1<<53) {
			return int64(x)
		}
	}
	return v
}

// peerChanges queues notifications to the peers whose nodes a committed
// change touched (slivers of local slices on their nodes).
func (s *Service) peerChanges(ctx context.Context, ch changes) {
	if s.opts.PeerKey == nil || (!ch.all && len(ch.nodes) == 0) {
		return
	}
	var peers []int64
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if ch.all {
			peers, err = tx.Ints(ctx, "SELECT peer_id FROM peers WHERE deleted = 0")
			return err
		}
		ids := make([]any, 0, len(ch.nodes))
		for n := range ch.nodes {
			ids = append(ids, n)
		}
		for start := 0; start < len(ids); start += 500 {
			chunk := ids[start:min(start+500, len(ids))]
			in := "?" + strings.Repeat(", ?", len(chunk)-1)
			got, err := tx.Ints(ctx, "SELECT DISTINCT peer_id FROM nodes WHERE peer_id IS NOT NULL AND node_id IN ("+in+")", chunk...)
			if err != nil {
				return err
			}
			peers = append(peers, got...)
		}
		return nil
	})
	if err != nil {
		s.log.Error("finding the peers to notify", "err", err)
		return
	}
	if len(peers) == 0 {
		return
	}
	s.peers.mu.Lock()
	for _, p := range peers {
		s.peers.notify[p] = true
	}
	s.peers.mu.Unlock()
	s.peers.kick()
}

// RunPeers refreshes every peer each interval (0: DefaultPeerRefresh),
// refreshes a peer as soon as it notifies, and notifies peers of changes
// here; until ctx ends. Without a peer key it returns at once.
//
// Of several replicas on one PostgreSQL database only the one holding the
// peers job's lock runs it (store.DB.RunExclusive, docs/replicas.md); a
// peer's notification or a change made through another replica waits for
// the holder's next periodic refresh.
func (s *Service) RunPeers(ctx context.Context, interval time.Duration) {
	if s.opts.PeerKey == nil {
		return
	}
	if interval <= 0 {
		interval = DefaultPeerRefresh
	}
	s.db.RunExclusive(ctx, "peers", func(ctx context.Context) { s.runPeers(ctx, interval) }, nil)
}

func (s *Service) runPeers(ctx context.Context, interval time.Duration) {
	all := time.NewTicker(interval)
	defer all.Stop()
	// Refresh everything once at start.
	s.refreshAll(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-all.C:
			s.refreshAll(ctx)
		case <-s.peers.wake:
			refresh, notify := s.peers.take()
			var wg sync.WaitGroup
			for _, p := range notify {
				wg.Add(1)
				go func() { defer wg.Done(); s.notifyPeer(ctx, p) }()
			}
			for _, p := range refresh {
				if _, err := s.refreshPeer(ctx, p); err != nil && ctx.Err() == nil {
					s.log.Debug("refresh on notification failed", "peer", p, "err", err)
				}
			}
			wg.Wait()
		}
	}
}

func (s *Service) refreshAll(ctx context.Context) {
	var peers []int64
	if err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		peers, err = tx.Ints(ctx, "SELECT peer_id FROM peers WHERE deleted = 0 ORDER BY peer_id")
		return err
	}); err != nil {
		s.log.Error("listing peers", "err", err)
		return
	}
	for _, p := range peers {
		if ctx.Err() != nil {
			return
		}
		s.refreshPeer(ctx, p) // failures are logged and recorded
	}
}

func (s *Service) notifyPeer(ctx context.Context, peerID int64) {
	cl, err := s.peerClient()
	if err != nil {
		return
	}
	p, name, err := s.peerOf(ctx, peerID)
	if err != nil {
		return
	}
	if err := cl.Notify(ctx, p); err != nil {
		s.log.Warn("notifying a peer failed (it will see the change at its next refresh)", "peer", name, "err", err)
	}
}
