package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Encoding rules (responses and calls):
//   - nil (and nil pointers, maps and slices of a nil interface) -> <nil/>,
//     as Python's allow_none; a nil slice or map of a concrete type is an
//     empty array or struct.
//   - every Go integer kind -> <int>. Values beyond 32 bits are written in
//     full: Python's xmlrpc.client (the PLCAPI client) reads any size, while
//     the original server could not send them at all (it failed with an
//     HTTP 500). The service caps the values that the original capped
//     (GetSlivers expires).
//   - bool -> <boolean>, floats -> <double> (NaN/Inf are an error), strings
//     -> <string>, []byte -> <base64>, DateTime -> <dateTime.iso8601>,
//     slices/arrays -> <array>, maps with string keys and structs of type
//     map -> <struct> with members sorted by name.
//   - Strings (and member names) are XML-escaped; the control characters
//     0x00-0x08, 0x0B, 0x0C, 0x0E-0x1F, U+FFFE and U+FFFF, which XML cannot
//     carry, become '?', and invalid UTF-8 becomes U+FFFD. '\r' is written
//     as &#13; so it survives XML line-end normalisation.

// EncodeResponse returns a methodResponse document carrying v.
func EncodeResponse(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteResponse(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteResponse appends a methodResponse document carrying v to b (a
// server can reuse its buffers); on error b holds a partial document.
func WriteResponse(b *bytes.Buffer, v any) error {
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<methodResponse>\n<params>\n<param>\n")
	e := encoder{b: b}
	if err := e.writeValue(v, 0); err != nil {
		return err
	}
	b.WriteString("\n</param>\n</params>\n</methodResponse>\n")
	return nil
}

// encoder writes values into b. order remembers the member order of the
// last struct written: the records of a Get share their keys, so most
// structs need no sort.
type encoder struct {
	b     *bytes.Buffer
	order []string
}

// EncodeFault returns a methodResponse document carrying a fault.
func EncodeFault(code int, msg string) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<methodResponse>\n<fault>\n")
	// cannot fail: the value is a map of an int and a string
	e := encoder{b: &b}
	_ = e.writeValue(map[string]any{"faultCode": code, "faultString": msg}, 0)
	b.WriteString("\n</fault>\n</methodResponse>\n")
	return b.Bytes()
}

// EncodeCall returns a methodCall document.
func EncodeCall(method string, params ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodCall>\n<methodName>")
	escape(&b, method)
	b.WriteString("</methodName>\n<params>\n")
	e := encoder{b: &b}
	for _, p := range params {
		b.WriteString("<param>\n")
		if err := e.writeValue(p, 0); err != nil {
			return nil, err
		}
		b.WriteString("\n</param>\n")
	}
	b.WriteString("</params>\n</methodCall>\n")
	return b.Bytes(), nil
}

const maxEncodeDepth = 100

func (e *encoder) writeValue(v any, depth int) error {
	b := e.b
	if depth > maxEncodeDepth {
		return fmt.Errorf("xmlrpc: value nested deeper than %d", maxEncodeDepth)
	}
	b.WriteString("<value>")
	switch v := v.(type) {
	case nil:
		b.WriteString("<nil/>")
	case bool:
		if v {
			b.WriteString("<boolean>1</boolean>")
		} else {
			b.WriteString("<boolean>0</boolean>")
		}
	case int:
		writeInt(b, int64(v))
	case int64:
		writeInt(b, v)
	case int32:
		writeInt(b, int64(v))
	case float64:
		if err := writeDouble(b, v); err != nil {
			return err
		}
	case string:
		b.WriteString("<string>")
		escape(b, v)
		b.WriteString("</string>")
	case []byte:
		b.WriteString("<base64>")
		b.WriteString(base64.StdEncoding.EncodeToString(v))
		b.WriteString("</base64>")
	case DateTime:
		b.WriteString("<dateTime.iso8601>")
		escape(b, string(v))
		b.WriteString("</dateTime.iso8601>")
	case []any:
		b.WriteString("<array><data>\n")
		for _, x := range v {
			if err := e.writeValue(x, depth+1); err != nil {
				return err
			}
			b.WriteByte('\n')
		}
		b.WriteString("</data></array>")
	case map[string]any:
		if err := e.writeStruct(v, depth); err != nil {
			return err
		}
	case []int64:
		b.WriteString("<array><data>\n")
		for _, n := range v {
			b.WriteString("<value>")
			writeInt(b, n)
			b.WriteString("</value>\n")
		}
		b.WriteString("</data></array>")
	case []string:
		b.WriteString("<array><data>\n")
		for _, s := range v {
			b.WriteString("<value><string>")
			escape(b, s)
			b.WriteString("</string></value>\n")
		}
		b.WriteString("</data></array>")
	default:
		if err := e.writeReflect(reflect.ValueOf(v), depth); err != nil {
			return err
		}
	}
	b.WriteString("</value>")
	return nil
}

func (e *encoder) writeStruct(v map[string]any, depth int) error {
	b := e.b
	b.WriteString("<struct>\n")
	keys := e.order
	same := len(keys) == len(v)
	for _, k := range keys {
		if !same {
			break
		}
		_, same = v[k]
	}
	if !same {
		keys = make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		e.order = keys
	}
	for _, k := range keys {
		if err := e.writeMember(k, v[k], depth); err != nil {
			return err
		}
	}
	b.WriteString("</struct>")
	return nil
}

var mapType = reflect.TypeOf(map[string]any(nil))

func (e *encoder) writeMember(k string, v any, depth int) error {
	b := e.b
	b.WriteString("<member>\n<name>")
	escape(b, k)
	b.WriteString("</name>\n")
	if err := e.writeValue(v, depth+1); err != nil {
		return err
	}
	b.WriteString("\n</member>\n")
	return nil
}

// writeReflect handles named and composite types (core.Record, []int64,
// []core.Record, pointers, ...). It writes the inner part of a <value>.
func (e *encoder) writeReflect(rv reflect.Value, depth int) error {
	b := e.b
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			b.WriteString("<nil/>")
			return nil
		}
		return e.writeInner(rv.Elem().Interface(), depth)
	case reflect.Bool:
		return e.writeInner(rv.Bool(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writeInt(b, rv.Int())
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return fmt.Errorf("xmlrpc: integer %d out of range", u)
		}
		writeInt(b, int64(u))
		return nil
	case reflect.Float32, reflect.Float64:
		return writeDouble(b, rv.Float())
	case reflect.String:
		return e.writeInner(rv.String(), depth)
	case reflect.Slice, reflect.Array:
		b.WriteString("<array><data>\n")
		for i := 0; i < rv.Len(); i++ {
			if err := e.writeValue(rv.Index(i).Interface(), depth+1); err != nil {
				return err
			}
			b.WriteByte('\n')
		}
		b.WriteString("</data></array>")
		return nil
	case reflect.Map:
		if rv.Type().ConvertibleTo(mapType) { // named map types such as core.Record
			return e.writeStruct(rv.Convert(mapType).Interface().(map[string]any), depth)
		}
		if rv.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("xmlrpc: cannot encode %s (struct keys must be strings)", rv.Type())
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		b.WriteString("<struct>\n")
		for _, k := range keys {
			kv := reflect.New(rv.Type().Key()).Elem()
			kv.SetString(k)
			if err := e.writeMember(k, rv.MapIndex(kv).Interface(), depth); err != nil {
				return err
			}
		}
		b.WriteString("</struct>")
		return nil
	}
	return fmt.Errorf("xmlrpc: cannot encode %s", rv.Type())
}

// writeInner writes v without the enclosing <value> tags.
func (e *encoder) writeInner(v any, depth int) error {
	b := e.b
	var tmp bytes.Buffer
	inner := encoder{b: &tmp}
	if err := inner.writeValue(v, depth); err != nil {
		return err
	}
	out := tmp.Bytes()
	b.Write(out[len("<value>") : len(out)-len("</value>")])
	return nil
}

func writeInt(b *bytes.Buffer, n int64) {
	var digits [20]byte
	b.WriteString("<int>")
	b.Write(strconv.AppendInt(digits[:0], n, 10))
	b.WriteString("</int>")
}

func writeDouble(b *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("xmlrpc: cannot encode double %v", f)
	}
	b.WriteString("<double>")
	b.WriteString(PyRepr(f))
	b.WriteString("</double>")
	return nil
}

// escape writes s as XML character data (see the encoding rules above).
func escape(b *bytes.Buffer, s string) {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '&' || c == '<' || c == '>' {
			plain = false
			break
		}
	}
	if plain {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#13;")
		case r == '\t' || r == '\n':
			b.WriteRune(r)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
}
