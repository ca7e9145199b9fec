package core

import (
	"context"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Flow queries ("which slice sent packets to this address?",
// docs/audit.md): PLC's REST API and CLI take them, PLC asks nodes with
// them, nodes answer from their flow logs. One parser for all.

// Flow query limits.
const (
	FlowLimitDefault = 100
	FlowLimitMax     = 1000
	// FlowWindowMax is the longest window a query may span (records are
	// kept 30 days by default).
	FlowWindowMax = 92 * 24 * time.Hour
)

// FlowQuery selects the flows with one remote address.
type FlowQuery struct {
	Addr  netip.Addr
	Port  uint16 // 0 = any
	Proto uint8  // 0 = any
	Since time.Time
	Until time.Time
	Limit int
	After string // the cursor of the previous page
}

// Values encodes the query as URL parameters (ParseFlowQuery's input).
func (q FlowQuery) Values() url.Values {
	v := url.Values{"addr": {q.Addr.String()}}
	if q.Port != 0 {
		v.Set("port", strconv.Itoa(int(q.Port)))
	}
	if q.Proto != 0 {
		v.Set("proto", strconv.Itoa(int(q.Proto)))
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	return v
}

var protoNames = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132}

// ParseProto accepts a protocol name (tcp, udp, icmp, icmpv6, sctp) or
// number 1..255.
func ParseProto(s string) (uint8, error) {
	if p, ok := protoNames[strings.ToLower(s)]; ok {
		return p, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 255 {
		return 0, FieldErrorf("proto", "%q is not tcp, udp, icmp, icmpv6, sctp or a protocol number 1..255", s)
	}
	return uint8(n), nil
}

// ParseFlowTime accepts RFC 3339, UNIX seconds, or a duration before now
// ("2h", "90m", "3d").
func ParseFlowTime(field, s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 1<<40 {
		return time.Unix(n, 0), nil
	}
	ds := s
	mult := time.Duration(1)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		ds, mult = d+"h", 24
	}
	d, err := time.ParseDuration(ds)
	if err != nil || d < 0 || d > 100*365*24*time.Hour/mult {
		return time.Time{}, FieldErrorf(field, "%q is not a time (RFC 3339, UNIX seconds) or a duration before now (2h, 30m, 7d)", s)
	}
	return now.Add(-d * mult), nil
}

// ParseFlowQuery parses and checks a flow query; defaults: the last 24
// hours, FlowLimitDefault answers. Errors name the parameter at fault.
func ParseFlowQuery(v url.Values, now time.Time) (FlowQuery, error) {
	var q FlowQuery
	for k := range v {
		switch k {
		case "addr", "port", "proto", "since", "until", "limit", "after":
		default:
			return q, FieldErrorf(k, "unknown parameter (want addr, port, proto, since, until, limit, after)")
		}
	}
	a := v.Get("addr")
	if a == "" {
		return q, FieldErrorf("addr", "is required: the outside address to look for")
	}
	addr, err := netip.ParseAddr(a)
	if err != nil || addr.Zone() != "" {
		return q, FieldErrorf("addr", "%q is not an IPv4 or IPv6 address", a)
	}
	q.Addr = addr.Unmap()
	if s := v.Get("port"); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return q, FieldErrorf("port", "%q is not a port 1..65535", s)
		}
		q.Port = uint16(p)
	}
	if s := v.Get("proto"); s != "" {
		if q.Proto, err = ParseProto(s); err != nil {
			return q, err
		}
	}
	if q.Since, q.Until, err = parseFlowWindow(v, now); err != nil {
		return q, err
	}
	q.Limit = FlowLimitDefault
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > FlowLimitMax {
			return q, FieldErrorf("limit", "%q is not a number 1..%d", s, FlowLimitMax)
		}
		q.Limit = n
	}
	if s := v.Get("after"); s != "" {
		if len(s) != 24 || strings.Trim(s, "0123456789abcdef") != "" {
			return q, FieldErrorf("after", "%q is not a cursor from a previous answer", s)
		}
		q.After = s
	}
	return q, nil
}

