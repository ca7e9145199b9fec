package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Query is a Get: a filter and the fields to return, plus conditions the
// service adds for visibility (Where/Args, SQL over the row alias t).
type Query struct {
	Table  *Table
	Filter *core.Filter
	// Fields to return; nil = every visible native field.
	Fields []string
	// Admin callers also see admin-only fields.
	Admin bool
	// Tags are the tag names usable as pseudo-fields (for tables with TagSQL).
	Tags  map[string]bool
	Where []string
	Args  []any

	dialect Dialect // set by Select
}

// Select runs a Get query.
func (tx *Tx) Select(ctx context.Context, q Query) ([]core.Record, error) {
	q.dialect = tx.Dialect
	fields, err := q.resolveFields()
	if err != nil {
		return nil, err
	}
	cols := q.columns(fields)
	query, args, err := q.selectSQL(cols)
	if err != nil {
		return nil, err
	}
	out, pks, index, err := tx.readRows(ctx, q.Table, cols, len(fields), query, args)
	if err != nil {
		return nil, err
	}
	// Without a filter most rows are selected: reading every list row and
	// keeping those of selected rows is cheaper than restricting the query
	// to a thousand owners.
	f := q.Filter
	everyRow := f == nil || !f.IsList && len(f.Terms) == 0 && f.Limit == 0 && f.Offset == 0
	if err := tx.fillLists(ctx, cols.lists, pks, pkType(q.Table), everyRow, index); err != nil {
		return nil, err
	}
	return out, nil
}

// selectCols are the parts of a selection: the SQL of the columns read
// (the primary key, needed for lists and stripped afterwards if not asked
// for; the scalars; then the tags, in that order), the tags' names (also
// the arguments of their SQL), and the list fields, read by fillLists.
type selectCols struct {
	sel      []string
	scalars  []*Field
	tagNames []string
	lists    []*Field
}

func (q *Query) columns(fields []string) selectCols {
	t := q.Table
	var c selectCols
	for _, name := range fields {
		if f, ok := t.byName[name]; ok {
			if f.IsList() {
				c.lists = append(c.lists, f)
				continue
			}
			c.scalars = append(c.scalars, f)
			c.sel = append(c.sel, colExpr(f))
			continue
		}
		c.tagNames = append(c.tagNames, name)
	}
	c.sel = append([]string{"t." + t.PK}, c.sel...)
	for range c.tagNames {
		c.sel = append(c.sel, t.TagSQL)
	}
	return c
}

// selectSQL is the SELECT of cols with the query's conditions, filter,
// order and page.
func (q *Query) selectSQL(cols selectCols) (string, []any, error) {
	t := q.Table
	var where []string
	args := make([]any, 0, len(cols.tagNames)+len(q.Args))
	for _, name := range cols.tagNames {
		args = append(args, name)
	}
	if t.SoftDelete {
		where = append(where, "t.deleted = 0")
	}
	where = append(where, q.Where...)
	args = append(args, q.Args...)
	if q.Filter != nil {
		w, a, err := q.filterSQL()
		if err != nil {
			return "", nil, err
		}
		if w != "" {
			where = append(where, w)
			args = append(args, a...)
		}
	}
	var b strings.Builder
	b.WriteString("SELECT " + strings.Join(cols.sel, ", ") + " FROM " + t.SQL + " t")
	if len(where) > 0 {
		b.WriteString(" WHERE (" + strings.Join(where, ") AND (") + ")")
	}
	order, err := q.orderSQL()
	if err != nil {
		return "", nil, err
	}
	b.WriteString(" ORDER BY " + order)
	if f := q.Filter; f != nil && (f.Limit > 0 || f.Offset > 0) {
		limit := int64(f.Limit)
		if limit == 0 {
			limit = math.MaxInt64
		}
		b.WriteString(fmt.Sprintf(" LIMIT %d OFFSET %d", limit, f.Offset))
	}
	return b.String(), args, nil
}

