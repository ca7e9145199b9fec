package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cross-replica change notification (docs/replicas.md).
//
// Several PLC processes ("replicas") may serve one PostgreSQL database. A
// write tells the others what it changed with PostgreSQL's NOTIFY, sent
// inside the write's transaction: PostgreSQL delivers it to every
// listening session when, and only if, the transaction commits, in commit
// order. Each replica holds one dedicated connection that LISTENs (Listen
// below). Whenever that connection is (re)established the replica cannot
// know what it missed, so Listen's Connected callback tells the caller to
// treat everything as changed.
//
// SQLite is single-process: there Notify does nothing and Listen refuses.

// ChangeChannel is the PostgreSQL NOTIFY channel of committed changes.
const ChangeChannel = "pl_changes"

// MaxNotifyPayload is the longest payload Notify sends: PostgreSQL's limit
// is 8000 bytes (less than 8000 in the default configuration).
const MaxNotifyPayload = 7900

// ErrPayloadTooLong is Notify's refusal of a payload over MaxNotifyPayload
// (the caller sends a shorter, coarser one instead).
var ErrPayloadTooLong = errors.New("store: notify payload longer than MaxNotifyPayload")

// Notify queues payload for every replica's Listen; it is delivered when
// the transaction commits (never if it rolls back). It does nothing on
// SQLite, where there are no other replicas.
func (t *Tx) Notify(ctx context.Context, payload string) error {
	if t.Dialect != Postgres {
		return nil
	}
	if len(payload) > MaxNotifyPayload {
		return ErrPayloadTooLong
	}
	_, err := t.tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", ChangeChannel, payload)
	return wrapDB("notify", err)
}

// ListenHandler receives what Listen hears. Its functions run on Listen's
// goroutine, one at a time, and must not block for long (the connection
// is not read meanwhile; PostgreSQL queues what arrives).
type ListenHandler struct {
	// Connected runs each time the LISTEN is (re)established, before the
	// first payload it delivers: changes committed while no connection
	// listened were missed, so the caller must assume anything changed.
	Connected func()
	// Payload runs for each notification on ChangeChannel, from any
	// replica (this one included).
	Payload func(payload string)
	// Lost runs when the listening connection fails (nil: ignored); Listen
	// reconnects with a backoff of up to MaxListenBackoff.
	Lost func(err error)
}

// Listen timing: a silent connection is pinged every ListenPing (a dead
// peer that never closed the socket is noticed within ListenPing plus
// the ping's own timeout), and reconnection attempts back off from
// 100 ms to MaxListenBackoff.
var (
	ListenPing       = 10 * time.Second
	MaxListenBackoff = 5 * time.Second
)

// ListenAppName is the application_name of the listening connection (it
// shows in pg_stat_activity).
const ListenAppName = "pl-plc-listen"

// ErrNoReplicas is Listen's answer on SQLite.
var ErrNoReplicas = errors.New("store: change notification across processes needs PostgreSQL (a SQLite store is served by one process)")

// Listen listens on ChangeChannel until ctx ends (then it returns nil),
// reconnecting whenever the connection is lost.
func (db *DB) Listen(ctx context.Context, h ListenHandler) error {
	if db.Dialect != Postgres || db.pgDSN == "" {
		return ErrNoReplicas
	}
	backoff := 100 * time.Millisecond
	for {
		connected, err := db.listenOnce(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = 100 * time.Millisecond
		}
		if h.Lost != nil {
			h.Lost(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, MaxListenBackoff)
	}
}

// listenOnce runs one listening connection until it fails; connected
// tells whether the LISTEN had been established.
func (db *DB) listenOnce(ctx context.Context, h ListenHandler) (connected bool, err error) {
	cfg, err := pgx.ParseConfig(db.pgDSN)
	if err != nil {
		return false, fmt.Errorf("parse dsn: %w", err)
	}
	cfg.RuntimeParams["application_name"] = ListenAppName
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+ChangeChannel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	if h.Connected != nil {
		h.Connected()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, ListenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
				return true, fmt.Errorf("wait: %w", err)
			}
			// Quiet for ListenPing: make sure the peer is still there.
			pctx, cancel := context.WithTimeout(ctx, ListenPing)
			_, err = conn.Exec(pctx, "SELECT 1")
			cancel()
			if err != nil {
				return true, fmt.Errorf("ping: %w", err)
			}
			continue
		}
		if n != nil && n.Channel == ChangeChannel && h.Payload != nil {
			h.Payload(n.Payload)
		}
	}
}
