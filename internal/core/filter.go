package core

// Filter selects registry objects, with the semantics of PLCAPI Get*
// filters (reference plcapi.md §2.3). Both transports parse their input
// into a Filter (ParseFilter) and the store turns it into SQL.
//
// A Filter is either a list of ids and names (IDs/Names, OR'ed; an empty
// list matches nothing) or a set of Terms combined with AND (or OR).
type Filter struct {
	IsList bool     // list form: match IDs or Names
	IDs    []int64  // primary keys
	Names  []string // secondary keys

	Terms  []Term
	Or     bool      // -OR: combine Terms with OR instead of AND
	Sort   []SortKey // -SORT
	Offset int       // -OFFSET
	Limit  int       // -LIMIT; 0 = none
}

// Op is a filter comparison.
type Op string

// Comparisons. Eq with a string containing * or % is a case-insensitive
// wildcard match; Eq with a list value is IN; Eq with nil is IS NULL.
const (
	Eq          Op = "="
	Lt          Op = "<"  // '<' prefix
	Gt          Op = ">"  // '>' prefix
	Le          Op = "<=" // '[' prefix
	Ge          Op = ">=" // ']' prefix
	ContainsAll Op = "&"  // '&' prefix: array field contains all values
	ContainsAny Op = "|"  // '|' prefix: array field contains any value
)

// Term is one field comparison. Value is nil, bool, int64, float64, string
// or []any of those.
type Term struct {
	Field string
	Op    Op
	Not   bool // '~' prefix
	Value any
}

// SortKey orders results by a field.
type SortKey struct {
	Field string
	Desc  bool
}
