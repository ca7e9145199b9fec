package plcclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
)

// fakePLC is a minimal node API server for client tests.
type fakePLC struct {
	t       *testing.T
	version string
	reports []map[string]any
	skew    time.Duration // added to PLC's clock in nodeapi.TimeHeader
}

func (f *fakePLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != nodeapi.JoinPath && r.Header.Get("Authorization") != "PLNode 7:k3y" {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "unauthenticated", "message": "bad node key"}})
		return
	}
	if f.skew != 0 {
		w.Header().Set(nodeapi.TimeHeader, time.Now().Add(f.skew).UTC().Format(time.RFC3339Nano))
	}
	switch r.URL.Path {
	case nodeapi.JoinPath:
		var req nodeapi.JoinRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"join secret expired or unknown"}`))
			return
		}
		json.NewEncoder(w).Encode(nodeapi.JoinResponse{NodeID: req.NodeID, Hostname: "n1.example.org", NodeKey: "k3y"})
	case nodeapi.StatePath:
		json.NewEncoder(w).Encode(core.NodeState{NodeID: 7, Version: f.version})
	case nodeapi.WatchPath:
		if r.URL.Query().Get("version") == f.version {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		json.NewEncoder(w).Encode(core.NodeState{NodeID: 7, Version: f.version})
	case nodeapi.ReportPath:
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		f.reports = append(f.reports, m)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func fingerprint(srv *httptest.Server) string {
	sum := sha256.Sum256(srv.Certificate().Raw)
	return hex.EncodeToString(sum[:])
}

func TestJoinPinsCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(&fakePLC{t: t, version: "v1"})
	defer srv.Close()
	ctx := context.Background()

	tok := nodeapi.JoinToken{NodeID: 7, Secret: "s3cret", Fingerprint: fingerprint(srv)}
	resp, err := Join(ctx, srv.URL, tok, "ssh-ed25519 AAAA host")
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if resp.NodeKey != "k3y" || resp.Hostname != "n1.example.org" {
		t.Fatalf("Join: got %+v", resp)
	}

	bad := tok
	bad.Fingerprint = strings.Repeat("00", 32)
	if _, err := Join(ctx, srv.URL, bad, ""); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("Join with a wrong pin: got %v, want a fingerprint error", err)
	}

	bad = tok
	bad.Secret = "wrong"
	_, err = Join(ctx, srv.URL, bad, "")
	if core.ErrorCode(err) != core.Unauthenticated || !strings.Contains(err.Error(), "join secret expired") {
		t.Fatalf("Join with a wrong secret: got %v (%s)", err, core.ErrorCode(err))
	}

	// A pinned token never talks plain HTTP.
	if _, err := Join(ctx, strings.Replace(srv.URL, "https", "http", 1), tok, ""); core.ErrorCode(err) != core.Invalid {
		t.Fatalf("Join over http with a pin: got %v", err)
	}
}

func TestUnpinnedHTTPSUsesCAs(t *testing.T) {
	srv := httptest.NewTLSServer(&fakePLC{t: t, version: "v1"})
	defer srv.Close()
	_, err := Join(context.Background(), srv.URL, nodeapi.JoinToken{NodeID: 7, Secret: "s3cret"}, "")
	if err == nil {
		t.Fatal("Join to a self-signed PLC without a pin succeeded; want a certificate error")
	}
}

func TestStateWatchReport(t *testing.T) {
	f := &fakePLC{t: t, version: "v1"}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, NodeID: 7, NodeKey: "k3y", Fingerprint: fingerprint(srv)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := c.State(ctx)
	if err != nil || st.Version != "v1" {
		t.Fatalf("State: %+v %v", st, err)
	}
	st, err = c.Watch(ctx, "v1", time.Second)
	if err != nil || st != nil {
		t.Fatalf("Watch unchanged: want (nil, nil), got %+v %v", st, err)
	}
	f.version = "v2"
	st, err = c.Watch(ctx, "v1", time.Second)
	if err != nil || st == nil || st.Version != "v2" {
		t.Fatalf("Watch changed: %+v %v", st, err)
	}
	if err := c.Report(ctx, nodeapi.Report{RunLevel: "boot"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Report(ctx, nodeapi.Report{RunLevel: "boot", SliverErrors: map[string]string{"a_b": "bad"}}); err != nil {
		t.Fatal(err)
	}
	if len(f.reports) != 2 {
		t.Fatalf("reports: %v", f.reports)
	}
	if e, ok := f.reports[0]["sliver_errors"].(map[string]any); !ok || len(e) != 0 {
		t.Errorf("first report must carry an empty sliver_errors object, got %v", f.reports[0])
	}
	if e, _ := f.reports[1]["sliver_errors"].(map[string]any); e["a_b"] != "bad" {
		t.Errorf("second report: %v", f.reports[1])
	}

	wrong, _ := New(Config{URL: srv.URL, NodeID: 7, NodeKey: "nope", Fingerprint: fingerprint(srv)})
	_, err = wrong.State(ctx)
	if core.ErrorCode(err) != core.Unauthenticated || !strings.Contains(err.Error(), "bad node key") {
		t.Fatalf("State with a wrong key: %v", err)
	}
	other, _ := New(Config{URL: srv.URL, NodeID: 8, NodeKey: "k3y", Fingerprint: fingerprint(srv)})
	if _, err := other.State(ctx); err == nil {
		t.Fatal("State for another node accepted")
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := New(Config{URL: url, NodeID: 7, NodeKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.State(context.Background())
	if core.ErrorCode(err) != core.Unavailable {
		t.Fatalf("State against a closed server: %v (%s)", err, core.ErrorCode(err))
	}
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "https://plc", NodeID: 0, NodeKey: "k"},
		{URL: "https://plc", NodeID: 1},
		{URL: "plc.example.org", NodeID: 1, NodeKey: "k"},
		{URL: "ftp://plc", NodeID: 1, NodeKey: "k"},
		{URL: "https://plc", NodeID: 1, NodeKey: "k", Fingerprint: "abcd"},
		{URL: "http://plc", NodeID: 1, NodeKey: "k", Fingerprint: strings.Repeat("ab", 32)},
	} {
		if _, err := New(cfg); core.ErrorCode(err) != core.Invalid {
			t.Errorf("New(%+v): got %v, want invalid", cfg, err)
		}
	}
}

func FuzzErrorMessage(f *testing.F) {
	f.Add([]byte(`{"error":{"message":"x"}}`))
	f.Add([]byte(`{"error":"x"}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if errorMessage(b) == "" {
			t.Fatal("empty message")
		}
	})
}

