package service

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
)

// Per-slice traffic summaries (docs/audit.md): PLC asks every node for the
// slice's traffic in the window (nodeapi.FlowSummaryPath) at once, as
// AuditWho does, and merges the answers.

// AuditSlice implements core.Auditor: for the slice's members, the PIs of
// its site and admins (admins also for a deleted slice's name).
func (s *Service) AuditSlice(ctx context.Context, c *core.Caller, q core.TrafficQuery) (*core.SliceTraffic, error) {
	if err := authorize(c, opAuditSlice); err != nil {
		return nil, err
	}
	if q.Slice == "" || !q.Since.Before(q.Until) || q.Top < 1 || q.Top > core.TrafficTopMax {
		return nil, core.FieldErrorf("slice", "a slice, a window and a top 1..%d are required", core.TrafficTopMax)
	}
	recs, err := s.selectAll(ctx, core.Slice, &core.Filter{Terms: []core.Term{{Field: "name", Op: core.Eq, Value: q.Slice}}}, []string{"slice_id", "site_id", "person_ids"})
	if err != nil {
		return nil, err
	}
	if !isAdmin(c) {
		if len(recs) == 0 {
			return nil, core.Errorf(core.NotFound, "no slice %q", q.Slice)
		}
		site, _ := recs[0]["site_id"].(int64)
		ok := c.HasRole(core.RolePI) && containsID(c.SiteIDs, site)
		if ps, _ := recs[0]["person_ids"].([]int64); containsID(ps, c.PersonID) {
			ok = true
		}
		if !ok {
			return nil, forbidden("Permission denied: only the slice's members, its site's PIs and admins see its traffic")
		}
	}
	opts := s.opts.Audit.withDefaults()
	nodes, err := s.auditNodes(ctx)
	if err != nil {
		return nil, err
	}
	ans := &core.SliceTraffic{Slice: q.Slice, Since: q.Since, Until: q.Until, Asked: len(nodes), Nodes: []core.TrafficNode{}, NotAnswering: []core.NodeFailure{},
		TrafficSummary: core.TrafficSummary{Days: []core.TrafficDay{}, Top: []core.TrafficDest{}}}
	// Each node lists its top TrafficTopMax, so that the merged top is
	// close to the planet's.
	uri := nodeapi.FlowSummaryPath + "?" + core.TrafficQuery{Slice: q.Slice, Since: q.Since, Until: q.Until, Top: core.TrafficTopMax}.Values().Encode()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Parallel)
	var sums []core.TrafficSummary
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var sum core.TrafficSummary
			err := s.getNode(ctx, opts, n, uri, &sum)
			if err == nil {
				if verr := sum.Validate(); verr != nil {
					err = fmt.Errorf("answered a malformed summary: %v", verr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ans.NotAnswering = append(ans.NotAnswering, core.NodeFailure{NodeID: n.id, Hostname: n.hostname, Error: err.Error()})
				return
			}
			if sum.Total.Flows > 0 {
				ans.Nodes = append(ans.Nodes, core.TrafficNode{NodeID: n.id, Hostname: n.hostname, Traffic: sum.Total})
			}
			sums = append(sums, sum)
		}()
	}
	wg.Wait()
	for _, sum := range sums {
		ans.Merge(sum, core.TrafficTopMax)
	}
	if len(ans.Top) > q.Top {
		ans.Top = ans.Top[:q.Top]
	}
	sort.Slice(ans.NotAnswering, func(i, j int) bool { return ans.NotAnswering[i].Hostname < ans.NotAnswering[j].Hostname })
	sort.Slice(ans.Nodes, func(i, j int) bool {
		if a, b := ans.Nodes[i].Bytes(), ans.Nodes[j].Bytes(); a != b {
			return a > b
		}
		return ans.Nodes[i].Hostname < ans.Nodes[j].Hostname
	})
	return ans, nil
}

func containsID(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
