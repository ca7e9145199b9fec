package planet

import (
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/planet/query"
)

// TestDocExamples keeps the queries of docs/monitoring.md compiling.
func TestDocExamples(t *testing.T) {
	for _, s := range []string{
		`load < 2 && disk_free_gb > 5 && country in ["JP", "BR"]`,
		`up && "princeton_codeen" in top_cpu`,
		`hostname endsWith ".edu" || clock_known && abs(clock_offset_ms) > 500`,
	} {
		if _, err := query.Compile[core.NodeRow](s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}
