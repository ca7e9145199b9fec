package server

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

// TestReplicasFailOver: two PLC processes on one PostgreSQL database
// (one data directory: one certificate). The CLI's client and a node's
// client are given both URLs; a node's watch held at replica 2 is woken
// by a change made through replica 1; when replica 1 stops, both clients
// go on at replica 2 and see everything replica 1 acknowledged.
func TestReplicasFailOver(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Init(ctx, Config{DataDir: dir, DB: dsn}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m1, stop1 := start(t, Config{DataDir: dir, DB: dsn})
	m2, _ := start(t, Config{DataDir: dir, DB: dsn})
	if m1.Fingerprint() != m2.Fingerprint() {
		t.Fatal("replicas on one data directory serve different certificates")
	}
	urls := m1.URL() + "," + m2.URL()
	c, err := client.New(urls, client.Options{Fingerprint: m1.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	site, err := c.Add(ctx, nil, core.Site, core.Record{"login_base": "rep", "name": "R", "abbreviated_name": "R", "max_slices": 5})
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.Add(ctx, nil, core.Node, core.Record{"site_id": site, "hostname": "n.rep.org"})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := c.IssueJoinToken(ctx, nil, node)
	key, err := c.JoinNode(ctx, node, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	// The node talks to replica 2 first; its watch is woken by a change
	// through replica 1.
	nc, err := plcclient.New(plcclient.Config{URL: m2.URL() + "," + m1.URL(), NodeID: node, NodeKey: key, Fingerprint: m1.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := nc.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan error, 1)
	go func() {
		got, err := nc.Watch(ctx, st.Version, 30*time.Second)
		if err == nil && got == nil {
			err = context.DeadlineExceeded
		}
		woke <- err
	}()
	time.Sleep(300 * time.Millisecond) // the watch is registered at replica 2
	c1, _ := client.New(m1.URL(), client.Options{Fingerprint: m1.Fingerprint(), Token: c.Token()})
	slice, err := c1.Add(ctx, nil, core.Slice, core.Record{"name": "rep_s", "url": "http://x.test", "description": "d"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.Link(ctx, nil, core.SliceNode, slice, node, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatalf("watch at replica 2: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a change through replica 1 did not wake the watch held at replica 2")
	}
	// Replica 1 goes away: the CLI's client (at replica 1 until now) and
	// the node go on at replica 2 and see what replica 1 acknowledged.
	if c.URL() != m1.URL() {
		t.Fatalf("the CLI client talks to %s, want replica 1 %s", c.URL(), m1.URL())
	}
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resolve(ctx, nil, core.Slice, "rep_s"); err != nil {
		t.Fatalf("after replica 1 stopped: %v", err)
	}
	if c.URL() != m2.URL() {
		t.Fatalf("the CLI client did not fail over: %s", c.URL())
	}
	if _, err := c.Add(ctx, nil, core.Site, core.Record{"login_base": "rep2", "name": "R2", "abbreviated_name": "R2"}); err != nil {
		t.Fatalf("write after fail-over: %v", err)
	}
	// A node whose first URL is replica 1 goes on to replica 2.
	nc1, err := plcclient.New(plcclient.Config{URL: m1.URL() + "," + m2.URL(), NodeID: node, NodeKey: key, Fingerprint: m1.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	st2, err := nc1.State(ctx)
	if err != nil || len(st2.Slivers) == 0 || nc1.URL() != m2.URL() {
		t.Fatalf("node state after replica 1 stopped: %+v %v (at %s)", st2, err, nc1.URL())
	}
}

// TestReplicaLosesDatabase: a PLC whose PostgreSQL stops refuses calls
// with Unavailable (HTTP 503) and a message that says why, and serves
// again once the database is back, without a restart.
func TestReplicaLosesDatabase(t *testing.T) {
	pg := pgtest.NewPrivate(t)
	admin, err := sql.Open("pgx", pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE plc"); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	dsn := strings.Replace(pg.DSN, "/postgres?", "/plc?", 1)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Init(ctx, Config{DataDir: dir, DB: dsn}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m, _ := start(t, Config{DataDir: dir, DB: dsn})
	c, _ := client.New(m.URL(), client.Options{Fingerprint: m.Fingerprint()})
	if _, err := c.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	add := func(lb string) error {
		_, err := c.Add(ctx, nil, core.Site, core.Record{"login_base": lb, "name": lb, "abbreviated_name": lb})
		return err
	}
	if err := add("before"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	err = add("during")
	if core.ErrorCode(err) != core.Unavailable || !strings.Contains(err.Error(), "database is unreachable") {
		t.Fatalf("write without a database: %v (code %s), want unavailable naming the database", err, core.ErrorCode(err))
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err = add("after")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PLC did not recover after the database came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := c.Resolve(ctx, nil, core.Site, "during"); core.ErrorCode(err) != core.NotFound {
		t.Fatalf("the refused write left something behind: %v", err)
	}
	if !strings.Contains(service.ErrDBUnavailable, "accepts no changes") {
		t.Fatal("message changed")
	}
}
