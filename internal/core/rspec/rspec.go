// Package rspec is the arithmetic of resource specifications on one node:
// what a slice holds (from PLC's tags, a ticket, or loans), whether the
// holdings fit the node's capacity, and what each sliver effectively gets
// once loans are applied. It is pure: no clock, no I/O (callers pass now).
//
// Which figures are summed against the node's capacity and which are
// bounded per sliver:
//
//   - cpu_pct (guaranteed % of the node) and net_min_rate (guaranteed
//     kbit/s) are promises: their sums over every holder must not exceed
//     the node's capacity (Capacity.CPUPct, Capacity.NetKbit).
//   - mem_max (KiB) is a hard limit; a finite one is a promise too and
//     finite limits are summed against Capacity.MemKiB. 0 = unlimited (the
//     tag's default), which promises nothing and is not counted.
//   - cpu_share is a relative weight and net_max_rate a ceiling: neither
//     promises anything, so neither is summed; net_max_rate may not exceed
//     the node's link (Capacity.NetKbit) and 0 means "the node cap".
package rspec

import (
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

// RSpec is one slice's resources on a node. The JSON names are the slice
// tags' names (package core/tags).
type RSpec struct {
	CPUShare   int64 `json:"cpu_share"`    // weight
	CPUPct     int64 `json:"cpu_pct"`      // guaranteed % of the node
	NetMinKbit int64 `json:"net_min_rate"` // guaranteed kbit/s
	NetMaxKbit int64 `json:"net_max_rate"` // ceiling kbit/s; 0 = node cap
	MemKiB     int64 `json:"mem_max"`      // KiB; 0 = unlimited
}

// Resource names, as in loans and errors (the tags' names).
const (
	CPUShare   = "cpu_share"
	CPUPct     = "cpu_pct"
	NetMinRate = "net_min_rate"
	NetMaxRate = "net_max_rate"
	MemMax     = "mem_max"
)

// Names lists the resources in canonical order.
var Names = []string{CPUShare, CPUPct, NetMinRate, NetMaxRate, MemMax}

// Get returns the amount of one resource.
func (r RSpec) Get(name string) int64 {
	switch name {
	case CPUShare:
		return r.CPUShare
	case CPUPct:
		return r.CPUPct
	case NetMinRate:
		return r.NetMinKbit
	case NetMaxRate:
		return r.NetMaxKbit
	case MemMax:
		return r.MemKiB
	}
	return 0
}

func (r *RSpec) ptr(name string) *int64 {
	switch name {
	case CPUShare:
		return &r.CPUShare
	case CPUPct:
		return &r.CPUPct
	case NetMinRate:
		return &r.NetMinKbit
	case NetMaxRate:
		return &r.NetMaxKbit
	case MemMax:
		return &r.MemKiB
	}
	return nil
}

// Add returns r + o, resource by resource.
func (r RSpec) Add(o RSpec) RSpec {
	for _, n := range Names {
		*r.ptr(n) += o.Get(n)
	}
	return r
}

// Validate refuses negative amounts and a guarantee over 100%.
func (r RSpec) Validate() error {
	for _, n := range Names {
		if r.Get(n) < 0 {
			return core.FieldErrorf(n, "%d is negative", r.Get(n))
		}
	}
	if r.CPUPct > 100 {
		return core.FieldErrorf(CPUPct, "%d is more than 100%% of the node", r.CPUPct)
	}
	if r.NetMaxKbit > 0 && r.NetMinKbit > r.NetMaxKbit {
		return core.FieldErrorf(NetMinRate, "%d kbit/s is above net_max_rate %d", r.NetMinKbit, r.NetMaxKbit)
	}
	return nil
}

// Capacity is what a node can promise.
type Capacity struct {
	CPUPct  int64 // guarantees may take this % of the node (agent.MaxReservedPct)
	NetKbit int64 // the node's link, kbit/s; 0 = unknown: rates are not checked
	MemKiB  int64 // memory slivers may be promised; 0 = unknown: not checked
}

// Fits checks that holdings (holder -> what it holds) fit cap: the sums of
// cpu_pct, net_min_rate and finite mem_max, and each net_max_rate. The
// error is Conflict and names the resource, the total and the capacity.
func Fits(c Capacity, holdings map[string]RSpec) error {
	var pct, netMin, mem int64
	names := make([]string, 0, len(holdings))
	for h := range holdings {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		r := holdings[h]
		pct += r.CPUPct
		netMin += r.NetMinKbit
		mem += r.MemKiB
		if c.NetKbit > 0 && r.NetMaxKbit > c.NetKbit {
			return core.Errorf(core.Conflict, "%s: %s %d kbit/s exceeds the node's link %d kbit/s", h, NetMaxRate, r.NetMaxKbit, c.NetKbit)
		}
	}
	if pct > c.CPUPct {
		return core.Errorf(core.Conflict, "%s: %d%% promised in all, the node can guarantee %d%%", CPUPct, pct, c.CPUPct)
	}
	if c.NetKbit > 0 && netMin > c.NetKbit {
		return core.Errorf(core.Conflict, "%s: %d kbit/s promised in all, the node's link is %d kbit/s", NetMinRate, netMin, c.NetKbit)
	}
	if c.MemKiB > 0 && mem > c.MemKiB {
		return core.Errorf(core.Conflict, "%s: %d KiB promised in all, the node has %d KiB for slivers", MemMax, mem, c.MemKiB)
	}
	return nil
}

// Admit checks that holder may hold r in place of what it holds now.
func Admit(c Capacity, holdings map[string]RSpec, holder string, r RSpec) error {
	if err := r.Validate(); err != nil {
		return err
	}
	next := make(map[string]RSpec, len(holdings)+1)
	for h, x := range holdings {
		next[h] = x
	}
	next[holder] = r
	return Fits(c, next)
}

// Loan moves Amount from one slice to another until Until (UNIX seconds).
type Loan struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Amount RSpec  `json:"amount"`
	Until  int64  `json:"until"`
}

