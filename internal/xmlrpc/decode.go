// Package xmlrpc is a small, strict XML-RPC codec for PLCAPI.
//
// It decodes a methodCall into a method name and Go values and encodes
// methodResponse and fault documents, with the conventions of PlanetLab's
// original server (Python's xmlrpc.client with allow_none):
//
//	XML-RPC                 Go
//	<nil/>                  nil
//	<boolean>               bool
//	<int>, <i4>             int64 (must fit in 32 bits)
//	<i8>                    int64 (64 bits; read only, Python clients can send it)
//	<double>                float64 (NaN and infinities are rejected)
//	<string>, bare text     string
//	<array>                 []any
//	<struct>                map[string]any (a repeated member name: the last wins)
//	<dateTime.iso8601>      DateTime (kept as text; PLCAPI methods reject it)
//	<base64>                []byte
//
// dateTime.iso8601 and base64 are decoded (not refused) so that a method
// that does not expect them answers with the original's type fault 102
// rather than an HTTP error; the original never sends or expects them.
//
// Decoding is bounded: Limits caps the body size, the nesting depth and the
// number of values; every failure is a *DecodeError so that a server can
// answer 400 (413 for ErrTooLarge). encoding/xml expands no external
// entities and no DTDs, so entity bombs are impossible.
package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
)

// DateTime is the text of a <dateTime.iso8601> value.
type DateTime string

// Limits bound what a decoder accepts.
type Limits struct {
	MaxBytes  int64 // body size; 0 = DefaultLimits.MaxBytes
	MaxDepth  int   // nesting of arrays and structs; 0 = default
	MaxValues int   // total number of values; 0 = default
}

// DefaultLimits are generous for every PLCAPI call and small enough to keep
// a malicious request cheap.
var DefaultLimits = Limits{MaxBytes: 8 << 20, MaxDepth: 64, MaxValues: 200000}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultLimits.MaxValues
	}
	return l
}

// ErrTooLarge is wrapped by the DecodeError of a body over Limits.MaxBytes.
var ErrTooLarge = errors.New("request body too large")

// DecodeError says why a document is not acceptable XML-RPC.
type DecodeError struct {
	Msg string
	Err error
}

func (e *DecodeError) Error() string {
	if e.Err != nil {
		return "xmlrpc: " + e.Msg + ": " + e.Err.Error()
	}
	return "xmlrpc: " + e.Msg
}

func (e *DecodeError) Unwrap() error { return e.Err }

func errf(format string, args ...any) error {
	return &DecodeError{Msg: fmt.Sprintf(format, args...)}
}

// Call is a decoded methodCall.
type Call struct {
	Method string
	Params []any
}

// DecodeCall reads one methodCall document.
func DecodeCall(r io.Reader, lim Limits) (*Call, error) {
	d, err := newDecoder(r, lim)
	if err != nil {
		return nil, err
	}
	if err := d.root("methodCall"); err != nil {
		return nil, err
	}
	call := &Call{Params: []any{}}
	// <methodName>
	se, err := d.startElem()
	if err != nil {
		return nil, err
	}
	if se.Name.Local != "methodName" {
		return nil, errf("expected <methodName>, got <%s>", se.Name.Local)
	}
	name, err := d.text("methodName")
	if err != nil {
		return nil, err
	}
	call.Method = strings.TrimSpace(name)
	if call.Method == "" {
		return nil, errf("empty <methodName>")
	}
	// optional <params>
	se, end, err := d.startOrEnd()
	if err != nil {
		return nil, err
	}
	if end {
		return call, d.eof()
	}
	if se.Name.Local != "params" {
		return nil, errf("expected <params>, got <%s>", se.Name.Local)
	}
	for {
		se, end, err := d.startOrEnd()
		if err != nil {
			return nil, err
		}
		if end {
			break
		}
		if se.Name.Local != "param" {
			return nil, errf("expected <param>, got <%s>", se.Name.Local)
		}
		v, err := d.valueElem()
		if err != nil {
			return nil, err
		}
		if err := d.end(); err != nil { // </param>
			return nil, err
		}
		call.Params = append(call.Params, v)
	}
	if err := d.end(); err != nil { // </methodCall>
		return nil, err
	}
	return call, d.eof()
}

// Fault is an XML-RPC fault.
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("<Fault %d: %s>", f.Code, f.String) }

