// Package fielddiff compares two values of a struct type field by field,
// so that what "changed" means is derived from the type itself rather than
// from hand-kept lists of fields that drift from it.
//
// Every exported field carries a struct tag
//
//	diff:"name,class"
//
// name is how a change is reported (logs, plans); class says what a change
// of the field takes, in the terms of the package that owns the type (the
// sliver runtime uses "cgroup", "quota", "recreate", ...; it may be empty).
// A field of struct type tagged diff:",inline" is compared field by field
// with the same rules. Fields returns an error naming any exported field
// without a tag, so a test over the type fails the day a field is added
// and not classified.
//
// Values are compared with reflect.DeepEqual, except that a nil and an
// empty slice or map are equal.
package fielddiff

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Field is one compared (leaf) field of a struct type.
type Field struct {
	Name  string // from the tag
	Class string // from the tag; may be ""
	Path  string // Go path from the top type, e.g. "Resources.Pids"
	index []int
}

// Fields lists the compared fields of struct type t in declaration order
// (inline structs expanded). It reports every exported field without a
// diff tag, and duplicate names.
func Fields(t reflect.Type) ([]Field, error) {
	var out []Field
	var missing []string
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			tag, ok := sf.Tag.Lookup("diff")
			if !ok {
				missing = append(missing, prefix+sf.Name)
				continue
			}
			name, class, _ := strings.Cut(tag, ",")
			if name == "" && class == "inline" && sf.Type.Kind() == reflect.Struct {
				walk(sf.Type, prefix+sf.Name+".", idx)
				continue
			}
			if name == "" {
				missing = append(missing, prefix+sf.Name+" (empty name)")
				continue
			}
			out = append(out, Field{Name: name, Class: class, Path: prefix + sf.Name, index: idx})
		}
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("fielddiff: %s is not a struct type", t)
	}
	walk(t, "", nil)
	seen := map[string]string{}
	for _, f := range out {
		if p, dup := seen[f.Name]; dup {
			return nil, fmt.Errorf("fielddiff: %s: fields %s and %s are both named %q", t, p, f.Path, f.Name)
		}
		seen[f.Name] = f.Path
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("fielddiff: %s: fields without a diff tag: %s", t, strings.Join(missing, ", "))
	}
	return out, nil
}

// Diff returns the fields in which a and b differ, in declaration order.
// It panics when T is not a struct type with every exported field tagged
// (a programming error that the owning package's test reports).
func Diff[T any](a, b T) []Field {
	fields, err := cachedFields(reflect.TypeFor[T]())
	if err != nil {
		panic(err)
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []Field
	for _, f := range fields {
		if !equal(va.FieldByIndex(f.index), vb.FieldByIndex(f.index)) {
			out = append(out, f)
		}
	}
	return out
}

var cache sync.Map // reflect.Type -> []Field

func cachedFields(t reflect.Type) ([]Field, error) {
	if fs, ok := cache.Load(t); ok {
		return fs.([]Field), nil
	}
	fs, err := Fields(t)
	if err == nil {
		cache.Store(t, fs)
	}
	return fs, err
}

func equal(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Slice, reflect.Map:
		if a.Len() == 0 && b.Len() == 0 {
			return true
		}
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Names returns the names of fs.
func Names(fs []Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// Classes returns the set of the classes of fs.
func Classes(fs []Field) map[string]bool {
	out := map[string]bool{}
	for _, f := range fs {
		out[f.Class] = true
	}
	return out
}
