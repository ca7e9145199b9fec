package flows

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
)

// HandlerConfig configures the node's flow query endpoint.
type HandlerConfig struct {
	Store *Store
	// Recorder, when set, reads the kernel's table before answering (at
	// most every few seconds), so open flows carry fresh counters.
	Recorder *Recorder
	// Key returns the node's id and key (node.json); requests must be
	// signed with them by PLC (nodeapi.SignPLC).
	Key    func() (nodeID int64, key string, ok bool)
	Now    func() time.Time
	Logger *slog.Logger
}

// NewHandler serves nodeapi.FlowsPath (GET with core.ParseFlowQuery's
// parameters, answering a nodeapi.FlowPage) and nodeapi.FlowSummaryPath
// (core.ParseTrafficQuery's, answering a core.TrafficSummary), signed by
// PLC.
func NewHandler(cfg HandlerConfig) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &handler{cfg: cfg}
}

type handler struct {
	cfg      HandlerConfig
	mu       sync.Mutex
	lastSync time.Time
}

const syncEvery = 5 * time.Second

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeErr(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	id, key, ok := h.cfg.Key()
	if !ok {
		writeErr(w, http.StatusServiceUnavailable, "the node has not joined a PLC")
		return
	}
	now := h.cfg.Now()
	if err := nodeapi.VerifyPLC(key, id, r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), now); err != nil {
		writeErr(w, http.StatusUnauthorized, err.Error())
		return
	}
	if r.URL.Path == nodeapi.FlowSummaryPath {
		h.summary(w, r, now)
		return
	}
	q, err := core.ParseFlowQuery(r.URL.Query(), now)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	fq := Query{Remote: q.Addr, Port: q.Port, Proto: q.Proto, Since: q.Since, Until: q.Until, Limit: q.Limit}
	if q.After != "" {
		if fq.After, err = ParseKey(q.After); err != nil {
			writeErr(w, http.StatusBadRequest, "after: "+err.Error())
			return
		}
	}
	h.sync(r.Context(), now)
	page, err := h.cfg.Store.Query(fq)
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) && ce.Code == core.Invalid {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		h.cfg.Logger.Error("flow query", "err", err)
		writeErr(w, http.StatusInternalServerError, "flow store failed")
		return
	}
	out := nodeapi.FlowPage{Flows: make([]core.Flow, len(page.Records)), Next: page.Next}
	for i, rec := range page.Records {
		out.Flows[i] = Wire(rec)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// sync reads the kernel's table first (at most every syncEvery), so open
// flows carry fresh counters.
func (h *handler) sync(ctx context.Context, now time.Time) {
	if h.cfg.Recorder != nil {
		h.mu.Lock()
		stale := now.Sub(h.lastSync) > syncEvery
		if stale {
			h.lastSync = now
		}
		h.mu.Unlock()
		if stale {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			if err := h.cfg.Recorder.Sync(ctx); err != nil {
				h.cfg.Logger.Warn("flow query: could not read the kernel's table first", "err", err)
			}
			cancel()
		}
	}
}

// summary answers nodeapi.FlowSummaryPath.
func (h *handler) summary(w http.ResponseWriter, r *http.Request, now time.Time) {
	q, err := core.ParseTrafficQuery(r.URL.Query(), now)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	h.sync(r.Context(), now)
	sum, err := h.cfg.Store.Summary(q.Slice, q.Since, q.Until, q.Top)
	if err != nil {
		h.cfg.Logger.Error("flow summary", "err", err)
		writeErr(w, http.StatusInternalServerError, "flow store failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(sum)
}

// Wire converts a record to its wire form.
func Wire(r Record) core.Flow {
	return core.Flow{Start: r.Start, End: r.End, Open: r.Open(), Lost: r.Flags&FlagLost != 0, Proto: r.Proto, Dir: r.Dir.String(),
		Inside: r.Inside, Public: r.Public, Remote: r.Remote,
		BytesSent: r.BytesSent, PacketsSent: r.PacketsSent, BytesReceived: r.BytesReceived, PacketsReceived: r.PacketsReceived,
		XID: r.XID, Slice: r.Slice, SliceID: r.SliceID}
}

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
