package sensors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/planetlab/pl/internal/core"
)

// DefaultAddr is the sensor server's default listen address: port 3100,
// the port of PlanetLab's slicestat sensor that CoMon polled.
const DefaultAddr = ":3100"

// Stream bounds: ?interval= accepts MinInterval..MaxInterval, and at most
// MaxStreams streams run at once (more get 503).
const (
	MinInterval = 500 * time.Millisecond
	MaxInterval = time.Hour
	MaxStreams  = 64
)

// Visibility says who may read per-sliver figures.
type Visibility string

const (
	// Public serves per-sliver figures to anyone, as node figures.
	Public Visibility = "public"
	// Local serves them only to clients connecting from a loopback
	// address (an operator on the node, a local Prometheus agent, an ssh
	// tunnel); others get 403 on /slivers and no pl_sliver_* series.
	// The default: PLC serves slice figures to those who may read the
	// slice.
	Local Visibility = "local"
)

// ParseVisibility parses a --sensor-slivers value.
func ParseVisibility(s string) (Visibility, error) {
	switch v := Visibility(s); v {
	case Public, Local:
		return v, nil
	}
	return "", core.FieldErrorf("sensor-slivers", "want public or local, got %q", s)
}

// Source is what the server reads figures from (*Collector).
type Source interface {
	Collect() (*core.NodeFigures, error)
}

var _ Source = (*Collector)(nil)

// Sensor names and the figures (JSON names of core.NodeFigures and
// core.SliverFigures) each answers; every answer also carries "time".
var (
	nodeSensors = map[string][]string{
		"load":    {"load1", "load5", "load15"},
		"cpu":     {"cpus", "cpu_pct"},
		"mem":     {"mem_total", "mem_used", "swap_total", "swap_used"},
		"disk":    {"disk_total", "disk_used"},
		"net":     {"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_drops", "tx_drops"},
		"uptime":  {"uptime_sec"},
		"clock":   {"clock_offset_ms", "clock_known"},
		"slivers": {"sliver_count"},
		"ssh":     {"ssh"},
	}
	sliverSensors = map[string][]string{
		"cpu":   {"cpu_seconds", "cpu_pct"},
		"mem":   {"mem_used", "mem_limit"},
		"procs": {"procs"},
		"disk":  {"disk_used", "disk_quota"},
		"net":   {"rx_bytes", "tx_bytes", "rx_packets", "tx_packets"},
		"state": {"state", "last_error"},
	}
)

// Handler serves the sensor interface (docs/monitoring.md):
//
//	GET /                          the sensor names
//	GET /node                      every node figure
//	GET /node/<sensor>             load cpu mem disk net uptime clock slivers ssh
//	GET /slivers                   every sliver's figures
//	GET /slivers/<slice>           one sliver's figures
//	GET /slivers/<slice>/<sensor>  cpu mem procs disk net state
//	GET /metrics                   Prometheus exposition
//
// JSON snapshots; with ?interval=2s a JSON sensor streams as server-sent
// events ("data: <json>" every interval). Other methods get 405, unknown
// paths 404, unknown query parameters 400.
type Handler struct {
	src     Source
	vis     Visibility
	log     *slog.Logger
	full    http.Handler // /metrics with pl_sliver_* series
	nodeOn  http.Handler // /metrics with node series only
	streams atomic.Int32
}

// NewHandler serves figures from src with per-sliver figures visible as
// vis says.
func NewHandler(src Source, vis Visibility, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{src: src, vis: vis, log: log}
	reg := func(slivers bool) http.Handler {
		r := prometheus.NewPedanticRegistry()
		r.MustRegister(&metrics{src: src, slivers: slivers})
		return promhttp.HandlerFor(r, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}, ErrorHandling: promhttp.HTTPErrorOnError})
	}
	h.full, h.nodeOn = reg(true), reg(false)
	return h
}

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", fmt.Sprint(v...)) }

