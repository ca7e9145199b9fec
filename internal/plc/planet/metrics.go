package planet

import (
	"strconv"

	"github.com/planetlab/pl/internal/core"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the planet table to Prometheus: one series per node
// (labels node, site, country) and, when slices is set, per slice (labels
// slice, site). Values are the table's at scrape time.
type Collector struct {
	t      *Table
	slices bool
}

// NewCollector returns a collector over t; withSlices adds the per-slice
// series (PLC serves those to admins only: slice figures are readable by
// those who may read the slice).
func NewCollector(t *Table, withSlices bool) *Collector { return &Collector{t: t, slices: withSlices} }

var (
	nodeLabels  = []string{"node", "site", "country"}
	sliceLabels = []string{"slice", "site_id"}
	mUp         = prometheus.NewDesc("pl_node_up", "1 when the monitor sees the node up, 0 when down or unknown.", nodeLabels, nil)
	mContact    = prometheus.NewDesc("pl_node_last_contact_timestamp_seconds", "When the node last contacted PLC (UNIX seconds).", nodeLabels, nil)
	mLoad       = prometheus.NewDesc("pl_node_load1", "1-minute load average.", nodeLabels, nil)
	mCPU        = prometheus.NewDesc("pl_node_cpu_busy_ratio", "Busy share of all CPUs (0..1).", nodeLabels, nil)
	mMem        = prometheus.NewDesc("pl_node_memory_used_ratio", "Memory used (0..1).", nodeLabels, nil)
	mDiskFree   = prometheus.NewDesc("pl_node_disk_free_bytes", "Free bytes of the sliver store.", nodeLabels, nil)
	mSlivers    = prometheus.NewDesc("pl_node_slivers", "Slivers on the node.", nodeLabels, nil)
	mErrors     = prometheus.NewDesc("pl_node_sliver_errors", "Slivers with an error.", nodeLabels, nil)
	mClock      = prometheus.NewDesc("pl_node_clock_offset_seconds", "Node clock minus PLC clock (absent until measured).", nodeLabels, nil)
	mRx         = prometheus.NewDesc("pl_node_receive_bits_per_second", "Received bits per second between the last two reports.", nodeLabels, nil)
	mTx         = prometheus.NewDesc("pl_node_transmit_bits_per_second", "Sent bits per second between the last two reports.", nodeLabels, nil)
	mSSH        = prometheus.NewDesc("pl_node_ssh_up", "1 when the node is up and its ssh gateway answered at its last report, else 0 (absent when the node reports none).", nodeLabels, nil)
	mSCPU       = prometheus.NewDesc("pl_slice_cpu_cores", "CPUs the slice keeps busy, summed over its slivers.", sliceLabels, nil)
	mSMem       = prometheus.NewDesc("pl_slice_memory_bytes", "Memory used by the slice's slivers.", sliceLabels, nil)
	mSNodes     = prometheus.NewDesc("pl_slice_slivers", "Nodes reporting a sliver of the slice.", sliceLabels, nil)
	mSRx        = prometheus.NewDesc("pl_slice_receive_bits_per_second", "Bits per second received by the slice's slivers.", sliceLabels, nil)
	mSTx        = prometheus.NewDesc("pl_slice_transmit_bits_per_second", "Bits per second sent by the slice's slivers.", sliceLabels, nil)
	mSErr       = prometheus.NewDesc("pl_slice_sliver_errors", "Slivers of the slice with an error.", sliceLabels, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mUp, mContact, mLoad, mCPU, mMem, mDiskFree, mSlivers, mErrors, mClock, mRx, mTx, mSSH} {
		ch <- d
	}
	if c.slices {
		for _, d := range []*prometheus.Desc{mSCPU, mSMem, mSNodes, mSRx, mSTx, mSErr} {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, r := range c.t.Nodes() {
		l := []string{r.Hostname, r.Site, r.Country}
		up := 0.0
		if r.Up {
			up = 1
		}
		g(mUp, up, l...)
		g(mContact, float64(r.LastContact), l...)
		g(mSlivers, float64(r.Slivers), l...)
		g(mErrors, float64(r.Errors), l...)
		if r.LastReport == 0 {
			continue
		}
		g(mLoad, r.Load, l...)
		g(mCPU, r.CPUPct/100, l...)
		g(mMem, r.MemPct/100, l...)
		g(mDiskFree, r.DiskFreeGB*gb, l...)
		g(mRx, r.RxKbps*1000, l...)
		g(mTx, r.TxKbps*1000, l...)
		if r.SSH == core.SSHUp || r.SSH == core.SSHDown {
			ok := 0.0
			if r.SSHOK {
				ok = 1
			}
			g(mSSH, ok, l...)
		}
		if r.ClockKnown {
			g(mClock, float64(r.ClockOffsetMs)/1000, l...)
		}
	}
	if !c.slices {
		return
	}
	for _, s := range c.t.Slices() {
		if s.SliceID == 0 {
			continue
		}
		l := []string{s.Name, itoa(s.SiteID)}
		g(mSCPU, s.CPUCores, l...)
		g(mSMem, s.MemGB*gb, l...)
		g(mSNodes, float64(s.Nodes), l...)
		g(mSRx, s.RxKbps*1000, l...)
		g(mSTx, s.TxKbps*1000, l...)
		g(mSErr, float64(s.Errors), l...)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
