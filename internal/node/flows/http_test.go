package flows

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
)

func TestHandler(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	s := openTest(t, filepath.Join(t.TempDir(), "f.db"), c, 1<<30)
	defer s.Close()
	if err := s.Put([]Record{rec(t0, 1, "203.0.113.7:22", "pl_a", 3), rec(t0.Add(time.Second), 2, "203.0.113.8:22", "pl_b", 4)}); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(HandlerConfig{Store: s, Key: func() (int64, string, bool) { return 9, "nodekey", true }, Now: c.now})
	get := func(uri, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", uri, nil)
		req.Header.Set("Authorization", nodeapi.SignPLC(key, 9, "GET", uri, c.now()))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := get(nodeapi.FlowsPath+"?addr=203.0.113.7&since=2h", "nodekey")
	if w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var page nodeapi.FlowPage
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Flows) != 1 || page.Flows[0].Slice != "pl_a" || page.Flows[0].Remote != netip.MustParseAddrPort("203.0.113.7:22") || page.Flows[0].Dir != "out" {
		t.Fatalf("%+v", page)
	}
	if w := get(nodeapi.FlowsPath+"?addr=203.0.113.7", "wrongkey"); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d %s", w.Code, w.Body)
	}
	if w := get(nodeapi.FlowsPath+"?addr=nonsense", "nodekey"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "is not an IPv4 or IPv6 address") {
		t.Fatalf("bad address: %d %s", w.Code, w.Body)
	}
	// The slice summary, same signature.
	w = get(nodeapi.FlowSummaryPath+"?slice=pl_a&since=2h&top=5", "nodekey")
	var sum core.TrafficSummary
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &sum) != nil {
		t.Fatalf("summary: %d %s", w.Code, w.Body)
	}
	if sum.Total.Flows != 1 || sum.Total.BytesSent != 1000 || len(sum.Top) != 1 || sum.Top[0].Remote != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("summary %+v", sum)
	}
	if w := get(nodeapi.FlowSummaryPath+"?slice=pl_a&top=0", "nodekey"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "top") {
		t.Fatalf("bad top: %d %s", w.Code, w.Body)
	}
	if w := get(nodeapi.FlowSummaryPath+"?slice=pl_a", "wrongkey"); w.Code != http.StatusUnauthorized {
		t.Fatalf("summary, wrong key: %d %s", w.Code, w.Body)
	}
	req := httptest.NewRequest("GET", nodeapi.FlowsPath+"?addr=203.0.113.7", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", w.Code)
	}
}
