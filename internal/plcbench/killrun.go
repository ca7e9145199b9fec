package plcbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// The replica-kill case of `pl bench scale --kill-replica`
// (docs/replicas.md): 2 replicas on PostgreSQL, every node watching
// (half at each), every node reporting (64 in flight, each report
// numbered) and slice renewals made through replica 2, which is then
// closed at once: its listener and every connection (long polls, reports
// in flight) cut, its database connections closed, as a killed process's
// would be. The nodes fail over to replica 1 (their second URL).
// Measured: the time from the kill until replica 1 holds the watch of
// each node that watched at replica 2 (p50, p99, the slowest). Checked:
// every acknowledged report and renewal is in the database afterwards,
// and a change made after the fail-over wakes every affected watcher.

// KillResult is what the replica-kill case measured and checked.
type KillResult struct {
	AtVictim                  int // nodes watching at the killed replica just before
	FailedOver                int // of them, watching at the survivor within a minute
	FailoverP50, FailoverP99  time.Duration
	FailoverMax               time.Duration
	ReportsAcked, ReportsFail int64 // reports during the run
	ReportsLost               int   // acknowledged, yet not in the database
	ChangesAcked, ChangesFail int   // renewals through the killed replica
	ChangesLost               int   // acknowledged, yet not in the database
	AfterWakes, AfterExpected int   // affected watchers woken by changes after the fail-over
	LostDetail                []string
}

// Lost is the number of acknowledged reports and changes not in the
// database (0, or the benchmark found a bug).
func (k *KillResult) Lost() int { return k.ReportsLost + k.ChangesLost }

func (r *scaleRun) kill(ctx context.Context) (*KillResult, error) {
	k := &KillResult{}
	victim, survivor := r.ms[1], r.ms[0]
	vreg, sreg := victim.Registry(), survivor.Registry()
	vadmin, err := vreg.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@bench.test", Password: "bench-admin-pw"}, nil)
	if err != nil {
		return k, err
	}
	r.send("churn-start")
	if _, err := r.next("churn-started"); err != nil {
		return k, err
	}
	// Renewals through the victim, each with a later expiry than the last.
	var mu sync.Mutex
	acked := map[int64]int64{} // slice -> last acknowledged expiry
	stop, stopped := make(chan struct{}), make(chan struct{})
	base := time.Now().Add(20 * 24 * time.Hour).Unix()
	go func() {
		defer close(stopped)
		for j := 0; ; j++ {
			select {
			case <-stop:
				return
			default:
			}
			id, exp := r.sliceIDs[j%len(r.sliceIDs)], base+1000+int64(j)
			_, err := vreg.RenewSlice(ctx, vadmin, id, exp)
			mu.Lock()
			if err == nil {
				acked[id] = exp
				k.ChangesAcked++
			} else {
				k.ChangesFail++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	atVictim := vreg.WatchedNodes()
	k.AtVictim = len(atVictim)
	tKill := time.Now()
	victim.Close()
	r.ms[1] = nil
	var fo []time.Duration
	left := atVictim
	for len(left) > 0 && time.Since(tKill) < time.Minute {
		var still []int64
		for _, n := range left {
			if sreg.Watched(n) {
				fo = append(fo, time.Since(tKill))
			} else {
				still = append(still, n)
			}
		}
		left = still
		time.Sleep(10 * time.Millisecond)
	}
	k.FailedOver = len(fo)
	k.FailoverP50, k.FailoverP99, k.FailoverMax = pct(fo, 50), pct(fo, 99), pct(fo, 100)
	fmt.Fprintf(r.o.Out, "   killed replica 2 (%d watching there): %d watching at replica 1 within %v\n", k.AtVictim, k.FailedOver, k.FailoverMax.Round(time.Millisecond))
	close(stop)
	<-stopped
	time.Sleep(2 * time.Second) // reports go on, now all to replica 1
	r.send("churn-stop")
	c, err := r.next("churn")
	if err != nil {
		return k, err
	}
	var reports [][2]int64
	json.Unmarshal(c["acked"], &reports)
	k.ReportsAcked, k.ReportsFail = int64(num(c, "ok")), int64(num(c, "failed"))

	// Everything acknowledged is in the database.
	versions, expires := map[int64]string{}, map[int64]int64{}
	err = sreg.DB().Read(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, "SELECT node_id, COALESCE(version, '') FROM nodes WHERE deleted = 0")
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				rows.Close()
				return err
			}
			versions[id] = v
		}
		rows.Close()
		rows, err = tx.Query(ctx, "SELECT slice_id, expires FROM slices WHERE deleted = 0")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, e int64
			if err := rows.Scan(&id, &e); err != nil {
				return err
			}
			expires[id] = e
		}
		return rows.Err()
	})
	if err != nil {
		return k, err
	}
	var d1, d2 []string
	k.ReportsLost, d1 = lostReports(reports, versions)
	k.ChangesLost, d2 = lostChanges(acked, expires)
	k.LostDetail = append(d1, d2...)

	// Later changes reach every affected watcher, those that failed over
	// included.
	r.rewatched(30 * time.Second)
	if _, err := r.wakes(); err != nil {
		return k, err
	}
	var t0 []int64
	var renewed []int
	for j := range r.o.Changes {
		s := len(r.sliceIDs) - 1 - j%len(r.sliceIDs)
		r.rewatched(30 * time.Second)
		t0 = append(t0, time.Now().UnixNano())
		if _, err := sreg.RenewSlice(ctx, r.admin, r.sliceIDs[s], base+100_000+int64(j)); err != nil {
			return k, err
		}
		renewed = append(renewed, s)
		time.Sleep(time.Second)
	}
	const tEnd int64 = 1 << 62 // no later change in this phase
	byNode := map[int64][]int64{}
	woken := func() bool {
		for j, s := range renewed {
			to := tEnd
			if j+1 < len(renewed) {
				to = t0[j+1]
			}
			if !wokeAll(byNode, r.sliceNodes[s], t0[j], to) {
				return false
			}
		}
		return true
	}
	if err := r.collect(byNode, woken, 30*time.Second); err != nil {
		return k, err
	}
	for j, s := range renewed {
		to := tEnd
		if j+1 < len(renewed) {
			to = t0[j+1]
		}
		for _, n := range r.sliceNodes[s] {
			k.AfterExpected++
			if _, ok := firstWake(byNode, n, t0[j], to); ok {
				k.AfterWakes++
			}
		}
	}
	return k, nil
}

