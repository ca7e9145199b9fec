package planet

import (
	"sync"

	"github.com/planetlab/pl/internal/core"
)

// The planet table keeps the present only; History keeps a bounded ring
// of whole-planet samples (core.PlanetSample) taken by the monitor, for
// the admin overview's plots. It lives in PLC's memory: a restart starts
// it empty (the per-node figures over time are Prometheus' job, from
// /metrics).

// DefaultHistorySize is the ring's length: a day at one sample a minute.
const DefaultHistorySize = 1440

// History is a bounded ring of samples, oldest dropped first. It is safe
// for concurrent use.
type History struct {
	mu   sync.Mutex
	ring []core.PlanetSample
	next int // where the next sample goes
	full bool
}

// NewHistory returns a ring of size samples (0: DefaultHistorySize).
func NewHistory(size int) *History {
	if size <= 0 {
		size = DefaultHistorySize
	}
	return &History{ring: make([]core.PlanetSample, size)}
}

// Add records a sample.
func (h *History) Add(s core.PlanetSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = s
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
}

// Last returns the latest sample's time (0: none).
func (h *History) Last() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full && h.next == 0 {
		return 0
	}
	return h.ring[(h.next-1+len(h.ring))%len(h.ring)].At
}

// Since returns the samples taken after since, oldest first.
func (h *History) Since(since int64) []core.PlanetSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []core.PlanetSample
	add := func(part []core.PlanetSample) {
		for _, s := range part {
			if s.At > since {
				out = append(out, s)
			}
		}
	}
	if h.full {
		add(h.ring[h.next:])
	}
	add(h.ring[:h.next])
	return out
}

// Summarize sums the planet table into one sample at time at.
func Summarize(at int64, nodes []core.NodeRow, slices []core.SliceRow) core.PlanetSample {
	s := core.PlanetSample{At: at}
	reporting := 0
	for _, n := range nodes {
		switch n.Status {
		case "up":
			s.NodesUp++
		case "down":
			s.NodesDown++
		default:
			s.NodesUnknown++
		}
		s.Slivers += n.Slivers
		s.RxKbps += n.RxKbps
		s.TxKbps += n.TxKbps
		if n.Status == "up" && n.LastReport > 0 {
			reporting++
			s.MeanLoad += n.Load
			s.CPUPct += n.CPUPct
			s.MaxLoad = max(s.MaxLoad, n.Load)
		}
	}
	if reporting > 0 {
		s.MeanLoad /= float64(reporting)
		s.CPUPct /= float64(reporting)
	}
	for _, sl := range slices {
		if sl.Nodes > 0 {
			s.Slices++
		}
	}
	return s
}
