package core

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"
	"unicode/utf8"
)

// Bounds of a node's figures (NodeFigures). A summary that exceeds them is
// refused by Validate; the node cuts its own summary to them with Bound
// before sending. With these bounds a maximal summary encodes to well under
// MaxFiguresJSON bytes (tested), which fits the node API's request bound.
const (
	MaxSliverFigures = 1000 // slivers in one summary (the busiest by CPU are kept)
	MaxSliceName     = 64   // bytes of SliverFigures.Slice
	MaxSliverState   = 32   // bytes of SliverFigures.State
	MaxSliverError   = 200  // bytes of SliverFigures.LastError (cut at a rune boundary)
	MaxFiguresJSON   = 768 << 10
	// MaxFigure bounds every count and byte figure (2^62: far above any
	// real counter, far below where float64 and int64 lose meaning).
	MaxFigure = uint64(1) << 62
	// MaxLoad bounds load averages (runnable threads), MaxClockOffsetMs
	// the clock offset (a day either way: beyond that the clock is
	// simply wrong, and the figure says "wrong").
	MaxLoad          = 1e6
	MaxClockOffsetMs = int64(24 * time.Hour / time.Millisecond)
)

// NodeFigures is the compact summary of a node's sensors that each of its
// periodic reports to PLC carries (NodeReport.Figures; nodeapi.Report): the
// node's load, CPU, memory, disk, network and clock, and one SliverFigures
// per sliver. Bytes are bytes; percentages are 0..100 of the whole node
// (all CPUs together are 100). Counters (CPU seconds, network bytes and
// packets) are cumulative since boot or since the sliver was created; rates
// are the reader's business. The node's sensor server (docs/monitoring.md)
// serves the same figures.
type NodeFigures struct {
	Time          time.Time       `json:"time"`            // when collected, node clock
	Load1         float64         `json:"load1"`           // /proc/loadavg
	Load5         float64         `json:"load5"`           //
	Load15        float64         `json:"load15"`          //
	CPUs          int             `json:"cpus"`            // online CPUs
	CPUPct        float64         `json:"cpu_pct"`         // busy share of all CPUs since the previous collection
	MemTotal      uint64          `json:"mem_total"`       // MemTotal
	MemUsed       uint64          `json:"mem_used"`        // MemTotal - MemAvailable
	SwapTotal     uint64          `json:"swap_total"`      //
	SwapUsed      uint64          `json:"swap_used"`       //
	DiskTotal     uint64          `json:"disk_total"`      // filesystem of the sliver store
	DiskUsed      uint64          `json:"disk_used"`       //
	UptimeSec     float64         `json:"uptime_sec"`      // /proc/uptime
	ClockOffsetMs int64           `json:"clock_offset_ms"` // node clock minus PLC clock, as last measured by the node API client
	ClockKnown    bool            `json:"clock_known"`     // false: not measured yet (ClockOffsetMs means nothing)
	SliverCount   int             `json:"sliver_count"`    // slivers on the node (may exceed len(Slivers))
	RxBytes       uint64          `json:"rx_bytes"`        // all interfaces but lo and sliver veths
	TxBytes       uint64          `json:"tx_bytes"`        //
	RxPackets     uint64          `json:"rx_packets"`      //
	TxPackets     uint64          `json:"tx_packets"`      //
	RxDrops       uint64          `json:"rx_drops"`        //
	TxDrops       uint64          `json:"tx_drops"`        //
	SSH           string          `json:"ssh,omitempty"`   // the node's ssh gateway: SSHUp, SSHDown, SSHOff; "" = not reported (an older node)
	Slivers       []SliverFigures `json:"slivers"`
}

// States of a node's ssh gateway (NodeFigures.SSH): up means its process
// runs and its port answers with an SSH banner; down means it is
// configured but not running or not answering; off means the node runs
// without one (`pl node --ssh-listen -`).
const (
	SSHUp   = "up"
	SSHDown = "down"
	SSHOff  = "off"
)

