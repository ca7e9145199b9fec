package bwmon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
)

// Shaper reads the slivers' class counters and sets their ceilings
// (*netcfg.Linux).
type Shaper interface {
	ClassBytes() (map[int]uint64, error)
	SetCeiling(xid int, kbit int64) error
}

// Config configures a Monitor.
type Config struct {
	Shaper    Shaper
	Slivers   func() []Sliver // the slivers on the node now
	StatePath string          // the state file (JSON)
	Policy    Policy
	Interval  time.Duration // how often counters are read; default 30 s
	Now       func() time.Time
	Logger    *slog.Logger
}

// Monitor runs bwmon on a node.
type Monitor struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.Mutex
	st      State
	applied bool // lowered ceilings set again after a start
}

// New loads the state file (a missing one is an empty state; an
// unreadable one is logged and replaced).
func New(cfg Config) (*Monitor, error) {
	if cfg.Shaper == nil || cfg.Slivers == nil || cfg.StatePath == "" {
		return nil, errors.New("bwmon: Shaper, Slivers and StatePath are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger.With("subsystem", "bwmon")}
	b, err := os.ReadFile(cfg.StatePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &m.st); err != nil {
			m.log.Error("bwmon state unreadable; starting every slice's day afresh", "path", cfg.StatePath, "err", err)
			m.st = State{}
		}
	}
	return m, nil
}

// Tick reads the counters once and applies what changed.
func (m *Monitor) Tick() error {
	counters, err := m.cfg.Shaper.ClassBytes()
	if err != nil {
		return err
	}
	slivers := m.cfg.Slivers()
	now := m.cfg.Now()
	m.mu.Lock()
	acts, evs := m.st.Step(m.cfg.Policy, now, counters, slivers)
	if !m.applied {
		// Ceilings lowered before a restart: netcfg does not keep them.
		m.applied = true
		seen := map[int]bool{}
		for _, a := range acts {
			seen[a.XID] = true
		}
		for _, sv := range slivers {
			if s := m.st.Slices[sv.Name]; s != nil && s.CeilKbit != 0 && !seen[sv.XID] {
				acts = append(acts, Action{XID: sv.XID, CeilKbit: s.CeilKbit})
			}
		}
	}
	b, merr := json.Marshal(m.st)
	m.mu.Unlock()
	var errs []error
	for _, a := range acts {
		if err := m.cfg.Shaper.SetCeiling(a.XID, a.CeilKbit); err != nil {
			errs = append(errs, fmt.Errorf("ceiling of xid %d: %w", a.XID, err))
		}
	}
	for _, e := range evs {
		m.log.Warn("bwmon: "+e.Kind, "slice", e.Slice, "xid", e.XID, "used_bytes", e.UsedBytes, "limit_bytes", e.Limit, "ceil_kbit", e.CeilKbit, "until", e.Until)
	}
	if merr == nil {
		merr = atomicfile.WriteFile(m.cfg.StatePath, b, 0o600)
	}
	return errors.Join(append(errs, merr)...)
}

// Run ticks until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Tick(); err != nil {
			m.log.Error("bwmon", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Snapshot returns a copy of the state.
func (m *Monitor) Snapshot() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := State{Slices: map[string]*Slice{}, Events: append([]Event{}, m.st.Events...)}
	for k, v := range m.st.Slices {
		c := *v
		out.Slices[k] = &c
	}
	return out
}

// EventsAfter returns, oldest first, at most max events later than after
// and younger than one day, as the node's reports carry them to PLC
// (core.NodeReport.BwmonEvents): the reporter passes the time of the last
// event PLC accepted, so that PLC hears of each event (PLC also ignores
// one it recorded already, e.g. after a node manager restart).
func (m *Monitor) EventsAfter(after time.Time, max int) []core.BwmonEvent {
	if old := m.cfg.Now().Add(-24 * time.Hour); after.Before(old) {
		after = old
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []core.BwmonEvent
	for _, e := range m.st.Events {
		if len(out) == max {
			break
		}
		if !e.At.After(after) || e.SliceID <= 0 {
			continue
		}
		out = append(out, core.BwmonEvent{At: e.At, Slice: e.Slice, SliceID: e.SliceID, Kind: e.Kind,
			UsedBytes: e.UsedBytes, LimitBytes: e.Limit, CeilKbit: e.CeilKbit, Until: e.Until})
	}
	return out
}

// ServeHTTP serves the state and the events as JSON (GET /bwmon on the
// sensor listener).
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(m.Snapshot())
}
