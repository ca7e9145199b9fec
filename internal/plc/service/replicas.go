package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Replicas: several PLC processes on one PostgreSQL database
// (docs/replicas.md). A write tells the others which nodes it affected
// with a NOTIFY in its own transaction (store.Tx.Notify); each replica's
// RunChanges listens and wakes its own watchers. The message is
//
//	ORIGIN ";" ( "*" | NODE_ID { "," NODE_ID } )
//
// where ORIGIN names the sending replica (its own messages are skipped:
// it woke its watchers itself) and "*" means every node.

// MaxPendingNodes bounds the nodes a replica remembers between receiving
// notifications and waking its watchers: past it, the pending set becomes
// "every node" (the watchers fetch their state again and compare
// versions), so a notification storm costs memory that does not grow
// with the storm.
const MaxPendingNodes = 65536

// newOrigin names this replica in its notifications.
func newOrigin() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// encodeChanges is the notification of ch from origin ("" for none). A
// list too long for one notification becomes "*".
func encodeChanges(origin string, ch changes) string {
	if !ch.all && len(ch.nodes) == 0 {
		return ""
	}
	if ch.all {
		return origin + ";*"
	}
	var b strings.Builder
	b.WriteString(origin)
	b.WriteByte(';')
	first := true
	for id := range ch.nodes {
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strconv.FormatInt(id, 10))
		if b.Len() > store.MaxNotifyPayload {
			return origin + ";*"
		}
	}
	return b.String()
}

// decodeChanges parses a notification; it allocates at most one map
// entry per node named (a payload is at most store.MaxNotifyPayload
// bytes).
func decodeChanges(p string) (origin string, ch changes, err error) {
	origin, list, ok := strings.Cut(p, ";")
	if !ok {
		return "", ch, core.Errorf(core.Invalid, "change notification %.40q: no ';' after the origin", p)
	}
	if origin == "" {
		return "", ch, core.Errorf(core.Invalid, "change notification %.40q: empty origin", p)
	}
	if list == "*" {
		ch.all = true
		return origin, ch, nil
	}
	if list == "" {
		return "", ch, core.Errorf(core.Invalid, "change notification %.40q: no nodes", p)
	}
	for f := range strings.SplitSeq(list, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return "", changes{}, core.Errorf(core.Invalid, "change notification %.40q: node id %.20q is not a positive integer", p, f)
		}
		ch.addNodes(id)
	}
	return origin, ch, nil
}

// pending collects the changes heard from other replicas until the
// dispatcher wakes the watchers: bounded by max nodes (then "all").
type pending struct {
	mu    sync.Mutex
	ch    changes
	max   int
	wake  chan struct{}
	folds atomic.Uint64 // times the set overflowed into "all"
	peak  atomic.Int64  // the most nodes the set held (tests)
}

func newPending(max int) *pending {
	return &pending{max: max, wake: make(chan struct{}, 1)}
}

func (p *pending) add(c changes) {
	if !c.all && len(c.nodes) == 0 {
		return
	}
	p.mu.Lock()
	switch {
	case p.ch.all:
	case c.all:
		p.ch = changes{all: true}
	default:
		if p.ch.nodes == nil {
			p.ch.nodes = make(map[int64]bool, len(c.nodes))
		}
		for id := range c.nodes {
			p.ch.nodes[id] = true
		}
		if len(p.ch.nodes) > p.max {
			p.ch = changes{all: true}
			p.folds.Add(1)
		} else if n := int64(len(p.ch.nodes)); n > p.peak.Load() {
			p.peak.Store(n)
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take returns and clears the pending changes.
func (p *pending) take() changes {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.ch
	p.ch = changes{}
	return c
}

// notifyReplicas sends ch to the other replicas from within the write's
// transaction (a no-op on SQLite).
func (s *Service) notifyReplicas(ctx context.Context, tx *store.Tx, ch changes) error {
	if s.db.Dialect != store.Postgres {
		return nil
	}
	p := encodeChanges(s.origin, ch)
	if p == "" {
		return nil
	}
	return tx.Notify(ctx, p)
}

// ReplicaStats are counters of RunChanges (metrics, tests).
type ReplicaStats struct {
	Received   uint64 // notifications heard from other replicas
	Bad        uint64 // notifications that did not parse (ignored, counted)
	Reconnects uint64 // times the listening connection was (re)established
	Folds      uint64 // times the pending set overflowed into "every node"
}

// ReplicaStats returns RunChanges' counters.
func (s *Service) ReplicaStats() ReplicaStats {
	return ReplicaStats{Received: s.repl.received.Load(), Bad: s.repl.bad.Load(),
		Reconnects: s.repl.connects.Load(), Folds: s.repl.pend.folds.Load()}
}

type replicaState struct {
	pend                    *pending
	received, bad, connects atomic.Uint64
	// listening is true while the change listener is connected: only
	// then may the node-state cache answer (statecache.go).
	listening atomic.Bool
}

// RunChanges wakes this replica's watchers for the changes other replicas
// commit, until ctx ends. On SQLite it returns at once (nil): a SQLite
// store is served by one process. Each (re)connection of the listener
// wakes every watcher (anything may have changed while it was not
// listening), so a lost connection loses no change.
func (s *Service) RunChanges(ctx context.Context) error {
	if s.db.Dialect != store.Postgres {
		return nil
	}
	r := &s.repl
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.pend.wake:
			}
			ch := r.pend.take()
			s.hub.notify(ch)
			s.armExpiry(ctx)
		}
	}()
	err := s.db.Listen(ctx, store.ListenHandler{
		Connected: func() {
			if r.connects.Add(1) > 1 {
				s.log.Info("change listener reconnected; waking every watcher")
			}
			r.pend.add(changes{all: true})
			// Nothing cached before may answer: changes made while not
			// listening were not heard.
			s.scache.bump()
			r.listening.Store(true)
		},
		Payload: func(p string) {
			origin, ch, err := decodeChanges(p)
			if err != nil {
				r.bad.Add(1)
				s.log.Warn("change notification ignored", "err", err)
				return
			}
			if origin == s.origin {
				return
			}
			r.received.Add(1)
			r.pend.add(ch)
		},
		Lost: func(err error) {
			r.listening.Store(false)
			s.log.Warn("change listener lost its database connection; reconnecting", "err", err)
		},
	})
	r.listening.Store(false)
	<-done
	if errors.Is(err, store.ErrNoReplicas) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("change listener: %w", err)
	}
	return nil
}

// jobCounts count the passes of the background jobs this replica ran.
type jobCounts struct{ monitor, mail atomic.Uint64 }

// JobPasses returns how many passes of the monitor and of the mail job
// this replica has run (tests, metrics).
func (s *Service) JobPasses() (monitor, mail uint64) {
	return s.jobs.monitor.Load(), s.jobs.mail.Load()
}
