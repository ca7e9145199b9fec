package server

import (
	"context"
	"os"
	"testing"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestPostgres runs PLC on PostgreSQL (--db) instead of SQLite.
func TestPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	if _, err := Init(context.Background(), Config{DataDir: dir, DB: dsn}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m, stop := start(t, Config{DataDir: dir, DB: dsn})
	ctx := context.Background()
	c, _ := client.New(m.URL(), client.Options{Fingerprint: m.Fingerprint()})
	if _, err := c.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(ctx, nil, core.Site, core.Record{"login_base": "pgsite", "name": "PG", "abbreviated_name": "PG"}); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/plc.db"); err == nil {
		t.Error("a SQLite file was created although --db names PostgreSQL")
	}
	m2, _ := start(t, Config{DataDir: dir, DB: dsn})
	c2, _ := client.New(m2.URL(), client.Options{Fingerprint: m2.Fingerprint()})
	if _, err := c2.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Resolve(ctx, nil, core.Site, "pgsite"); err != nil {
		t.Fatalf("site lost across restart: %v", err)
	}
}