// readRows runs the selection and returns its records in order, their
// primary keys, and the records by primary key (for the lists).
func (tx *Tx) readRows(ctx context.Context, t *Table, cols selectCols, nfields int, query string, args []any) ([]core.Record, []any, map[any]core.Record, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	out := []core.Record{}
	var pks []any
	index := map[any]core.Record{}
	for rows.Next() {
		vals := make([]any, len(cols.sel))
		ptrs := make([]any, len(cols.sel))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, nil, wrapDB("scan", err)
		}
		rec := make(core.Record, nfields)
		pk := normalize(vals[0], pkType(t))
		for i, f := range cols.scalars {
			rec[f.Name] = normalize(vals[i+1], f.Type)
		}
		for i, name := range cols.tagNames {
			rec[name] = normalize(vals[len(cols.scalars)+1+i], String)
		}
		out = append(out, rec)
		pks = append(pks, pk)
		index[pk] = rec
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, wrapDB("rows", err)
	}
	return out, pks, index, nil
}

func pkType(t *Table) Type {
	if t.StrPK {
		return String
	}
	return Int
}

func colExpr(f *Field) string {
	if f.Expr != "" {
		return f.Expr
	}
	return "t." + f.Name
}

// fillLists fills the list fields of every selected row: one query for
// the integer lists and one for the string lists, each a UNION ALL of the
// lists' sources restricted to the selected rows. Members are ordered by
// their sort key here rather than by SQL (SQLite's sorter cost more than
// the rest of the query).
func (tx *Tx) fillLists(ctx context.Context, lists []*Field, pks []any, pkTyp Type, everyRow bool, index map[any]core.Record) error {
	var ints, strs []*Field
	for _, f := range lists {
		if f.Type == IntList {
			ints = append(ints, f)
		} else {
			strs = append(strs, f)
		}
	}
	for _, group := range [][]*Field{ints, strs} {
		if len(group) == 0 {
			continue
		}
		intList := group[0].Type == IntList
		members := make([]map[int64][]listMember, len(group))
		for i := range group {
			members[i] = map[int64][]listMember{}
		}
		if len(pks) > 0 {
			q, args, err := listsSQL(tx.Dialect, group, pks, pkTyp, everyRow)
			if err != nil {
				return err
			}
			rows, err := tx.Query(ctx, q, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var f, o, k int64
				var m int64
				var ms sql.NullString
				dest := []any{&f, &o, &m, &k}
				if !intList {
					dest[2] = &ms
				}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return wrapDB("scan", err)
				}
				if _, selected := index[o]; selected && (intList || ms.Valid) {
					members[f][o] = append(members[f][o], listMember{k: k, n: m, s: ms.String})
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return wrapDB("rows", err)
			}
		}
		for _, pk := range pks {
			rec := index[pk]
			id, _ := pk.(int64)
			for i, f := range group {
				ms := members[i][id]
				if !slices.IsSortedFunc(ms, cmpMember) {
					slices.SortStableFunc(ms, cmpMember)
				}
				if intList {
					v := make([]int64, len(ms))
					for j, m := range ms {
						v[j] = m.n
					}
					rec[f.Name] = v
				} else {
					v := make([]string, len(ms))
					for j, m := range ms {
						v[j] = m.s
					}
					rec[f.Name] = v
				}
			}
		}
	}
	return nil
}

// listMember is a member of a list field with its sort key.
type listMember struct {
	k, n int64
	s    string
}

func cmpMember(a, b listMember) int { return cmp.Compare(a.k, b.k) }

// listsSQL is the query of fillLists: rows (field index, owner, member,
// sort key) of the owners pks (one parameter), or of every owner.
func listsSQL(d Dialect, group []*Field, pks []any, pkTyp Type, everyRow bool) (string, []any, error) {
	var b strings.Builder
	var args []any
	where := ""
	if !everyRow {
		src, arg, err := setSource(d, pks, pkTyp)
		if err != nil {
			return "", nil, err
		}
		b.WriteString("WITH owners(v) AS (" + src + ")")
		args = append(args, arg)
		where = " WHERE x.o IN (SELECT v FROM owners)"
	}
	for i, f := range group {
		if i > 0 {
			b.WriteString(" UNION ALL")
		}
		fmt.Fprintf(&b, " SELECT %d AS f, x.o, x.m, x.k FROM (%s) x%s", i, f.List, where)
	}
	return b.String(), args, nil
}

