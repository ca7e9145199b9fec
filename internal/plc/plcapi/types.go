package plcapi

import (
	"fmt"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/xmlrpc"
)

// kind is an XML-RPC type as PLCAPI's Parameter declarations use it.
type kind int

const (
	kInt kind = iota
	kBool
	kDouble
	kString
	kArray
	kStruct
	kMixed // one of alts
	kAny   // anything (return values of varying shape)
	kNil
)

// typ is a parameter or return type: the Go form of the original's
// Parameter/Mixed declarations (PLC/Parameter.py).
type typ struct {
	kind     kind
	min, max *int64 // string byte length, list length or number bounds
	nullok   bool
	elem     *typ            // kArray: element type (nil = any)
	fields   map[string]*typ // kStruct: known members (nil = any struct)
	required []string        // kStruct: members that must be present
	alts     []*typ          // kMixed
}

func i64(n int64) *int64 { return &n }

var (
	tInt    = &typ{kind: kInt}
	tBool   = &typ{kind: kBool}
	tDouble = &typ{kind: kDouble}
	tStr    = &typ{kind: kString}
	tAny    = &typ{kind: kAny}
)

func str(max int64) *typ           { return &typ{kind: kString, max: i64(max)} }
func strRange(min, max int64) *typ { return &typ{kind: kString, min: i64(min), max: i64(max)} }
func arrayOf(e *typ) *typ          { return &typ{kind: kArray, elem: e} }
func mixed(alts ...*typ) *typ      { return &typ{kind: kMixed, alts: alts} }
func structOf(fields map[string]*typ, required ...string) *typ {
	return &typ{kind: kStruct, fields: fields, required: required}
}

// null returns a copy of t that also accepts nil.
func null(t *typ) *typ {
	c := *t
	c.nullok = true
	return &c
}

// xmlrpcType names the XML-RPC type of a Go value as Python's
// PLC.Parameter.xmlrpc_type does.
func xmlrpcType(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case bool:
		return "boolean"
	case int64, int:
		return "int"
	case float64:
		return "double"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "struct"
	case xmlrpc.DateTime:
		return "dateTime.iso8601"
	case []byte:
		return "base64"
	}
	return fmt.Sprintf("%T", v)
}

// name is the XML-RPC name of a type (for faults and methodSignature).
func (t *typ) name() string {
	switch t.kind {
	case kInt:
		return "int"
	case kBool:
		return "boolean"
	case kDouble:
		return "double"
	case kString:
		return "string"
	case kArray:
		return "array"
	case kStruct:
		return "struct"
	case kNil:
		return "nil"
	case kMixed:
		names := make([]string, len(t.alts))
		for i, a := range t.alts {
			names[i] = a.name()
		}
		return strings.Join(names, " or ")
	}
	return "any"
}

// check type-checks v against t as Method.type_check does: bool passes
// as int (Python's bool is an int) but int and double and string never
// stand in for each other; string bounds count UTF-8 bytes; struct members
// that t does not declare are not checked here; required members must be
// present. name is the parameter name used in the fault message.
func check(name string, v any, t *typ) error {
	if t.kind == kMixed {
		var last error
		for _, a := range t.alts {
			if last = check(name, v, a); last == nil {
				return nil
			}
		}
		if v == nil && t.nullok {
			return nil
		}
		return last
	}
	if v == nil && t.nullok || t.kind == kAny {
		return nil
	}
	ok := false
	switch t.kind {
	case kInt:
		switch v.(type) {
		case int64, bool:
			ok = true
		}
	case kBool:
		_, ok = v.(bool)
	case kDouble:
		_, ok = v.(float64)
	case kString:
		_, ok = v.(string)
	case kArray:
		_, ok = v.([]any)
	case kStruct:
		_, ok = v.(map[string]any)
	case kNil:
		ok = v == nil
	}
	if !ok {
		return invalidArg(name, "expected %s, got %s", t.name(), xmlrpcType(v))
	}
	switch x := v.(type) {
	case string:
		n := int64(len(x)) // Go strings are UTF-8: len counts bytes
		if t.min != nil && n < *t.min {
			return invalidArg("", "%s must be at least %d bytes long", name, *t.min)
		}
		if t.max != nil && n > *t.max {
			return invalidArg("", "%s must be at most %d bytes long", name, *t.max)
		}
	case []any:
		n := int64(len(x))
		if t.min != nil && n < *t.min {
			return invalidArg("", "%s must contain at least %d items", name, *t.min)
		}
		if t.max != nil && n > *t.max {
			return invalidArg("", "%s must contain at most %d items", name, *t.max)
		}
		if t.elem != nil {
			for _, e := range x {
				if err := check(name+"[]", e, t.elem); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ft, ok := t.fields[k]; ok {
				if err := check(fmt.Sprintf("%s['%s']", name, k), x[k], ft); err != nil {
					return err
				}
			}
		}
		for _, k := range t.required {
			if _, ok := x[k]; !ok {
				return invalidArg(name, "'%s' not specified", k)
			}
		}
	case int64:
		if t.min != nil && x < *t.min {
			return invalidArg("", "%s must be > %d", name, *t.min)
		}
		if t.max != nil && x > *t.max {
			return invalidArg("", "%s must be < %d", name, *t.max)
		}
	}
	return nil
}
