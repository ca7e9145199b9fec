package sensors

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/planetlab/pl/internal/core"
)

// The Prometheus series of a node (docs/monitoring.md lists them). Names
// follow the Prometheus conventions: base units (bytes, seconds),
// _total for counters; per-sliver series carry the labels slice and site
// (the slice name's login-base prefix).
var (
	sliverLabels = []string{"slice", "site"}

	nodeGauges = []struct {
		desc *prometheus.Desc
		val  func(f *core.NodeFigures) float64
	}{
		{d("pl_node_load1", "1-minute load average."), func(f *core.NodeFigures) float64 { return f.Load1 }},
		{d("pl_node_load5", "5-minute load average."), func(f *core.NodeFigures) float64 { return f.Load5 }},
		{d("pl_node_load15", "15-minute load average."), func(f *core.NodeFigures) float64 { return f.Load15 }},
		{d("pl_node_cpus", "Online CPUs."), func(f *core.NodeFigures) float64 { return float64(f.CPUs) }},
		{d("pl_node_cpu_busy_ratio", "Busy share of all CPUs (1 = all busy) over the last collection window."), func(f *core.NodeFigures) float64 { return f.CPUPct / 100 }},
		{d("pl_node_memory_total_bytes", "Physical memory."), func(f *core.NodeFigures) float64 { return float64(f.MemTotal) }},
		{d("pl_node_memory_used_bytes", "Memory in use (total minus available)."), func(f *core.NodeFigures) float64 { return float64(f.MemUsed) }},
		{d("pl_node_swap_total_bytes", "Swap space."), func(f *core.NodeFigures) float64 { return float64(f.SwapTotal) }},
		{d("pl_node_swap_used_bytes", "Swap in use."), func(f *core.NodeFigures) float64 { return float64(f.SwapUsed) }},
		{d("pl_node_disk_total_bytes", "Size of the sliver store's filesystem."), func(f *core.NodeFigures) float64 { return float64(f.DiskTotal) }},
		{d("pl_node_disk_used_bytes", "Used bytes of the sliver store's filesystem."), func(f *core.NodeFigures) float64 { return float64(f.DiskUsed) }},
		{d("pl_node_uptime_seconds", "Time since boot."), func(f *core.NodeFigures) float64 { return f.UptimeSec }},
		{d("pl_node_slivers", "Slivers on the node."), func(f *core.NodeFigures) float64 { return float64(f.SliverCount) }},
	}
	nodeCounters = []struct {
		desc *prometheus.Desc
		val  func(f *core.NodeFigures) uint64
	}{
		{d("pl_node_network_receive_bytes_total", "Bytes received on the node's interfaces (not lo, not sliver veths)."), func(f *core.NodeFigures) uint64 { return f.RxBytes }},
		{d("pl_node_network_transmit_bytes_total", "Bytes sent on the node's interfaces."), func(f *core.NodeFigures) uint64 { return f.TxBytes }},
		{d("pl_node_network_receive_packets_total", "Packets received."), func(f *core.NodeFigures) uint64 { return f.RxPackets }},
		{d("pl_node_network_transmit_packets_total", "Packets sent."), func(f *core.NodeFigures) uint64 { return f.TxPackets }},
		{d("pl_node_network_receive_drops_total", "Received packets dropped."), func(f *core.NodeFigures) uint64 { return f.RxDrops }},
		{d("pl_node_network_transmit_drops_total", "Packets dropped on sending."), func(f *core.NodeFigures) uint64 { return f.TxDrops }},
	}
	clockOffset = d("pl_node_clock_offset_seconds", "Node clock minus PLC clock, as last measured (absent until measured).")
	sshUp       = d("pl_node_ssh_up", "1 when the node's ssh gateway runs and answers, 0 when it does not (absent when the node runs none).")

	sliverGauges = []struct {
		desc *prometheus.Desc
		val  func(f *core.NodeFigures, s *core.SliverFigures) float64
	}{
		{ds("pl_sliver_cpu_cores", "CPUs the sliver kept busy (2 = two whole CPUs) over the last collection window."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return s.CPUPct / 100 * float64(f.CPUs) }},
		{ds("pl_sliver_memory_used_bytes", "Memory charged to the sliver's cgroup."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return float64(s.MemUsed) }},
		{ds("pl_sliver_memory_limit_bytes", "The sliver's memory limit (0 = none)."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return float64(s.MemLimit) }},
		{ds("pl_sliver_processes", "Processes (tasks) in the sliver."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return float64(s.Procs) }},
		{ds("pl_sliver_disk_used_bytes", "Bytes of the sliver's writable layer."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return float64(s.DiskUsed) }},
		{ds("pl_sliver_disk_quota_bytes", "The sliver's disk quota (0 = none)."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return float64(s.DiskQuota) }},
		{ds("pl_sliver_error", "1 when the sliver's last configuration was refused (see the sensor /slivers/<slice>/state)."), func(f *core.NodeFigures, s *core.SliverFigures) float64 { return b2f(s.LastError != "") }},
	}
	sliverCPU      = ds("pl_sliver_cpu_seconds_total", "CPU time used by the sliver's processes.")
	sliverCounters = []struct {
		desc *prometheus.Desc
		val  func(s *core.SliverFigures) uint64
	}{
		{ds("pl_sliver_network_receive_bytes_total", "Bytes the sliver received."), func(s *core.SliverFigures) uint64 { return s.RxBytes }},
		{ds("pl_sliver_network_transmit_bytes_total", "Bytes the sliver sent."), func(s *core.SliverFigures) uint64 { return s.TxBytes }},
		{ds("pl_sliver_network_receive_packets_total", "Packets the sliver received."), func(s *core.SliverFigures) uint64 { return s.RxPackets }},
		{ds("pl_sliver_network_transmit_packets_total", "Packets the sliver sent."), func(s *core.SliverFigures) uint64 { return s.TxPackets }},
	}
	sliverState = prometheus.NewDesc("pl_sliver_state", "1 for the sliver's state (running, frozen, stopped).", []string{"slice", "site", "state"}, nil)
)