// inSet is the condition "expr is one of vals" with the whole list as one
// parameter, so that lists of any length work (SQLite allows 32,766
// parameters per statement, PostgreSQL 65,535) and the statement text does
// not depend on the list's length: a JSON array read by json_each on
// SQLite, an array on PostgreSQL. vals hold values of type typ (int64,
// float64 or string, as filterValue converts them).
func inSet(d Dialect, expr string, vals []any, typ Type) (string, any, error) {
	arg, pgType, err := setParam(d, vals, typ)
	if err != nil {
		return "", nil, err
	}
	if d == Postgres {
		return expr + " = ANY(?::" + pgType + ")", arg, nil
	}
	return expr + " IN (SELECT value FROM json_each(?))", arg, nil
}

// setSource is a row source of one column v holding vals, as one
// parameter (see inSet).
func setSource(d Dialect, vals []any, typ Type) (string, any, error) {
	arg, pgType, err := setParam(d, vals, typ)
	if err != nil {
		return "", nil, err
	}
	if d == Postgres {
		return "SELECT unnest(?::" + pgType + ") AS v", arg, nil
	}
	return "SELECT value AS v FROM json_each(?)", arg, nil
}

// setParam is the one parameter carrying vals: a typed array for
// PostgreSQL (with its SQL type), a JSON array for SQLite.
func setParam(d Dialect, vals []any, typ Type) (any, string, error) {
	if d != Postgres {
		b, err := json.Marshal(vals)
		if err != nil {
			return nil, "", core.FieldErrorf("filter", "value list: %v", err)
		}
		return string(b), "", nil
	}
	switch typ {
	case Int, Bool, IntList:
		a := make([]int64, len(vals))
		for i, v := range vals {
			n, ok := v.(int64)
			if !ok {
				return nil, "", fmt.Errorf("store: %T in an integer list", v)
			}
			a[i] = n
		}
		return a, "bigint[]", nil
	case Float:
		a := make([]float64, len(vals))
		for i, v := range vals {
			x, ok := v.(float64)
			if !ok {
				return nil, "", fmt.Errorf("store: %T in a float list", v)
			}
			a[i] = x
		}
		return a, "double precision[]", nil
	default:
		a := make([]string, len(vals))
		for i, v := range vals {
			x, ok := v.(string)
			if !ok {
				return nil, "", fmt.Errorf("store: %T in a string list", v)
			}
			a[i] = x
		}
		return a, "text[]", nil
	}
}

// normalize converts a scanned value to the Record value of a field type.
func normalize(v any, typ Type) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		v = string(x)
	case int32:
		v = int64(x)
	case int:
		v = int64(x)
	case float32:
		v = float64(x)
	}
	switch typ {
	case Bool:
		switch x := v.(type) {
		case int64:
			return x != 0
		case bool:
			return x
		}
	case Int, IntList:
		switch x := v.(type) {
		case float64:
			return int64(x)
		case bool:
			return boolInt(x)
		}
	case Float:
		if x, ok := v.(int64); ok {
			return float64(x)
		}
	}
	return v
}

