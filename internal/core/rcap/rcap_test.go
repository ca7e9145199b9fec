package rcap

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
)

func TestTokens(t *testing.T) {
	tok, hash, err := NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Parse(tok); err != nil || got != hash {
		t.Fatalf("Parse(new token) = %q %v, want %q", got, err, hash)
	}
	tok2, _, _ := NewToken(nil)
	if tok == tok2 {
		t.Fatal("two tokens alike")
	}
	if strings.Contains(hash, tok[len(Prefix):]) || len(hash) != 64 {
		t.Fatalf("hash %q", hash)
	}
	// A fixed source gives a fixed token (the form is pinned).
	fixed, _, _ := NewToken(bytes.NewReader(make([]byte, 32)))
	if fixed != "rcap1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("token of zeros: %q", fixed)
	}
	for _, bad := range []string{"", "rcap1.", "rcap2." + tok[len(Prefix):], tok + "A", tok[:len(tok)-1], tok + "=", tok[:20] + "\r" + tok[20:], tok[:20] + "\n" + tok[20:], strings.Replace(tok, tok[len(Prefix):len(Prefix)+1], "+", 1), " " + tok} {
		if _, err := Parse(bad); core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != "rcap" {
			t.Errorf("Parse(%q) = %v, want Invalid on rcap", bad, err)
		}
	}
	// The last base64 digit carries 4 spare bits: a non-canonical one is refused.
	last := fixed[:len(fixed)-1] + "B"
	if _, err := Parse(last); err == nil {
		t.Errorf("non-canonical token %q accepted", last)
	}
}

func TestAcquireTakesOutOfHoldings(t *testing.T) {
	h := map[string]rspec.RSpec{"a": {CPUShare: 4, CPUPct: 20, NetMaxKbit: 1000, MemKiB: 0}, "b": {CPUShare: 1}}
	var caps []Cap
	if err := CheckAcquire("a", rspec.RSpec{CPUShare: 2, CPUPct: 10}, h, rspec.RSpec{}, caps, 0); err != nil {
		t.Fatal(err)
	}
	caps = append(caps, Cap{Hash: "h1", From: "a", Amount: rspec.RSpec{CPUShare: 2, CPUPct: 10}, Until: 100})
	for _, c := range []struct {
		holder string
		amount rspec.RSpec
		lent   rspec.RSpec
		code   core.Code
		want   string
	}{
		{"a", rspec.RSpec{CPUShare: 2}, rspec.RSpec{}, core.Forbidden, "cpu_share: a holds 4, has lent 2 and keeps 1: 2 is more than the 1"},
		{"a", rspec.RSpec{CPUPct: 5}, rspec.RSpec{CPUPct: 6}, core.Forbidden, "cpu_pct: a holds 20, has lent 16"},
		{"a", rspec.RSpec{MemKiB: 1}, rspec.RSpec{}, core.Forbidden, "no finite mem_max"},
		{"a", rspec.RSpec{}, rspec.RSpec{}, core.Invalid, "a capability for nothing"},
		{"a", rspec.RSpec{CPUShare: -1}, rspec.RSpec{}, core.Invalid, "negative"},
		{"z", rspec.RSpec{CPUShare: 1}, rspec.RSpec{}, core.NotFound, `"z" holds nothing`},
	} {
		err := CheckAcquire(c.holder, c.amount, h, c.lent, caps, 50)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("acquire %v from %s: %v, want %s %q", c.amount, c.holder, err, c.code, c.want)
		}
	}
	// After the end the capability takes nothing.
	if err := CheckAcquire("a", rspec.RSpec{CPUShare: 3}, h, rspec.RSpec{}, caps, 100); err != nil {
		t.Errorf("after the end: %v", err)
	}
	if tk := Taken(caps, "a", 99); tk.CPUShare != 2 || Taken(caps, "a", 100) != (rspec.RSpec{}) {
		t.Errorf("Taken %v", tk)
	}
}

func TestSplitAndMerge(t *testing.T) {
	c := Cap{Hash: strings.Repeat("ab", 32), From: "a", To: "b", Amount: rspec.RSpec{CPUShare: 3, NetMaxKbit: 500}, Until: 10}
	rest, part, err := Split(c, rspec.RSpec{CPUShare: 1, NetMaxKbit: 200})
	if err != nil {
		t.Fatal(err)
	}
	if rest.Amount != (rspec.RSpec{CPUShare: 2, NetMaxKbit: 300}) || rest.To != "b" || part.To != "" || part.From != "a" || part.Until != 10 {
		t.Fatalf("split: %+v %+v", rest, part)
	}
	// Merged back, the parts are the whole: nothing created or lost.
	if rest.Amount.Add(part.Amount) != c.Amount {
		t.Fatalf("parts %v + %v != %v", rest.Amount, part.Amount, c.Amount)
	}
	for _, c2 := range []struct {
		amount rspec.RSpec
		code   core.Code
		want   string
	}{
		{rspec.RSpec{CPUShare: 4}, core.Forbidden, "cpu_share: capability abababababababab holds 3: 4 is more"},
		{rspec.RSpec{CPUPct: 1}, core.Forbidden, "cpu_pct"},
		{c.Amount, core.Invalid, "hand over its token"},
		{rspec.RSpec{}, core.Invalid, "nothing"},
	} {
		if _, _, err := Split(c, c2.amount); core.ErrorCode(err) != c2.code || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("Split %v: %v, want %s %q", c2.amount, err, c2.code, c2.want)
		}
	}
}

