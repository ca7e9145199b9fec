package sliver

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestIdleCapacity starts PL_SLIVER_CAPACITY idle slivers (skipped when
// unset) and reports host memory per sliver and the creation rate: the
// data behind "how many idle slivers fit on this machine".
func TestIdleCapacity(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PL_SLIVER_CAPACITY"))
	if n <= 0 {
		t.Skip("set PL_SLIVER_CAPACITY=N to run")
	}
	r := newTestRuntime(t)
	ctx := context.Background()
	before := memAvailable(t)
	t0 := time.Now()
	var names []string
	defer func() {
		t1 := time.Now()
		for _, name := range names {
			r.Destroy(ctx, name)
		}
		t.Logf("destroyed %d slivers in %v", len(names), time.Since(t1))
	}()
	for i := 0; i < n; i++ {
		s := testSpec(t, "cap")
		s.Resources = Resources{}
		if err := r.Apply(ctx, s); err != nil {
			t.Fatalf("sliver %d: %v", i, err)
		}
		names = append(names, s.Name)
	}
	elapsed := time.Since(t0)
	time.Sleep(2 * time.Second)
	used := before - memAvailable(t)
	t.Logf("%d idle slivers in %v (%.1f/s); host memory %.1f MiB total, %.2f MiB per sliver",
		n, elapsed, float64(n)/elapsed.Seconds(), float64(used)/(1<<20), float64(used)/float64(n)/(1<<20))
	if _, err := run(t, r, names[0], false, "true"); err != nil {
		t.Errorf("first sliver unusable with %d running: %v", n, err)
	}
}