// Active reports whether the loan is in force at now.
func (l Loan) Active(now int64) bool { return now < l.Until }

// Keep is what a lender always keeps (the original's minimums, reference
// nodemanager.md §3.1): a weight of 1 and 8 kbit/s of ceiling.
var Keep = RSpec{CPUShare: 1, NetMaxKbit: 8}

// CheckLoan says why l cannot be made from what lender holds (its own
// allocation, not what it borrowed) after lending out already; nil if it
// can. A finite amount cannot be lent out of an unlimited mem_max or
// net_max_rate (0): there is nothing to take it from.
func CheckLoan(l Loan, holdings map[string]RSpec, lentOut RSpec, now int64) error {
	if err := l.Amount.Validate(); err != nil {
		return err
	}
	if l.Amount == (RSpec{}) {
		return core.FieldErrorf("amount", "a loan of nothing")
	}
	if l.From == l.To {
		return core.FieldErrorf("to", "%s cannot lend to itself", l.From)
	}
	if !l.Active(now) {
		return core.FieldErrorf("until", "the loan ended at %d (now %d)", l.Until, now)
	}
	if _, ok := holdings[l.From]; !ok {
		return core.Errorf(core.NotFound, "lender %q holds nothing on this node", l.From)
	}
	if _, ok := holdings[l.To]; !ok {
		return core.Errorf(core.NotFound, "borrower %q has no sliver on this node", l.To)
	}
	return CheckTake(l.From, l.Amount, holdings, lentOut)
}

// CheckTake says why amount cannot be taken out of what holder holds (its
// own allocation) once taken was already taken out of it (lent, or held by
// resource capabilities), keeping Keep; nil if it can. Loans (CheckLoan)
// and capabilities (package core/rcap) both go through it, so together
// they never give away more than the holder has.
func CheckTake(holder string, amount RSpec, holdings map[string]RSpec, taken RSpec) error {
	own, ok := holdings[holder]
	if !ok {
		return core.Errorf(core.NotFound, "lender %q holds nothing on this node", holder)
	}
	for _, n := range Names {
		want := amount.Get(n)
		if want == 0 {
			continue
		}
		have := own.Get(n)
		if have == 0 && (n == MemMax || n == NetMaxRate) {
			return core.Errorf(core.Forbidden, "%s: %s holds no finite %s to lend", n, holder, n)
		}
		if free := have - taken.Get(n) - Keep.Get(n); want > free {
			return core.Errorf(core.Forbidden, "%s: %s holds %d, has lent %d and keeps %d: %d is more than the %d it can lend", n, holder, have, taken.Get(n), Keep.Get(n), want, max(free, 0))
		}
	}
	return nil
}

// Sub returns r - o, resource by resource.
func (r RSpec) Sub(o RSpec) RSpec {
	for _, n := range Names {
		*r.ptr(n) -= o.Get(n)
	}
	return r
}

