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

func start() {
	mu.Lock()
	defer mu.Unlock()
	if d := os.Getenv("PL_TEST_POSTGRES_DSN"); d != "" {
		baseDSN = d
		return
	}
	if os.Geteuid() != 0 {
		skip = "not root and PL_TEST_POSTGRES_DSN unset"
		return
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		skip = "no /usr/lib/postgresql/*/bin/initdb and PL_TEST_POSTGRES_DSN unset"
		return
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	pg, err := user.Lookup("postgres")
	if err != nil {
		skip = "no postgres user: " + err.Error()
		return
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir, err := os.MkdirTemp("", "pltest-pg-")
	if err != nil {
		skip = err.Error()
		return
	}
	os.Chmod(dir, 0o755)
	data := filepath.Join(dir, "data")
	sock := filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		os.Mkdir(d, 0o700)
		os.Chown(d, uid, gid)
	}
	os.Chown(dir, uid, gid)
	run := func(args ...string) error {
		cmd := exec.Command(args[0], args[1:]...) // hostdeps: /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", filepath.Base(args[0]), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		skip = err.Error()
		os.RemoveAll(dir)
		return
	}
	opts := "-c listen_addresses='' -c unix_socket_directories=" + sock + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
	if err := run(filepath.Join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		skip = err.Error()
		os.RemoveAll(dir)
		return
	}
	cleanup = func() {
		run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	baseDSN = "postgres://postgres@/postgres?host=" + url.QueryEscape(sock) + "&sslmode=disable"
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
