package restapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestDecodeRecord(t *testing.T) {
	rec, err := DecodeRecord([]byte(`{"a":1,"b":1.5,"c":"x","d":true,"e":null,"f":[1,2],"g":["x"],"h":[{"k":1}],"i":[1,"x"],"j":{"k":2},"l":[],"m":1e3}`))
	if err != nil {
		t.Fatal(err)
	}
	want := core.Record{"a": int64(1), "b": 1.5, "c": "x", "d": true, "e": nil, "f": []int64{1, 2}, "g": []string{"x"},
		"h": []core.Record{{"k": int64(1)}}, "i": []any{int64(1), "x"}, "j": core.Record{"k": int64(2)}, "l": []any{}, "m": 1000.0}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("got %#v\nwant %#v", rec, want)
	}
	bad := []struct{ in, field, msg string }{
		{`[1]`, "body", "want a JSON object"},
		{`{"a":`, "body", "malformed JSON"},
		{`{"a":1} {}`, "body", "unexpected data"},
		{`{"n":99999999999999999999}`, "n", "out of range"},
		{`{"x":{"y":[1e999]}}`, "x.y[0]", "out of range"},
		{`"str"`, "body", "want a JSON object"},
		{`{"max_slices":1,"max_slices":2}`, "max_slices", "given twice"},
		{`{"a":{"b":1,"b":1}}`, "a.b", "given twice"},
		{`{"a":[{"b":1},{"c":1,"c":2}]}`, "a[1].c", "given twice"},
		{`{"a":1,}`, "body", "malformed JSON"},
		{`{"a":[1 2]}`, "body", "malformed JSON"},
		{`{"a" 1}`, "body", "malformed JSON"},
		{`{"a":1]`, "body", "malformed JSON"},
		{`{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, "body", "nested deeper than 64"},
	}
	for _, b := range bad {
		_, err := DecodeRecord([]byte(b.in))
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != b.field || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("DecodeRecord(%s) = %v (field %q), want field %q, %q", b.in, err, core.ErrorField(err), b.field, b.msg)
		}
	}
	if rec, err := DecodeRecord(nil); err != nil || len(rec) != 0 {
		t.Errorf("empty body: %v %v", rec, err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[1,2],"c":{"d":"e"}}`, `{"x":1.5e300}`, `[1]`, `{"a":[{"b":[null]}]}`, `{"n":-9223372036854775808}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeRecord(data)
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("error %v has code %s", err, core.ErrorCode(err))
			}
			return
		}
		if len(bytes.TrimSpace(data)) > 0 && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		// A decoded record re-encodes and decodes to the same record.
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", rec, err)
		}
		if _, err := DecodeRecord(b); err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
	})
}