// SliverFigures are the figures of one sliver.
type SliverFigures struct {
	Slice      string  `json:"slice"`
	State      string  `json:"state"`       // running, frozen (suspended), stopped
	CPUSeconds float64 `json:"cpu_seconds"` // cgroup cpuacct.usage, cumulative
	CPUPct     float64 `json:"cpu_pct"`     // share of the node (all CPUs = 100) since the previous collection
	MemUsed    uint64  `json:"mem_used"`    // cgroup memory usage
	MemLimit   uint64  `json:"mem_limit"`   // 0 = no limit
	Procs      uint64  `json:"procs"`       // cgroup pids.current
	DiskUsed   uint64  `json:"disk_used"`   // writable layer
	DiskQuota  uint64  `json:"disk_quota"`  // 0 = no quota
	RxBytes    uint64  `json:"rx_bytes"`    // received by the sliver
	TxBytes    uint64  `json:"tx_bytes"`    // sent by the sliver
	RxPackets  uint64  `json:"rx_packets"`  //
	TxPackets  uint64  `json:"tx_packets"`  //
	LastError  string  `json:"last_error,omitempty"`
	// IPv6 is the sliver's own IPv6 address (its node's IPv6 prefix and
	// its xid, docs/networks.md); "" = the sliver is IPv4-only.
	IPv6 string `json:"ipv6,omitempty"`
}

// Validate refuses a summary that is oversized or carries impossible
// figures, naming the first offending field ("figures.slivers[3].cpu_pct").
func (f *NodeFigures) Validate() error {
	if f == nil {
		return nil
	}
	bad := func(field, format string, args ...any) error {
		return FieldErrorf("figures."+field, format, args...)
	}
	if f.Time.IsZero() {
		return bad("time", "required")
	}
	for _, l := range []struct {
		name string
		v    float64
	}{{"load1", f.Load1}, {"load5", f.Load5}, {"load15", f.Load15}} {
		if !(l.v >= 0 && l.v <= MaxLoad) {
			return bad(l.name, "want 0..%g, got %g", float64(MaxLoad), l.v)
		}
	}
	if f.CPUs < 0 || f.CPUs > 1<<16 {
		return bad("cpus", "want 0..65536, got %d", f.CPUs)
	}
	if err := pct(f.CPUPct); err != nil {
		return bad("cpu_pct", "%v", err)
	}
	if !(f.UptimeSec >= 0 && f.UptimeSec < 1e10) {
		return bad("uptime_sec", "want 0..1e10 seconds, got %g", f.UptimeSec)
	}
	if f.ClockOffsetMs < -MaxClockOffsetMs || f.ClockOffsetMs > MaxClockOffsetMs {
		return bad("clock_offset_ms", "want within a day (±%d), got %d", MaxClockOffsetMs, f.ClockOffsetMs)
	}
	if f.SliverCount < len(f.Slivers) || f.SliverCount > 1<<20 {
		return bad("sliver_count", "want %d..%d (at least the slivers listed), got %d", len(f.Slivers), 1<<20, f.SliverCount)
	}
	for _, u := range []struct {
		name        string
		used, total uint64
	}{{"mem", f.MemUsed, f.MemTotal}, {"swap", f.SwapUsed, f.SwapTotal}, {"disk", f.DiskUsed, f.DiskTotal}} {
		if u.total > MaxFigure {
			return bad(u.name+"_total", "want at most 2^62, got %d", u.total)
		}
		if u.used > u.total {
			return bad(u.name+"_used", "%d exceeds %s_total %d", u.used, u.name, u.total)
		}
	}
	for _, c := range []struct {
		name string
		v    uint64
	}{{"rx_bytes", f.RxBytes}, {"tx_bytes", f.TxBytes}, {"rx_packets", f.RxPackets}, {"tx_packets", f.TxPackets}, {"rx_drops", f.RxDrops}, {"tx_drops", f.TxDrops}} {
		if c.v > MaxFigure {
			return bad(c.name, "want at most 2^62, got %d", c.v)
		}
	}
	switch f.SSH {
	case "", SSHUp, SSHDown, SSHOff:
	default:
		return bad("ssh", "want %s, %s or %s, got %q", SSHUp, SSHDown, SSHOff, truncateText(f.SSH, 32))
	}
	if len(f.Slivers) > MaxSliverFigures {
		return bad("slivers", "%d slivers; at most %d", len(f.Slivers), MaxSliverFigures)
	}
	seen := make(map[string]bool, len(f.Slivers))
	for i := range f.Slivers {
		if err := f.Slivers[i].validate(); err != nil {
			e := err.(*Error)
			return bad(fmt.Sprintf("slivers[%d].%s", i, e.Field), "%s", e.Message)
		}
		if seen[f.Slivers[i].Slice] {
			return bad(fmt.Sprintf("slivers[%d].slice", i), "slice %q listed twice", f.Slivers[i].Slice)
		}
		seen[f.Slivers[i].Slice] = true
	}
	return nil
}

