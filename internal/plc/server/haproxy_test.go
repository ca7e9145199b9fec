package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

// haproxyConfig is the load balancer of docs/replicas.md for two
// replicas: TCP mode (TLS passes through, so clients keep pinning PLC's
// certificate), health checks every 300 ms, and a failed connection
// re-dispatched to the other replica.
const haproxyConfig = `global
	maxconn 4000
defaults
	mode tcp
	timeout connect 2s
	timeout client 400s
	timeout server 400s
	retries 2
	option redispatch
frontend plc
	bind 127.0.0.1:%d
	default_backend replicas
backend replicas
	balance roundrobin
	server r1 %s check inter 300ms fall 1 rise 2
	server r2 %s check inter 300ms fall 1 rise 2
`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestHAProxyReplicas: HAProxy in front of two PLC replicas on one
// PostgreSQL; clients know only HAProxy's address. One replica is killed
// (its listener and every connection closed at once): the CLI's client
// and a node go on through HAProxy, and nothing acknowledged is lost.
func TestHAProxyReplicas(t *testing.T) {
	bin, err := exec.LookPath("haproxy") // hostdeps: haproxy
	if err != nil {
		t.Skip("no haproxy (scripts/deps.sh test installs it)")
	}
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := Init(ctx, Config{DataDir: dir, DB: dsn}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m1, _ := start(t, Config{DataDir: dir, DB: dsn})
	m2, _ := start(t, Config{DataDir: dir, DB: dsn})
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	host := func(m *Main) string { return m.ln.Addr().String() }
	if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, port, host(m1), host(m2)), 0o600); err != nil {
		t.Fatal(err)
	}
	hp := exec.Command(bin, "-f", cfg, "-db") // hostdeps: haproxy
	hp.Stdout, hp.Stderr = os.Stderr, os.Stderr
	if err := hp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	c, err := client.New(url, client.Options{Fingerprint: m1.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = c.Login(ctx, "admin@example.org", "pw", 0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("login through haproxy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	site, err := c.Add(ctx, nil, core.Site, core.Record{"login_base": "hap", "name": "H", "abbreviated_name": "H", "max_slices": 20})
	if err != nil {
		t.Fatal(err)
	}
	node, err := c.Add(ctx, nil, core.Node, core.Record{"site_id": site, "hostname": "n.hap.org"})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := c.IssueJoinToken(ctx, nil, node)
	key, err := c.JoinNode(ctx, node, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := plcclient.New(plcclient.Config{URL: url, NodeID: node, NodeKey: key, Fingerprint: m1.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	// Writes spread over both replicas (round robin per connection).
	var acked []string
	for i := range 6 {
		c.CloseIdleConnections()
		name := fmt.Sprintf("hap_s%d", i)
		if _, err := c.Add(ctx, nil, core.Slice, core.Record{"name": name, "url": "http://x.test", "description": "d"}); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, name)
	}
	st, err := nc.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	watch := make(chan error, 1)
	go func() { _, err := nc.Watch(ctx, st.Version, 20*time.Second); watch <- err }()
	time.Sleep(200 * time.Millisecond)

	// The replica holding the node's watch dies: its listener and every
	// connection closed at once.
	victim := m1
	if m1.Registry().Watchers() == 0 {
		victim = m2
	}
	if victim.Registry().Watchers() != 1 {
		t.Fatalf("the watch is held at neither replica (%d, %d)", m1.Registry().Watchers(), m2.Registry().Watchers())
	}
	victim.Close()
	start := time.Now()
	// The node's watch ends with an error (its Follower then fetches
	// again); the next fetch goes through to the other replica.
	// Usually PLC's shutdown answers it 503 at once; in about 1 run in 10
	// under -race neither that answer nor the closed connection reached
	// the node through HAProxy within 15 s (not understood yet: see
	// docs/replicas.md), and the node's watch then ends at its own
	// timeout. What must hold is below: the next fetch goes through.
	select {
	case err := <-watch:
		if core.ErrorCode(err) != core.Unavailable {
			t.Fatalf("watch cut by the replica's death: %v, want unavailable", err)
		}
		t.Logf("the watch ended %v after the replica died: %v", time.Since(start), err)
	case <-time.After(5 * time.Second):
		t.Log("the watch held at the dead replica had not ended after 5 s")
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := nc.State(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node through haproxy after a replica died: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 6 {
		name := fmt.Sprintf("hap_t%d", i)
		if _, err := c.Add(ctx, nil, core.Slice, core.Record{"name": name, "url": "http://x.test", "description": "d"}); err != nil {
			t.Fatalf("write %d through haproxy after a replica died: %v", i, err)
		}
		acked = append(acked, name)
		c.CloseIdleConnections()
	}
	t.Logf("clients served again %v after a replica died", time.Since(start))
	for _, name := range acked {
		if _, err := c.Resolve(ctx, nil, core.Slice, name); err != nil {
			t.Fatalf("acknowledged slice %s lost: %v", name, err)
		}
	}
}
