// Package store is the PLC registry's SQL store: one implementation over
// SQLite (modernc.org/sqlite, the default) and PostgreSQL (pgx), numbered
// schema migrations, the table descriptions that drive validation and
// queries, and a Get query builder that turns a core.Filter into SQL with
// placeholders.
//
// Every write runs in one transaction, and write transactions are
// serialised: SQLite by a single writer connection with BEGIN IMMEDIATE,
// PostgreSQL by a transaction-scoped advisory lock. Reads run concurrently.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // SQLite driver "sqlite"
)

// Dialect is the SQL flavour of a store.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// writeLockKey is the PostgreSQL advisory lock that serialises writers.
const writeLockKey = 7261

// DB is an open store.
type DB struct {
	Dialect Dialect
	w       *sql.DB // writes
	r       *sql.DB // reads (== w for PostgreSQL)
	gen     generation
	// pgDSN is the PostgreSQL DSN ("" for SQLite): the change listener
	// and the job locks open dedicated connections with it (notify.go,
	// jobs.go).
	pgDSN string
}

// Open opens (and migrates) a store. dsn is "" or a file path or
// "sqlite:PATH" for SQLite ("" = an in-memory database, for tests), or a
// "postgres://" / "postgresql://" URL (or "host=... " keyword string) for
// PostgreSQL.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := open(dsn)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	return db, nil
}

func open(dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || strings.HasPrefix(dsn, "host=") {
		p, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		p.SetMaxOpenConns(16)
		p.SetMaxIdleConns(16)
		return &DB{Dialect: Postgres, w: p, r: p, pgDSN: dsn}, nil
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	pragmas := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	if path == "" || path == ":memory:" {
		// A private in-memory database lives in one connection, shared by
		// reads and writes.
		m, err := openSQLite("file::memory:?" + pragmas)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite memory: %w", err)
		}
		m.SetMaxOpenConns(1)
		m.SetMaxIdleConns(1)
		m.SetConnMaxLifetime(0)
		m.SetConnMaxIdleTime(0)
		db := &DB{Dialect: SQLite, w: m, r: m}
		db.gen.dv = -1
		return db, nil
	}
	base := "file:" + path
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	pragmas += "&_pragma=journal_mode(WAL)"
	w, err := openSQLite(base + sep + pragmas + "&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := openSQLite(base + sep + pragmas)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	if err := w.Ping(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	// The change detector of generation.go: one connection that only
	// runs PRAGMA data_version.
	watch, err := openSQLite(base + sep + pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	watch.SetMaxOpenConns(1)
	watch.SetMaxIdleConns(1)
	watch.SetConnMaxLifetime(0)
	watch.SetConnMaxIdleTime(0)
	db := &DB{Dialect: SQLite, w: w, r: r}
	db.gen.watch, db.gen.dv = watch, -1
	return db, nil
}

// Close closes the store.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.gen.watch != nil {
		db.gen.watch.Close()
	}
	if db.r != db.w {
		if e := db.r.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Tx is a transaction with placeholder rebinding: queries use "?" and the
// store rewrites them for the dialect.
type Tx struct {
	tx      *sql.Tx
	Dialect Dialect
	Write   bool
}

// Write runs fn in a serialised read-write transaction; fn's error rolls
// everything back.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.w, true, fn)
}

// Read runs fn in a read-only transaction.
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.r, false, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, write bool, fn func(*Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: !write && db.Dialect == Postgres}
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return wrapDB("begin", err)
	}
	t := &Tx{tx: tx, Dialect: db.Dialect, Write: write}
	if write && db.Dialect == Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", writeLockKey); err != nil {
			tx.Rollback()
			return wrapDB("lock", err)
		}
	}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if write {
		db.gen.beforeCommit()
		defer db.gen.afterCommit()
		if h := commitHook.Load(); h != nil {
			(*h)()
		}
	}
	if err := tx.Commit(); err != nil {
		return wrapDB("commit", err)
	}
	return nil
}

// DBError marks a failure of the database itself (not of the caller's
// input); the service maps it to core.Internal.
type DBError struct {
	Op  string
	Err error
}

func (e *DBError) Error() string { return "database " + e.Op + ": " + e.Err.Error() }
func (e *DBError) Unwrap() error { return e.Err }

func wrapDB(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *DBError
	if errors.As(err, &de) {
		return err
	}
	return &DBError{Op: op, Err: err}
}

// Rebind rewrites "?" placeholders for the dialect.
func Rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func args(a []any) []any {
	for i, v := range a {
		if b, ok := v.(bool); ok {
			a[i] = boolInt(b)
		}
	}
	return a
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Exec runs a statement.
func (t *Tx) Exec(ctx context.Context, q string, a ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, Rebind(t.Dialect, q), args(a)...)
	if err != nil {
		return 0, wrapDB("exec", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Query runs a query; the caller closes the rows.
func (t *Tx) Query(ctx context.Context, q string, a ...any) (*sql.Rows, error) {
	rows, err := t.tx.QueryContext(ctx, Rebind(t.Dialect, q), args(a)...)
	if err != nil {
		return nil, wrapDB("query", err)
	}
	return rows, nil
}

// QueryRow runs a single-row query into dest; found is false for no row.
func (t *Tx) QueryRow(ctx context.Context, q string, a []any, dest ...any) (found bool, err error) {
	err = t.tx.QueryRowContext(ctx, Rebind(t.Dialect, q), args(a)...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrapDB("query", err)
	}
	return true, nil
}

// Ints runs a query returning one integer column.
func (t *Tx) Ints(ctx context.Context, q string, a ...any) ([]int64, error) {
	rows, err := t.Query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, v)
	}
	return out, wrapDB("rows", rows.Err())
}

// Strings runs a query returning one text column (NULLs skipped).
func (t *Tx) Strings(ctx context.Context, q string, a ...any) ([]string, error) {
	rows, err := t.Query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, wrapDB("scan", err)
		}
		if v.Valid {
			out = append(out, v.String)
		}
	}
	return out, wrapDB("rows", rows.Err())
}

// Int runs a query returning one integer (0 when there is no row or NULL).
func (t *Tx) Int(ctx context.Context, q string, a ...any) (int64, error) {
	var v sql.NullInt64
	_, err := t.QueryRow(ctx, q, a, &v)
	return v.Int64, err
}

// Insert inserts a row and returns its generated primary key.
func (t *Tx) Insert(ctx context.Context, table, pk string, cols []string, vals []any) (int64, error) {
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ") RETURNING " + pk
	if len(cols) == 0 {
		q = "INSERT INTO " + table + " DEFAULT VALUES RETURNING " + pk
	}
	var id int64
	if _, err := t.QueryRow(ctx, q, vals, &id); err != nil {
		return 0, err
	}
	return id, nil
}

// IsUniqueViolation reports whether err is a unique-constraint failure.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505") ||
		strings.Contains(s, "duplicate key value")
}

// IsUnavailable reports whether err means the database cannot be reached
// now: no connection (refused, no socket, lost, reset), or a server that
// is shutting down or starting (SQLSTATE class 08, 57P01-57P03). Such a
// failure is not the caller's fault, and it passes: database/sql opens new
// connections on the next call.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