func TestBackoff(t *testing.T) {
	b := ReconnectBackoff
	bounds := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
	for round := 0; round < 2; round++ {
		for i, max := range bounds {
			for j := 0; j < 50; j++ { // full jitter: in [0, bound)
				c := b
				if d := c.Next(); d < 0 || d >= max {
					t.Fatalf("attempt %d: wait %v, want in [0, %v)", i+1, d, max)
				}
			}
			b.Next()
		}
		b.Reset()
	}
	old := OldReconnectBackoff
	for _, d0 := range []time.Duration{1, 2, 4, 8, 16, 30, 30} {
		d0 *= time.Second
		if d := old.Next(); d < d0 || d > d0+d0/2 {
			t.Fatalf("old policy: wait %v, want in [%v, %v]", d, d0, d0+d0/2)
		}
	}
}

// flaky is a Source that is down for its first calls, then serves one
// state and watches that never change.
type flaky struct {
	mu    sync.Mutex
	fails int
	calls []string
}

func (f *flaky) State(ctx context.Context) (*core.NodeState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "state")
	if f.fails > 0 {
		f.fails--
		return nil, &core.Error{Code: core.Unavailable, Message: "down"}
	}
	return &core.NodeState{NodeID: 1, Version: "v1"}, nil
}

func (f *flaky) Watch(ctx context.Context, version string, timeout time.Duration) (*core.NodeState, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "watch "+version)
	f.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestFollowerReconnects(t *testing.T) {
	src := &flaky{fails: 3}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var contacts []string
	version := ""
	got := make(chan struct{})
	f := &Follower{
		PLC: src, Backoff: Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond, FullJitter: true},
		Version: func() string { return version },
		OnState: func(st *core.NodeState) { version = st.Version; close(got) },
		OnContact: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			contacts = append(contacts, fmt.Sprint(err == nil))
		},
	}
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("never reconnected")
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := "false false false true"; strings.Join(contacts, " ") != want {
		t.Errorf("contacts %v, want %s", contacts, want)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if want := "state state state state watch v1"; strings.Join(src.calls, " ") != want {
		t.Errorf("calls %q, want %s", src.calls, want)
	}
}

