package sliver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/node/image"
)

func memAvailable(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v << 10
		}
	}
	t.Fatal("no MemAvailable")
	return 0
}

// BenchmarkApply creates N slivers one after the other and reports the
// p50/p99 of Apply (desired spec to init running) beside the floor, a bare
// runc create+start of the same rootfs measured in the same run, and the
// host memory per idle sliver.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchApply(b, n)
			}
		})
	}
}

func benchApply(b *testing.B, n int) {
	r := newTestRuntime(b)
	_, imgs := testEnv(b)
	ctx := context.Background()
	rootfs, err := imgs.Rootfs(image.Default)
	if err != nil {
		b.Fatal(err)
	}
	floors := map[bool][]time.Duration{}
	for _, userns := range []bool{false, true} {
		dir, _ := os.MkdirTemp("", "pltest-sliver-floor-")
		floor, err := BenchFloor(ctx, FloorConfig{Dir: dir, Rootfs: rootfs, CgroupParent: testCgroupParent + "-floor", N: n, UserNS: userns})
		if err != nil {
			b.Fatal(err)
		}
		floors[userns] = floor
	}
	before := memAvailable(b)
	var lat []time.Duration
	var names []string
	defer func() {
		for _, name := range names {
			r.Destroy(ctx, name)
		}
	}()
	for i := 0; i < n; i++ {
		s := testSpec(b, "bench")
		t0 := time.Now()
		if err := r.Apply(ctx, s); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		names = append(names, s.Name)
	}
	time.Sleep(time.Second)
	per := (before - memAvailable(b)) / int64(n)
	var cg int64
	for _, name := range names {
		f := filepath.Join("/sys/fs/cgroup/memory", testCgroupParent, name, "memory.usage_in_bytes")
		if cgroupV2 {
			f = filepath.Join("/sys/fs/cgroup", testCgroupParent, name, "memory.current")
		}
		if b, err := os.ReadFile(f); err == nil {
			v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			cg += v
		}
	}
	b.ReportMetric(float64(cg)/float64(n)/(1<<20), "cgroup-MiB/sliver")
	b.ReportMetric(float64(Quantile(lat, 0.5).Microseconds())/1000, "apply-p50-ms")
	b.ReportMetric(float64(Quantile(lat, 0.99).Microseconds())/1000, "apply-p99-ms")
	b.ReportMetric(float64(Quantile(floors[false], 0.5).Microseconds())/1000, "floor-p50-ms")
	b.ReportMetric(float64(Quantile(floors[false], 0.99).Microseconds())/1000, "floor-p99-ms")
	b.ReportMetric(float64(Quantile(floors[true], 0.5).Microseconds())/1000, "floor-userns-p50-ms")
	b.ReportMetric(float64(Quantile(floors[true], 0.99).Microseconds())/1000, "floor-userns-p99-ms")
	b.ReportMetric(float64(per)/(1<<20), "host-MiB/sliver")
}
