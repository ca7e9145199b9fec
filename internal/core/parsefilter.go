package core

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// ParseFilter turns a decoded PLCAPI filter (reference plcapi.md §2.3) into
// a Filter. v is what an XML-RPC or JSON decoder produced:
//
//   - nil: no filter (ParseFilter returns nil, meaning "everything");
//   - an int or a string: a list of one id or one name;
//   - a list of ints and strings: ids OR names (an empty list matches nothing);
//   - a map: field terms, with the key prefixes ~ (NOT), < > [ ] (compare),
//     & | (array contains all / any) and the special keys -SORT, -OFFSET,
//     -LIMIT, -AND and -OR.
//
// Integers may arrive as int, int64, float64 without a fraction (JSON) or
// json.Number. Field names are not checked here: the store checks them
// against the class schema (fault 102 "Invalid filter field").
func ParseFilter(v any) (*Filter, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return parseDictFilter(x)
	case []any:
		f := &Filter{IsList: true}
		for i, e := range x {
			if err := addListElem(f, e); err != nil {
				return nil, FieldErrorf("filter", "element %d: %v", i, err)
			}
		}
		return f, nil
	case []int64:
		return &Filter{IsList: true, IDs: append([]int64{}, x...)}, nil
	case []string:
		return &Filter{IsList: true, Names: append([]string{}, x...)}, nil
	default:
		f := &Filter{IsList: true}
		if err := addListElem(f, v); err != nil {
			return nil, FieldErrorf("filter", "%v", err)
		}
		return f, nil
	}
}

func addListElem(f *Filter, e any) error {
	if s, ok := e.(string); ok {
		f.Names = append(f.Names, s)
		return nil
	}
	if n, ok := AsInt(e); ok {
		f.IDs = append(f.IDs, n)
		return nil
	}
	return errorf("want an integer id or a string name, got %s", TypeName(e))
}

type plainError string

func (e plainError) Error() string { return string(e) }

func errorf(format string, args ...any) error {
	return plainError(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func parseDictFilter(m map[string]any) (*Filter, error) {
	f := &Filter{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		switch k {
		case "-SORT":
			keys, err := parseSort(v)
			if err != nil {
				return nil, err
			}
			f.Sort = keys
			continue
		case "-OFFSET", "-LIMIT":
			n, ok := AsInt(v)
			if !ok || n < 0 || n > math.MaxInt32 {
				return nil, FieldErrorf(k, "want a non-negative integer, got %s", TypeName(v))
			}
			if k == "-OFFSET" {
				f.Offset = int(n)
			} else {
				f.Limit = int(n)
			}
			continue
		case "-AND":
			f.Or = false
			continue
		case "-OR":
			f.Or = true
			continue
		}
		t, err := parseTerm(k, v)
		if err != nil {
			return nil, err
		}
		f.Terms = append(f.Terms, t)
	}
	return f, nil
}

func parseSort(v any) ([]SortKey, error) {
	var names []string
	switch x := v.(type) {
	case string:
		names = []string{x}
	case []string:
		names = x
	case []any:
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, FieldErrorf("-SORT", "element %d: want a field name, got %s", i, TypeName(e))
			}
			names = append(names, s)
		}
	default:
		return nil, FieldErrorf("-SORT", "want a field name or a list of them, got %s", TypeName(v))
	}
	var out []SortKey
	for _, n := range names {
		k := SortKey{Field: n}
		if strings.HasPrefix(n, "-") {
			k = SortKey{Field: n[1:], Desc: true}
		} else if strings.HasPrefix(n, "+") {
			k.Field = n[1:]
		}
		if k.Field == "" {
			return nil, FieldErrorf("-SORT", "empty field name")
		}
		out = append(out, k)
	}
	return out, nil
}

func parseTerm(key string, v any) (Term, error) {
	t := Term{Op: Eq}
	name := key
	if strings.HasPrefix(name, "~") {
		t.Not = true
		name = name[1:]
	}
	if name != "" {
		switch name[0] {
		case '<':
			t.Op = Lt
		case '>':
			t.Op = Gt
		case '[':
			t.Op = Le
		case ']':
			t.Op = Ge
		case '&':
			t.Op = ContainsAll
		case '|':
			t.Op = ContainsAny
		}
		if t.Op != Eq {
			name = name[1:]
		}
	}
	if name == "" {
		return Term{}, FieldErrorf("filter", "key %q names no field", key)
	}
	t.Field = name
	val, err := normalizeFilterValue(v, true)
	if err != nil {
		return Term{}, FieldErrorf(name, "%v", err)
	}
	t.Value = val
	_, isList := val.([]any)
	switch t.Op {
	case Lt, Gt, Le, Ge:
		if isList || val == nil {
			return Term{}, FieldErrorf(name, "comparison %s needs a single value, got %s", t.Op, TypeName(v))
		}
	case ContainsAll, ContainsAny:
		if val == nil {
			return Term{}, FieldErrorf(name, "%s needs a value or a list of values", t.Op)
		}
		if !isList {
			t.Value = []any{val}
		}
	}
	return t, nil
}

func normalizeFilterValue(v any, top bool) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case []any:
		if !top {
			return nil, errorf("nested lists are not allowed")
		}
		out := make([]any, 0, len(x))
		for _, e := range x {
			n, err := normalizeFilterValue(e, false)
			if err != nil {
				return nil, err
			}
			out = append(out, n)
		}
		return out, nil
	case []string:
		if !top {
			return nil, errorf("nested lists are not allowed")
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	case []int64:
		if !top {
			return nil, errorf("nested lists are not allowed")
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out, nil
	case float64:
		if n, ok := AsInt(x); ok {
			return n, nil
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errorf("not a finite number")
		}
		return x, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errorf("bad number %q", string(x))
		}
		return f, nil
	}
	if n, ok := AsInt(v); ok {
		return n, nil
	}
	return nil, errorf("unsupported value of type %s", TypeName(v))
}

// AsInt converts the integer representations decoders produce (int kinds,
// float64 without fraction as JSON yields, json.Number) to int64. Booleans
// are not integers here.
func AsInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || x < -(1<<63) || x >= 1<<63 {
			return 0, false
		}
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

// TypeName names the PLCAPI type of a decoded value for error messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "boolean"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "int"
	case float32, float64:
		return "double"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any, []int64, []string:
		return "array"
	case map[string]any, Record:
		return "struct"
	}
	return fmt.Sprintf("%T", v)
}