func (q *Query) resolveFields() ([]string, error) {
	t := q.Table
	if q.Fields == nil {
		var out []string
		for _, f := range t.Fields {
			if f.Hidden || (f.Admin && !q.Admin) {
				continue
			}
			out = append(out, f.Name)
		}
		return out, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, name := range q.Fields {
		if seen[name] {
			continue
		}
		seen[name] = true
		f, ok := t.byName[name]
		if ok && f.Hidden {
			ok = false
		}
		if !ok {
			if t.TagSQL != "" && q.Tags[name] {
				out = append(out, name)
				continue
			}
			return nil, &core.Error{Code: core.Invalid, Field: name, Message: fmt.Sprintf("Invalid return field '%s'", name)}
		}
		if f.Admin && !q.Admin {
			continue // silently stripped, as the original
		}
		out = append(out, name)
	}
	return out, nil
}

// termField resolves a filter field: a column/computed scalar, a list
// field, or a tag pseudo-field.
func (q *Query) termField(name string) (expr string, args []any, f *Field, err error) {
	t := q.Table
	if f, ok := t.byName[name]; ok && !f.Hidden && (!f.Admin || q.Admin) {
		if f.IsList() {
			return "", nil, f, nil
		}
		return colExpr(f), nil, f, nil
	}
	if t.TagSQL != "" && q.Tags[name] {
		return t.TagSQL, []any{name}, &Field{Name: name, Type: String, Null: true}, nil
	}
	return "", nil, nil, &core.Error{Code: core.Invalid, Field: name, Message: fmt.Sprintf("Invalid filter field '%s'", name)}
}

func (q *Query) filterSQL() (string, []any, error) {
	f := q.Filter
	t := q.Table
	if f.IsList {
		var parts []string
		var args []any
		if len(f.IDs) > 0 {
			if t.StrPK {
				return "", nil, core.FieldErrorf(t.PK, "integer ids do not name %s objects", t.Class)
			}
			ids := make([]any, len(f.IDs))
			for i, id := range f.IDs {
				ids[i] = id
			}
			s, a, err := inSet(q.dialect, "t."+t.PK, ids, Int)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, s)
			args = append(args, a)
		}
		if len(f.Names) > 0 {
			if t.Key == "" {
				return "", nil, core.FieldErrorf("filter", "%s objects have no name; filter by id", t.Class)
			}
			names := make([]any, len(f.Names))
			for i, n := range f.Names {
				names[i] = n
			}
			s, a, err := inSet(q.dialect, "t."+t.Key, names, String)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, s)
			args = append(args, a)
		}
		if len(parts) == 0 {
			return "1 = 0", nil, nil
		}
		return strings.Join(parts, " OR "), args, nil
	}
	var parts []string
	var args []any
	for _, term := range f.Terms {
		s, a, err := q.termSQL(term)
		if err != nil {
			return "", nil, err
		}
		parts = append(parts, s)
		args = append(args, a...)
	}
	if len(parts) == 0 {
		return "", nil, nil
	}
	op := ") AND ("
	if f.Or {
		op = ") OR ("
	}
	return "(" + strings.Join(parts, op) + ")", args, nil
}

func (q *Query) termSQL(term core.Term) (string, []any, error) {
	ex, exArgs, f, err := q.termField(term.Field)
	if err != nil {
		return "", nil, err
	}
	var s string
	var args []any
	if f.IsList() {
		s, args, err = q.listTermSQL(term, f)
	} else {
		s, args, err = q.scalarTermSQL(term, f, ex, exArgs)
	}
	if err != nil {
		return "", nil, err
	}
	if term.Not {
		s = "NOT (" + s + ")"
	}
	return s, args, nil
}

// listTermSQL is the condition of a term on an array field (node_ids,
// ...): equal to or containing any of a set of members, or all of them.
func (q *Query) listTermSQL(term core.Term, f *Field) (s string, args []any, err error) {
	elem := Int
	if f.Type == StrList {
		elem = String
	}
	vals, _ := term.Value.([]any)
	if term.Value != nil && vals == nil {
		vals = []any{term.Value}
	}
	for i, v := range vals {
		cv, err := filterValue(f.Name, v, elem)
		if err != nil {
			return "", nil, err
		}
		vals[i] = cv
	}
	src := "(" + f.List + ") x WHERE x.o = t." + q.Table.PK
	switch term.Op {
	case core.Eq, core.ContainsAny:
		if term.Value == nil {
			s = "NOT EXISTS (SELECT 1 FROM " + src + ")"
		} else if len(vals) == 0 {
			s = "1 = 0"
		} else {
			cond, a, err := inSet(q.dialect, "x.m", vals, elem)
			if err != nil {
				return "", nil, err
			}
			s = "EXISTS (SELECT 1 FROM " + src + " AND " + cond + ")"
			args = []any{a}
		}
	case core.ContainsAll:
		distinct := map[any]bool{}
		for _, v := range vals {
			distinct[v] = true
		}
		if len(vals) == 0 {
			s = "1 = 1"
		} else {
			cond, a, err := inSet(q.dialect, "x.m", vals, elem)
			if err != nil {
				return "", nil, err
			}
			s = fmt.Sprintf("(SELECT COUNT(DISTINCT x.m) FROM %s AND %s) = %d", src, cond, len(distinct))
			args = []any{a}
		}
	default:
		return "", nil, core.FieldErrorf(f.Name, "comparison %s does not apply to an array field", term.Op)
	}
	return s, args, nil
}

