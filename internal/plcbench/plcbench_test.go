package plcbench

import (
	"bytes"
	"context"
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