// TestClockOffset: the node's clock offset is measured from PLC's time
// stamp on short calls; a watch (long poll) does not count.
func TestClockOffset(t *testing.T) {
	f := &fakePLC{t: t, version: "v1", skew: -3 * time.Second}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, NodeID: 7, NodeKey: "k3y", Fingerprint: fingerprint(srv)})
	if err != nil {
		t.Fatal(err)
	}
	if _, known := c.ClockOffset(); known {
		t.Fatal("clock known before any call")
	}
	ctx := context.Background()
	if _, err := c.State(ctx); err != nil {
		t.Fatal(err)
	}
	// PLC's clock is 3 s behind: the node is 3 s ahead (within the RTT).
	if ms, known := c.ClockOffset(); !known || ms < 2500 || ms > 3500 {
		t.Fatalf("offset %d ms (known %v), want about +3000", ms, known)
	}
	f.skew = 10 * time.Second
	if _, err := c.Watch(ctx, "v0", time.Second); err != nil {
		t.Fatal(err)
	}
	if ms, _ := c.ClockOffset(); ms < 2500 || ms > 3500 {
		t.Fatalf("a watch changed the offset to %d ms", ms)
	}
	if err := c.Report(ctx, nodeapi.Report{RunLevel: "boot"}); err != nil {
		t.Fatal(err)
	}
	if ms, _ := c.ClockOffset(); ms > -9500 || ms < -10500 {
		t.Fatalf("offset after a report %d ms, want about -10000", ms)
	}
}

// TestFailover: with several replicas, a request goes on to the next when
// one refuses connections or answers 503 (a replica without its
// database), sticks to the one that answered, and fails Unavailable only
// when none answers; other errors are not retried elsewhere.
func TestFailover(t *testing.T) {
	var hits [3]atomic.Int64
	f := &fakePLC{t: t, version: "v1"}
	dead := httptest.NewTLSServer(f)
	deadURL := dead.URL
	dead.Close()
	sick := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits[1].Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"database unreachable"}}`))
	}))
	defer sick.Close()
	good := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits[2].Add(1)
		f.ServeHTTP(w, r)
	}))
	defer good.Close()
	fp := fingerprint(good) // httptest servers share one certificate, as replicas must
	c, err := New(Config{URL: deadURL + ", " + sick.URL + "," + good.URL, NodeID: 7, NodeKey: "k3y", Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if st, err := c.State(ctx); err != nil || st.Version != "v1" {
		t.Fatalf("State across a dead and a sick replica: %+v %v", st, err)
	}
	if c.URL() != good.URL {
		t.Fatalf("current replica %s, want %s", c.URL(), good.URL)
	}
	before := hits[1].Load()
	if err := c.Report(ctx, nodeapi.Report{RunLevel: "boot"}); err != nil {
		t.Fatal(err)
	}
	if hits[1].Load() != before || hits[2].Load() != 2 {
		t.Fatalf("after fail-over requests did not stick to the good replica: sick %d good %d", hits[1].Load()-before, hits[2].Load())
	}
	// A refusal is an answer: not retried at the others.
	wrong, _ := New(Config{URL: good.URL + "," + sick.URL, NodeID: 7, NodeKey: "nope", Fingerprint: fp})
	before = hits[1].Load()
	if _, err := wrong.State(ctx); core.ErrorCode(err) != core.Unauthenticated || hits[1].Load() != before {
		t.Fatalf("a 401 went on to another replica (%v, sick hits %d)", err, hits[1].Load()-before)
	}
	// None answers: Unavailable, naming the last one tried.
	none, _ := New(Config{URL: deadURL + "," + sick.URL, NodeID: 7, NodeKey: "k3y", Fingerprint: fp})
	if _, err := none.State(ctx); core.ErrorCode(err) != core.Unavailable {
		t.Fatalf("no replica answering: %v", err)
	}
}
