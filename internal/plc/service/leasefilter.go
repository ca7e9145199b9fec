package service

import (
	"time"

	"github.com/planetlab/pl/internal/core"
)

// leaseTimeLayouts are the string times PLCAPI accepts for leases (GMT).
var leaseTimeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02 15:04:05 UTC", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04 UTC"}

// ParseLeaseTime reads a lease time: an int (UNIX seconds) or a string in
// one of the original's formats, read as GMT.
func ParseLeaseTime(field string, v any) (int64, error) {
	if n, ok := core.AsInt(v); ok {
		return n, nil
	}
	if s, ok := v.(string); ok {
		for _, l := range leaseTimeLayouts {
			if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
				return t.Unix(), nil
			}
		}
		return 0, core.FieldErrorf(field, "%q is not a time (YYYY-MM-DD HH:MM[:SS][ UTC])", s)
	}
	return 0, core.FieldErrorf(field, "want an int or a string time, got %s", core.TypeName(v))
}

// leaseFilter rewrites the lease-only filter key "alive" (PLC/LeaseFilter.py):
// a time T selects leases running at T; a pair [from, until] selects leases
// overlapping that period.
func leaseFilter(f *core.Filter) (*core.Filter, error) {
	if f == nil || f.IsList {
		return f, nil
	}
	out := *f
	out.Terms = nil
	for _, t := range f.Terms {
		if t.Field != "alive" {
			out.Terms = append(out.Terms, t)
			continue
		}
		if f.Or || t.Not || t.Op != core.Eq {
			return nil, core.FieldErrorf("alive", "alive takes a plain time or [from, until], without -OR or prefixes")
		}
		from, until := any(nil), any(nil)
		if pair, ok := t.Value.([]any); ok {
			if len(pair) != 2 {
				return nil, core.FieldErrorf("alive", "want a time or a [from, until] pair")
			}
			from, until = pair[0], pair[1]
		} else {
			from, until = t.Value, t.Value
		}
		a, err := ParseLeaseTime("alive", from)
		if err != nil {
			return nil, err
		}
		b, err := ParseLeaseTime("alive", until)
		if err != nil {
			return nil, err
		}
		if a == b {
			out.Terms = append(out.Terms, core.Term{Field: "t_from", Op: core.Le, Value: a}, core.Term{Field: "t_until", Op: core.Gt, Value: a})
		} else {
			out.Terms = append(out.Terms, core.Term{Field: "t_from", Op: core.Lt, Value: b}, core.Term{Field: "t_until", Op: core.Gt, Value: a})
		}
	}
	return &out, nil
}
