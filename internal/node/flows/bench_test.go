package flows

import (
	"fmt"
	"math/rand"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStore fills a store with 30 days of flows (Days x PerDay
// records, remote addresses drawn from 65,536) and reports the bytes each
// record takes on disk, records per GiB, and the time to answer one
// address over the 30 days beside the time to answer it over one day.
func BenchmarkStore(b *testing.B) {
	const days, perDay = 30, 30_000
	c := &clock{t0.Add(days * 24 * time.Hour)}
	s, err := OpenStore(StoreConfig{Path: filepath.Join(b.TempDir(), "f.db"), Now: c.now, MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewSource(1))
	target := netip.MustParseAddr("203.0.113.7")
	n := 0
	for d := 0; d < days; d++ {
		batch := make([]Record, 0, perDay)
		for i := 0; i < perDay; i++ {
			start := t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*(24*time.Hour/perDay))
			remote := fmt.Sprintf("198.%d.%d.%d:%d", 18+rng.Intn(2), rng.Intn(256), rng.Intn(256), 1+rng.Intn(65535))
			if i%1000 == 0 {
				remote = target.String() + ":22"
			}
			r := rec(start, uint32(n), remote, fmt.Sprintf("site%d_slice%d", rng.Intn(100), rng.Intn(10)), 1+rng.Intn(4000))
			r.BytesSent, r.PacketsSent = uint64(rng.Intn(1<<20)), uint64(rng.Intn(1000))
			batch = append(batch, r)
			n++
		}
		if err := s.Put(batch); err != nil {
			b.Fatal(err)
		}
	}
	used, size := s.Usage()
	b.Logf("%d records: %d bytes used, file %d bytes", n, used, size)
	q30 := Query{Remote: target, Since: t0, Until: t0.Add(days * 24 * time.Hour), Limit: 1000}
	q1 := Query{Remote: target, Since: t0, Until: t0.Add(24 * time.Hour), Limit: 1000}
	measure := func(q Query) (time.Duration, int) {
		start := time.Now()
		p, err := s.Query(q)
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start), len(p.Records)
	}
	b.ResetTimer()
	var t30, t1 time.Duration
	var n30, n1 int
	for i := 0; i < b.N; i++ {
		d30, k30 := measure(q30)
		d1, k1 := measure(q1)
		t30, t1, n30, n1 = t30+d30, t1+d1, k30, k1
	}
	b.ReportMetric(float64(used)/float64(n), "bytes/record")
	b.ReportMetric(float64(1<<30)/(float64(used)/float64(n)), "records/GiB")
	b.ReportMetric(float64(t30.Microseconds())/float64(b.N), "µs/query-30d")
	b.ReportMetric(float64(t1.Microseconds())/float64(b.N), "µs/query-1d(baseline)")
	b.Logf("one address: %d flows over 30 days, %d over one day", n30, n1)
}
