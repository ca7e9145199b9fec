package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
)

// slowClient opens a TLS connection to m and writes head (request line,
// headers and possibly part of a body), then stalls.
func slowClient(t *testing.T, m *Main, head string) *tls.Conn {
	t.Helper()
	u, _ := url.Parse(m.URL())
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedWithin reports whether the server ends the connection (EOF or a
// reset, after any answer it sends) within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// TestSlowClientsAreCut: clients that stall in their headers or in their
// body (REST and PLCAPI) are disconnected after the header and body
// timeouts; before, 400 such TLS connections stayed open indefinitely.
func TestSlowClientsAreCut(t *testing.T) {
	m, _ := start(t, Config{DataDir: t.TempDir(), HeaderTimeout: time.Second, BodyTimeout: time.Second})
	heads := map[string]string{
		"PLCAPI body":    "POST /PLCAPI/ HTTP/1.1\r\nHost: plc\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml version=",
		"REST body":      "POST /api/v1/sessions HTTP/1.1\r\nHost: plc\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":",
		"chunked body":   "POST /PLCAPI/ HTTP/1.1\r\nHost: plc\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<?xml",
		"headers":        "GET /api/v1/whoami HTTP/1.1\r\nHost: plc\r\nX-Slow:",
		"unread body":    "DELETE /api/v1/sessions HTTP/1.1\r\nHost: plc\r\nContent-Length: 1000\r\n\r\nab",
		"nothing at all": "",
	}
	var wg sync.WaitGroup
	for name, head := range heads {
		// Several connections of each kind, all stalled at once.
		for i := 0; i < 10; i++ {
			c := slowClient(t, m, head)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !closedWithin(c, 8*time.Second) {
					t.Errorf("%s: a stalled connection is still open after 8 s (timeouts 1 s)", name)
				}
			}()
		}
	}
	wg.Wait()
}

// TestWatchOutlivesBodyTimeout: the body deadline is lifted once a body
// has been read, and a request without a body has none, so a node's long
// poll is answered at its own timeout (304), on a connection that first
// carried a request with a body.
func TestWatchOutlivesBodyTimeout(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(context.Background(), Config{DataDir: dir}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m, _ := start(t, Config{DataDir: dir, HeaderTimeout: time.Second, BodyTimeout: time.Second})
	ctx := context.Background()
	reg := m.Registry()
	admin, err := reg.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@example.org", Password: "pw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	site, err := reg.Add(ctx, admin, core.Site, core.Record{"login_base": "w", "name": "W", "abbreviated_name": "W"})
	if err != nil {
		t.Fatal(err)
	}
	node, err := reg.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": "n.w.org"})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := reg.IssueJoinToken(ctx, admin, node)
	key, err := reg.JoinNode(ctx, node, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := reg.NodeState(ctx, admin, node)
	if err != nil {
		t.Fatal(err)
	}
	auth := fmt.Sprintf("%s %d:%s", nodeapi.AuthScheme, node, key)
	u, _ := url.Parse(m.URL())
	c, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	report := `{"run_level":"boot"}`
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: plc\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		nodeapi.ReportPath, auth, len(report), report)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("report: %d", resp.StatusCode)
	}
	t0 := time.Now()
	fmt.Fprintf(c, "GET %s?version=%s&timeout=4 HTTP/1.1\r\nHost: plc\r\nAuthorization: %s\r\n\r\n", nodeapi.WatchPath, url.QueryEscape(st.Version), auth)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("watch cut after %v: %v", time.Since(t0), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified || time.Since(t0) < 4*time.Second {
		t.Fatalf("watch answered %d after %v, want 304 after its 4 s timeout", resp.StatusCode, time.Since(t0))
	}
}

// TestConnectionsPerSource: beyond the limit, a source's new connections
// are closed at once; one closing makes room again.
func TestConnectionsPerSource(t *testing.T) {
	m, _ := start(t, Config{DataDir: t.TempDir(), MaxConnsPerSource: 5})
	u, _ := url.Parse(m.URL())
	dial := func() (*tls.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			err = c.Handshake()
		}
		return c, err
	}
	var open []*tls.Conn
	for i := 0; i < 5; i++ {
		c, err := dial()
		if err != nil {
			t.Fatalf("connection %d within the limit: %v", i+1, err)
		}
		open = append(open, c)
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("a 6th connection from one source was accepted (limit 5)")
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for m.sources.openFrom("127.0.0.1") > 4 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c, err := dial()
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	open = append(open[1:], c)
	// The connections within the limit work.
	fmt.Fprint(c, "GET /api/v1/whoami HTTP/1.1\r\nHost: plc\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("whoami over a counted connection: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, c := range open {
		c.Close()
	}
	if !strings.HasPrefix(m.URL(), "https://") {
		t.Fatal("not TLS")
	}
}