func (s *SliverFigures) validate() error {
	if s.Slice == "" {
		return FieldErrorf("slice", "required")
	}
	if err := boundedText(s.Slice, MaxSliceName); err != nil {
		return FieldErrorf("slice", "%v", err)
	}
	if err := boundedText(s.State, MaxSliverState); err != nil {
		return FieldErrorf("state", "%v", err)
	}
	if err := boundedText(s.LastError, MaxSliverError); err != nil {
		return FieldErrorf("last_error", "%v", err)
	}
	if s.IPv6 != "" {
		a, err := netip.ParseAddr(s.IPv6)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast() {
			return FieldErrorf("ipv6", "%q is not a global IPv6 address", truncateText(s.IPv6, 64))
		}
	}
	if !(s.CPUSeconds >= 0 && s.CPUSeconds < 1e15) {
		return FieldErrorf("cpu_seconds", "want 0..1e15, got %g", s.CPUSeconds)
	}
	if err := pct(s.CPUPct); err != nil {
		return FieldErrorf("cpu_pct", "%v", err)
	}
	for _, c := range []struct {
		name string
		v    uint64
	}{{"mem_used", s.MemUsed}, {"mem_limit", s.MemLimit}, {"procs", s.Procs}, {"disk_used", s.DiskUsed}, {"disk_quota", s.DiskQuota},
		{"rx_bytes", s.RxBytes}, {"tx_bytes", s.TxBytes}, {"rx_packets", s.RxPackets}, {"tx_packets", s.TxPackets}} {
		if c.v > MaxFigure {
			return FieldErrorf(c.name, "want at most 2^62, got %d", c.v)
		}
	}
	return nil
}

// Bound cuts a summary to the bounds Validate enforces: it keeps the
// MaxSliverFigures busiest slivers (by CPU share, then CPU seconds) and
// truncates long strings at a rune boundary. It does not repair impossible
// figures. The node calls it before sending.
func (f *NodeFigures) Bound() {
	if f.SliverCount < len(f.Slivers) {
		f.SliverCount = len(f.Slivers)
	}
	if len(f.Slivers) > MaxSliverFigures {
		sortSliversBusiest(f.Slivers)
		f.Slivers = f.Slivers[:MaxSliverFigures:MaxSliverFigures]
	}
	for i := range f.Slivers {
		s := &f.Slivers[i]
		s.State = truncateText(s.State, MaxSliverState)
		s.LastError = truncateText(s.LastError, MaxSliverError)
	}
}

// sortSliversBusiest orders slivers by CPU share, then CPU seconds,
// descending, then by name.
func sortSliversBusiest(s []SliverFigures) {
	slices.SortFunc(s, func(a, b SliverFigures) int {
		if c := cmp.Compare(b.CPUPct, a.CPUPct); c != 0 {
			return c
		}
		if c := cmp.Compare(b.CPUSeconds, a.CPUSeconds); c != 0 {
			return c
		}
		return cmp.Compare(a.Slice, b.Slice)
	})
}

func pct(v float64) error {
	if !(v >= 0 && v <= 100) {
		return fmt.Errorf("want 0..100, got %g", v)
	}
	return nil
}

// boundedText refuses invalid UTF-8, control characters other than tab and
// newline, and more than max bytes.
func boundedText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%d bytes; at most %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// truncateText cuts s to at most max bytes at a rune boundary, replaces
// invalid UTF-8 and control characters (other than tab and newline) with
// U+FFFD and spaces, so that the result passes boundedText.
func truncateText(s string, max int) string {
	if boundedText(s, max) == nil {
		return s
	}
	out := make([]rune, 0, len(s))
	n := 0
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			r = ' '
		}
		if n+utf8.RuneLen(r) > max {
			break
		}
		n += utf8.RuneLen(r)
		out = append(out, r)
	}
	return string(out)
}
