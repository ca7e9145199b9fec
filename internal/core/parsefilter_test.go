package core

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want *Filter
	}{
		{"nil", nil, nil},
		{"bare int", int64(3), &Filter{IsList: true, IDs: []int64{3}}},
		{"bare name", "pl", &Filter{IsList: true, Names: []string{"pl"}}},
		{"empty list", []any{}, &Filter{IsList: true}},
		{"mixed list", []any{int64(1), "a", float64(2)}, &Filter{IsList: true, IDs: []int64{1, 2}, Names: []string{"a"}}},
		{"dict", map[string]any{"hostname": "*.org", "~node_id": []any{int64(1), int64(2)}, "]last_contact": json.Number("5"),
			"|role_ids": int64(20), "-SORT": []any{"-hostname", "+node_id"}, "-LIMIT": float64(10), "-OFFSET": int64(2), "-OR": true},
			&Filter{Terms: []Term{
				{Field: "last_contact", Op: Ge, Value: int64(5)},
				{Field: "hostname", Op: Eq, Value: "*.org"},
				{Field: "role_ids", Op: ContainsAny, Value: []any{int64(20)}},
				{Field: "node_id", Op: Eq, Not: true, Value: []any{int64(1), int64(2)}},
			}, Or: true, Sort: []SortKey{{"hostname", true}, {"node_id", false}}, Offset: 2, Limit: 10}},
		{"not less", map[string]any{"~<expires": int64(9), "[x": 1.5, "peer_id": nil},
			&Filter{Terms: []Term{{Field: "x", Op: Le, Value: 1.5}, {Field: "peer_id", Op: Eq, Value: nil}, {Field: "expires", Op: Lt, Not: true, Value: int64(9)}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseFilter(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v\nwant %#v", got, c.want)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	cases := []struct {
		in    any
		field string
	}{
		{[]any{1.5}, "filter"},
		{[]any{true}, "filter"},
		{map[string]any{"-LIMIT": "x"}, "-LIMIT"},
		{map[string]any{"-OFFSET": int64(-1)}, "-OFFSET"},
		{map[string]any{"-SORT": int64(1)}, "-SORT"},
		{map[string]any{"-SORT": []any{"-"}}, "-SORT"},
		{map[string]any{"<n": []any{int64(1)}}, "n"},
		{map[string]any{"]n": nil}, "n"},
		{map[string]any{"~": int64(1)}, "filter"},
		{map[string]any{"a": []any{[]any{int64(1)}}}, "a"},
		{map[string]any{"a": map[string]any{}}, "a"},
		{map[string]any{"&a": nil}, "a"},
		{struct{}{}, "filter"},
	}
	for _, c := range cases {
		_, err := ParseFilter(c.in)
		if err == nil || ErrorCode(err) != Invalid || ErrorField(err) != c.field {
			t.Errorf("ParseFilter(%#v): got %v (field %q), want Invalid naming %q", c.in, err, ErrorField(err), c.field)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	f.Add(`{"hostname":"*.org","~node_id":[1,2],"-SORT":["-a"],"-LIMIT":3}`)
	f.Add(`[1,"x",2.0]`)
	f.Add(`null`)
	f.Add(`{"&role_ids":[10,20],"-OR":1,"<x":1.5,"~>y":"s"}`)
	f.Add(`7`)
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		d := json.NewDecoder(strings.NewReader(s))
		if d.Decode(&v) != nil {
			return
		}
		fl, err := ParseFilter(v)
		if err != nil {
			if ErrorCode(err) != Invalid {
				t.Fatalf("error with code %s: %v", ErrorCode(err), err)
			}
			return
		}
		if fl == nil {
			if v != nil {
				t.Fatalf("nil filter for %#v", v)
			}
			return
		}
		for _, term := range fl.Terms {
			if term.Field == "" {
				t.Fatalf("empty field from %q", s)
			}
			switch term.Op {
			case ContainsAll, ContainsAny:
				if _, ok := term.Value.([]any); !ok {
					t.Fatalf("%s with non-list value", term.Op)
				}
			}
		}
		if fl.Offset < 0 || fl.Limit < 0 {
			t.Fatal("negative paging")
		}
	})
}
