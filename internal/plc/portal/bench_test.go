package portal_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/portal"
)

// benchEnv: a PI whose site has 100 slices, one of them on 1,000 nodes.
func benchEnv(b *testing.B) (*env, http.Handler, *http.Cookie, *core.Caller) {
	e := newEnv(b)
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, e.site, core.Record{"max_slices": int64(200), "latitude": 40.35, "longitude": -74.65}))
	pi := e.person("pi@princeton.edu", 20)
	for i := 0; i < 100; i++ {
		e.slice(fmt.Sprintf("princeton_s%03d", i), "slice", time.Duration(i+1)*24*time.Hour, pi)
	}
	big, err := e.svc.Resolve(e.ctx, e.admin, core.Slice, "princeton_s000")
	e.must(err)
	for i := 0; i < 1000; i++ {
		n := e.add(core.Node, core.Record{"site_id": e.site, "hostname": fmt.Sprintf("node%04d.princeton.edu", i)})
		e.must(e.svc.Link(e.ctx, e.admin, core.SliceNode, big, n, nil))
	}
	c, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "pi@princeton.edu", Password: "pw-pi@princeton.edu"}, nil)
	e.must(err)
	sess, err := e.svc.CreateSession(e.ctx, c, 0)
	e.must(err)
	h := portal.New(e.svc, portal.Options{Planet: e.svc, Accounts: e.svc, Outbox: e.svc})
	c.Session = sess.ID
	return e, h, &http.Cookie{Name: portal.SessionCookie, Value: sess.ID}, c
}

// timed runs f b.N times and reports p50 and p99.
func timed(b *testing.B, f func()) {
	var d []time.Duration
	for b.Loop() {
		start := time.Now()
		f()
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
}

func gzipSize(p []byte) int {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(p)
	w.Close()
	return buf.Len()
}

// BenchmarkPages renders the slices page of a PI with 100 slices, the
// page of a slice on 1,000 nodes, the nodes page and the site page with
// 1,000 nodes, beside their baseline: the service
// reads the page makes (Get), without rendering. It reports the page's
// size, raw and gzip-compressed, with the stylesheet and, for the slice
// page, the world map's outlines (the first load). The page of the slice
// on 1,000 nodes draws them all on its map; the add page lists them.
func BenchmarkPages(b *testing.B) {
	e, h, ck, c := benchEnv(b)
	get := func(path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(ck)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
		return w
	}
	css := get("/static/style.css").Body.Bytes()
	world := get("/static/world.svg").Body.Bytes()
	for _, tc := range []struct {
		name, path string
		assets     [][]byte // what the page loads besides itself
	}{
		{"slices-100", "/slices", [][]byte{css}},
		{"slice-1000-nodes", "/slices/princeton_s000", [][]byte{css, world}}, // the map's outlines
		{"add-nodes-1000", "/slices/princeton_s000/add", [][]byte{css}},
		{"nodes-1000", "/nodes", [][]byte{css}},
		{"site-1000-nodes", "/sites/princeton", [][]byte{css}}, // 1,000 boot-state forms, 100 slices
		{"keys", "/keys", [][]byte{css}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := get(tc.path).Body.Bytes()
			timed(b, func() { get(tc.path) })
			raw, gz := len(body), gzipSize(body)
			for _, a := range tc.assets {
				raw, gz = raw+len(a), gz+gzipSize(a)
			}
			b.ReportMetric(float64(raw)/1024, "first-load-KB")
			b.ReportMetric(float64(gz)/1024, "first-load-gz-KB")
		})
	}
	b.Run("baseline-get-100-slices", func(b *testing.B) {
		timed(b, func() {
			if _, err := e.svc.Get(e.ctx, c, core.Slice, &core.Filter{Terms: []core.Term{{Field: "site_id", Op: core.Eq, Value: []any{e.site}}}}, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("baseline-get-1000-nodes", func(b *testing.B) {
		timed(b, func() {
			if _, err := e.svc.Get(e.ctx, c, core.Node, nil, nil); err != nil {
				b.Fatal(err)
			}
		})
	})
}
