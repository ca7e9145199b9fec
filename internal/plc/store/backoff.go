package store

import (
	"context"
	"strings"
)

// The login backoff's memory on PostgreSQL (service/limiter.go): with
// several PLC replicas a client's failed logins must count wherever its
// requests land, so each failing (account, source) pair and each source
// is a row of login_backoff instead of an entry of one process's memory.
// Rows are updated under their own row lock, not the store's writer
// lock: a password guesser never queues behind the registry's writes.

// Backoff is the failure record of one key (times in UNIX milliseconds).
type Backoff struct {
	Key   string
	Fails int64
	Last  int64 // last failure
	Until int64 // refused before this
}

// Backoffs returns the records of the keys that have one.
func (db *DB) Backoffs(ctx context.Context, keys ...string) ([]Backoff, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var out []Backoff
	err := db.Read(ctx, func(tx *Tx) error {
		a := make([]any, len(keys))
		for i, k := range keys {
			a[i] = k
		}
		rows, err := tx.Query(ctx, "SELECT key, fails, last_ms, until_ms FROM login_backoff WHERE key IN ("+
			strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ")+")", a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b Backoff
			if err := rows.Scan(&b.Key, &b.Fails, &b.Last, &b.Until); err != nil {
				return wrapDB("scan", err)
			}
			out = append(out, b)
		}
		return wrapDB("rows", rows.Err())
	})
	return out, err
}

// UpdateBackoff replaces the record of key by fn(record) (fn gets a zero
// record, with Key set, when there is none; a result with Fails 0 deletes
// it), and deletes every record whose last failure is before staleBefore.
// Concurrent updates of one key, from any process, are serialised.
func (db *DB) UpdateBackoff(ctx context.Context, key string, staleBefore int64, fn func(Backoff) Backoff) error {
	body := func(tx *Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM login_backoff WHERE last_ms < ?", staleBefore); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO login_backoff (key, fails, last_ms, until_ms) VALUES (?, 0, 0, 0) ON CONFLICT (key) DO NOTHING", key); err != nil {
			return err
		}
		q := "SELECT fails, last_ms, until_ms FROM login_backoff WHERE key = ?"
		if db.Dialect == Postgres {
			q += " FOR UPDATE"
		}
		b := Backoff{Key: key}
		if _, err := tx.QueryRow(ctx, q, []any{key}, &b.Fails, &b.Last, &b.Until); err != nil {
			return err
		}
		n := fn(b)
		if n.Fails <= 0 {
			_, err := tx.Exec(ctx, "DELETE FROM login_backoff WHERE key = ?", key)
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE login_backoff SET fails = ?, last_ms = ?, until_ms = ? WHERE key = ?", n.Fails, n.Last, n.Until, key)
		return err
	}
	if db.Dialect != Postgres {
		return db.Write(ctx, body)
	}
	// A read-write transaction without the writer lock (run's write=true
	// would take it).
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return wrapDB("begin", err)
	}
	if err := body(&Tx{tx: tx, Dialect: db.Dialect, Write: true}); err != nil {
		tx.Rollback()
		return err
	}
	return wrapDB("commit", tx.Commit())
}