// scalarTermSQL is the condition of a term on a column or tag (expression
// ex with its arguments exArgs): equality (NULL, a value list, a wildcard
// pattern) or a comparison.
func (q *Query) scalarTermSQL(term core.Term, f *Field, ex string, exArgs []any) (s string, args []any, err error) {
	args = append(args, exArgs...)
	switch term.Op {
	case core.ContainsAll, core.ContainsAny:
		return "", nil, core.FieldErrorf(f.Name, "%s applies to array fields only", term.Op)
	case core.Eq:
		switch v := term.Value.(type) {
		case nil:
			s = ex + " IS NULL"
		case []any:
			if len(v) == 0 {
				s = "1 = 0"
				args = nil
				break
			}
			var vals []any
			for _, e := range v {
				if e == nil {
					return "", nil, core.FieldErrorf(f.Name, "nil inside a value list")
				}
				cv, err := filterValue(f.Name, e, f.Type)
				if err != nil {
					return "", nil, err
				}
				vals = append(vals, cv)
			}
			cond, a, err := inSet(q.dialect, ex, vals, f.Type)
			if err != nil {
				return "", nil, err
			}
			s = cond
			args = append(args, a)
		case string:
			if f.Type == String && strings.ContainsAny(v, "*%") {
				s = "LOWER(" + ex + ") LIKE LOWER(?)"
				args = append(args, strings.ReplaceAll(v, "*", "%"))
				break
			}
			cv, err := filterValue(f.Name, v, f.Type)
			if err != nil {
				return "", nil, err
			}
			s = ex + " = ?"
			args = append(args, cv)
		default:
			cv, err := filterValue(f.Name, v, f.Type)
			if err != nil {
				return "", nil, err
			}
			s = ex + " = ?"
			args = append(args, cv)
		}
	default:
		cv, err := filterValue(f.Name, term.Value, f.Type)
		if err != nil {
			return "", nil, err
		}
		s = ex + " " + string(term.Op) + " ?"
		args = append(args, cv)
	}
	return s, args, nil
}

