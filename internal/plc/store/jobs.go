package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Background jobs across replicas (docs/replicas.md): the monitor and the
// mail outbox must run in one PLC process at a time however many serve
// the database. On PostgreSQL, RunExclusive holds a session-level advisory
// lock on a dedicated connection while the job runs; the lock goes with
// the connection, so a replica that dies or loses its database releases
// it and another takes over. On SQLite the store is served by one process
// and the job simply runs.

// JobLockKey is the advisory lock key of the job named name.
func JobLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("pl-plc-job:" + name))
	return int64(h.Sum64() &^ (1 << 63))
}

// JobRetry is how often a replica that does not hold a job's lock tries to
// take it, and how often the holder checks its connection: after the
// holder fails, another replica runs the job within about 2*JobRetry.
var JobRetry = time.Second

// JobAppName is the application_name of the job lock connections.
const JobAppName = "pl-plc-job"

// RunExclusive runs job (with a context that ends when ctx ends or the
// lock is lost) whenever this process holds the job's lock, until ctx
// ends. On SQLite it runs job once with ctx. held, if not nil, is told
// each time the lock is taken (true) or given up (false).
func (db *DB) RunExclusive(ctx context.Context, name string, job func(ctx context.Context), held func(bool)) {
	if db.Dialect != Postgres || db.pgDSN == "" {
		if held != nil {
			held(true)
		}
		job(ctx)
		return
	}
	key := JobLockKey(name)
	for ctx.Err() == nil {
		db.holdJob(ctx, key, job, held)
		select {
		case <-ctx.Done():
		case <-time.After(JobRetry):
		}
	}
}

// holdJob runs one lock connection: it tries the lock every JobRetry and,
// once held, runs job until ctx ends or the connection fails.
func (db *DB) holdJob(ctx context.Context, key int64, job func(context.Context), held func(bool)) {
	cfg, err := pgx.ParseConfig(db.pgDSN)
	if err != nil {
		return
	}
	cfg.RuntimeParams["application_name"] = JobAppName
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var ok bool
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
		cancel()
		if err != nil {
			return
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(JobRetry):
		}
	}
	// Held: run the job until ctx ends or the connection fails (then the
	// server has released the lock and another replica may take it, so
	// the job must stop).
	jctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	if held != nil {
		held(true)
	}
	go func() { defer wg.Done(); job(jctx) }()
	t := time.NewTicker(JobRetry)
	for jctx.Err() == nil {
		select {
		case <-jctx.Done():
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, JobRetry)
			_, err := conn.Exec(pctx, "SELECT 1")
			cancel()
			if err != nil {
				stop()
			}
		}
	}
	t.Stop()
	stop()
	wg.Wait()
	if held != nil {
		held(false)
	}
}

// JobHolders returns how many connections hold the lock of the job named
// name (0 or 1; tests and `pl plc` status).
func (db *DB) JobHolders(ctx context.Context, name string) (int64, error) {
	if db.Dialect != Postgres {
		return 0, fmt.Errorf("store: job locks need PostgreSQL")
	}
	var n int64
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, JobLockKey(name)).Scan(&n)
	return n, wrapDB("query", err)
}
