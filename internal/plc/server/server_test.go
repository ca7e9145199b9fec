package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/nodeapi"
)

// start runs a PLC in-process on a free port and returns it with a
// function that stops it and returns Run's error.
func start(t *testing.T, cfg Config) (*Main, func() error) {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Main{Config: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30 s of cancellation")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return m, stop
}

func TestServeHTTPSAndRestart(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(context.Background(), Config{DataDir: dir}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	_, err := Init(context.Background(), Config{DataDir: dir}, InitOptions{Email: "other@example.org", Password: "pw"})
	if core.ErrorCode(err) != core.Conflict {
		t.Fatalf("second init: %v", err)
	}
	m, stop := start(t, Config{DataDir: dir, SANs: []string{"plc.example.org", "10.9.8.7"}})
	if !strings.HasPrefix(m.URL(), "https://127.0.0.1:") || len(m.Fingerprint()) != 64 {
		t.Fatalf("url %q fingerprint %q", m.URL(), m.Fingerprint())
	}
	// The certificate on disk is what the server presents, with the SANs.
	cert, fp, missing, err := LoadOrCreateCert(dir, DefaultNames([]string{"plc.example.org", "10.9.8.7"}))
	if err != nil || fp != m.Fingerprint() || len(missing) != 0 {
		t.Fatalf("cert: %s %v %v", fp, missing, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if cert.Leaf.VerifyHostname("localhost") != nil || cert.Leaf.VerifyHostname("10.9.8.7") != nil {
		t.Error("certificate lacks SANs")
	}

	c, err := client.New(m.URL(), client.Options{Fingerprint: m.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(ctx, nil, core.Site, core.Record{"login_base": "keep", "name": "Kept", "abbreviated_name": "K"}); err != nil {
		t.Fatal(err)
	}
	// A client pinned to another fingerprint is refused.
	bad, _ := client.New(m.URL(), client.Options{Fingerprint: strings.Repeat("00", 32)})
	if _, err := bad.Login(ctx, "admin@example.org", "pw", 0); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("wrong pin: %v", err)
	}
	// PLCAPI is mounted.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(m.URL()+"/PLCAPI/", "text/xml", strings.NewReader(`<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("GetSlivers")) {
		t.Fatalf("PLCAPI: %d %.300s", resp.StatusCode, body)
	}
	// The portal is mounted at / beside them; unknown API paths stay the API's.
	for path, want := range map[string]string{"/login": "<h1>Log in</h1>", "/static/style.css": ".exp-warn", "/api/v1/nowhere": `"code"`} {
		resp, err := hc.Get(m.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte(want)) {
			t.Fatalf("GET %s: %d %.300s, want %q", path, resp.StatusCode, body, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// A restart keeps the certificate and the data.
	m2, _ := start(t, Config{DataDir: dir})
	if m2.Fingerprint() != m.Fingerprint() {
		t.Fatalf("fingerprint changed across restarts: %s -> %s", m.Fingerprint(), m2.Fingerprint())
	}
	c2, _ := client.New(m2.URL(), client.Options{Fingerprint: m2.Fingerprint()})
	if _, err := c2.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Resolve(ctx, nil, core.Site, "keep"); err != nil {
		t.Fatalf("site lost across restart: %v", err)
	}
}

// TestShutdownEndsWatches checks that a graceful shutdown answers parked
// long polls at once instead of waiting for their timeout, and leaks no
// goroutines.
func TestShutdownEndsWatches(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	if _, err := Init(context.Background(), Config{DataDir: dir}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	m, stop := start(t, Config{DataDir: dir, HTTP: true, ShutdownTimeout: 5 * time.Second})
	if !strings.HasPrefix(m.URL(), "http://") || m.Fingerprint() != "" {
		t.Fatalf("plain HTTP: %q %q", m.URL(), m.Fingerprint())
	}
	ctx := context.Background()
	c, _ := client.New(m.URL(), client.Options{})
	if _, err := c.Login(ctx, "admin@example.org", "pw", 0); err != nil {
		t.Fatal(err)
	}
	site, _ := c.Add(ctx, nil, core.Site, core.Record{"login_base": "s", "name": "S", "abbreviated_name": "S"})
	node, err := c.Add(ctx, nil, core.Node, core.Record{"site_id": site, "hostname": "n.s.org"})
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := c.IssueJoinToken(ctx, nil, node)
	key, err := c.JoinNode(ctx, node, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.NodeState(ctx, nil, node)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	hc := &http.Client{}
	go func() {
		req, _ := http.NewRequest("GET", m.URL()+nodeapi.WatchPath+"?timeout=120&version="+st.Version, nil)
		req.Header.Set("Authorization", fmt.Sprintf("PLNode %d:%s", node, key))
		resp, err := hc.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(t0); d > 4*time.Second {
		t.Errorf("shutdown took %v with a parked watch", d)
	}
	if code := <-done; code != http.StatusServiceUnavailable {
		t.Errorf("parked watch answered %d, want 503", code)
	}
	hc.CloseIdleConnections()
	// goroutines settle back (allow a few for runtime/test helpers)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+3 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after shutdown, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestCertificateFingerprint(t *testing.T) {
	dir := t.TempDir()
	cert, fp, _, err := LoadOrCreateCert(dir, []string{"a.example.org", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if fp != hex.EncodeToString(sum[:]) {
		t.Fatal("fingerprint is not the SHA-256 of the DER certificate")
	}
	_, fp2, missing, err := LoadOrCreateCert(dir, []string{"b.example.org"})
	if err != nil || fp2 != fp || len(missing) != 1 || missing[0] != "b.example.org" {
		t.Fatalf("reload: %s %v %v", fp2, missing, err)
	}
	if cert.Leaf.PublicKeyAlgorithm.String() != "ECDSA" {
		t.Errorf("key algorithm %s", cert.Leaf.PublicKeyAlgorithm)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("PL_PLC_DATA", "/srv/plc")
	if d := DefaultDataDir(); d != "/srv/plc" {
		t.Errorf("with PL_PLC_DATA: %s", d)
	}
	t.Setenv("PL_PLC_DATA", "")
	want := "/var/lib/pl/plc"
	if os.Geteuid() != 0 {
		home, _ := os.UserHomeDir()
		want = filepath.Join(home, ".local", "share", "pl", "plc")
		if x := os.Getenv("XDG_DATA_HOME"); x != "" {
			want = filepath.Join(x, "pl", "plc")
		}
	}
	if d := DefaultDataDir(); d != want {
		t.Errorf("default: %s, want %s", d, want)
	}
	if dsn := (Config{DataDir: "/d"}).DSN(); dsn != "/d/plc.db" {
		t.Errorf("DSN %s", dsn)
	}
	if dsn := (Config{DataDir: "/d", DB: "postgres://x"}).DSN(); dsn != "postgres://x" {
		t.Errorf("DSN %s", dsn)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOneSubsystemPerLogLine: the server, REST and PLCAPI each name
// themselves once per line (issue 9.7: lines said subsystem=plc
// subsystem=rest).
func TestOneSubsystemPerLogLine(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(context.Background(), Config{DataDir: dir}, InitOptions{Email: "admin@example.org", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	m, stop := start(t, Config{DataDir: dir, Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c, err := client.New(m.URL(), client.Options{Fingerprint: m.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(context.Background(), "admin@example.org", "wrong", 0); err == nil {
		t.Fatal("wrong password accepted")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(m.URL()+"/PLCAPI/", "text/xml", strings.NewReader(`<?xml version="1.0"?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if n := strings.Count(line, "subsystem="); n != 1 {
			t.Errorf("%d subsystem attributes: %s", n, line)
		}
		if i := strings.Index(line, "subsystem="); i >= 0 {
			seen[strings.Fields(line[i:])[0]] = true
		}
	}
	for _, s := range []string{"subsystem=plc", "subsystem=rest", "subsystem=plcapi"} {
		if !seen[s] {
			t.Errorf("no line from %s in:\n%s", s, buf.String())
		}
	}
}

// A broker may not be given PLC's own ticket key.
func TestTicketBrokerIsNotPLC(t *testing.T) {
	dir := t.TempDir()
	key, err := LoadOrCreateTicketKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	brokers, err := ticket.ParseBrokers([]string{"gush=" + base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: Config{DataDir: dir, Listen: "127.0.0.1:0", HTTP: true, Log: slog.New(slog.DiscardHandler), TicketBrokers: brokers}}
	err = m.Open(context.Background())
	if core.ErrorField(err) != "ticket-broker" || !strings.Contains(err.Error(), "broker gush has PLC's own ticket key") {
		t.Fatalf("Open: %v", err)
	}
}

// The lease granularity reaches the registry (pl dev sets a minute).
func TestLeaseGranularityConfig(t *testing.T) {
	m, _ := start(t, Config{DataDir: t.TempDir(), HTTP: true, LeaseGranularity: time.Minute})
	if g := m.Registry().LeaseGranularity(); g != 60 {
		t.Fatalf("granularity %d s, want 60", g)
	}
	m, _ = start(t, Config{DataDir: t.TempDir(), HTTP: true})
	if g := m.Registry().LeaseGranularity(); g != 3600 {
		t.Fatalf("default granularity %d s, want 3600", g)
	}
}
