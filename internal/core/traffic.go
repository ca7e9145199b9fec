package core

import (
	"cmp"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Per-slice traffic summaries (docs/audit.md): `pl audit slice`, REST
// GET /api/v1/audit/slice, and the nodes' /flows/summary answer with these
// types; one parser for all.

// Traffic summary limits.
const (
	TrafficTopDefault = 10
	TrafficTopMax     = 100
)

// TrafficQuery selects one slice's flows in a window.
type TrafficQuery struct {
	Slice string
	Since time.Time
	Until time.Time
	Top   int // destinations listed
}

// Values encodes the query as URL parameters (ParseTrafficQuery's input).
func (q TrafficQuery) Values() url.Values {
	v := url.Values{"slice": {q.Slice}}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Top != 0 {
		v.Set("top", strconv.Itoa(q.Top))
	}
	return v
}

// ParseTrafficQuery parses and checks a traffic summary query; defaults:
// the last 24 hours, TrafficTopDefault destinations. Errors name the
// parameter at fault.
func ParseTrafficQuery(v url.Values, now time.Time) (TrafficQuery, error) {
	var q TrafficQuery
	for k := range v {
		switch k {
		case "slice", "since", "until", "top":
		default:
			return q, FieldErrorf(k, "unknown parameter (want slice, since, until, top)")
		}
	}
	q.Slice = v.Get("slice")
	if q.Slice == "" {
		return q, FieldErrorf("slice", "is required: the slice's name")
	}
	if len(q.Slice) > MaxSliceName || strings.Trim(q.Slice, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != "" || !strings.Contains(q.Slice, "_") {
		return q, FieldErrorf("slice", "%q is not a slice name (<login base>_<name>, at most %d characters)", q.Slice, MaxSliceName)
	}
	var err error
	if q.Since, q.Until, err = parseFlowWindow(v, now); err != nil {
		return q, err
	}
	q.Top = TrafficTopDefault
	if s := v.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > TrafficTopMax {
			return q, FieldErrorf("top", "%q is not a number 1..%d", s, TrafficTopMax)
		}
		q.Top = n
	}
	return q, nil
}

// Traffic counts bytes and flows: Sent from the slice's side to the
// remote, Received the other way.
type Traffic struct {
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	Flows         uint64 `json:"flows"`
}

// Add adds o to t.
func (t *Traffic) Add(o Traffic) {
	t.BytesSent += o.BytesSent
	t.BytesReceived += o.BytesReceived
	t.Flows += o.Flows
}

// Bytes is both directions together.
func (t Traffic) Bytes() uint64 { return t.BytesSent + t.BytesReceived }

// TrafficDay is one UTC day's traffic (of the flows that started that day).
type TrafficDay struct {
	Day string `json:"day"` // YYYY-MM-DD, UTC
	Traffic
}

// TrafficDest is the traffic with one remote address.
type TrafficDest struct {
	Remote netip.Addr `json:"remote"`
	Traffic
}

// TrafficSummary is a slice's traffic on one node (a node's answer) or on
// several (PLC's, merged): by day, oldest first, and the top destinations
// by bytes. Partial: a node stopped before the end of its records (too
// many in the window); its figures are a lower bound.
type TrafficSummary struct {
	Total   Traffic       `json:"total"`
	Days    []TrafficDay  `json:"days"`
	Top     []TrafficDest `json:"top"`
	Partial bool          `json:"partial,omitempty"`
}

// Merge adds o to s, keeping the top destinations (by bytes, then
// address). A destination's bytes are those the nodes listed it with: each
// node lists its own top, so an address just below every node's top is
// missing from the merged one.
func (s *TrafficSummary) Merge(o TrafficSummary, top int) {
	s.Total.Add(o.Total)
	s.Partial = s.Partial || o.Partial
	days := map[string]int{}
	for i, d := range s.Days {
		days[d.Day] = i
	}
	for _, d := range o.Days {
		if i, ok := days[d.Day]; ok {
			s.Days[i].Add(d.Traffic)
		} else {
			days[d.Day] = len(s.Days)
			s.Days = append(s.Days, d)
		}
	}
	slices.SortFunc(s.Days, func(a, b TrafficDay) int { return strings.Compare(a.Day, b.Day) })
	dest := map[netip.Addr]int{}
	for i, d := range s.Top {
		dest[d.Remote] = i
	}
	for _, d := range o.Top {
		if i, ok := dest[d.Remote]; ok {
			s.Top[i].Add(d.Traffic)
		} else {
			dest[d.Remote] = len(s.Top)
			s.Top = append(s.Top, d)
		}
	}
	SortTop(s.Top)
	if len(s.Top) > top {
		s.Top = s.Top[:top]
	}
}

// SortTop orders destinations by bytes (most first), then address.
func SortTop(ds []TrafficDest) {
	slices.SortFunc(ds, func(a, b TrafficDest) int {
		if c := cmp.Compare(b.Bytes(), a.Bytes()); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
}

// TrafficNode is one node's total in PLC's answer.
type TrafficNode struct {
	NodeID   int64  `json:"node_id"`
	Hostname string `json:"hostname"`
	Traffic
}

// SliceTraffic is PLC's answer to a traffic summary query: the slice's
// traffic on every node that answered, merged; the nodes with traffic; the
// nodes that did not answer (their traffic is unknown, not zero).
type SliceTraffic struct {
	Slice string    `json:"slice"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	TrafficSummary
	Nodes        []TrafficNode `json:"nodes"`
	Asked        int           `json:"asked"`
	NotAnswering []NodeFailure `json:"not_answering"`
}

// Validate refuses a node's summary with more days than a window can span
// or more destinations than a query lists, or malformed days.
func (s *TrafficSummary) Validate() error {
	if n := len(s.Days); n > int(FlowWindowMax/(24*time.Hour))+1 {
		return FieldErrorf("days", "%d days, more than a window spans", n)
	}
	if n := len(s.Top); n > TrafficTopMax {
		return FieldErrorf("top", "%d destinations, more than %d", n, TrafficTopMax)
	}
	for i, d := range s.Days {
		if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
			return FieldErrorf("days", "day %d: %q is not YYYY-MM-DD", i, d.Day)
		}
	}
	for i, d := range s.Top {
		if !d.Remote.IsValid() {
			return FieldErrorf("top", "destination %d has no address", i)
		}
	}
	return nil
}
