package plcapi

import (
	"context"

	"github.com/planetlab/pl/internal/core"
)

// authKind says which Auth structs a method accepts.
type authKind int

const (
	authAny           authKind = iota // Auth(): any AuthMethod
	authNone                          // system.*: no auth argument
	authSession                       // SessionAuth only
	authBoot                          // BootAuth only
	authBootOrSession                 // Mixed(BootAuth, SessionAuth)
)

// param is one declared argument after the auth struct.
type param struct {
	name     string
	t        *typ
	optional bool // may be omitted (the method sees nil)
}

// method is one PLCAPI method: its declaration (roles, accepts, returns)
// and its mapping onto the Registry.
type method struct {
	name    string
	roles   []string
	auth    authKind
	params  []param
	returns *typ
	help    string
	fn      func(x *call, a []any) (any, error)
}

// call is one method invocation.
type call struct {
	ctx    context.Context
	h      *Handler
	m      *method
	caller *core.Caller
}

func (x *call) reg() core.Registry { return x.h.reg }

// asInt returns an XML-RPC int (or a bool, which Python treats as one).
func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case bool:
		if n {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// resolve turns an id (int) or a name (string) into an id; a string is
// always a name, even "12".
func (x *call) resolve(class core.Class, ref any) (int64, error) {
	if n, ok := asInt(ref); ok {
		ref = n
	}
	return x.reg().Resolve(x.ctx, x.caller, class, ref)
}

// resolveAll resolves a list of references (or a single one); every
// reference is resolved before anything is written.
func (x *call) resolveAll(class core.Class, refs any) ([]int64, error) {
	list, ok := refs.([]any)
	if !ok {
		list = []any{refs}
	}
	ids := make([]int64, 0, len(list))
	for _, r := range list {
		id, err := x.resolve(class, r)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// get runs a Get* call: filter as reference §2.3, return_fields a list
// of field or tag names (nil = every native field).
func (x *call) get(class core.Class, filter, returnFields any) ([]core.Record, error) {
	f, err := core.ParseFilter(filter)
	if err != nil {
		return nil, err
	}
	var fields []string
	if l, ok := returnFields.([]any); ok {
		fields = make([]string, 0, len(l))
		for _, e := range l {
			fields = append(fields, e.(string)) // type-checked as array of string
		}
	}
	recs, err := x.reg().Get(x.ctx, x.caller, class, f, fields)
	if err != nil {
		return nil, err
	}
	if recs == nil {
		recs = []core.Record{}
	}
	return recs, nil
}

// record copies a type-checked struct argument into a Record. A boolean
// given for a declared int field becomes 0 or 1, as Python stores it.
func record(v any, fields map[string]*typ) core.Record {
	m, _ := v.(map[string]any)
	r := make(core.Record, len(m))
	for k, e := range m {
		if b, ok := e.(bool); ok && fields[k] != nil && fields[k].kind == kInt {
			e, _ = asInt(b)
		}
		r[k] = e
	}
	return r
}
