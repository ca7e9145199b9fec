package rspec

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

var node = Capacity{CPUPct: 90, NetKbit: 100_000, MemKiB: 8 << 20}

func TestFitsSumsPromises(t *testing.T) {
	h := map[string]RSpec{
		"a": {CPUShare: 1, CPUPct: 50, NetMinKbit: 40_000, MemKiB: 4 << 20},
		"b": {CPUShare: 3, CPUPct: 40, NetMinKbit: 60_000, MemKiB: 4 << 20},
	}
	if err := Fits(node, h); err != nil {
		t.Fatalf("exactly at capacity refused: %v", err)
	}
	for _, c := range []struct {
		holder, want string
		r            RSpec
	}{
		{"c", "cpu_pct: 91% promised", RSpec{CPUPct: 1}},
		{"c", "net_min_rate: 100001 kbit/s promised", RSpec{NetMinKbit: 1}},
		{"c", "mem_max: 8388609 KiB promised", RSpec{MemKiB: 1}},
		{"c", "c: net_max_rate 100001 kbit/s exceeds", RSpec{NetMaxKbit: 100_001}},
	} {
		err := Admit(node, h, c.holder, c.r)
		if core.ErrorCode(err) != core.Conflict || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Admit(%v) = %v, want Conflict %q", c.r, err, c.want)
		}
	}
	// Replacing a holding counts it once; shares and ceilings are not summed.
	if err := Admit(node, h, "a", RSpec{CPUShare: 1000, CPUPct: 50, NetMaxKbit: 100_000}); err != nil {
		t.Errorf("replacing a's holding: %v", err)
	}
	// Unlimited memory promises nothing; an unknown link checks no rate.
	if err := Fits(Capacity{CPUPct: 90}, map[string]RSpec{"x": {NetMinKbit: 1 << 40, NetMaxKbit: 1 << 40}}); err != nil {
		t.Errorf("unknown link: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		r     RSpec
		field string
	}{
		{RSpec{CPUPct: -1}, CPUPct},
		{RSpec{CPUPct: 101}, CPUPct},
		{RSpec{MemKiB: -5}, MemMax},
		{RSpec{NetMinKbit: 10, NetMaxKbit: 5}, NetMinRate},
	} {
		if err := Admit(node, nil, "x", c.r); core.ErrorField(err) != c.field {
			t.Errorf("%v: %v, want field %s", c.r, err, c.field)
		}
	}
}

func TestLoansMoveAndExpire(t *testing.T) {
	h := map[string]RSpec{
		"lender":   {CPUShare: 4, CPUPct: 30, NetMinKbit: 1000, NetMaxKbit: 10_000, MemKiB: 1 << 20},
		"borrower": {CPUShare: 1, NetMaxKbit: 2000},
	}
	loan := Loan{From: "lender", To: "borrower", Amount: RSpec{CPUShare: 3, CPUPct: 20, NetMinKbit: 500, NetMaxKbit: 5000, MemKiB: 1 << 19}, Until: 100}
	eff, refused := Effective(h, []Loan{loan}, 50)
	if len(refused) != 0 {
		t.Fatalf("refused: %v", refused)
	}
	if got, want := eff["lender"], (RSpec{CPUShare: 1, CPUPct: 10, NetMinKbit: 500, NetMaxKbit: 5000, MemKiB: 1 << 19}); got != want {
		t.Errorf("lender %v, want %v", got, want)
	}
	// The borrower's memory is unlimited: it stays so, the lender still gives.
	if got, want := eff["borrower"], (RSpec{CPUShare: 4, CPUPct: 20, NetMinKbit: 500, NetMaxKbit: 7000}); got != want {
		t.Errorf("borrower %v, want %v", got, want)
	}
	// At Until the loan is over: everything back.
	eff, _ = Effective(h, []Loan{loan}, 100)
	if eff["lender"] != h["lender"] || eff["borrower"] != h["borrower"] {
		t.Errorf("after expiry: %v", eff)
	}
}