// lostReports counts the nodes whose last acknowledged report (node,
// sequence number) is not in the database: the stored version carries
// an earlier number (a later report, sent but not acknowledged, may
// have been stored: that is not a loss).
func lostReports(acked [][2]int64, stored map[int64]string) (int, []string) {
	lost := 0
	var why []string
	for _, a := range acked {
		v := stored[a[0]]
		seq, err := strconv.ParseInt(strings.TrimPrefix(v, "pl-node/bench-"), 10, 64)
		if err != nil || !strings.HasPrefix(v, "pl-node/bench-") || seq < a[1] {
			lost++
			if len(why) < 10 {
				why = append(why, fmt.Sprintf("node %d: report %d acknowledged, the database holds version %q", a[0], a[1], v))
			}
		}
	}
	return lost, why
}

// lostChanges counts the slices whose last acknowledged renewal is not
// in the database (a later one, not acknowledged, may be).
func lostChanges(acked, stored map[int64]int64) (int, []string) {
	lost := 0
	var why []string
	for id, exp := range acked {
		if stored[id] < exp {
			lost++
			if len(why) < 10 {
				why = append(why, fmt.Sprintf("slice %d: renewal to %d acknowledged, the database holds %d", id, exp, stored[id]))
			}
		}
	}
	return lost, why
}

// PrintKill renders the replica-kill case.
func PrintKill(w io.Writer, r ScaleResult) {
	k := r.Kill
	fmt.Fprintf(w, "\n%s, %d nodes\n", r.Case, r.Nodes)
	fmt.Fprintf(w, "%-44s %d of %d\n", "nodes watching before the kill", r.Watching, r.Nodes)
	fmt.Fprintf(w, "%-44s %d\n", "  of them at the killed replica", k.AtVictim)
	fmt.Fprintf(w, "%-44s %d of %d\n", "failed over (watching at the survivor)", k.FailedOver, k.AtVictim)
	fmt.Fprintf(w, "%-44s %.1f / %.1f / %.1f ms\n", "fail-over time p50 / p99 / max", ms(k.FailoverP50), ms(k.FailoverP99), ms(k.FailoverMax))
	fmt.Fprintf(w, "%-44s %d acknowledged, %d failed\n", "reports during the run", k.ReportsAcked, k.ReportsFail)
	fmt.Fprintf(w, "%-44s %d acknowledged, %d failed\n", "renewals through the killed replica", k.ChangesAcked, k.ChangesFail)
	fmt.Fprintf(w, "%-44s %d (reports %d, renewals %d)\n", "LOST (acknowledged, not in the database)", k.Lost(), k.ReportsLost, k.ChangesLost)
	for _, d := range k.LostDetail {
		fmt.Fprintf(w, "   %s\n", d)
	}
	fmt.Fprintf(w, "%-44s %d of %d\n", "after fail-over: affected watchers woken", k.AfterWakes, k.AfterExpected)
	fmt.Fprintf(w, "%-44s %d\n", "failed node calls (before the kill)", r.Errors)
}