func d(name, help string) *prometheus.Desc  { return prometheus.NewDesc(name, help, nil, nil) }
func ds(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, sliverLabels, nil) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metrics is the Prometheus collector over a Source: each scrape is one
// fresh collection. slivers=false leaves out the pl_sliver_* series.
type metrics struct {
	src     Source
	slivers bool
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range nodeGauges {
		ch <- g.desc
	}
	for _, c := range nodeCounters {
		ch <- c.desc
	}
	ch <- clockOffset
	ch <- sshUp
	if !m.slivers {
		return
	}
	for _, g := range sliverGauges {
		ch <- g.desc
	}
	for _, c := range sliverCounters {
		ch <- c.desc
	}
	ch <- sliverCPU
	ch <- sliverState
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	f, err := m.src.Collect()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(nodeGauges[0].desc, err)
		return
	}
	for _, g := range nodeGauges {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.val(f))
	}
	for _, c := range nodeCounters {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.val(f)))
	}
	if f.ClockKnown {
		ch <- prometheus.MustNewConstMetric(clockOffset, prometheus.GaugeValue, float64(f.ClockOffsetMs)/1000)
	}
	if f.SSH == core.SSHUp || f.SSH == core.SSHDown {
		ch <- prometheus.MustNewConstMetric(sshUp, prometheus.GaugeValue, b2f(f.SSH == core.SSHUp))
	}
	if !m.slivers {
		return
	}
	for i := range f.Slivers {
		s := &f.Slivers[i]
		site := Site(s.Slice)
		for _, g := range sliverGauges {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.val(f, s), s.Slice, site)
		}
		for _, c := range sliverCounters {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.val(s)), s.Slice, site)
		}
		ch <- prometheus.MustNewConstMetric(sliverCPU, prometheus.CounterValue, s.CPUSeconds, s.Slice, site)
		ch <- prometheus.MustNewConstMetric(sliverState, prometheus.GaugeValue, 1, s.Slice, site, s.State)
	}
}

// DocumentedSeries lists every series /metrics exposes, as
// docs/monitoring.md documents them (a test holds the two together).
var DocumentedSeries = []string{
	"pl_node_load1", "pl_node_load5", "pl_node_load15", "pl_node_cpus", "pl_node_cpu_busy_ratio",
	"pl_node_memory_total_bytes", "pl_node_memory_used_bytes", "pl_node_swap_total_bytes", "pl_node_swap_used_bytes",
	"pl_node_disk_total_bytes", "pl_node_disk_used_bytes", "pl_node_uptime_seconds", "pl_node_slivers",
	"pl_node_network_receive_bytes_total", "pl_node_network_transmit_bytes_total",
	"pl_node_network_receive_packets_total", "pl_node_network_transmit_packets_total",
	"pl_node_network_receive_drops_total", "pl_node_network_transmit_drops_total",
	"pl_node_clock_offset_seconds", "pl_node_ssh_up",
	"pl_sliver_cpu_seconds_total", "pl_sliver_cpu_cores", "pl_sliver_memory_used_bytes", "pl_sliver_memory_limit_bytes",
	"pl_sliver_processes", "pl_sliver_disk_used_bytes", "pl_sliver_disk_quota_bytes", "pl_sliver_error", "pl_sliver_state",
	"pl_sliver_network_receive_bytes_total", "pl_sliver_network_transmit_bytes_total",
	"pl_sliver_network_receive_packets_total", "pl_sliver_network_transmit_packets_total",
}