// DecodeResponse reads a methodResponse: it returns the value, or a *Fault
// as the error for a fault response, or a *DecodeError.
func DecodeResponse(r io.Reader, lim Limits) (any, error) {
	d, err := newDecoder(r, lim)
	if err != nil {
		return nil, err
	}
	if err := d.root("methodResponse"); err != nil {
		return nil, err
	}
	se, err := d.startElem()
	if err != nil {
		return nil, err
	}
	var v any
	switch se.Name.Local {
	case "params":
		if se, err = d.startElem(); err != nil {
			return nil, err
		}
		if se.Name.Local != "param" {
			return nil, errf("expected <param>, got <%s>", se.Name.Local)
		}
		if v, err = d.valueElem(); err != nil {
			return nil, err
		}
		if err := d.end(); err != nil { // </param>
			return nil, err
		}
		if err := d.end(); err != nil { // </params>
			return nil, err
		}
	case "fault":
		fv, err := d.valueElem()
		if err != nil {
			return nil, err
		}
		if err := d.end(); err != nil {
			return nil, err
		}
		m, ok := fv.(map[string]any)
		code, ok1 := m["faultCode"].(int64)
		str, ok2 := m["faultString"].(string)
		if !ok || !ok1 || !ok2 {
			return nil, errf("malformed fault %v", fv)
		}
		if err := d.end(); err != nil {
			return nil, err
		}
		if err := d.eof(); err != nil {
			return nil, err
		}
		return nil, &Fault{Code: int(code), String: str}
	default:
		return nil, errf("expected <params> or <fault>, got <%s>", se.Name.Local)
	}
	if err := d.end(); err != nil { // </methodResponse>
		return nil, err
	}
	return v, d.eof()
}

type decoder struct {
	x      *xml.Decoder
	lr     *io.LimitedReader
	lim    Limits
	depth  int // XML element depth
	level  int // array/struct nesting
	values int
}

func newDecoder(r io.Reader, lim Limits) (*decoder, error) {
	lim = lim.withDefaults()
	lr := &io.LimitedReader{R: r, N: lim.MaxBytes + 1}
	x := xml.NewDecoder(lr)
	x.Strict = true
	x.CharsetReader = charsetReader
	return &decoder{x: x, lr: lr, lim: lim}, nil
}

// charsetReader accepts the encodings Python clients may declare.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin-1", "latin1", "iso8859-1":
		return charmap.ISO8859_1.NewDecoder().Reader(in), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

// next returns the next raw XML token; the body size is checked here, the
// one place that reads. io.EOF is returned as it is.
func (d *decoder) next() (xml.Token, error) {
	t, err := d.x.Token()
	if d.lr.N <= 0 {
		return nil, &DecodeError{Msg: fmt.Sprintf("body exceeds %d bytes", d.lim.MaxBytes), Err: ErrTooLarge}
	}
	if err != nil && err != io.EOF {
		return nil, &DecodeError{Msg: "malformed XML", Err: err}
	}
	return t, err
}

// token returns the next significant token: start and end elements and
// character data. Comments, processing instructions and directives are
// skipped; a directive (DOCTYPE) is refused.
func (d *decoder) token() (xml.Token, error) {
	for {
		t, err := d.next()
		if err == io.EOF {
			return nil, errf("unexpected end of document")
		}
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.Comment, xml.ProcInst:
			continue
		case xml.Directive:
			return nil, errf("XML directives are not allowed")
		case xml.StartElement:
			d.depth++
			if d.depth > 4*d.lim.MaxDepth+8 {
				return nil, errf("nesting deeper than %d", d.lim.MaxDepth)
			}
			return t, nil
		case xml.EndElement:
			d.depth--
			return t, nil
		case xml.CharData:
			return t, nil
		}
	}
}

func isSpace(b []byte) bool { return len(bytes.TrimSpace(b)) == 0 }

// startOrEnd returns the next start element, or end=true at an end
// element; whitespace between them is skipped.
func (d *decoder) startOrEnd() (xml.StartElement, bool, error) {
	for {
		t, err := d.token()
		if err != nil {
			return xml.StartElement{}, false, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, false, nil
		case xml.EndElement:
			return xml.StartElement{}, true, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, false, errf("unexpected text %q", clip(string(t)))
			}
		}
	}
}

func (d *decoder) startElem() (xml.StartElement, error) {
	se, end, err := d.startOrEnd()
	if err != nil {
		return se, err
	}
	if end {
		return se, errf("unexpected end element")
	}
	return se, nil
}

// end consumes whitespace up to an end element.
func (d *decoder) end() error {
	se, end, err := d.startOrEnd()
	if err != nil {
		return err
	}
	if !end {
		return errf("unexpected element <%s>", se.Name.Local)
	}
	return nil
}

