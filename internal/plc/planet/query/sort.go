package query

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Order is a parsed sort specification: columns, each ascending or
// descending ("-load,hostname": load descending, then hostname).
type Order[T any] struct {
	keys []sortKey
}

type sortKey struct {
	index int
	desc  bool
}

// ParseOrder parses a comma-separated list of column names of T, each
// optionally prefixed by "-" (descending) or "+" (ascending). Only scalar
// columns sort.
func ParseOrder[T any](spec string) (*Order[T], error) {
	cols := map[string]Column{}
	var names []string
	for _, c := range Columns[T]() {
		if !strings.HasPrefix(c.Type, "[]") {
			cols[c.Name] = c
			names = append(names, c.Name)
		}
	}
	o := &Order[T]{}
	if strings.TrimSpace(spec) == "" {
		return o, nil
	}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		desc := strings.HasPrefix(part, "-")
		name := strings.TrimLeft(part, "+-")
		c, ok := cols[name]
		if !ok {
			return nil, fmt.Errorf("unknown column %q (columns: %s)", name, strings.Join(names, ", "))
		}
		o.keys = append(o.keys, sortKey{index: c.Index, desc: desc})
	}
	return o, nil
}

// Sort sorts rows stably by the order's keys.
func (o *Order[T]) Sort(rows []T) {
	if o == nil || len(o.keys) == 0 {
		return
	}
	slices.SortStableFunc(rows, func(a, b T) int {
		va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
		for _, k := range o.keys {
			c := compare(va.Field(k.index), vb.Field(k.index))
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

func compare(a, b reflect.Value) int {
	switch a.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return cmp.Compare(a.Int(), b.Int())
	case reflect.Float64, reflect.Float32:
		return cmp.Compare(a.Float(), b.Float())
	case reflect.String:
		return cmp.Compare(a.String(), b.String())
	case reflect.Bool:
		return cmp.Compare(btoi(a.Bool()), btoi(b.Bool()))
	}
	return 0
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
