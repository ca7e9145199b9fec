package agent

import (
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
)

// Creates, stops and loans compose with tickets and leases, purely.
func TestWithControl(t *testing.T) {
	deleg := sliverOf("pl_dlg", 3)
	deleg.Instantiation = "delegated"
	st := &core.NodeState{Slivers: []core.Sliver{sliverOf("pl_a", 1, "cpu_share", "4", "cpu_pct", "20"), sliverOf("pl_b", 2), deleg}}
	f := controlFile{
		Created: []string{"pl_dlg"},
		Stopped: []string{"pl_b"},
		Loans: []rspec.Loan{
			{From: "pl_a", To: "pl_dlg", Amount: rspec.RSpec{CPUShare: 2, CPUPct: 10}, Until: 100},
			{From: "pl_a", To: "pl_b", Amount: rspec.RSpec{CPUPct: 15}, Until: 100}, // only 10 left: refused
		},
	}
	got, refused := WithControl(st, f, 50)
	if len(refused) != 1 || refused[1] == nil {
		t.Fatalf("refused %v", refused)
	}
	h := Holdings(got, 50)
	if h["pl_a"].CPUShare != 2 || h["pl_a"].CPUPct != 10 || h["pl_dlg"].CPUShare != 3 || h["pl_dlg"].CPUPct != 10 {
		t.Fatalf("holdings %v", h)
	}
	if st.Slivers[2].Instantiation != "delegated" {
		t.Fatal("input modified")
	}
	d := Compute(got, Env{Now: 50, XIDs: map[string]int{"pl_a": 1, "pl_b": 2, "pl_dlg": 3}, NCPU: 2})
	if !d.Slivers["pl_a"].Spec.Enabled || d.Slivers["pl_b"].Spec.Enabled || !d.Slivers["pl_dlg"].Spec.Enabled {
		t.Fatalf("enabled: %+v", d.Slivers)
	}
	// After the loans end, only the create and the stop remain.
	h = Holdings(func() *core.NodeState { s, _ := WithControl(st, f, 100); return s }(), 100)
	if h["pl_a"].CPUPct != 20 || h["pl_dlg"].CPUPct != 0 {
		t.Fatalf("after the loans: %v", h)
	}
	// A ticketed slice lends what its ticket grants.
	tk := ticket.Ticket{NotBefore: 0, NotAfter: 1000, RSpec: rspec.RSpec{CPUShare: 5}, Sliver: sliverOf("pl_b", 2)}
	f2 := controlFile{Loans: []rspec.Loan{{From: "pl_b", To: "pl_a", Amount: rspec.RSpec{CPUShare: 4}, Until: 100}}}
	s2, refused := WithControl(WithTickets(st, []ticket.Ticket{tk}, 50), f2, 50)
	if len(refused) != 0 || Holdings(s2, 50)["pl_a"].CPUShare != 8 || Holdings(s2, 50)["pl_b"].CPUShare != 1 {
		t.Fatalf("ticket then loan: %v %v", Holdings(s2, 50), refused)
	}
}