func (d *decoder) root(name string) error {
	se, err := d.startElem()
	if err != nil {
		return err
	}
	if se.Name.Local != name {
		return errf("expected <%s>, got <%s>", name, se.Name.Local)
	}
	return nil
}

// eof checks that only whitespace, comments and PIs follow the root.
func (d *decoder) eof() error {
	for {
		t, err := d.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if !isSpace(t) {
				return errf("text after the document")
			}
		default:
			return errf("content after the document")
		}
	}
}

// text reads character data up to the end of the current element, which
// must contain no elements.
func (d *decoder) text(elem string) (string, error) {
	var sb strings.Builder
	for {
		t, err := d.token()
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", errf("unexpected <%s> inside <%s>", t.Name.Local, elem)
		}
	}
}

// valueElem reads a <value> element (the start tag included).
func (d *decoder) valueElem() (any, error) {
	se, err := d.startElem()
	if err != nil {
		return nil, err
	}
	if se.Name.Local != "value" {
		return nil, errf("expected <value>, got <%s>", se.Name.Local)
	}
	return d.value()
}

// value reads the content of a <value> after its start tag, and its end.
func (d *decoder) value() (any, error) {
	d.values++
	if d.values > d.lim.MaxValues {
		return nil, errf("more than %d values", d.lim.MaxValues)
	}
	var text []byte
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			text = append(text, t...)
		case xml.EndElement:
			return string(text), nil // untyped value: a string
		case xml.StartElement:
			if !isSpace(text) {
				return nil, errf("text mixed with <%s> in <value>", t.Name.Local)
			}
			v, err := d.typed(t.Name.Local)
			if err != nil {
				return nil, err
			}
			if err := d.end(); err != nil { // </value>
				return nil, err
			}
			return v, nil
		}
	}
}

// typed reads a typed value after its start tag, up to its end tag.
func (d *decoder) typed(kind string) (any, error) {
	switch kind {
	case "array":
		return d.array()
	case "struct":
		return d.strct()
	}
	s, err := d.text(kind)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "string":
		return s, nil
	case "nil":
		if !isSpace([]byte(s)) {
			return nil, errf("<nil/> must be empty")
		}
		return nil, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, errf("bad boolean value %q", clip(s))
	case "int", "i4":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
			return nil, errf("bad <%s> value %q (32-bit integer expected)", kind, clip(s))
		}
		return n, nil
	case "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, errf("bad <i8> value %q", clip(s))
		}
		return n, nil
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errf("bad <double> value %q", clip(s))
		}
		return f, nil
	case "dateTime.iso8601":
		return DateTime(strings.TrimSpace(s)), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, errf("bad <base64> value: %v", err)
		}
		return b, nil
	}
	return nil, errf("unknown value type <%s>", kind)
}

// nest enters an array or struct; the caller defers d.level--.
func (d *decoder) nest() error {
	d.level++
	if d.level > d.lim.MaxDepth {
		return errf("arrays and structs nested deeper than %d", d.lim.MaxDepth)
	}
	return nil
}

func (d *decoder) array() (any, error) {
	if err := d.nest(); err != nil {
		return nil, err
	}
	defer func() { d.level-- }()
	se, err := d.startElem()
	if err != nil {
		return nil, err
	}
	if se.Name.Local != "data" {
		return nil, errf("expected <data> in <array>, got <%s>", se.Name.Local)
	}
	out := []any{}
	for {
		se, end, err := d.startOrEnd()
		if err != nil {
			return nil, err
		}
		if end {
			break
		}
		if se.Name.Local != "value" {
			return nil, errf("expected <value> in <data>, got <%s>", se.Name.Local)
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, d.end() // </array>
}

func (d *decoder) strct() (any, error) {
	if err := d.nest(); err != nil {
		return nil, err
	}
	defer func() { d.level-- }()
	out := map[string]any{}
	for {
		se, end, err := d.startOrEnd()
		if err != nil {
			return nil, err
		}
		if end {
			return out, nil
		}
		if se.Name.Local != "member" {
			return nil, errf("expected <member> in <struct>, got <%s>", se.Name.Local)
		}
		if se, err = d.startElem(); err != nil {
			return nil, err
		}
		if se.Name.Local != "name" {
			return nil, errf("expected <name> in <member>, got <%s>", se.Name.Local)
		}
		name, err := d.text("name")
		if err != nil {
			return nil, err
		}
		v, err := d.valueElem()
		if err != nil {
			return nil, err
		}
		if err := d.end(); err != nil { // </member>
			return nil, err
		}
		out[name] = v
	}
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "..."
	}
	return s
}
