package service

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

// The benchmark planet: 1,000 nodes at 20 sites, 200 slices each on 25
// nodes with 5-10 tags and 3 members with a key each.
const (
	benchSites        = 20
	benchNodes        = 1000
	benchSlices       = 200
	benchNodesPerSl   = 25
	benchMembersPerSl = 3
)

type benchWorld struct {
	e      *env
	nodes  []int64
	slices []int64
	site   int64
}

func benchPlanet(b *testing.B, dialect string) *benchWorld {
	var dsn string
	if dialect == "sqlite" {
		dsn = filepath.Join(b.TempDir(), "plc.db")
	} else {
		dsn = pgtest.DSN(b)
	}
	start := time.Now()
	e := newEnv(b, dsn)
	// The fake clock starts at a fixed time; slices must not expire
	// during the run, which the 2-week lifetime guarantees.
	rng := rand.New(rand.NewSource(1))
	p := &benchWorld{e: e}
	var sites []int64
	for i := 0; i < benchSites; i++ {
		sites = append(sites, e.site(fmt.Sprintf("site%d", i), 1000))
	}
	p.site = sites[0]
	for i := 0; i < benchNodes; i++ {
		p.nodes = append(p.nodes, e.node(sites[i%benchSites], fmt.Sprintf("node%d.site%d.org", i, i%benchSites)))
	}
	e.add(e.admin, core.InitScriptClass, core.Record{"name": "setup", "script": "#!/bin/sh\ntrue\n"})
	tagNames := []string{"cpu_share", "disk_max", "net_max_rate", "vref", "capabilities", "ip_addresses", "enabled", "initscript", "cpu_pct"}
	tagValue := map[string]string{"disk_max": "10000000", "vref": "debian", "initscript": "setup", "capabilities": "CAP_NET_RAW", "ip_addresses": "0.0.0.0", "enabled": "1"}
	for i := 0; i < benchSlices; i++ {
		site := sites[i%benchSites]
		sid := e.slice(e.admin, fmt.Sprintf("site%d_slice%d", i%benchSites, i))
		p.slices = append(p.slices, sid)
		for m := 0; m < benchMembersPerSl; m++ {
			email := fmt.Sprintf("u%d.%d@site%d.org", i, m, i%benchSites)
			pid := e.add(e.admin, core.Person, core.Record{"email": email, "first_name": "U", "last_name": "Ser"})
			e.must(e.s.Update(e.ctx, e.admin, core.Person, pid, core.Record{"enabled": true}))
			e.must(e.s.Link(e.ctx, e.admin, core.PersonSite, pid, site, nil))
			e.add(e.admin, core.Key, core.Record{"person_id": pid, "key": sshKey(b)})
			e.must(e.s.Link(e.ctx, e.admin, core.SlicePerson, sid, pid, nil))
		}
		perm := rng.Perm(benchNodes)[:benchNodesPerSl]
		for _, k := range perm {
			e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, sid, p.nodes[k], nil))
		}
		ntags := 5 + rng.Intn(6)
		e.tag(e.admin, sid, "vsys", "fd_tuntap")
		e.tag(e.admin, sid, "vsys", "vif_up")
		for j := 0; j < ntags-2; j++ {
			name := tagNames[j%len(tagNames)]
			v, ok := tagValue[name]
			if !ok {
				v = fmt.Sprint(10 + rng.Intn(90))
			}
			if j == ntags-3 {
				e.tag(e.admin, sid, name, v, "node_id", p.nodes[perm[0]])
			} else {
				e.tag(e.admin, sid, name, v)
			}
		}
	}
	// A running PostgreSQL has planner statistics (autovacuum); a freshly
	// filled one does not, and plans badly without them.
	if dialect == "postgres" {
		e.must(e.s.db.Write(e.ctx, func(tx *store.Tx) error { _, err := tx.Exec(e.ctx, "ANALYZE"); return err }))
	}
	b.Logf("%s planet: %d nodes, %d slices built in %v", dialect, benchNodes, benchSlices, time.Since(start).Round(time.Millisecond))
	return p
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkPLC builds the planet once per store and runs the node state
// and watch benchmarks on it:
//
//	go test -run '^$' -bench PLC -benchtime 2000x ./internal/plc/service
func BenchmarkPLC(b *testing.B) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			p := benchPlanet(b, d)
			b.Run("NodeState", func(b *testing.B) { benchNodeState(b, p) })
			b.Run("NodeStateParallel", func(b *testing.B) { benchNodeStateParallel(b, p) })
			b.Run("WatchNotify", func(b *testing.B) { benchWatchNotify(b, p) })
		})
	}
}

