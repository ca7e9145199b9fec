package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// generation tells a read cache whether the store may have changed since a
// result was read (the service's read cache, internal/plc/service/readcache.go).
//
// It is a sequence lock over the commits of this process: a write adds 1
// before its COMMIT and 1 after it, so the number is odd exactly while a
// commit is in progress. This relies on writes being serialised in the
// process, which they are for SQLite (one writer connection) and not
// strictly for PostgreSQL (the advisory lock is released by the COMMIT,
// before the next writer's bump); PostgreSQL therefore never reports a
// usable generation: other PLC processes may write the same database and
// nothing here would see it.
//
// Other processes writing the same SQLite file (`pl plc init` while PLC
// runs, the sqlite3 shell) are seen through PRAGMA data_version on a
// connection of its own that never writes: its value changes whenever any
// other connection, of any process, committed. A change adds 2 (keeping the
// parity).
type generation struct {
	n atomic.Uint64

	// watch is the SQLite file's change detector (nil: an in-memory
	// database, private to this process, or PostgreSQL).
	watch *sql.DB
	mu    sync.Mutex
	dv    int64 // the last data_version seen; -1 = none yet
}

// commitHook, when set (tests), runs in every write between beforeCommit
// and the COMMIT.
var commitHook atomic.Pointer[func()]

// SetCommitHook sets a function every write runs while its commit is in
// progress (between the generation's bump and the COMMIT), or none (nil).
// Tests only: it makes "a read during a commit" deterministic.
func SetCommitHook(f func()) {
	if f == nil {
		commitHook.Store(nil)
		return
	}
	commitHook.Store(&f)
}

// beforeCommit and afterCommit bracket every COMMIT of a write.
func (g *generation) beforeCommit() { g.n.Add(1) }
func (g *generation) afterCommit()  { g.n.Add(1) }

// Generation returns a number that changes whenever a change may have been
// committed to the store, and whether it may be used: false while a write
// of this process is committing, when the change detector fails, and
// always for PostgreSQL. A read cache reads it before a read transaction
// and keeps the result only if it is unchanged (and usable) after it;
// it serves a kept result only while the generation is still the one the
// result was read at.
func (db *DB) Generation(ctx context.Context) (uint64, bool) {
	if db.Dialect != SQLite {
		return 0, false
	}
	g := &db.gen
	if g.watch != nil {
		g.mu.Lock()
		var dv int64
		err := g.watch.QueryRowContext(ctx, "PRAGMA data_version").Scan(&dv)
		if err == nil && dv != g.dv {
			if g.dv != -1 {
				g.n.Add(2)
			}
			g.dv = dv
		}
		g.mu.Unlock()
		if err != nil {
			return 0, false
		}
	}
	n := g.n.Load()
	return n, n%2 == 0
}
