package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/node/vsys"
)

// The vsys tag reaches the sliver spec: any grant brings the local API
// socket, a dataset grant the datasets directory (not under gVisor, nor
// on a node without the local API); a value that does not parse grants
// nothing and refuses nothing.
func TestComputeVsys(t *testing.T) {
	st := &core.NodeState{Version: "v1", NodeID: 1, Slivers: []core.Sliver{
		sliverOf("pl_plain", 1),
		sliverOf("pl_mon", 2, "vsys", "sensor"),
		sliverOf("pl_data", 3, "vsys", "dataset:census", "vsys", "sensor"),
		sliverOf("pl_gvisor", 4, "vsys", "dataset", "runtime", "runsc"),
		sliverOf("pl_bad", 5, "vsys", "Not A Grant"),
		sliverOf("pl_api", 6, "nm_api", "1"),
	}}
	xids := map[string]int{"pl_plain": 1, "pl_mon": 2, "pl_data": 3, "pl_gvisor": 4, "pl_bad": 5, "pl_api": 6}
	env := Env{XIDs: xids, NCPU: 2, APISocket: "/var/lib/pl/node/api.sock", Runtimes: map[string]bool{"": true, "runsc": true}}
	d := Compute(st, env)
	if len(d.Errors) != 0 {
		t.Fatalf("errors %v", d.Errors)
	}
	for name, want := range map[string][2]bool{
		"pl_plain": {false, false}, "pl_mon": {true, false}, "pl_data": {true, true},
		"pl_gvisor": {true, false}, "pl_bad": {false, false}, "pl_api": {true, false},
	} {
		s := d.Slivers[name].Spec
		if (s.APISocket != "") != want[0] || s.Datasets != want[1] {
			t.Errorf("%s: api socket %q, datasets %v; want %v", name, s.APISocket, s.Datasets, want)
		}
	}
	env.APISocket = ""
	if s := Compute(st, env).Slivers["pl_data"].Spec; s.APISocket != "" || s.Datasets {
		t.Errorf("a node without the local API: %+v", s)
	}
}

// Vsys through the local API over the fake runtime: the caller is the
// uid's slice, its grants its vsys tag; root and slices not on the node
// are refused; a granted operation runs with the caller's xid.
func TestVsysMethods(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v1", NodeID: 1, Slivers: []core.Sliver{
		sliverOf("pl_mon", 1, "vsys", "probe:pl_oth", "vsys", "bad value"), sliverOf("pl_oth", 2)}})
	mon, oth, root := nmapi.Caller{Slice: "pl_mon"}, nmapi.Caller{Slice: "pl_oth"}, nmapi.Caller{Root: true}
	if _, err := (&Main{}).APIMethods()["Vsys"].Fn(context.Background(), mon, json.RawMessage(`{"op":"probe"}`)); core.ErrorCode(err) != core.Unimplemented {
		t.Errorf("no registry: %v", err)
	}
	var ran []string
	h.vsys = vsys.New(vsys.Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, vsys.Op{Name: "probe", Help: "probe a sliver",
		Check: func(args []string) (string, error) { return strings.Join(args, ","), nil },
		Run: func(ctx context.Context, c vsys.Caller, args []string) (vsys.Result, error) {
			ran = append(ran, c.Slice+" "+strings.Join(args, " "))
			return vsys.Result{Data: c.XID}, nil
		}})
	h.start()
	h.eventually("slivers", func() bool { return h.exists("pl_mon") && h.exists("pl_oth") })
	api := h.m.APIMethods()
	call := func(c nmapi.Caller, method string, args any) (any, error) {
		raw, _ := json.Marshal(args)
		return api[method].Fn(context.Background(), c, raw)
	}
	for _, c := range []struct {
		who  nmapi.Caller
		args any
		code core.Code
		want string
	}{
		{oth, vsys.Request{Op: "probe", Args: []string{"pl_oth"}}, core.Forbidden, "operation probe is not granted to slice pl_oth"},
		{mon, vsys.Request{Op: "probe", Args: []string{"pl_mon"}}, core.Forbidden, "not granted to slice pl_mon for pl_mon"},
		{root, vsys.Request{Op: "probe", Args: []string{"pl_oth"}}, core.Invalid, "call from a sliver"},
		{nmapi.Caller{Slice: "pl_gone"}, vsys.Request{Op: "probe"}, core.NotFound, "not on this node"},
		{mon, map[string]any{"op": "probe", "slice": "pl_oth"}, core.Invalid, "unknown field"},
		{mon, vsys.Request{Op: "probe", Args: []string{"--all"}}, core.Invalid, "argument 0"},
	} {
		_, err := call(c.who, "Vsys", c.args)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %v: %v, want %s %q", c.who, c.args, err, c.code, c.want)
		}
	}
	if len(ran) != 0 {
		t.Fatalf("refused calls ran: %v", ran)
	}
	v, err := call(mon, "Vsys", vsys.Request{Op: "probe", Args: []string{"pl_oth"}})
	if err != nil || v.(vsys.Result).Data != h.m.xids.Snapshot()["pl_mon"] || len(ran) != 1 || ran[0] != "pl_mon pl_oth" {
		t.Fatalf("granted call: %+v %v %v", v, err, ran)
	}
	v, err = call(mon, "VsysHelp", struct{}{})
	if help, _ := v.(map[string]string); err != nil || help["probe"] != "probe a sliver" || len(help) != 1 {
		t.Errorf("VsysHelp: %v %v", v, err)
	}
	v, _ = call(oth, "Help", struct{}{})
	if help := v.(map[string]string); !strings.Contains(help["Vsys"], "vsys tag") || help["VsysHelp"] == "" {
		t.Errorf("Help lacks Vsys: %v", help)
	}
}
