package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// DecodeRecord decodes a JSON object into a core.Record with the value
// types the registry expects: integer literals become int64, other numbers
// float64, arrays []int64, []string or []core.Record when homogeneous
// (otherwise []any), objects core.Record. Errors name the offending field.
func DecodeRecord(data []byte) (core.Record, error) {
	v, err := DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return core.Record{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, core.FieldErrorf("body", "want a JSON object, got %s", jsonKind(v))
	}
	rec, err := convertObject("", m)
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// MaxDepth is how deeply JSON arrays and objects may nest in a request.
const MaxDepth = 64

// DecodeJSON decodes one JSON value with json.Number for numbers, refuses
// an object that names a key twice (encoding/json would keep the last
// value silently), nesting deeper than MaxDepth and trailing data. An
// empty body decodes to nil.
func DecodeJSON(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, core.FieldErrorf("body", "unexpected data after the JSON value")
	}
	return v, nil
}

// decodeValue reads one value from dec's token stream; path names it in
// errors.
func decodeValue(dec *json.Decoder, path string, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, core.FieldErrorf("body", "malformed JSON: %s", JSONErrText(err))
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // nil, bool, json.Number, string
	}
	if depth >= MaxDepth {
		return nil, core.FieldErrorf("body", "JSON nested deeper than %d levels", MaxDepth)
	}
	switch d {
	case '[':
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec, fmt.Sprintf("%s[%d]", path, len(a)), depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, core.FieldErrorf("body", "malformed JSON: %s", JSONErrText(err))
		}
		return a, nil
	case '{':
		m := map[string]any{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, core.FieldErrorf("body", "malformed JSON: %s", JSONErrText(err))
			}
			k, ok := tok.(string)
			if !ok {
				return nil, core.FieldErrorf("body", "malformed JSON: object key is not a string")
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			if _, dup := m[k]; dup {
				return nil, core.FieldErrorf(p, "given twice in one JSON object")
			}
			v, err := decodeValue(dec, p, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, core.FieldErrorf("body", "malformed JSON: %s", JSONErrText(err))
		}
		return m, nil
	}
	return nil, core.FieldErrorf("body", "malformed JSON: unexpected %q", rune(d))
}

// ConvertValue converts a value decoded with json.Number into registry
// value types; path names it in errors.
func ConvertValue(path string, v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		return convertNumber(path, x)
	case map[string]any:
		return convertObject(path, x)
	case []any:
		return convertArray(path, x)
	default:
		return nil, core.FieldErrorf(path, "unsupported value type %T", v)
	}
}

func convertNumber(path string, n json.Number) (any, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, core.FieldErrorf(path, "integer %s out of range", s)
		}
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, core.FieldErrorf(path, "number %s out of range", s)
	}
	return f, nil
}

func convertObject(path string, m map[string]any) (core.Record, error) {
	rec := make(core.Record, len(m))
	for k, v := range m {
		p := k
		if path != "" {
			p = path + "." + k
		}
		cv, err := ConvertValue(p, v)
		if err != nil {
			return nil, err
		}
		rec[k] = cv
	}
	return rec, nil
}

func convertArray(path string, a []any) (any, error) {
	out := make([]any, len(a))
	allInt, allStr, allRec := len(a) > 0, len(a) > 0, len(a) > 0
	for i, v := range a {
		cv, err := ConvertValue(fmt.Sprintf("%s[%d]", path, i), v)
		if err != nil {
			return nil, err
		}
		out[i] = cv
		_, isInt := cv.(int64)
		_, isStr := cv.(string)
		_, isRec := cv.(core.Record)
		allInt, allStr, allRec = allInt && isInt, allStr && isStr, allRec && isRec
	}
	switch {
	case allInt:
		ints := make([]int64, len(out))
		for i, v := range out {
			ints[i] = v.(int64)
		}
		return ints, nil
	case allStr:
		strs := make([]string, len(out))
		for i, v := range out {
			strs[i] = v.(string)
		}
		return strs, nil
	case allRec:
		recs := make([]core.Record, len(out))
		for i, v := range out {
			recs[i] = v.(core.Record)
		}
		return recs, nil
	}
	return out, nil
}

// JSONErrText is the text of a JSON decoding error without its "json: " prefix.
func JSONErrText(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}
