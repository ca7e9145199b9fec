package agent

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/node/sliver"
)

// The local API's authorization and effects, over the fake runtime: who
// may act on which slice, delegated creates, stops, loans; the uid map.
func TestLocalAPIMethods(t *testing.T) {
	dlg := sliverOf("pl_dlg", 3, "delegations", "pl_ctl, pl_x")
	dlg.Instantiation = "delegated"
	h := newHarness(t, &core.NodeState{Version: "v1", NodeID: 1,
		Slivers: []core.Sliver{sliverOf("pl_ctl", 1, "cpu_share", "4", "nm_api", "1"), sliverOf("pl_oth", 2), dlg}})
	h.start()
	h.eventually("slivers", func() bool { return h.exists("pl_ctl") && h.exists("pl_oth") })
	api := h.m.APIMethods()
	call := func(c nmapi.Caller, method string, args any) (any, error) {
		raw, _ := json.Marshal(args)
		return api[method].Fn(context.Background(), c, raw)
	}
	ctl, oth, root := nmapi.Caller{Slice: "pl_ctl"}, nmapi.Caller{Slice: "pl_oth"}, nmapi.Caller{Root: true}
	for _, c := range []struct {
		who    nmapi.Caller
		method string
		args   any
		code   core.Code
		want   string
	}{
		{oth, "Create", SliceArgs{Slice: "pl_dlg"}, core.Forbidden, "slice pl_oth may not control slice pl_dlg"},
		{ctl, "Create", SliceArgs{Slice: "pl_oth"}, core.Forbidden, "may not control"},
		{root, "Create", SliceArgs{Slice: "pl_oth"}, core.Forbidden, "only PLC creates its slivers"},
		{ctl, "Create", SliceArgs{Slice: "pl_nope"}, core.NotFound, "not on this node"},
		{ctl, "Create", SliceArgs{}, core.Invalid, "no slice named"},
		{ctl, "Create", map[string]string{"slice": "pl_dlg", "caller": "root"}, core.Invalid, "unknown field"},
		{root, "GetRecord", struct{}{}, core.Invalid, "no record"},
		{oth, "SetLoans", LoanArgs{Slice: "pl_ctl"}, core.Forbidden, "may not control"},
		{ctl, "SetLoans", LoanArgs{Slice: "pl_ctl", Loans: []rspec.Loan{{To: "pl_oth", Amount: rspec.RSpec{CPUPct: 1}, Until: 2_000_000}}}, core.Forbidden, "cpu_pct: pl_ctl holds 0"},
		{ctl, "SetLoans", LoanArgs{Slice: "pl_ctl", Loans: []rspec.Loan{{From: "pl_oth", To: "pl_ctl", Amount: rspec.RSpec{CPUShare: 1}, Until: 2_000_000}}}, core.Invalid, "not pl_ctl"},
	} {
		_, err := call(c.who, c.method, c.args)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %s %v: %v, want %s %q", c.who, c.method, c.args, err, c.code, c.want)
		}
	}
	if h.exists("pl_dlg") {
		t.Fatal("a refused call created a sliver")
	}
	if _, err := call(ctl, "Create", SliceArgs{Slice: "pl_dlg"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("delegated sliver created", func() bool { return h.exists("pl_dlg") })
	if _, err := call(ctl, "Stop", SliceArgs{Slice: "pl_dlg"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("stopped", func() bool { _, f, _, _ := h.sliver("pl_dlg"); return f })
	if _, err := call(ctl, "Start", SliceArgs{Slice: "pl_dlg"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("started", func() bool { _, f, _, _ := h.sliver("pl_dlg"); return !f })
	loan := rspec.Loan{To: "pl_oth", Amount: rspec.RSpec{CPUShare: 2}, Until: h.clock.now().Unix() + 100}
	if _, err := call(ctl, "SetLoans", LoanArgs{Slice: "pl_ctl", Loans: []rspec.Loan{loan}}); err != nil {
		t.Fatal(err)
	}
	h.eventually("loan applied", func() bool {
		_, _, a, _ := h.sliver("pl_ctl")
		_, _, b, _ := h.sliver("pl_oth")
		return a == 2048 && b == 3072
	})
	v, err := call(ctl, "GetRSpec", SliceArgs{Slice: "pl_ctl"})
	if r := v.(RSpecResult); err != nil || r.RSpec.CPUShare != 4 || r.Effective.CPUShare != 2 {
		t.Fatalf("GetRSpec %+v %v", v, err)
	}
	v, err = call(oth, "GetRecord", struct{}{})
	if r := v.(RecordResult); err != nil || r.Sliver.Name != "pl_oth" || r.Effective.CPUShare != 3 || !r.Created {
		t.Fatalf("GetRecord %+v %v", v, err)
	}
	h.clock.t.Add(101)
	h.eventually("loan ended", func() bool { _, _, a, _ := h.sliver("pl_ctl"); return a == 4096 })
	if _, err := call(ctl, "Destroy", SliceArgs{Slice: "pl_dlg"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("delegated sliver destroyed", func() bool { return !h.exists("pl_dlg") })

	v, err = call(oth, "Help", struct{}{})
	if help := v.(map[string]string); err != nil || len(help) != len(api) || !strings.Contains(help["SetLoans"], "loans") {
		t.Errorf("Help %v %v", v, err)
	}

	// The uid map: a sliver's uid range is its slice; others are nobody.
	xid := h.m.xids.Snapshot()["pl_oth"]
	for uid, want := range map[uint32]string{UIDBase(xid): "pl_oth", UIDBase(xid) + sliver.UIDCount - 1: "pl_oth", UIDBase(xid) + 1000: "pl_oth", 1000: "", UIDBase(4000): ""} {
		if got, _ := h.m.SliceOfUID(uid); got != want {
			t.Errorf("uid %d: %q, want %q", uid, got, want)
		}
	}
}
