package service

import (
	"fmt"
	"sync"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// TestConcurrentWritesKeepInvariants: racing AddSlice calls never exceed
// max_slices, and racing leases on one node never overlap.
func TestConcurrentWritesKeepInvariants(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("cc", 3)
		r := e.node(site, "r.cc.org", "node_type", "reservable")
		sid := e.slice(e.admin, "pl_cc")
		var wg sync.WaitGroup
		var mu sync.Mutex
		made, leased := 0, 0
		now := e.clock.Now().Unix()
		for i := 0; i < 10; i++ {
			wg.Add(2)
			go func(i int) {
				defer wg.Done()
				_, err := e.s.Add(e.ctx, e.admin, core.Slice, core.Record{"name": fmt.Sprintf("cc_s%d", i)})
				if err == nil {
					mu.Lock()
					made++
					mu.Unlock()
				} else if core.ErrorCode(err) != core.Conflict {
					t.Errorf("add slice: %v", err)
				}
			}(i)
			go func() {
				defer wg.Done()
				ids, _, err := e.s.AddLeases(e.ctx, e.admin, []int64{r}, sid, now+7200, now+4*7200)
				if err != nil {
					t.Errorf("add lease: %v", err)
				}
				mu.Lock()
				leased += len(ids)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if made != 3 || leased != 1 {
			t.Fatalf("made %d slices (max 3), %d leases (want 1)", made, leased)
		}
	})
}