func TestLoanRefusals(t *testing.T) {
	h := map[string]RSpec{
		"a": {CPUShare: 2, CPUPct: 10, NetMaxKbit: 100},
		"b": {CPUShare: 1},
	}
	for _, c := range []struct {
		l    Loan
		code core.Code
		want string
	}{
		{Loan{From: "a", To: "b", Amount: RSpec{CPUShare: 2}, Until: 9}, core.Forbidden, "cpu_share: a holds 2, has lent 0 and keeps 1: 2 is more than the 1"},
		{Loan{From: "a", To: "b", Amount: RSpec{NetMaxKbit: 93}, Until: 9}, core.Forbidden, "keeps 8"},
		{Loan{From: "a", To: "b", Amount: RSpec{MemKiB: 1}, Until: 9}, core.Forbidden, "no finite mem_max"},
		{Loan{From: "b", To: "a", Amount: RSpec{CPUPct: 1}, Until: 9}, core.Forbidden, "b holds 0"},
		{Loan{From: "a", To: "zz", Amount: RSpec{CPUPct: 1}, Until: 9}, core.NotFound, `borrower "zz"`},
		{Loan{From: "zz", To: "a", Amount: RSpec{CPUPct: 1}, Until: 9}, core.NotFound, `lender "zz"`},
		{Loan{From: "a", To: "a", Amount: RSpec{CPUPct: 1}, Until: 9}, core.Invalid, "itself"},
		{Loan{From: "a", To: "b", Amount: RSpec{}, Until: 9}, core.Invalid, "nothing"},
		{Loan{From: "a", To: "b", Amount: RSpec{CPUPct: -1}, Until: 9}, core.Invalid, "negative"},
		{Loan{From: "a", To: "b", Amount: RSpec{CPUPct: 1}, Until: 1}, core.Invalid, "ended"},
	} {
		err := CheckLoan(c.l, h, RSpec{}, 5)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %s %q", c.l, err, c.code, c.want)
		}
	}
	// Two loans that each fit but not together: the second is refused.
	two := []Loan{
		{From: "a", To: "b", Amount: RSpec{CPUPct: 6}, Until: 9},
		{From: "a", To: "b", Amount: RSpec{CPUPct: 6}, Until: 9},
	}
	eff, refused := Effective(h, two, 5)
	if len(refused) != 1 || refused[1] == nil || eff["a"].CPUPct != 4 || eff["b"].CPUPct != 6 {
		t.Errorf("eff %v refused %v", eff, refused)
	}
	// What was borrowed cannot be lent on (only own allocation is lendable).
	chain := []Loan{
		{From: "a", To: "b", Amount: RSpec{CPUPct: 10}, Until: 9},
		{From: "b", To: "a", Amount: RSpec{CPUPct: 5}, Until: 9},
	}
	if _, refused := Effective(h, chain, 5); refused[1] == nil {
		t.Error("re-lending a borrowed guarantee was accepted")
	}
}

// Loans never create resources and never break capacity: random holdings
// that fit stay within capacity and keep their sums under any loans.
func TestLoansNeverCreate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d"}
	for i := 0; i < 2000; i++ {
		h := map[string]RSpec{}
		left := node.CPUPct
		for _, n := range names {
			p := rng.Int64N(left/2 + 1)
			left -= p
			h[n] = RSpec{CPUShare: 1 + rng.Int64N(10), CPUPct: p, NetMinKbit: rng.Int64N(20_000), NetMaxKbit: rng.Int64N(50_000), MemKiB: rng.Int64N(1 << 20)}
		}
		if err := Fits(node, h); err != nil {
			t.Fatal(err)
		}
		var loans []Loan
		for j := 0; j < 5; j++ {
			loans = append(loans, Loan{From: names[rng.IntN(4)], To: names[rng.IntN(4)], Until: 10 + rng.Int64N(10),
				Amount: RSpec{CPUShare: rng.Int64N(5), CPUPct: rng.Int64N(30), NetMinKbit: rng.Int64N(10_000), NetMaxKbit: rng.Int64N(10_000), MemKiB: rng.Int64N(1 << 19)}})
		}
		eff, _ := Effective(h, loans, 12)
		var before, after RSpec
		for _, n := range names {
			before, after = before.Add(h[n]), after.Add(eff[n])
			for _, r := range Names {
				if eff[n].Get(r) < 0 {
					t.Fatalf("negative %s for %s: %v from %v with %v", r, n, eff[n], h, loans)
				}
			}
		}
		if before.CPUPct != after.CPUPct || before.NetMinKbit != after.NetMinKbit || before.CPUShare != after.CPUShare || after.MemKiB > before.MemKiB || after.NetMaxKbit > before.NetMaxKbit {
			t.Fatalf("loans changed the totals: %v -> %v", before, after)
		}
		if err := Fits(Capacity{CPUPct: node.CPUPct, MemKiB: node.MemKiB}, eff); err != nil {
			t.Fatalf("loans broke capacity: %v", err)
		}
	}
}

