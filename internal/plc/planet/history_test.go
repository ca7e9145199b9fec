package planet

import (
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestHistoryRing(t *testing.T) {
	h := NewHistory(3)
	if h.Last() != 0 || len(h.Since(0)) != 0 {
		t.Fatal("a new ring is not empty")
	}
	for at := int64(1); at <= 5; at++ {
		h.Add(core.PlanetSample{At: at})
	}
	got := h.Since(0)
	if len(got) != 3 || got[0].At != 3 || got[2].At != 5 || h.Last() != 5 {
		t.Fatalf("after 5 adds to a ring of 3: %+v (last %d)", got, h.Last())
	}
	if got := h.Since(4); len(got) != 1 || got[0].At != 5 {
		t.Fatalf("since 4: %+v", got)
	}
	h2 := NewHistory(4)
	h2.Add(core.PlanetSample{At: 7})
	if got := h2.Since(0); len(got) != 1 || got[0].At != 7 || h2.Last() != 7 {
		t.Fatalf("partly full: %+v", got)
	}
}

func TestSummarize(t *testing.T) {
	nodes := []core.NodeRow{
		{Status: "up", LastReport: 1, Load: 1, CPUPct: 20, Slivers: 2, RxKbps: 10, TxKbps: 1},
		{Status: "up", LastReport: 1, Load: 3, CPUPct: 40, Slivers: 1, RxKbps: 5},
		{Status: "up"}, // no report yet: not in the means
		{Status: "down", Slivers: 4},
		{Status: "unknown"},
	}
	s := Summarize(9, nodes, []core.SliceRow{{Nodes: 2}, {Nodes: 0}, {Nodes: 1}})
	want := core.PlanetSample{At: 9, NodesUp: 3, NodesDown: 1, NodesUnknown: 1, MeanLoad: 2, MaxLoad: 3, CPUPct: 30, Slivers: 7, Slices: 2, RxKbps: 15, TxKbps: 1}
	if s != want {
		t.Fatalf("Summarize = %+v, want %+v", s, want)
	}
}
