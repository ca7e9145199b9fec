// Package query is the planet table's query language: boolean expressions
// over one table row, in the spirit of CoMon's ("load < 2 && disk_free_gb >
// 5 && country in ['JP', 'BR']"). Expressions are compiled by
// github.com/expr-lang/expr against the row type, so every name is a typed
// column of the row (its `expr` struct tag) and a misspelt column, a type
// mismatch or a non-boolean expression is refused at compile time with the
// position of the fault.
//
// Cost is bounded at both ends: the source is at most MaxLen bytes and
// MaxNodes syntax nodes, and evaluation has a memory budget (MemoryBudget
// units of expr's VM, counting every allocated element), so a range or a
// nested loop cannot run away.
package query

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Limits of a query.
const (
	MaxLen       = 2048 // bytes of source
	MaxNodes     = 256  // syntax nodes
	MemoryBudget = 10000
)

// Error is a query that does not compile: where and what was expected.
type Error struct {
	Query  string
	Line   int // 1-based
	Column int // 1-based, in characters
	Msg    string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return "query: " + e.Msg
	}
	return fmt.Sprintf("query: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Query is a compiled boolean expression over rows of type T.
type Query[T any] struct {
	src  string
	prog *vm.Program
}

// Compile compiles src against the columns of T (a struct; its fields'
// `expr` tags name the columns). An empty (all blank) src matches every row.
func Compile[T any](src string) (*Query[T], error) {
	q := &Query[T]{src: src}
	if strings.TrimSpace(src) == "" {
		return q, nil
	}
	if len(src) > MaxLen {
		return nil, &Error{Query: src, Msg: fmt.Sprintf("longer than %d bytes", MaxLen)}
	}
	if !utf8.ValidString(src) {
		return nil, &Error{Query: src, Msg: "not valid UTF-8"}
	}
	var zero T
	prog, err := expr.Compile(src, expr.Env(zero), expr.AsBool(), expr.MaxNodes(MaxNodes))
	if err != nil {
		return nil, wrap(src, err)
	}
	q.prog = prog
	return q, nil
}

func wrap(src string, err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		line, col, msg := fe.Line, fe.Column+1, fe.Message
		if msg == "unexpected token EOF" {
			// expr places the end at the last character; say where it is.
			lines := strings.Split(src, "\n")
			line = len(lines)
			col = utf8.RuneCountInString(lines[line-1]) + 1
			msg = "unexpected end of the query: an operand or a closing bracket is missing"
		}
		return &Error{Query: src, Line: line, Column: col, Msg: msg}
	}
	if msg := err.Error(); strings.HasPrefix(msg, "expected bool, but got") {
		// The whole expression has the wrong type.
		return &Error{Query: src, Line: 1, Column: 1, Msg: "the query must be a condition (true or false), " + msg}
	}
	return &Error{Query: src, Msg: err.Error()}
}

// String returns the source.
func (q *Query[T]) String() string { return q.src }

// Match evaluates the query on row. A run-time failure (the memory budget
// exhausted, an integer division by zero) is an error naming the query.
func (q *Query[T]) Match(row *T) (ok bool, err error) {
	if q == nil || q.prog == nil {
		return true, nil
	}
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, &Error{Query: q.src, Msg: fmt.Sprint("evaluation failed: ", r)}
		}
	}()
	m := vm.VM{MemoryBudget: MemoryBudget}
	out, err := m.Run(q.prog, *row)
	if err != nil {
		return false, &Error{Query: q.src, Msg: "evaluation failed: " + firstLine(err.Error())}
	}
	b, isBool := out.(bool)
	if !isBool {
		return false, &Error{Query: q.src, Msg: fmt.Sprintf("result is %T, not a condition", out)}
	}
	return b, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// Columns lists the column names of T with their Go types, in field order:
// what a query (and a sort key) may name.
func Columns[T any]() []Column {
	t := reflect.TypeFor[T]()
	var out []Column
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("expr")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		out = append(out, Column{Name: name, Type: typeName(f.Type), Index: i})
	}
	return out
}

// Column is one queryable column.
type Column struct {
	Name  string
	Type  string // "int", "float", "string", "bool", "[]string"
	Index int    // struct field index
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "int"
	case reflect.Float64, reflect.Float32:
		return "float"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	}
	return t.String()
}
