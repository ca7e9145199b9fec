package client

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func roundTrip(t *testing.T, f *core.Filter) *core.Filter {
	t.Helper()
	s, err := EncodeFilter(f)
	if err != nil {
		t.Fatalf("EncodeFilter(%+v): %v", f, err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("EncodeFilter(%+v) = %s: not JSON: %v", f, s, err)
	}
	g, err := core.ParseFilter(v)
	if err != nil {
		t.Fatalf("ParseFilter(%s): %v", s, err)
	}
	return g
}

func TestEncodeFilterRoundTrip(t *testing.T) {
	for _, f := range []*core.Filter{
		{IsList: true, IDs: []int64{1, 2}, Names: []string{"a", `we"ird`}},
		{IsList: true},
		{Terms: []core.Term{{Field: "name", Op: core.Eq, Value: "x*"}}},
		{Terms: []core.Term{{Field: "latitude", Op: core.Gt, Value: 42.0}, {Field: "site_id", Op: core.Le, Value: int64(3)}}},
		{Terms: []core.Term{{Field: "enabled", Op: core.Eq, Not: true, Value: true}, {Field: "url", Op: core.Eq, Value: nil}}},
		{Terms: []core.Term{{Field: "role_ids", Op: core.ContainsAny, Value: []any{int64(20), int64(40)}}, {Field: "x", Op: core.Ge, Value: 1.5}}},
		{Terms: []core.Term{{Field: "node_ids", Op: core.ContainsAll, Value: []any{int64(1)}}, {Field: "n", Op: core.Lt, Value: int64(-4)}}},
		{Terms: []core.Term{{Field: "login_base", Op: core.Eq, Value: []any{"a", "b"}}}, Or: true,
			Sort: []core.SortKey{{Field: "name", Desc: true}, {Field: "site_id"}}, Limit: 5, Offset: 10},
	} {
		g := roundTrip(t, f)
		if !reflect.DeepEqual(normalize(f), normalize(g)) {
			t.Errorf("round trip:\n got %+v\nwant %+v", g, f)
		}
	}
	if _, err := EncodeFilter(&core.Filter{IsList: true, IDs: []int64{1}, Limit: 3}); core.ErrorCode(err) != core.Invalid {
		t.Errorf("list with limit: %v", err)
	}
	if _, err := EncodeFilter(&core.Filter{Terms: []core.Term{{Field: "a", Op: core.Eq, Value: 1}, {Field: "a", Op: core.Eq, Value: 2}}}); core.ErrorCode(err) != core.Invalid {
		t.Errorf("duplicate key: %v", err)
	}
}

// normalize sorts terms and makes empty slices nil for comparison.
func normalize(f *core.Filter) core.Filter {
	g := *f
	g.Terms = append([]core.Term(nil), f.Terms...)
	for i := range g.Terms {
		for j := i + 1; j < len(g.Terms); j++ {
			if g.Terms[j].Field < g.Terms[i].Field {
				g.Terms[i], g.Terms[j] = g.Terms[j], g.Terms[i]
			}
		}
	}
	if len(g.Terms) == 0 {
		g.Terms = nil
	}
	if len(g.IDs) == 0 {
		g.IDs = nil
	}
	if len(g.Names) == 0 {
		g.Names = nil
	}
	if len(g.Sort) == 0 {
		g.Sort = nil
	}
	return g
}

func FuzzEncodeFilter(f *testing.F) {
	f.Add("name", "x*", int64(3), 1.5, true)
	f.Add("~a", "", int64(-1), 0.0, false)
	f.Fuzz(func(t *testing.T, field, s string, n int64, x float64, desc bool) {
		if field == "" {
			return
		}
		flt := &core.Filter{Terms: []core.Term{
			{Field: field, Op: core.Eq, Value: s},
			{Field: field + "_n", Op: core.Gt, Value: n},
		}, Sort: []core.SortKey{{Field: field, Desc: desc}}}
		if x == x && x < 1e300 && x > -1e300 {
			flt.Terms = append(flt.Terms, core.Term{Field: field + "_x", Op: core.Le, Value: x})
		}
		enc, err := EncodeFilter(flt)
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(enc)))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("not JSON: %s", enc)
		}
		if _, err := core.ParseFilter(v); err != nil {
			// field names with prefix characters legitimately fail
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("ParseFilter(%s): %v", enc, err)
			}
		}
	})
}

func TestParseFingerprint(t *testing.T) {
	if _, err := New("ftp://x", Options{}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := New("http://x", Options{Fingerprint: "00"}); err == nil {
		t.Error("pin on plain HTTP accepted")
	}
}