// mayReadSlivers says whether r may read per-sliver figures.
func (h *Handler) mayReadSlivers(r *http.Request) bool {
	if h.vis == Public {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "the sensor interface is read-only: %s not allowed", r.Method)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.URL.Path == "/" {
		parts = nil
	}
	if len(parts) == 1 && parts[0] == "metrics" {
		if h.mayReadSlivers(r) {
			h.full.ServeHTTP(w, r)
		} else {
			h.nodeOn.ServeHTTP(w, r)
		}
		return
	}
	view, ok := h.route(parts)
	if !ok {
		httpError(w, http.StatusNotFound, "no sensor %q (GET / lists them)", r.URL.Path)
		return
	}
	if len(parts) > 0 && parts[0] == "slivers" && !h.mayReadSlivers(r) {
		httpError(w, http.StatusForbidden, "per-sliver figures are served to local clients only (--sensor-slivers=local); PLC serves them to the slice's users")
		return
	}
	var interval time.Duration
	for k, v := range r.URL.Query() {
		if k != "interval" || len(v) != 1 {
			httpError(w, http.StatusBadRequest, "unknown query parameter %q (only interval=<duration>)", k)
			return
		}
		d, err := time.ParseDuration(v[0])
		if err != nil || d < MinInterval || d > MaxInterval {
			httpError(w, http.StatusBadRequest, "interval %q: want a duration from %v to %v", v[0], MinInterval, MaxInterval)
			return
		}
		interval = d
	}
	if interval == 0 {
		body, status, err := h.answer(view)
		if err != nil {
			httpError(w, status, "%v", err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
		return
	}
	h.stream(w, r, view, interval)
}

// A view turns a snapshot into an answer, or reports that its sliver does
// not exist (404).
type view func(f *core.NodeFigures) (any, bool)

// route maps a path to its view.
func (h *Handler) route(parts []string) (view, bool) {
	switch {
	case len(parts) == 0:
		return func(*core.NodeFigures) (any, bool) {
			return map[string]any{"node": sortedKeys(nodeSensors), "sliver": sortedKeys(sliverSensors),
				"paths": []string{"/node", "/node/<sensor>", "/slivers", "/slivers/<slice>", "/slivers/<slice>/<sensor>", "/metrics"}}, true
		}, true
	case parts[0] == "node" && len(parts) == 1:
		return func(f *core.NodeFigures) (any, bool) {
			g := *f
			g.Slivers = nil
			return pick(&g, nil), true
		}, true
	case parts[0] == "node" && len(parts) == 2:
		keys, ok := nodeSensors[parts[1]]
		return func(f *core.NodeFigures) (any, bool) { return pick(f, keys), true }, ok
	case parts[0] == "slivers" && len(parts) == 1:
		return func(f *core.NodeFigures) (any, bool) {
			return map[string]any{"time": f.Time, "slivers": f.Slivers}, true
		}, true
	case parts[0] == "slivers" && (len(parts) == 2 || len(parts) == 3):
		var keys []string
		if len(parts) == 3 {
			var ok bool
			if keys, ok = sliverSensors[parts[2]]; !ok {
				return nil, false
			}
		}
		name := parts[1]
		return func(f *core.NodeFigures) (any, bool) {
			s, ok := Slice(f, name)
			if !ok {
				return nil, false
			}
			m := pick(&s, keys)
			m["time"] = f.Time
			return m, true
		}, true
	}
	return nil, false
}

// answer collects and renders one snapshot of v.
func (h *Handler) answer(v view) ([]byte, int, error) {
	f, err := h.src.Collect()
	if err != nil {
		h.log.Warn("sensor collection failed", "err", err)
		return nil, http.StatusInternalServerError, fmt.Errorf("collecting figures: %v", err)
	}
	a, ok := v(f)
	if !ok {
		return nil, http.StatusNotFound, errors.New("no such sliver on this node")
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	return append(b, '\n'), http.StatusOK, nil
}

// stream sends v as server-sent events every interval until the client
// leaves. An error ends the stream with an "event: error" message.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, v view, interval time.Duration) {
	if n := h.streams.Add(1); n > MaxStreams {
		h.streams.Add(-1)
		httpError(w, http.StatusServiceUnavailable, "too many streams (at most %d)", MaxStreams)
		return
	}
	defer h.streams.Add(-1)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		body, _, err := h.answer(v)
		if err != nil {
			fmt.Fprintf(w, "event: error\ndata: %s\n\n", strings.ReplaceAll(err.Error(), "\n", " "))
			rc.Flush()
			return
		}
		rc.SetWriteDeadline(time.Now().Add(interval + 10*time.Second))
		if _, err := fmt.Fprintf(w, "data: %s\n", body); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// pick returns the JSON fields keys of v (all when keys is nil) and
// "time" when v has it.
func pick(v any, keys []string) map[string]any {
	b, _ := json.Marshal(v)
	var all map[string]any
	json.Unmarshal(b, &all)
	if keys == nil {
		return all
	}
	out := map[string]any{}
	for _, k := range append([]string{"time"}, keys...) {
		if x, ok := all[k]; ok {
			out[k] = x
		} else if k != "time" {
			out[k] = "" // omitted empty string (last_error, ssh)
		}
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf(format, args...)})
	w.Write(append(b, '\n'))
}

// Serve answers the sensor interface on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		// Streams end with ctx.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			srv.Close() // streams do not end by themselves
		case <-done:
		}
	}()
	err := srv.Serve(ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
