package sensors

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/planetlab/pl/internal/core"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serve starts the sensor server over a fake node with two slivers.
func serve(t *testing.T, vis Visibility) (*fakeNode, string) {
	n := newFakeNode(t)
	n.setSliver("pl_busy", 5e9, 100<<20, 1<<30, 4, false)
	n.setSliver("ple_idle", 1e9, 10<<20, 0, 1, false)
	c := n.collector(Config{
		Slivers: func() []Sliver { return []Sliver{{Name: "pl_busy"}, {Name: "ple_idle", LastError: "bad value"}} },
		SSH:     func() string { return core.SSHUp },
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, ln, NewHandler(c, vis, nil)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return n, "http://" + ln.Addr().String()
}

func get(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestServerSensors(t *testing.T) {
	_, base := serve(t, Public)
	cases := []struct {
		path   string
		status int
		keys   string // sorted JSON keys of the answer
	}{
		{"/node/load", 200, "load1 load15 load5 time"},
		{"/node/mem", 200, "mem_total mem_used swap_total swap_used time"},
		{"/node/disk", 200, "disk_total disk_used time"},
		{"/node/net", 200, "rx_bytes rx_drops rx_packets time tx_bytes tx_drops tx_packets"},
		{"/node/clock", 200, "clock_known clock_offset_ms time"},
		{"/node/ssh", 200, "ssh time"},
		{"/slivers/pl_busy/cpu", 200, "cpu_pct cpu_seconds time"},
		{"/slivers/ple_idle/state", 200, "last_error state time"},
		{"/slivers/pl_busy/state", 200, "last_error state time"},
		{"/slivers/pl_busy", 200, "cpu_pct cpu_seconds disk_quota disk_used mem_limit mem_used procs rx_bytes rx_packets slice state time tx_bytes tx_packets"},
		{"/slivers", 200, "slivers time"},
		{"/", 200, "node paths sliver"},
		{"/node/bogus", 404, "error"},
		{"/slivers/nobody", 404, "error"},
		{"/slivers/pl_busy/bogus", 404, "error"},
		{"/other", 404, "error"},
		{"/node/load/x", 404, "error"},
		{"/node/load?interval=1ms", 400, "error"},
		{"/node/load?x=1", 400, "error"},
	}
	for _, c := range cases {
		st, body, _ := get(t, "GET", base+c.path)
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Errorf("%s: not JSON: %s", c.path, body)
			continue
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if st != c.status || strings.Join(keys, " ") != c.keys {
			t.Errorf("%s: %d %s; want %d with keys %s", c.path, st, body, c.status, c.keys)
		}
	}
	_, body, _ := get(t, "GET", base+"/node")
	var all map[string]any
	json.Unmarshal([]byte(body), &all)
	if all["load1"] != 1.5 || all["sliver_count"] != 2.0 || all["slivers"] != nil {
		t.Errorf("/node: %s", body)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		st, _, h := get(t, m, base+"/node/load")
		if st != 405 || h.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d allow %q", m, st, h.Get("Allow"))
		}
	}
}

// TestServerLocalOnly: with --sensor-slivers=local, a remote client sees
// node figures but neither /slivers nor pl_sliver_* series.
func TestServerLocalOnly(t *testing.T) {
	n := newFakeNode(t)
	n.setSliver("pl_busy", 5e9, 0, 0, 1, false)
	h := NewHandler(n.collector(Config{}), Local, nil)
	for _, c := range []struct {
		remote, path string
		status       int
		has          string
	}{
		{"192.0.2.7:4000", "/node/load", 200, "load1"},
		{"192.0.2.7:4000", "/slivers", 403, "local clients only"},
		{"192.0.2.7:4000", "/slivers/pl_busy/cpu", 403, "local clients only"},
		{"192.0.2.7:4000", "/metrics", 200, "pl_node_load1"},
		{"127.0.0.1:4000", "/slivers/pl_busy/cpu", 200, "cpu_seconds"},
		{"[::1]:4000", "/metrics", 200, `pl_sliver_cpu_seconds_total{site="pl",slice="pl_busy"} 5`},
		{"[::ffff:127.0.0.1]:4000", "/slivers", 200, "pl_busy"},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.RemoteAddr = c.remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.status || !strings.Contains(w.Body.String(), c.has) {
			t.Errorf("%s %s: %d %.200s; want %d containing %q", c.remote, c.path, w.Code, w.Body.String(), c.status, c.has)
		}
		if c.remote == "192.0.2.7:4000" && strings.Contains(w.Body.String(), "pl_sliver_") {
			t.Errorf("remote client saw sliver series on %s", c.path)
		}
	}
}

// TestServerStream: ?interval= streams server-sent events that follow the
// figures.
func TestServerStream(t *testing.T) {
	n, base := serve(t, Public)
	resp, err := http.Get(base + "/slivers/pl_busy/cpu?interval=500ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, ct)
	}
	r := bufio.NewReader(resp.Body)
	event := func() map[string]any {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var m map[string]any
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatalf("event %q: %v", data, err)
				}
				return m
			}
		}
	}
	if e := event(); e["cpu_seconds"] != 5.0 {
		t.Fatalf("first event: %v", e)
	}
	n.setSliver("pl_busy", 7e9, 100<<20, 1<<30, 4, false)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if e := event(); e["cpu_seconds"] == 7.0 {
			return
		}
	}
	t.Fatal("stream did not follow the figures")
}

