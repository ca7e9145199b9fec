package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rcap"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/node/nmapi"
)

type apiCaller func(c nmapi.Caller, method string, args any) (any, error)

func apiOf(m *Main) apiCaller {
	api := m.APIMethods()
	return func(c nmapi.Caller, method string, args any) (any, error) {
		raw, _ := json.Marshal(args)
		return api[method].Fn(context.Background(), c, raw)
	}
}

// Capabilities over the fake runtime: acquired out of what a slice holds,
// bound by whoever presents the token to a slice it controls (the live
// values move), split, released and ended (the values come back);
// forged, released and ended tokens, amounts beyond what is held and
// binds to slices not controlled are refused and change nothing; the
// state file keeps no token.
func TestRcapMethods(t *testing.T) {
	dlg := sliverOf("pl_dlg", 4, "delegations", "pl_b")
	dlg.Instantiation = "delegated"
	h := newHarness(t, &core.NodeState{Version: "v1", NodeID: 1,
		Slivers: []core.Sliver{sliverOf("pl_a", 1, "cpu_share", "4"), sliverOf("pl_b", 2), sliverOf("pl_c", 3), dlg}})
	h.start()
	h.eventually("slivers", func() bool { return h.exists("pl_a") && h.exists("pl_b") && h.exists("pl_c") })
	call := apiOf(h.m)
	a, b, cc := nmapi.Caller{Slice: "pl_a"}, nmapi.Caller{Slice: "pl_b"}, nmapi.Caller{Slice: "pl_c"}
	shares := func(name string) uint64 { _, _, s, _ := h.sliver(name); return s }
	now := h.clock.now().Unix()

	v, err := call(a, "Acquire", AcquireArgs{Slice: "pl_a", Amount: rspec.RSpec{CPUShare: 2}, Until: now + 100})
	if err != nil {
		t.Fatal(err)
	}
	r1 := v.(RcapResult)
	if r1.From != "pl_a" || r1.Amount.CPUShare != 2 || r1.To != "" || !strings.HasPrefix(r1.Rcap, rcap.Prefix) {
		t.Fatalf("Acquire: %+v", r1)
	}
	// Acquired but unbound: nothing moves yet.
	if shares("pl_a") != 4096 {
		t.Fatalf("unbound capability moved shares: %d", shares("pl_a"))
	}
	forged, _, _ := rcap.NewToken(nil)
	for _, c := range []struct {
		who    nmapi.Caller
		method string
		args   any
		code   core.Code
		want   string
	}{
		{b, "Acquire", AcquireArgs{Slice: "pl_a", Amount: rspec.RSpec{CPUShare: 1}}, core.Forbidden, "slice pl_b may not control slice pl_a"},
		{a, "Acquire", AcquireArgs{Slice: "pl_a", Amount: rspec.RSpec{CPUShare: 2}}, core.Forbidden, "cpu_share: pl_a holds 4, has lent 2 and keeps 1: 2 is more than the 1"},
		{a, "Acquire", AcquireArgs{Slice: "pl_a", Amount: rspec.RSpec{CPUPct: 1}}, core.Forbidden, "cpu_pct: pl_a holds 0"},
		{a, "Acquire", AcquireArgs{Slice: "pl_a"}, core.Invalid, "a capability for nothing"},
		{a, "Acquire", AcquireArgs{Slice: "pl_a", Amount: rspec.RSpec{CPUShare: 1}, Until: now}, core.Invalid, "until"},
		{a, "SetLoans", LoanArgs{Slice: "pl_a", Loans: []rspec.Loan{{To: "pl_b", Amount: rspec.RSpec{CPUShare: 2}, Until: now + 10}}}, core.Forbidden, "has lent 2"},
		{b, "Bind", BindArgs{Rcap: forged, Slice: "pl_b"}, core.NotFound, "no such capability"},
		{b, "Bind", BindArgs{Rcap: "rcap1.guess", Slice: "pl_b"}, core.Invalid, "not a capability"},
		{b, "Bind", map[string]string{"rcap": r1.Rcap, "slice": "pl_b", "by": "pl_a"}, core.Invalid, "unknown field"},
		{b, "Bind", BindArgs{Rcap: r1.Rcap, Slice: "pl_c"}, core.Forbidden, "slice pl_b may not control slice pl_c"},
		{b, "Bind", BindArgs{Rcap: r1.Rcap, Slice: "pl_dlg"}, core.NotFound, "no sliver on this node"},
		{a, "Bind", BindArgs{Rcap: r1.Rcap, Slice: "pl_a"}, core.Invalid, "moves nothing"},
		{b, "Delegate", DelegateArgs{Rcap: r1.Rcap, Amount: rspec.RSpec{CPUShare: 3}}, core.Forbidden, "holds 2: 3 is more"},
		{b, "Delegate", DelegateArgs{Rcap: r1.Rcap, Amount: rspec.RSpec{CPUShare: 2}}, core.Invalid, "hand over its token"},
		{b, "Release", RcapArgs{Rcap: forged}, core.NotFound, "no such capability"},
		{b, "GetRcaps", SliceArgs{Slice: "pl_a"}, core.Forbidden, "may not control"},
	} {
		_, err := call(c.who, c.method, c.args)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s %+v: %v, want %s %q", c.who.Slice, c.method, c.args, err, c.code, c.want)
		}
	}
	if got := h.m.control.snapshot().Rcaps; len(got) != 1 || got[0].To != "" || got[0].Amount.CPUShare != 2 {
		t.Fatalf("refusals changed the capabilities: %+v", got)
	}

	// pl_a hands the token to pl_b, which binds it to itself.
	if _, err := call(b, "Bind", BindArgs{Rcap: r1.Rcap, Slice: "pl_b"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("bound capability applied", func() bool { return shares("pl_a") == 2048 && shares("pl_b") == 3072 })
	// pl_b splits one share off and hands it to pl_c.
	v, err = call(b, "Delegate", DelegateArgs{Rcap: r1.Rcap, Amount: rspec.RSpec{CPUShare: 1}})
	if err != nil {
		t.Fatal(err)
	}
	r2 := v.(RcapResult)
	if r2.From != "pl_a" || r2.To != "" || r2.Amount.CPUShare != 1 || r2.Until != now+100 || r2.Rcap == r1.Rcap {
		t.Fatalf("Delegate: %+v", r2)
	}
	if _, err := call(cc, "Bind", BindArgs{Rcap: r2.Rcap, Slice: "pl_c"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("split capability applied", func() bool {
		return shares("pl_a") == 2048 && shares("pl_b") == 2048 && shares("pl_c") == 2048
	})
	v, err = call(a, "GetRcaps", SliceArgs{Slice: "pl_a"})
	if l := v.([]RcapInfo); err != nil || len(l) != 2 || l[0].To != "pl_b" || l[1].To != "pl_c" {
		t.Fatalf("GetRcaps: %+v %v", v, err)
	}
	v, err = call(cc, "GetRcaps", SliceArgs{Slice: "pl_c"})
	if l := v.([]RcapInfo); err != nil || len(l) != 1 || l[0].From != "pl_a" {
		t.Fatalf("GetRcaps as pl_c: %+v %v", v, err)
	}
	v, _ = call(b, "GetRSpec", SliceArgs{Slice: "pl_b"})
	if r := v.(RSpecResult); r.RSpec.CPUShare != 1 || r.Effective.CPUShare != 2 {
		t.Fatalf("GetRSpec: %+v", r)
	}
	// The state file keeps hashes, never tokens.
	data, err := os.ReadFile(filepath.Join(h.dir, "control.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), r1.Rcap[len(rcap.Prefix):]) || !strings.Contains(string(data), r1.ID) {
		t.Fatalf("control.json: %s", data)
	}

	// Release: pl_b's part goes back to pl_a; a second release is refused.
	if _, err := call(b, "Release", RcapArgs{Rcap: r1.Rcap}); err != nil {
		t.Fatal(err)
	}
	h.eventually("released", func() bool { return shares("pl_a") == 3072 && shares("pl_b") == 1024 && shares("pl_c") == 2048 })
	if _, err := call(b, "Release", RcapArgs{Rcap: r1.Rcap}); core.ErrorCode(err) != core.NotFound {
		t.Errorf("second release: %v", err)
	}
	// The end undoes the rest, and an ended token is refused as such.
	h.clock.t.Add(100)
	h.eventually("capability ended", func() bool { return shares("pl_a") == 4096 && shares("pl_c") == 1024 })
	if _, err := call(cc, "Bind", BindArgs{Rcap: r2.Rcap, Slice: "pl_c"}); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "ended at") {
		t.Errorf("bind after the end: %v", err)
	}
	// All of pl_a's share can be taken again.
	if _, err := call(a, "Acquire", AcquireArgs{Slice: "pl_a", Amount: rspec.RSpec{CPUShare: 3}}); err != nil {
		t.Errorf("acquire after the end: %v", err)
	}
}

// GetXIDs, GetSSHKeys, ReCreate and AdminTicket.
func TestNodeMethods(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	_, own, _ := ed25519.GenerateKey(nil)
	h := newHarness(t, &core.NodeState{Version: "v1", NodeID: 3, TicketKeys: []core.TicketKey{ticket.NewPublicKey(pub, "plc")},
		Slivers: []core.Sliver{sliverOf("pl_a", 1, "delegations", "pl_b"), sliverOf("pl_b", 2)}})
	h.start()
	h.eventually("slivers", func() bool { return h.exists("pl_a") && h.exists("pl_b") })
	call := apiOf(h.m)
	a, b, root := nmapi.Caller{Slice: "pl_a"}, nmapi.Caller{Slice: "pl_b"}, nmapi.Caller{Root: true}

	v, err := call(b, "GetXIDs", struct{}{})
	if x := v.(XIDsResult); err != nil || len(x) != 2 || x["pl_a"] == 0 || x["pl_a"] != h.m.xids.Snapshot()["pl_a"] {
		t.Fatalf("GetXIDs: %v %v", v, err)
	}
	v, err = call(b, "GetSSHKeys", struct{}{})
	if k := v.(SSHKeysResult); err != nil || len(k) != 2 || len(k["pl_a"]) != 1 || k["pl_a"][0].Key != "ssh-ed25519 AAAA pl_a" {
		t.Fatalf("GetSSHKeys: %v %v", v, err)
	}

	// ReCreate: by a delegate; refused to others.
	if _, err := call(a, "ReCreate", SliceArgs{Slice: "pl_b"}); core.ErrorCode(err) != core.Forbidden {
		t.Errorf("pl_a re-creating pl_b: %v", err)
	}
	before := h.starts("pl_a")
	if _, err := call(b, "ReCreate", SliceArgs{Slice: "pl_a"}); err != nil {
		t.Fatal(err)
	}
	h.eventually("re-created", func() bool { return h.starts("pl_a") == before+1 && h.exists("pl_a") })
	h.rt.mu.Lock()
	calls := strings.Join(h.rt.calls, "\n")
	h.rt.mu.Unlock()
	if !strings.Contains(calls, "destroy pl_a") {
		t.Errorf("no destroy before the re-create:\n%s", calls)
	}

	// AdminTicket: root only, any signer; the other checks hold.
	now := h.clock.now().Unix()
	w := signTicket(t, own, "pl_t", 9, []int64{3}, now-10, now+60, rspec.RSpec{CPUShare: 2})
	if _, err := call(a, "Ticket", TicketArgs{Ticket: w}); core.ErrorCode(err) != core.Unauthenticated {
		t.Errorf("Ticket signed by an untrusted key: %v", err)
	}
	if _, err := call(a, "AdminTicket", TicketArgs{Ticket: w}); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "root only") {
		t.Errorf("AdminTicket from a slice: %v", err)
	}
	other := signTicket(t, own, "pl_t", 9, []int64{4}, now-10, now+60, rspec.RSpec{CPUShare: 2})
	if _, err := call(root, "AdminTicket", TicketArgs{Ticket: other}); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "this is node 3") {
		t.Errorf("AdminTicket for another node: %v", err)
	}
	if h.exists("pl_t") {
		t.Fatal("a refused ticket created a sliver")
	}
	v, err = call(root, "AdminTicket", TicketArgs{Ticket: w})
	if r, _ := v.(TicketResult); err != nil || r.Slice != "pl_t" {
		t.Fatalf("AdminTicket: %v %v", v, err)
	}
	h.eventually("ticketed sliver", func() bool { return h.exists("pl_t") })
	if _, err := call(root, "AdminTicket", TicketArgs{Ticket: w}); core.ErrorCode(err) != core.Conflict {
		t.Errorf("AdminTicket replayed: %v", err)
	}
}

// FuzzRcapCalls: any arguments to the capability methods, from any
// caller, are either refused with a precise code or leave the node's
// capabilities and loans within what each slice holds (Effective refuses
// none, and the sums of shares and guarantees are unchanged).
func FuzzRcapCalls(f *testing.F) {
	m := &Main{Config: Config{StateDir: f.TempDir(), PLC: newFakePLC(nil), Runtime: newFakeRuntime(), Net: newFakeNet(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Unix(1_000_000, 0) }}}
	if err := m.init(); err != nil {
		f.Fatal(err)
	}
	m.mu.Lock()
	m.state = &core.NodeState{Version: "v1", NodeID: 1, Slivers: []core.Sliver{
		sliverOf("pl_a", 1, "cpu_share", "8", "cpu_pct", "20", "net_max_rate", "10000", "mem_max", "1048576"),
		sliverOf("pl_b", 2, "delegations", "pl_a"), sliverOf("pl_c", 3)}}
	m.mu.Unlock()
	api := m.APIMethods()
	methods := []string{"Acquire", "Bind", "Delegate", "Release", "GetRcaps"}
	callers := []nmapi.Caller{{Slice: "pl_a"}, {Slice: "pl_b"}, {Slice: "pl_c"}, {Root: true}}
	v, err := api["Acquire"].Fn(context.Background(), callers[0], json.RawMessage(`{"slice":"pl_a","amount":{"cpu_share":3,"cpu_pct":5}}`))
	if err != nil {
		f.Fatal(err)
	}
	tok := v.(RcapResult).Rcap
	f.Add(uint8(0), uint8(0), []byte(`{"slice":"pl_a","amount":{"cpu_share":2,"net_max_rate":500}}`))
	f.Add(uint8(1), uint8(1), []byte(`{"rcap":"`+tok+`","slice":"pl_b"}`))
	f.Add(uint8(1), uint8(0), []byte(`{"rcap":"`+tok+`","slice":"pl_c"}`))
	f.Add(uint8(2), uint8(2), []byte(`{"rcap":"`+tok+`","amount":{"cpu_share":1}}`))
	f.Add(uint8(3), uint8(2), []byte(`{"rcap":"`+tok+`"}`))
	f.Add(uint8(4), uint8(3), []byte(`{"slice":"pl_a"}`))
	f.Add(uint8(0), uint8(3), []byte(`{"slice":"pl_b","amount":{"mem_max":-1},"until":1}`))
	f.Fuzz(func(t *testing.T, method, caller uint8, args []byte) {
		raw, err := nmapi.ReadArgs(bytes.NewReader(args))
		if err != nil {
			return
		}
		_, err = api[methods[int(method)%len(methods)]].Fn(context.Background(), callers[int(caller)%len(callers)], raw)
		switch core.ErrorCode(err) {
		case "", core.Invalid, core.NotFound, core.Forbidden, core.Conflict:
		default:
			t.Fatalf("%s %s: %v", methods[int(method)%len(methods)], args, err)
		}
		st, now, _ := m.apiState()
		h := m.holdingsAt(st, now)
		f := m.control.snapshot()
		eff, refused := rspec.Effective(h, f.allLoans(now), now)
		if len(refused) > 0 {
			t.Fatalf("after %s %s: Effective refuses %v", methods[int(method)%len(methods)], args, refused)
		}
		for _, n := range []string{"pl_a", "pl_b", "pl_c"} {
			for _, r := range rspec.Names {
				if h[n].Get(r) > 0 && rcap.Taken(f.Rcaps, n, now).Get(r)+rspec.Keep.Get(r) > h[n].Get(r) {
					t.Fatalf("%s: capabilities take %v of %v", n, rcap.Taken(f.Rcaps, n, now), h[n])
				}
			}
		}
		var before, after rspec.RSpec
		for n := range h {
			before, after = before.Add(h[n]), after.Add(eff[n])
		}
		if before.CPUShare != after.CPUShare || before.CPUPct != after.CPUPct || before.NetMinKbit != after.NetMinKbit {
			t.Fatalf("sums changed: %v -> %v", before, after)
		}
	})
}