func TestFindAndExpiry(t *testing.T) {
	caps := []Cap{{Hash: "x1", From: "a", Until: 10}, {Hash: "x2", From: "a", To: "b", Amount: rspec.RSpec{CPUShare: 1}, Until: 20}}
	if i, err := Find(caps, "x2", 5); i != 1 || err != nil {
		t.Fatalf("Find: %d %v", i, err)
	}
	if _, err := Find(caps, "x1", 10); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "ended at 10") {
		t.Errorf("ended: %v", err)
	}
	if _, err := Find(caps, "nope", 5); core.ErrorCode(err) != core.NotFound {
		t.Errorf("unknown: %v", err)
	}
	if l := Loans(caps, 5); len(l) != 1 || l[0].To != "b" || l[0].From != "a" {
		t.Errorf("Loans: %v", l)
	}
	if l := Loans(caps, 20); len(l) != 0 {
		t.Errorf("Loans after the end: %v", l)
	}
	if p := Prune(caps, 10); len(p) != 1 || p[0].Hash != "x2" {
		t.Errorf("Prune: %v", p)
	}
}

// Random acquires, binds, splits and releases, each checked as the node
// manager checks them, never create resources: the sums over effective
// rspecs equal those of the holdings, no holder gives more than it has,
// and a split takes nothing more out of its slice.
func TestCapsNeverCreate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	names := []string{"a", "b", "c", "d"}
	var acquired, bound, split, released int
	for round := 0; round < 300; round++ {
		h := map[string]rspec.RSpec{}
		for _, n := range names {
			h[n] = rspec.RSpec{CPUShare: 1 + r.Int64N(10), CPUPct: r.Int64N(20), NetMinKbit: r.Int64N(1000), NetMaxKbit: r.Int64N(3) * 5000, MemKiB: r.Int64N(2) << 20}
		}
		var loans []rspec.Loan
		var caps []Cap
		now := int64(100)
		for step := 0; step < 20; step++ {
			from := names[r.IntN(len(names))]
			amt := rspec.RSpec{CPUShare: r.Int64N(4), CPUPct: r.Int64N(8), NetMinKbit: r.Int64N(400), NetMaxKbit: r.Int64N(3000), MemKiB: r.Int64N(2) << 19}
			switch r.IntN(5) {
			case 0: // a loan, checked as SetLoans does
				l := rspec.Loan{From: from, To: names[r.IntN(len(names))], Amount: amt, Until: now + 1 + r.Int64N(50)}
				lent := Taken(caps, from, now)
				for _, x := range loans {
					if x.From == from && x.Active(now) {
						lent = lent.Add(x.Amount)
					}
				}
				if rspec.CheckLoan(l, h, lent, now) == nil {
					loans = append(loans, l)
				}
			case 1: // acquire
				var lent rspec.RSpec
				for _, x := range loans {
					if x.From == from && x.Active(now) {
						lent = lent.Add(x.Amount)
					}
				}
				if CheckAcquire(from, amt, h, lent, caps, now) == nil {
					caps = append(caps, Cap{Hash: string(rune('A' + step)), From: from, Amount: amt, Until: now + 1 + r.Int64N(50)})
					acquired++
				}
			case 2: // bind
				if len(caps) > 0 {
					i := r.IntN(len(caps))
					if to := names[r.IntN(len(names))]; to != caps[i].From {
						caps[i].To = to
						bound++
					}
				}
			case 3: // split
				if len(caps) > 0 {
					i := r.IntN(len(caps))
					if rest, part, err := Split(caps[i], amt); err == nil {
						before := Taken(caps, caps[i].From, now)
						caps[i] = rest
						part.Hash = "split" + string(rune('A'+step))
						caps = append(caps, part)
						split++
						if after := Taken(caps, part.From, now); after != before {
							t.Fatalf("round %d: a split changed what %s gives: %v -> %v", round, part.From, before, after)
						}
					}
				}
			case 4: // release
				if len(caps) > 0 {
					i := r.IntN(len(caps))
					caps = append(caps[:i], caps[i+1:]...)
					released++
				}
			}
			now += r.Int64N(5)
			all := append(append([]rspec.Loan(nil), loans...), Loans(caps, now)...)
			eff, refused := rspec.Effective(h, all, now)
			if len(refused) > 0 {
				t.Fatalf("round %d: checked loans and capabilities refused by Effective: %v", round, refused)
			}
			var before, after rspec.RSpec
			for _, n := range names {
				before, after = before.Add(h[n]), after.Add(eff[n])
				if eff[n].CPUShare < 1 || eff[n].CPUPct < 0 || eff[n].NetMinKbit < 0 || eff[n].MemKiB < 0 {
					t.Fatalf("round %d: %s gave more than it has: %v (holds %v)", round, n, eff[n], h[n])
				}
			}
			if before.CPUShare != after.CPUShare || before.CPUPct != after.CPUPct || before.NetMinKbit != after.NetMinKbit {
				t.Fatalf("round %d: sums changed: %v -> %v", round, before, after)
			}
		}
	}
	if acquired == 0 || bound == 0 || split == 0 || released == 0 {
		t.Fatalf("operations not exercised: %d acquired, %d bound, %d split, %d released", acquired, bound, split, released)
	}
}

// FuzzParse: no token makes Parse panic; an accepted one is canonical
// (it re-encodes to itself) and hashes as a new token would.
func FuzzParse(f *testing.F) {
	tok, _, _ := NewToken(nil)
	f.Add(tok)
	f.Add("rcap1.")
	f.Add("rcap1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Add("pl1.x.y")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("Parse(%q): %v, not Invalid", s, err)
			}
			if len(s) > 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("Parse(%q): %v echoes the token", s, err)
			}
			return
		}
		if h != hashOf(s) || len(s) != len(tok) {
			t.Fatalf("Parse(%q) accepted with hash %q", s, h)
		}
	})
}