// filterValue checks a filter value against a field type.
func filterValue(field string, v any, typ Type) (any, error) {
	switch typ {
	case Int:
		if b, ok := v.(bool); ok {
			return boolInt(b), nil
		}
		if n, ok := core.AsInt(v); ok {
			return n, nil
		}
	case Float:
		if n, ok := core.AsInt(v); ok {
			return float64(n), nil
		}
		if x, ok := v.(float64); ok {
			return x, nil
		}
	case Bool:
		if b, ok := v.(bool); ok {
			return boolInt(b), nil
		}
		if n, ok := core.AsInt(v); ok && (n == 0 || n == 1) {
			return n, nil
		}
	case String:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, core.FieldErrorf(field, "filter value must be %s, got %s", typ, core.TypeName(v))
}

func (q *Query) orderSQL() (string, error) {
	var parts []string
	if q.Filter != nil {
		for _, k := range q.Filter.Sort {
			ex, args, f, err := q.termField(k.Field)
			if err != nil {
				return "", err
			}
			if f.IsList() || len(args) > 0 {
				return "", core.FieldErrorf(k.Field, "cannot sort by this field")
			}
			dir := " ASC"
			if k.Desc {
				dir = " DESC"
			}
			parts = append(parts, ex+dir)
		}
	}
	parts = append(parts, "t."+q.Table.PK)
	return strings.Join(parts, ", "), nil
}

// Check validates caller-supplied fields for an Add (add=true) or Update:
// unknown fields, fields that may not be set, types (an int where a double
// is expected is an error; a boolean passes where an int is expected), nil
// for non-nullable fields, and lengths in UTF-8 bytes. It returns the
// values converted to store types. Required fields are checked on Add.
func (t *Table) Check(rec core.Record, add bool) (core.Record, error) {
	out := core.Record{}
	for name, v := range rec {
		f, ok := t.byName[name]
		if !ok || f.Hidden && !(f.Add || f.Update) {
			return nil, &core.Error{Code: core.Invalid, Field: name, Message: fmt.Sprintf("unknown field %q of %s", name, t.Class)}
		}
		if add && !f.Add || !add && !f.Update {
			verb := "set"
			if !add {
				verb = "changed"
			}
			return nil, &core.Error{Code: core.Invalid, Field: name, Message: fmt.Sprintf("%s field %q cannot be %s", t.Class, name, verb)}
		}
		cv, err := CheckValue(f, v)
		if err != nil {
			return nil, err
		}
		out[name] = cv
	}
	if add {
		for _, f := range t.Fields {
			if f.Required && f.Add {
				if v, ok := out[f.Name]; !ok || v == nil {
					return nil, core.FieldErrorf(f.Name, "%s field %q is required", t.Class, f.Name)
				}
			}
		}
	}
	return out, nil
}

// CheckValue validates one value for a field.
func CheckValue(f *Field, v any) (any, error) {
	if v == nil {
		if !f.Null {
			return nil, core.FieldErrorf(f.Name, "may not be nil")
		}
		return nil, nil
	}
	bad := func() error {
		return core.FieldErrorf(f.Name, "expected %s, got %s", f.Type, core.TypeName(v))
	}
	switch f.Type {
	case Int:
		if b, ok := v.(bool); ok {
			return boolInt(b), nil
		}
		if _, isFloat := v.(float64); isFloat {
			// JSON numbers decode as float64; accept integral ones.
			if n, ok := core.AsInt(v); ok {
				return intRange(f, n)
			}
			return nil, bad()
		}
		if n, ok := core.AsInt(v); ok {
			return intRange(f, n)
		}
		return nil, bad()
	case Float:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, core.FieldErrorf(f.Name, "not a finite number")
			}
			return x, nil
		case float32:
			return float64(x), nil
		case json.Number:
			if x, err := x.Float64(); err == nil {
				return x, nil
			}
		}
		return nil, bad()
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, bad()
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, bad()
		}
		if f.Max > 0 && len(s) > f.Max {
			return nil, core.FieldErrorf(f.Name, "too long: %d bytes, at most %d (UTF-8)", len(s), f.Max)
		}
		return s, nil
	}
	return nil, core.FieldErrorf(f.Name, "is computed and cannot be set")
}

// intRange checks an integer against its field's range: 32-bit but for
// times, non-negative for counts.
func intRange(f *Field, n int64) (any, error) {
	lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
	switch {
	case f.Time:
		return n, nil
	case f.Count:
		lo = 0
	}
	if n < lo || n > hi {
		return nil, core.FieldErrorf(f.Name, "must be between %d and %d, got %d", lo, hi, n)
	}
	return n, nil
}

// InsertRecord inserts the checked fields plus extra columns and returns
// the new primary key.
func (tx *Tx) InsertRecord(ctx context.Context, t *Table, rec core.Record) (int64, error) {
	var cols []string
	var vals []any
	for _, name := range slices.Sorted(maps.Keys(rec)) {
		cols = append(cols, name)
		vals = append(vals, rec[name])
	}
	return tx.Insert(ctx, t.SQL, t.PK, cols, vals)
}

// UpdateRecord sets columns of one row.
func (tx *Tx) UpdateRecord(ctx context.Context, t *Table, id any, rec core.Record) error {
	if len(rec) == 0 {
		return nil
	}
	var sets []string
	var vals []any
	for _, name := range slices.Sorted(maps.Keys(rec)) {
		sets = append(sets, name+" = ?")
		vals = append(vals, rec[name])
	}
	_, err := tx.Exec(ctx, "UPDATE "+t.SQL+" SET "+strings.Join(sets, ", ")+" WHERE "+t.PK+" = ?", append(vals, id)...)
	return err
}