// benchNodeState measures GetSlivers (NodeState) latency as a node.
func benchNodeState(b *testing.B, p *benchWorld) {
	{
		callers := map[int64]*core.Caller{}
		for _, n := range p.nodes[:50] {
			callers[n] = p.e.nodeCaller(n)
		}
		rng := rand.New(rand.NewSource(2))
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			n := p.nodes[rng.Intn(50)]
			t0 := time.Now()
			st, err := p.e.s.NodeState(context.Background(), callers[n], n)
			lat = append(lat, time.Since(t0))
			if err != nil || st.NodeID != n {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.Logf("NodeState latency over %d fetches: p50 %v p99 %v", len(lat), p50, p99)
	}
}

// benchNodeStateParallel measures NodeState throughput with
// concurrent fetches (GOMAXPROCS goroutines x 4).
func benchNodeStateParallel(b *testing.B, p *benchWorld) {
	{
		b.SetParallelism(4)
		start := time.Now()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewSource(time.Now().UnixNano()))
			for pb.Next() {
				n := p.nodes[rng.Intn(len(p.nodes))]
				if _, err := p.e.s.NodeState(context.Background(), p.e.admin, n); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		rate := float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(rate, "fetches/s")
		b.Logf("NodeState throughput: %.0f fetches/s (%d fetches)", rate, b.N)
	}
}

// benchWatchNotify measures, with 1,000 registered watchers (one per
// node), the time from the start of "add 100 nodes to a slice" (100
// links, each its own transaction) to each affected watcher's wake-up,
// and checks that no unaffected watcher wakes.
func benchWatchNotify(b *testing.B, p *benchWorld) {
	{
		e := p.e
		var fromStart []time.Duration
		b.ResetTimer()
		// Each round is heavy (1000 watchers, 100 links): at most 20 rounds
		// whatever -benchtime says, and ns/op is per round actually run.
		rounds := min(b.N, 20)
		for i := range rounds {
			b.StopTimer()
			sid := e.add(e.admin, core.Slice, core.Record{"name": fmt.Sprintf("site0_watch%d_%d", i, time.Now().UnixNano()%1e6)})
			ws := map[int64]*watcher{}
			for _, n := range p.nodes {
				ws[n] = e.s.hub.add(n)
			}
			targets := p.nodes[(i*100)%(benchNodes-100) : (i*100)%(benchNodes-100)+100]
			woke := make(chan time.Duration, 100)
			var wg sync.WaitGroup
			start := time.Now()
			for _, n := range targets {
				wg.Add(1)
				go func(w *watcher) {
					defer wg.Done()
					<-w.ch
					woke <- time.Since(start)
				}(ws[n])
			}
			b.StartTimer()
			for _, n := range targets {
				if err := e.s.Link(e.ctx, e.admin, core.SliceNode, sid, n, nil); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.StopTimer()
			close(woke)
			for d := range woke {
				fromStart = append(fromStart, d)
			}
			// Unaffected watchers must still be waiting.
			spurious := 0
			inTarget := map[int64]bool{}
			for _, n := range targets {
				inTarget[n] = true
			}
			for n, w := range ws {
				select {
				case <-w.ch:
					if !inTarget[n] {
						spurious++
					}
				default:
				}
				e.s.hub.remove(n, w)
			}
			if spurious > 0 {
				b.Fatalf("%d unaffected watchers woken", spurious)
			}
			e.must(e.s.Delete(e.ctx, e.admin, core.Slice, sid))
			b.StartTimer()
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rounds), "ns/op")
		b.ReportMetric(float64(percentile(fromStart, 0.5).Microseconds())/1000, "start-p50-ms")
		b.ReportMetric(float64(percentile(fromStart, 0.99).Microseconds())/1000, "start-p99-ms")
		b.Logf("1000 watchers, add 100 nodes to a slice: wake-up after the start of the change p50 %v p99 %v (%d wake-ups)",
			percentile(fromStart, 0.5), percentile(fromStart, 0.99), len(fromStart))
	}
}
