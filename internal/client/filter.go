package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/planetlab/pl/internal/core"
)

// EncodeFilter renders f as the PLCAPI-style JSON filter the REST API
// parses with core.ParseFilter (the inverse of ParseFilter). Floats keep a
// decimal point so they are not read back as integers.
func EncodeFilter(f *core.Filter) (string, error) {
	var buf bytes.Buffer
	if f.IsList {
		if len(f.Sort) > 0 || f.Limit > 0 || f.Offset > 0 {
			return "", core.FieldErrorf("filter", "sort, limit and offset need a field filter, not a list of ids and names")
		}
		buf.WriteByte('[')
		n := 0
		for _, id := range f.IDs {
			if n > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.FormatInt(id, 10))
			n++
		}
		for _, name := range f.Names {
			if n > 0 {
				buf.WriteByte(',')
			}
			writeString(&buf, name)
			n++
		}
		buf.WriteByte(']')
		return buf.String(), nil
	}
	entries := map[string]func() error{}
	keys := []string{}
	add := func(k string, w func() error) error {
		if _, dup := entries[k]; dup {
			return core.FieldErrorf(k, "appears twice in the filter; PLCAPI filters allow one term per key")
		}
		entries[k] = w
		keys = append(keys, k)
		return nil
	}
	for _, t := range f.Terms {
		key := t.Field
		switch t.Op {
		case core.Eq, "":
		case core.Lt, core.Gt, core.ContainsAll, core.ContainsAny:
			key = string(t.Op) + key
		case core.Le:
			key = "[" + key
		case core.Ge:
			key = "]" + key
		default:
			return "", core.FieldErrorf(t.Field, "unknown operator %q", t.Op)
		}
		if t.Not {
			key = "~" + key
		}
		v := t.Value
		if err := add(key, func() error { return writeValue(&buf, t.Field, v) }); err != nil {
			return "", err
		}
	}
	if f.Or {
		add("-OR", func() error { buf.WriteString("true"); return nil })
	}
	if len(f.Sort) > 0 {
		add("-SORT", func() error {
			buf.WriteByte('[')
			for i, s := range f.Sort {
				if i > 0 {
					buf.WriteByte(',')
				}
				name := s.Field
				if s.Desc {
					name = "-" + name
				}
				writeString(&buf, name)
			}
			buf.WriteByte(']')
			return nil
		})
	}
	if f.Limit > 0 {
		add("-LIMIT", func() error { buf.WriteString(strconv.Itoa(f.Limit)); return nil })
	}
	if f.Offset > 0 {
		add("-OFFSET", func() error { buf.WriteString(strconv.Itoa(f.Offset)); return nil })
	}
	sort.Strings(keys)
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(&buf, k)
		buf.WriteByte(':')
		if err := entries[k](); err != nil {
			return "", err
		}
	}
	buf.WriteByte('}')
	return buf.String(), nil
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	buf.Write(b)
}

func writeValue(buf *bytes.Buffer, field string, v any) error {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case string:
		writeString(buf, x)
	case int:
		buf.WriteString(strconv.Itoa(x))
	case int64:
		buf.WriteString(strconv.FormatInt(x, 10))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return core.FieldErrorf(field, "not a finite number")
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !bytes.ContainsAny([]byte(s), ".eE") {
			s += ".0"
		}
		buf.WriteString(s)
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeValue(buf, field, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case []int64:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.FormatInt(e, 10))
		}
		buf.WriteByte(']')
	case []string:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, e)
		}
		buf.WriteByte(']')
	default:
		return core.FieldErrorf(field, "unsupported filter value type %s", fmt.Sprintf("%T", v))
	}
	return nil
}
