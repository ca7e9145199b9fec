package nodecmd

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sensors"
)

// TestSensorsLive runs a node with two real slivers, one burning CPU: the
// burner is the top slice of the node's next report to PLC (within one
// report interval) and of the sensor server; the other's byte counters
// grow when it sends; /metrics parses and carries both slivers.
func TestSensorsLive(t *testing.T) {
	const interval = 3 * time.Second
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	l.report = interval
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })
	plc.Set([]core.Sliver{liveSliver("pltest_burn", 1), liveSliver("pltest_idle", 2)})
	l.eventually("slivers running", 60*time.Second, func() bool { return l.running("pltest_burn") && l.running("pltest_idle") })
	base := "http://" + l.node.SensorListener.Addr().String()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	burn, err := l.node.Runtime.Command(ctx, "pltest_burn", sliverProcess([]string{"sh", "-c", "while :; do :; done"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := burn.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		burn.Wait()
	}()
	started := time.Now()
	plc.mu.Lock()
	before := len(plc.Reports)
	plc.mu.Unlock()

	// PLC's view: the first report after the burner started whose
	// figures cover at least a second of burning names it top.
	var top string
	took := l.eventually("burner top in a report", interval+10*time.Second, func() bool {
		plc.mu.Lock()
		defer plc.mu.Unlock()
		for _, r := range plc.Reports[before:] {
			if r.Figures == nil || r.Figures.Time.Sub(started) < sensors.MinWindow {
				continue
			}
			if err := r.Figures.Validate(); err != nil {
				t.Fatalf("node reported invalid figures: %v", err)
			}
			if r.Figures.SSH != core.SSHUp {
				t.Errorf("report's ssh gateway state %q, want up (the gateway serves)", r.Figures.SSH)
			}
			s := slices.Clone(r.Figures.Slivers)
			slices.SortFunc(s, func(a, b core.SliverFigures) int { return int(b.CPUPct*1000 - a.CPUPct*1000) })
			top = s[0].Slice
			return true
		}
		return false
	})
	t.Logf("burner started -> report naming the top slice: %v (report interval %v)", took, interval)
	if top != "pltest_burn" {
		t.Fatalf("top slice in the report: %s, want pltest_burn", top)
	}
	if took > interval+2*time.Second {
		t.Errorf("top slice took %v to reach PLC; want within one report interval (%v) plus transfer", took, interval)
	}

	// The sensor server's view.
	getJSON := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(sensors.MinWindow)
	var burnCPU, idleCPU struct {
		CPUPct     float64 `json:"cpu_pct"`
		CPUSeconds float64 `json:"cpu_seconds"`
	}
	// On a loaded machine the burner may need longer than the window to
	// have used half a CPU second: wait for it, then compare.
	waitFor(context.Background(), 30*time.Second, func() bool {
		getJSON("/slivers/pltest_burn/cpu", &burnCPU)
		return burnCPU.CPUSeconds >= 0.5
	})
	getJSON("/slivers/pltest_idle/cpu", &idleCPU)
	if burnCPU.CPUPct <= idleCPU.CPUPct || burnCPU.CPUSeconds < 0.5 {
		t.Errorf("sensor cpu: burner %+v, idle %+v", burnCPU, idleCPU)
	}
	var node struct {
		Load1       float64 `json:"load1"`
		MemTotal    uint64  `json:"mem_total"`
		DiskTotal   uint64  `json:"disk_total"`
		SliverCount int     `json:"sliver_count"`
	}
	getJSON("/node", &node)
	if node.MemTotal == 0 || node.DiskTotal == 0 || node.SliverCount != 2 {
		t.Errorf("node figures: %+v", node)
	}

	// Bytes: pltest_idle pings the node address; its counters grow.
	type netFig struct {
		TxBytes, RxBytes, TxPackets uint64
	}
	readNet := func() netFig {
		var m map[string]any
		getJSON("/slivers/pltest_idle/net", &m)
		n := func(k string) uint64 { v, _ := m[k].(float64); return uint64(v) }
		return netFig{n("tx_bytes"), n("rx_bytes"), n("tx_packets")}
	}
	n0 := readNet()
	if out, err := l.exec("pltest_idle", "ping", "-c", "3", "-s", "1200", "-W", "2", l.sb.NodeAddr); err != nil {
		t.Fatalf("ping from the sliver: %v\n%s", err, out)
	}
	n1 := readNet()
	if n1.TxBytes < n0.TxBytes+3*1200 || n1.TxPackets < n0.TxPackets+3 || n1.RxBytes < n0.RxBytes+3*1200 {
		t.Errorf("sliver byte counters did not follow 3 pings of 1200 bytes: before %+v after %+v", n0, n1)
	}

	// Prometheus exposition parses and names both slivers.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	cpu := map[string]float64{}
	for _, m := range fams["pl_sliver_cpu_seconds_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "slice" {
				cpu[lp.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if len(cpu) != 2 || cpu["pltest_burn"] <= cpu["pltest_idle"] {
		t.Errorf("pl_sliver_cpu_seconds_total: %v", cpu)
	}
	for _, name := range []string{"pl_node_load1", "pl_node_memory_total_bytes", "pl_node_disk_used_bytes", "pl_sliver_network_transmit_bytes_total", "pl_sliver_memory_used_bytes", "pl_sliver_processes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if v := fams["pl_sliver_processes"].GetMetric(); len(v) != 2 {
		t.Errorf("pl_sliver_processes: %v", v)
	}
}
