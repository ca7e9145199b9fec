package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
)

// maxCachedStmts bounds the prepared statements kept per SQLite
// connection. The store's statements have few shapes (a list filter is one
// parameter whatever its length), so the bound is rarely reached; past it,
// a statement not in use is dropped for the new one.
const maxCachedStmts = 256

// cachingConnector opens SQLite connections that keep their prepared
// statements: modernc's driver parses every query's SQL again, which cost
// about as much as running the small queries of a PLCAPI call.
type cachingConnector struct {
	dsn string
	drv driver.Driver
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: conn, stmts: map[string]*cachedStmt{}}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.drv }

// cachingConn is a driver connection whose Prepare returns a cached
// statement when one for the same SQL is not in use. It deliberately has no
// QueryContext or ExecContext, so that database/sql prepares every
// statement (and closes it, which here returns it to the cache). A driver
// connection is used by one goroutine at a time, so the map needs no lock.
type cachingConn struct {
	driver.Conn
	stmts map[string]*cachedStmt
}

var (
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
)

// openSQLite opens a pool of caching connections to the SQLite DSN.
func openSQLite(dsn string) (*sql.DB, error) {
	reg, err := sql.Open("sqlite", "") // only to reach the registered driver; opens nothing
	if err != nil {
		return nil, err
	}
	drv := reg.Driver()
	reg.Close()
	return sql.OpenDB(cachingConnector{dsn: dsn, drv: drv}), nil
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		if !s.busy {
			s.busy = true
			return s, nil
		}
		// In use (a query with the same SQL whose rows are still open):
		// a statement of its own, closed after use.
		st, err := c.prepare(ctx, query)
		if err != nil {
			return nil, err
		}
		return &cachedStmt{Stmt: st}, nil
	}
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) >= maxCachedStmts {
		for q, old := range c.stmts { // a random one not in use
			if !old.busy {
				delete(c.stmts, q)
				old.Stmt.Close()
				break
			}
		}
	}
	s := &cachedStmt{Stmt: st, cached: true, busy: true}
	if len(c.stmts) < maxCachedStmts {
		c.stmts[query] = s
	} else {
		s.cached = false
	}
	return s, nil
}

func (c *cachingConn) prepare(ctx context.Context, query string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bt, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bt.BeginTx(ctx, opts)
	}
	return nil, errors.New("store: the SQL driver does not implement BeginTx")
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *cachingConn) Close() error {
	for q, s := range c.stmts {
		s.Stmt.Close()
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}

// cachedStmt is a prepared statement that Close returns to its
// connection's cache (cached) or really closes.
type cachedStmt struct {
	driver.Stmt
	cached, busy bool
}

var (
	_ driver.StmtQueryContext = (*cachedStmt)(nil)
	_ driver.StmtExecContext  = (*cachedStmt)(nil)
)

func (s *cachedStmt) Close() error {
	if s.cached {
		s.busy = false
		return nil
	}
	return s.Stmt.Close()
}

func (s *cachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, errors.New("store: the driver's statements lack QueryContext")
}

func (s *cachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errors.New("store: the driver's statements lack ExecContext")
}
