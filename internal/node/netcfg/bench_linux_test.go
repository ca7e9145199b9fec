package netcfg

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// withIPv6 runs a benchmark on a node without an IPv6 prefix (ipv4, the
// baseline) and with one (ipv6), in the same run.
func withIPv6(b *testing.B, bench func(b *testing.B, mod func(*Config))) {
	b.Run("ipv4", func(b *testing.B) { bench(b, nil) })
	b.Run("ipv6", func(b *testing.B) {
		bench(b, func(c *Config) { c.Prefix6 = netip.MustParsePrefix("2001:db8:7::/64") })
	})
}

// BenchmarkEnsure measures Ensure of a new sliver (netns, veth, addresses,
// routes, nftables chains and jumps, HTB class) on a node holding up to
// 200 slivers, and reports p50/p99 next to ns/op. Slivers are removed in
// batches of 200 with the timer stopped.
func BenchmarkEnsure(b *testing.B) { withIPv6(b, benchEnsure) }

func benchEnsure(b *testing.B, mod func(*Config)) {
	tn := newTestNet(b)
	m := newTestManager(b, tn, mod)
	ctx := context.Background()
	if err := m.Setup(ctx); err != nil {
		b.Fatal(err)
	}
	const batch = 200
	removeAll := func(n int) {
		for xid := 1; xid <= n; xid++ {
			if err := m.Remove(ctx, fmt.Sprintf("pltest_bench_%d", xid), xid); err != nil {
				b.Fatal(err)
			}
		}
	}
	var durs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		xid := i%batch + 1
		if i > 0 && xid == 1 {
			b.StopTimer()
			removeAll(batch)
			b.StartTimer()
		}
		t0 := time.Now()
		if _, err := m.Ensure(ctx, Sliver{Name: fmt.Sprintf("pltest_bench_%d", xid), XID: xid, Ports: []Port{{Proto: "tcp", From: uint16(10000 + xid), To: uint16(10000 + xid)}}, MaxRateKbit: 10000}); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, durs)
	removeAll(min(b.N, batch))
}

// BenchmarkEnsureUnchanged measures re-applying an existing sliver's
// configuration (what every reconcile pass does).
func BenchmarkEnsureUnchanged(b *testing.B) { withIPv6(b, benchEnsureUnchanged) }

func benchEnsureUnchanged(b *testing.B, mod func(*Config)) {
	tn := newTestNet(b)
	m := newTestManager(b, tn, mod)
	ctx := context.Background()
	s := Sliver{Name: "pltest_bench", XID: 1, Ports: []Port{{Proto: "tcp", From: 8080, To: 8080}}}
	if _, err := m.Ensure(ctx, s); err != nil {
		b.Fatal(err)
	}
	var durs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := m.Ensure(ctx, s); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, durs)
}

// BenchmarkRemove measures removing a sliver's network.
func BenchmarkRemove(b *testing.B) {
	tn := newTestNet(b)
	m := newTestManager(b, tn, nil)
	ctx := context.Background()
	var durs []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := Sliver{Name: "pltest_bench", XID: i%MaxXID + 1}
		if _, err := m.Ensure(ctx, s); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		if err := m.Remove(ctx, s.Name, s.XID); err != nil {
			b.Fatal(err)
		}
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, durs)
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
	slices.Sort(durs)
	p := func(q float64) float64 { return float64(durs[int(q*float64(len(durs)-1))].Microseconds()) / 1000 }
	b.ReportMetric(p(0.5), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}
