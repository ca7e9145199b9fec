// Package pgtest gives tests a throwaway PostgreSQL database.
//
// Use Main from TestMain to start (at most) one cluster per test binary and
// DSN(t) in each test to get a fresh, empty database:
//
//   - if PL_TEST_POSTGRES_DSN is set, databases are created on that server;
//   - else, when running as root with /usr/lib/postgresql/*/bin/initdb
//     present, a private cluster is created in a temporary directory owned
//     by the postgres user, listening on a unix socket only (no TCP port),
//     and removed when the tests end;
//   - else DSN skips the test with the reason.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

var (
	mu      sync.Mutex
	baseDSN string // admin connection (database "postgres")
	skip    string // reason to skip, when no server
	cleanup func()
	counter atomic.Int64
)

// Main starts the server (if needed) around m.Run and returns the exit code.
func Main(m interface{ Run() int }) int {
	start()
	code := m.Run()
	mu.Lock()
	if cleanup != nil {
		cleanup()
	}
	mu.Unlock()
	return code
}

// DSN returns the DSN of a new empty database, dropped when t ends, or
// skips t when no PostgreSQL is available.
func DSN(t testing.TB) string {
	t.Helper()
	mu.Lock()
	b, why := baseDSN, skip
	mu.Unlock()
	if b == "" {
		if why == "" {
			why = "pgtest.Main was not called from TestMain"
		}
		t.Skip("no PostgreSQL: " + why)
	}
	name := fmt.Sprintf("pltest_%d_%d", os.Getpid(), counter.Add(1))
	admin, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", b)
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return withDB(b, name)
}

func withDB(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + db
	return u.String()
}

// cluster is one private PostgreSQL cluster.
type cluster struct {
	dir, bin, data, sock string
	uid, gid             int
}

func (c *cluster) run(args ...string) error {
	cmd := exec.Command(args[0], args[1:]...) // hostdeps: /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(args[0]), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newCluster runs initdb in a new temporary directory; "" and a reason
// when this machine cannot.
func newCluster() (*cluster, string) {
	if os.Geteuid() != 0 {
		return nil, "not root and PL_TEST_POSTGRES_DSN unset"
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, "no /usr/lib/postgresql/*/bin/initdb and PL_TEST_POSTGRES_DSN unset"
	}
	sort.Strings(bins)
	pg, err := user.Lookup("postgres")
	if err != nil {
		return nil, "no postgres user: " + err.Error()
	}
	c := &cluster{bin: filepath.Dir(bins[len(bins)-1])}
	c.uid, _ = strconv.Atoi(pg.Uid)
	c.gid, _ = strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "pltest-pg-")
	if err != nil {
		return nil, err.Error()
	}
	c.dir = dir
	os.Chmod(dir, 0o755)
	c.data = filepath.Join(dir, "data")
	c.sock = filepath.Join(dir, "sock")
	for _, d := range []string{c.data, c.sock} {
		os.Mkdir(d, 0o700)
		os.Chown(d, c.uid, c.gid)
	}
	os.Chown(dir, c.uid, c.gid)
	if err := c.run(filepath.Join(c.bin, "initdb"), "-D", c.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err.Error()
	}
	return c, ""
}

func (c *cluster) start() error {
	opts := "-c listen_addresses='' -c unix_socket_directories=" + c.sock + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
	return c.run(filepath.Join(c.bin, "pg_ctl"), "-D", c.data, "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start")
}

func (c *cluster) stop() error { return c.stopMode("immediate") }

func (c *cluster) stopMode(mode string) error {
	return c.run(filepath.Join(c.bin, "pg_ctl"), "-D", c.data, "-m", mode, "-w", "stop")
}

func (c *cluster) dsn(db string) string {
	return "postgres://postgres@/" + db + "?host=" + url.QueryEscape(c.sock) + "&sslmode=disable"
}

// Private is a PostgreSQL cluster of one test's own, which the test may
// stop and start again (the shared cluster of DSN may not be stopped:
// other tests run on it).
type Private struct {
	c *cluster
	// DSN is the cluster's database "postgres".
	DSN string
}

// NewPrivate starts a private cluster, removed when t ends, or skips t
// when this machine cannot run one. It takes a few seconds.
func NewPrivate(t testing.TB) *Private {
	t.Helper()
	if os.Getenv("PL_TEST_POSTGRES_DSN") != "" {
		t.Skip("a private PostgreSQL cluster needs initdb here; PL_TEST_POSTGRES_DSN names a shared server")
	}
	c, why := newCluster()
	if c == nil {
		t.Skip("no private PostgreSQL: " + why)
	}
	if err := c.start(); err != nil {
		os.RemoveAll(c.dir)
		t.Skip("no private PostgreSQL: " + err.Error())
	}
	t.Cleanup(func() {
		c.stop()
		os.RemoveAll(c.dir)
	})
	return &Private{c: c, DSN: c.dsn("postgres")}
}

// Stop stops the cluster: every connection is closed at once (pg_ctl's
// fast mode: what was committed is kept, although the cluster runs with
// synchronous_commit off).
func (p *Private) Stop() error { return p.c.stopMode("fast") }

// Start starts the stopped cluster again.
func (p *Private) Start() error { return p.c.start() }

func start() {
	mu.Lock()
	defer mu.Unlock()
	if d := os.Getenv("PL_TEST_POSTGRES_DSN"); d != "" {
		baseDSN = d
		return
	}
	c, why := newCluster()
	if c == nil {
		skip = why
		return
	}
	if err := c.start(); err != nil {
		skip = err.Error()
		os.RemoveAll(c.dir)
		return
	}
	cleanup = func() {
		c.stop()
		os.RemoveAll(c.dir)
	}
	baseDSN = c.dsn("postgres")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", baseDSN)
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	if err != nil {
		skip = "cluster did not answer: " + err.Error()
		cleanup()
		cleanup = nil
		baseDSN = ""
	}
}
