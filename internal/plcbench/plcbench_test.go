package plcbench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/plc/store/pgtest"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// TestRunOurs runs the whole benchmark on a small registry against our
// PLC only: every case answers what it should and a row is printed.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestRunOurs(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Nodes: 120, Slices: 3, Duration: 20 * time.Millisecond, MinCalls: 2, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"floor (canned AuthCheck)", "AuthCheck", "GetNodes-100 (all fields)", "GetNodes-120 (all fields)", "GetSlices-3 (all fields)", "no-cache:", "load after"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}

// BenchmarkGetNodesAll is GetNodes over 1,000 nodes with every field on
// our PLC with its read cache off, for profiling (go test -bench GetNodesAll -cpuprofile ...).
func BenchmarkGetNodesAll(b *testing.B) {
	benchCall(b, "GetNodes", func(t *target) []any { return []any{benchAuth()} })
}

// BenchmarkGetSlices is GetSlices over 20 slices with every field.
func BenchmarkGetSlices(b *testing.B) {
	benchCall(b, "GetSlices", func(t *target) []any { return []any{benchAuth(), ids(t.sliceIDs)} })
}

func benchAuth() map[string]any {
	return map[string]any{"AuthMethod": "password", "Username": benchPI, "AuthString": benchPW}
}

func benchCall(b *testing.B, method string, params func(*target) []any) {
	ctx := context.Background()
	t, err := startOurs(ctx, "no-cache", "", true) // the store's path: repeated calls would all be cache hits
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	key, err := sshKey()
	if err != nil {
		b.Fatal(err)
	}
	if err := t.populate(1000, 20, key); err != nil {
		b.Fatal(err)
	}
	body, err := xmlrpc.EncodeCall(method, params(t)...)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := post(ctx, t.client, t.url, body, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestScaleSmall runs pl bench scale's cases with a few nodes (nodes in
// this process): every node watches, every affected watcher is woken by
// each change, every node by the global one, and every report is taken.
func TestScaleSmall(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			o := ScaleOptions{Nodes: 20, Slices: 5, NodesPerSlice: 4, Changes: 3, InProcess: true}
			if pg {
				o.DB, o.NoSQLite = pgtest.DSN(t), true // 2 replicas on an empty database
			}
			var out strings.Builder
			o.Out = &out
			rs, err := Scale(context.Background(), o)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			t.Log("\n" + out.String())
			if len(rs) != 1 {
				t.Fatalf("%d cases ran, want 1", len(rs))
			}
			for _, r := range rs {
				if r.Watching != 20 || r.SliceWakes != r.SliceExpected || r.SliceExpected != 12 || r.AllWakes != 20 || r.AllOffWakes != 20 || r.Errors != 0 || r.ReportRate <= 0 || r.FetchP99 <= 0 || r.FetchOffP99 <= 0 {
					t.Fatalf("%s: %+v", r.Case, r)
				}
			}
		})
	}
}

// TestScaleKillReplica runs the replica-kill case with a few nodes on
// PostgreSQL: every node that watched at the killed replica fails over,
// no acknowledged report or renewal is missing from the database, and
// later changes wake every affected watcher. The fail-over time is
// printed, not asserted.
func TestScaleKillReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	var out strings.Builder
	rs, err := Scale(context.Background(), ScaleOptions{Nodes: 40, Slices: 8, NodesPerSlice: 5, Changes: 3, DB: dsn, KillReplica: true, InProcess: true, Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	k := rs[0].Kill
	if rs[0].Watching != 40 || k == nil {
		t.Fatalf("%+v", rs[0])
	}
	if k.AtVictim == 0 || k.FailedOver != k.AtVictim {
		t.Errorf("%d nodes watched at the killed replica, %d failed over", k.AtVictim, k.FailedOver)
	}
	if k.ReportsAcked == 0 || k.ChangesAcked == 0 {
		t.Errorf("nothing acknowledged before the kill: %+v", k)
	}
	if k.Lost() != 0 {
		t.Errorf("%d acknowledged reports or renewals lost: %v", k.Lost(), k.LostDetail)
	}
	if k.AfterExpected != 15 || k.AfterWakes != k.AfterExpected {
		t.Errorf("after the fail-over %d of %d affected watchers woken (want all of 15)", k.AfterWakes, k.AfterExpected)
	}
	t.Logf("BENCH kill-replica: fail-over p50 %v p99 %v (load %s)", k.FailoverP50, k.FailoverP99, loadavg())
}

// TestLostChecks: the loss checks count an acknowledged report or
// renewal as lost only when the database holds an earlier one.
func TestLostChecks(t *testing.T) {
	acked := [][2]int64{{1, 5}, {2, 7}, {3, 2}, {4, 1}}
	stored := map[int64]string{1: ReportVersion(5), 2: ReportVersion(8), 3: ReportVersion(1), 4: "pl-node/6.0"}
	if n, why := lostReports(acked, stored); n != 2 || len(why) != 2 {
		t.Fatalf("lostReports = %d %v, want nodes 3 and 4", n, why)
	}
	if n, why := lostChanges(map[int64]int64{10: 100, 11: 200, 12: 300}, map[int64]int64{10: 100, 11: 250, 12: 299}); n != 1 || len(why) != 1 || !strings.Contains(why[0], "slice 12") {
		t.Fatalf("lostChanges = %d %v, want slice 12", n, why)
	}
}