// Exceeds names the first resource (in Names order) of which o has more
// than r; "" if o fits in r.
func (r RSpec) Exceeds(o RSpec) string {
	for _, n := range Names {
		if o.Get(n) > r.Get(n) {
			return n
		}
	}
	return ""
}

// Effective applies the active loans to holdings (own allocations, from
// PLC or tickets) in order: lender - amount, borrower + amount. A loan
// that cannot be made (CheckLoan) is skipped and reported by index. An
// unlimited (0) mem_max or net_max_rate of a borrower stays unlimited.
// Loans never create resources: the sums of cpu_pct, net_min_rate and
// cpu_share over all holders are the same before and after.
func Effective(holdings map[string]RSpec, loans []Loan, now int64) (map[string]RSpec, map[int]error) {
	out := make(map[string]RSpec, len(holdings))
	for h, r := range holdings {
		out[h] = r
	}
	refused := map[int]error{}
	lent := map[string]RSpec{}
	for i, l := range loans {
		if !l.Active(now) {
			continue
		}
		if err := CheckLoan(l, holdings, lent[l.From], now); err != nil {
			refused[i] = err
			continue
		}
		lent[l.From] = lent[l.From].Add(l.Amount)
		from, to := out[l.From], out[l.To]
		for _, n := range Names {
			a := l.Amount.Get(n)
			*from.ptr(n) -= a
			if (n == MemMax || n == NetMaxRate) && to.Get(n) == 0 {
				continue // unlimited stays unlimited
			}
			*to.ptr(n) += a
		}
		out[l.From], out[l.To] = from, to
	}
	return out, refused
}

// String renders r compactly for logs.
func (r RSpec) String() string {
	return fmt.Sprintf("cpu_share=%d cpu_pct=%d net_min_rate=%d net_max_rate=%d mem_max=%d", r.CPUShare, r.CPUPct, r.NetMinKbit, r.NetMaxKbit, r.MemKiB)
}

// FromAttributes reads the rspec from a sliver's tags (last value wins;
// absent tags take the tag table's defaults); net_max_rate -1 (shaping
// off) reads as 0, the node cap.
func FromAttributes(attrs []core.Attribute) (RSpec, error) {
	last := map[string]string{}
	for _, a := range attrs {
		last[a.TagName] = a.Value
	}
	var r RSpec
	for _, n := range Names {
		v := tags.DefaultInt(n)
		if s, ok := last[n]; ok {
			var err error
			if v, err = tags.MustLookup(n).Int(s); err != nil {
				return RSpec{}, err
			}
		}
		*r.ptr(n) = v
	}
	if r.NetMaxKbit < 0 {
		r.NetMaxKbit = 0
	}
	return r, nil
}

// Attributes returns attrs with the rspec's tags replaced by r's values
// (what a ticket or a loan makes of a sliver's tags).
func (r RSpec) Attributes(attrs []core.Attribute) []core.Attribute {
	out := make([]core.Attribute, 0, len(attrs)+len(Names))
	for _, a := range attrs {
		if r.ptr(a.TagName) == nil {
			out = append(out, a)
		}
	}
	for _, n := range Names {
		out = append(out, core.Attribute{TagName: n, Value: strconv.FormatInt(r.Get(n), 10)})
	}
	return out
}

// Unlimited reports whether v, an amount of resource name, means "no
// limit": mem_max and net_max_rate 0 (and net_max_rate below 0, shaping
// off).
func Unlimited(name string, v int64) bool {
	return (name == MemMax || name == NetMaxRate) && v <= 0
}

// Clip bounds the resources named in capped to at most max's amounts (an
// unlimited amount is above every cap) and reports each change as
// "name v -> cap" (v "unlimited" when it was). Resources not named keep
// their amount.
func Clip(r, max RSpec, capped []string) (RSpec, []string) {
	var changed []string
	for _, n := range Names {
		if !slices.Contains(capped, n) {
			continue
		}
		v, c := r.Get(n), max.Get(n)
		if !Unlimited(n, v) && v <= c {
			continue
		}
		from := strconv.FormatInt(v, 10)
		if Unlimited(n, v) {
			from = "unlimited"
		}
		changed = append(changed, fmt.Sprintf("%s %s -> %d", n, from, c))
		*r.ptr(n) = c
	}
	return r, changed
}