// Flow is one flow record on the wire.
type Flow struct {
	Start           time.Time      `json:"start"`
	End             time.Time      `json:"end"`
	Open            bool           `json:"open,omitempty"` // alive at the last read; End is that read
	Lost            bool           `json:"lost,omitempty"` // ended unseen (recorder down); counters of the last read
	Proto           uint8          `json:"proto"`
	Dir             string         `json:"dir"` // out: opened by the node's side; in: by the remote
	Inside          netip.AddrPort `json:"inside"`
	Public          netip.AddrPort `json:"public"`
	Remote          netip.AddrPort `json:"remote"`
	BytesSent       uint64         `json:"bytes_sent"`
	PacketsSent     uint64         `json:"packets_sent"`
	BytesReceived   uint64         `json:"bytes_received"`
	PacketsReceived uint64         `json:"packets_received"`
	XID             int            `json:"xid"`
	Slice           string         `json:"slice"` // "" with xid 0: the node itself
	SliceID         int64          `json:"slice_id,omitempty"`
}

// Contact is a person answering for a slice or a site.
type Contact struct {
	PersonID int64  `json:"person_id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

// AuditFlow is a flow with who answers for it.
type AuditFlow struct {
	Flow
	NodeID   int64  `json:"node_id"`
	Hostname string `json:"hostname"`
	// Site is the site that answers: the slice's, or the node's for the
	// node's own flows.
	SiteID   int64  `json:"site_id,omitempty"`
	SiteName string `json:"site_name,omitempty"`
	// SliceGone: the slice no longer exists at PLC; its site is found by
	// the slice name's prefix (the site's login base).
	SliceGone bool      `json:"slice_gone,omitempty"`
	PIs       []Contact `json:"pis"`
}

// NodeFailure is a node that did not answer a flow query.
type NodeFailure struct {
	NodeID   int64  `json:"node_id"`
	Hostname string `json:"hostname"`
	Error    string `json:"error"`
}

// AuditAnswer is PLC's answer to "who sent this?".
type AuditAnswer struct {
	Flows []AuditFlow `json:"flows"`
	// NotAnswering lists nodes that were asked and did not answer (down,
	// too slow, no flow log): their flows are unknown, not absent.
	NotAnswering []NodeFailure `json:"not_answering"`
	Asked        int           `json:"asked"` // nodes asked
	// More: some node has more matching flows than the limit; narrow the
	// window or raise the limit.
	More bool `json:"more,omitempty"`
}

// Auditor answers flow queries at PLC. The PLC service implements it; the
// REST client speaks it remotely.
type Auditor interface {
	// AuditWho asks every node for the flows with q.Addr and returns
	// those the caller may see: admins all, a site's PI those of the
	// site's slices and nodes, other users those of their own slices.
	AuditWho(ctx context.Context, c *Caller, q FlowQuery) (*AuditAnswer, error)
	// AuditSlice asks every node for the slice's traffic in the window:
	// for the slice's members, its site's PIs and admins.
	AuditSlice(ctx context.Context, c *Caller, q TrafficQuery) (*SliceTraffic, error)
}

// parseFlowWindow reads the since and until parameters of a flow query
// (default: the last day before now) and checks the window.
func parseFlowWindow(v url.Values, now time.Time) (since, until time.Time, err error) {
	until = now
	if s := v.Get("until"); s != "" {
		if until, err = ParseFlowTime("until", s, now); err != nil {
			return since, until, err
		}
	}
	since = until.Add(-24 * time.Hour)
	if s := v.Get("since"); s != "" {
		if since, err = ParseFlowTime("since", s, now); err != nil {
			return since, until, err
		}
	}
	if !since.Before(until) {
		return since, until, FieldErrorf("since", "%s is not before until (%s)", since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	}
	if w := until.Sub(since); w > FlowWindowMax {
		return since, until, FieldErrorf("since", "a window of %d days is longer than %d days (records are kept 30 days by default)", int(w.Hours()/24), int(FlowWindowMax.Hours()/24))
	}
	return since, until, nil
}