func TestAttributesRoundTrip(t *testing.T) {
	def, err := FromAttributes(nil)
	if err != nil || def.CPUShare != 1 || def.CPUPct != 0 {
		t.Fatalf("defaults %v %v", def, err)
	}
	attrs := []core.Attribute{{TagName: "vref", Value: "default"}, {TagName: "cpu_share", Value: "2"}, {TagName: "cpu_share", Value: "5"}, {TagName: "net_max_rate", Value: "-1"}}
	r, err := FromAttributes(attrs)
	if err != nil || r.CPUShare != 5 || r.NetMaxKbit != 0 {
		t.Fatalf("%v %v", r, err)
	}
	want := RSpec{CPUShare: 3, CPUPct: 20, NetMinKbit: 100, NetMaxKbit: 2000, MemKiB: 1 << 20}
	out := want.Attributes(attrs)
	if out[0].TagName != "vref" || len(out) != 1+len(Names) {
		t.Fatalf("attributes %v", out)
	}
	if got, err := FromAttributes(out); err != nil || got != want {
		t.Fatalf("round trip %v %v", got, err)
	}
	if _, err := FromAttributes([]core.Attribute{{TagName: "cpu_pct", Value: "lots"}}); core.ErrorField(err) != "cpu_pct" {
		t.Errorf("bad value: %v", err)
	}
}

func TestClip(t *testing.T) {
	max := RSpec{CPUShare: 2, CPUPct: 10, NetMinKbit: 1000, NetMaxKbit: 5000, MemKiB: 1 << 20}
	cases := []struct {
		name   string
		in     RSpec
		capped []string
		want   RSpec
		change []string
	}{
		{"defaults, everything capped", RSpec{CPUShare: 1}, Names,
			RSpec{CPUShare: 1, NetMaxKbit: 5000, MemKiB: 1 << 20},
			[]string{"net_max_rate unlimited -> 5000", "mem_max unlimited -> 1048576"}},
		{"above every cap", RSpec{CPUShare: 8, CPUPct: 50, NetMinKbit: 9000, NetMaxKbit: 9000, MemKiB: 4 << 20}, Names,
			max, []string{"cpu_share 8 -> 2", "cpu_pct 50 -> 10", "net_min_rate 9000 -> 1000", "net_max_rate 9000 -> 5000", "mem_max 4194304 -> 1048576"}},
		{"within", RSpec{CPUShare: 2, CPUPct: 5, NetMaxKbit: 10, MemKiB: 10}, Names, RSpec{CPUShare: 2, CPUPct: 5, NetMaxKbit: 10, MemKiB: 10}, nil},
		{"only named ones", RSpec{CPUShare: 8, MemKiB: 0}, []string{CPUShare}, RSpec{CPUShare: 2}, []string{"cpu_share 8 -> 2"}},
		{"shaping off is unlimited", RSpec{NetMaxKbit: -1}, []string{NetMaxRate}, RSpec{NetMaxKbit: 5000}, []string{"net_max_rate unlimited -> 5000"}},
	}
	for _, c := range cases {
		got, ch := Clip(c.in, max, c.capped)
		if got != c.want || !slices.Equal(ch, c.change) {
			t.Errorf("%s: Clip = %+v %q, want %+v %q", c.name, got, ch, c.want, c.change)
		}
	}
}
