package service

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// BenchmarkPlanetIngest: PLC ingests one round of reports from 1,000
// nodes (each summary with 10 slivers), as it does every 30 s at a 30 s
// report interval, then answers planet table queries. It prints the CPU
// share of one core the ingest costs per 30 s and the p50/p99 of a
// filtered, sorted node query, beside the baseline measured in the same
// run: the same 1,000 reports without figures (what a report cost before
// the planet table).
func BenchmarkPlanetIngest(b *testing.B) {
	e := newEnv(b, filepath.Join(b.TempDir(), "plc.db"))
	const nodes, sites, slivers = 1000, 20, 10
	var siteIDs, nodeIDs []int64
	for i := 0; i < sites; i++ {
		siteIDs = append(siteIDs, e.site(fmt.Sprintf("site%d", i), 10))
		e.must(e.s.Update(e.ctx, e.admin, core.Site, siteIDs[i], core.Record{"latitude": float64(i*8 - 80), "longitude": float64(i*17 - 170)}))
	}
	callers := map[int64]*core.Caller{}
	for i := 0; i < nodes; i++ {
		id := e.node(siteIDs[i%sites], fmt.Sprintf("node%d.site%d.org", i, i%sites))
		nodeIDs = append(nodeIDs, id)
		callers[id] = e.nodeCaller(id)
	}
	summary := func(i int, at time.Time) *core.NodeFigures {
		f := &core.NodeFigures{Time: at, Load1: float64(i%40) / 10, CPUs: 4, CPUPct: float64(i % 100), MemTotal: 8 << 30, MemUsed: uint64(i%8) << 30,
			DiskTotal: 100 << 30, DiskUsed: uint64(i%100) << 30, SliverCount: slivers, TxBytes: uint64(i) * uint64(at.Unix()), RxBytes: uint64(i) * 1000}
		for s := 0; s < slivers; s++ {
			f.Slivers = append(f.Slivers, core.SliverFigures{Slice: fmt.Sprintf("site%d_slice%d", s%sites, s), State: "running",
				CPUPct: float64((i + s) % 10), MemUsed: 64 << 20, TxBytes: uint64(s) * uint64(at.Unix())})
		}
		return f
	}
	round := func(withFigures bool) time.Duration {
		start := time.Now()
		now := e.clock.Now()
		for i, id := range nodeIDs {
			r := core.NodeReport{BootState: "boot", Version: "pl-node/bench"}
			if withFigures {
				r.Figures = summary(i, now)
			}
			e.must(e.s.ReportNode(e.ctx, callers[id], id, r))
		}
		return time.Since(start)
	}
	e.must(e.s.MonitorStep(e.ctx))
	round(true) // warm up; rates need a previous report
	b.ResetTimer()
	var with, without time.Duration
	var lat []time.Duration
	for n := 0; n < b.N; n++ {
		e.clock.Add(30 * time.Second)
		without += round(false)
		with += round(true)
		e.must(e.s.MonitorStep(e.ctx))
		for q := 0; q < 200; q++ {
			start := time.Now()
			rows, err := e.s.TopNodes(e.ctx, nil, core.TopQuery{Where: `up && load < 2 && disk_free_gb > 20 && "site1_slice1" in top_cpu`, Sort: "-cpu_pct,hostname", Limit: 50})
			lat = append(lat, time.Since(start))
			if err != nil || len(rows) == 0 {
				b.Fatalf("query: %d rows, %v", len(rows), err)
			}
		}
	}
	b.StopTimer()
	per := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) / 30 * 100 }
	b.ReportMetric(per(with), "%core-ingest/30s")
	b.ReportMetric(per(without), "%core-baseline/30s")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-query-µs")
	b.Logf("1,000 reports every 30 s: with figures %.1f%% of one core (%v per round); baseline without figures %.1f%% (%v per round); node query p50 %v p99 %v over %d queries",
		per(with), (with / time.Duration(b.N)).Round(time.Millisecond), per(without), (without / time.Duration(b.N)).Round(time.Millisecond),
		percentile(lat, 0.5), percentile(lat, 0.99), len(lat))
}