// TestMetrics: the exposition parses with the Prometheus text parser and
// holds every documented series with its labels.
func TestMetrics(t *testing.T) {
	_, base := serve(t, Public)
	st, body, h := get(t, "GET", base+"/metrics")
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", st, h.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, body)
	}
	for _, name := range DocumentedSeries {
		fam, ok := fams[name]
		if !ok {
			if name == "pl_node_clock_offset_seconds" {
				continue // absent until measured; the fake has no clock
			}
			t.Errorf("series %s missing", name)
			continue
		}
		if strings.HasPrefix(name, "pl_sliver_") {
			if len(fam.Metric) != 2 {
				t.Errorf("%s: %d series, want one per sliver", name, len(fam.Metric))
			}
			for _, m := range fam.Metric {
				labels := map[string]string{}
				for _, l := range m.Label {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["slice"] == "" || labels["site"] != strings.Split(labels["slice"], "_")[0] {
					t.Errorf("%s: labels %v", name, labels)
				}
			}
		}
	}
	for name := range fams {
		if !slices.Contains(DocumentedSeries, name) {
			t.Errorf("series %s is not in DocumentedSeries (docs/monitoring.md)", name)
		}
	}
	if v := fams["pl_node_ssh_up"]; v == nil || v.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("pl_node_ssh_up: %v", v)
	}
	if v := fams["pl_sliver_cpu_seconds_total"].Metric[0].GetCounter().GetValue(); v != 5 {
		t.Errorf("pl_busy cpu seconds %g", v)
	}
	if v := fams["pl_sliver_error"]; v.Metric[1].GetGauge().GetValue() != 1 {
		t.Errorf("ple_idle error flag: %v", v)
	}
}

// BenchmarkSensorSnapshot measures GET /slivers over HTTP on a fake node
// with 100 slivers (p50/p99 reported), beside GET /node/load as the
// baseline.
func BenchmarkSensorSnapshot(b *testing.B) {
	n := newFakeNode(b)
	for i := range 100 {
		n.setSliver("pl_s"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26)), uint64(i)*1e9, 1<<20, 1<<30, 2, false)
	}
	srv := httptest.NewServer(NewHandler(n.collector(Config{StoreDir: n.root}), Public, nil))
	defer srv.Close()
	for _, path := range []string{"/node/load", "/slivers", "/metrics"} {
		b.Run(strings.TrimPrefix(strings.ReplaceAll(path, "/", "_"), "_"), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				t0 := time.Now()
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
				lat = append(lat, time.Since(t0))
			}
			reportLatency(b, lat)
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
