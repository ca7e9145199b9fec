package plcbench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/xmlrpc"
)

// TestRunOurs runs the whole benchmark on a small registry against our
// PLC only: every case answers what it should and a row is printed.
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
	dsn := ""
	if d := os.Getenv("PL_TEST_POSTGRES_DSN"); d != "" {
		dsn = d // an empty database: the PostgreSQL case runs too
	}
	var out strings.Builder
	rs, err := Scale(context.Background(), ScaleOptions{Nodes: 20, Slices: 5, NodesPerSlice: 4, Changes: 3, DB: dsn, InProcess: true, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, r := range rs {
		if r.Watching != 20 || r.SliceWakes != r.SliceExpected || r.SliceExpected != 12 || r.AllWakes != 20 || r.Errors != 0 || r.ReportRate <= 0 || r.FetchP99 <= 0 {
			t.Fatalf("%s: %+v", r.Case, r)
		}
	}
}
