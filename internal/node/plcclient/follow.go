package plcclient

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Backoff spaces out a node's attempts to reach PLC while it is
// unreachable. The bound d starts at Min and doubles after each failure up
// to Max. With FullJitter each wait is uniform in [0, d): a thousand nodes
// that lost PLC at the same moment spread their retries evenly, and each
// reconnects within Max of PLC's return. Without it (the policy before
// issue 9.20, kept as the benchmark's baseline) each wait is d plus up to
// d/2.
type Backoff struct {
	Min, Max   time.Duration
	FullJitter bool

	d time.Duration
}

// ReconnectBackoff is the node manager's policy: 0.5 s doubling, capped at
// 3 s, full jitter.
var ReconnectBackoff = Backoff{Min: 500 * time.Millisecond, Max: 3 * time.Second, FullJitter: true}

// OldReconnectBackoff is the policy before issue 9.20 (1 s doubling to
// 30 s, plus up to 50 % jitter): nodes took about 15 s to come back after
// an outage of PLC. Benchmarks measure it beside ReconnectBackoff.
var OldReconnectBackoff = Backoff{Min: time.Second, Max: 30 * time.Second}

// Next returns the wait before the next attempt, and advances the bound.
func (b *Backoff) Next() time.Duration {
	if b.d < b.Min {
		b.d = b.Min
	}
	d := b.d
	b.d = min(2*b.d, b.Max)
	if b.FullJitter {
		return rand.N(d)
	}
	return d + rand.N(d/2+1)
}

// Reset starts again from Min (after a success).
func (b *Backoff) Reset() { b.d = 0 }

// Source is what Follow needs of PLC (*Client implements it).
type Source interface {
	State(ctx context.Context) (*core.NodeState, error)
	Watch(ctx context.Context, version string, timeout time.Duration) (*core.NodeState, error)
}

var _ Source = (*Client)(nil)

// Follower follows a node's desired state at PLC.
type Follower struct {
	PLC          Source
	Backoff      Backoff       // zero: ReconnectBackoff
	WatchTimeout time.Duration // the server-side wait of each long poll
	// Version returns the version the node holds ("" = none).
	Version func() string
	// OnState is called with every state PLC sends.
	OnState func(*core.NodeState)
	// OnContact is called after every call to PLC: err is nil when PLC
	// answered.
	OnContact func(err error)
}

// Run follows PLC until ctx ends: it fetches the state once (so that PLC
// records the contact at once), then long-polls Watch; when a call fails,
// it polls State after the backoff's waits until PLC answers, then watches
// again.
func (f *Follower) Run(ctx context.Context) {
	b := f.Backoff
	if b.Min == 0 {
		b = ReconnectBackoff
	}
	for ctx.Err() == nil {
		st, err := f.PLC.State(ctx)
		if err == nil {
			f.OnContact(nil)
			f.OnState(st)
			b.Reset()
			for ctx.Err() == nil {
				st, err = f.PLC.Watch(ctx, f.Version(), f.WatchTimeout)
				if err != nil {
					break
				}
				f.OnContact(nil)
				if st != nil {
					f.OnState(st)
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		f.OnContact(err)
		t := time.NewTimer(b.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
