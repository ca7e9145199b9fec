package tags

import (
	"regexp"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// VsysGrant is one value of the vsys slice tag: a privileged operation
// the node runs on the slice's behalf when the slice asks through the
// node manager's local API (package node/vsys, docs/brokering.md), for
// any value of the operation's scoped argument or, with a Scope, for that
// value only.
//
// Syntax: <op> or <op>:<scope>, e.g. "sensor", "dataset:census",
// "pfmount". An op is 1-32 of [a-z0-9_-] starting with a letter (a
// built-in operation or an operator script of the node); a scope is 1-128
// of [A-Za-z0-9._-] starting with a letter or digit.
type VsysGrant struct {
	Op    string
	Scope string // "" = any
}

// String renders g in the tag's syntax.
func (g VsysGrant) String() string {
	if g.Scope == "" {
		return g.Op
	}
	return g.Op + ":" + g.Scope
}

var (
	vsysOp    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	vsysScope = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// ValidVsysOp reports whether op is a well-formed operation name.
func ValidVsysOp(op string) bool { return vsysOp.MatchString(op) }

// ParseVsysGrant parses one vsys tag value; the error names what is wrong.
func ParseVsysGrant(value string) (VsysGrant, error) {
	v := strings.TrimSpace(value)
	op, scope, scoped := strings.Cut(v, ":")
	if !vsysOp.MatchString(op) {
		return VsysGrant{}, core.FieldErrorf(Vsys, "%q: operation %q is not 1-32 of [a-z0-9_-] starting with a letter", v, op)
	}
	if scoped && !vsysScope.MatchString(scope) {
		return VsysGrant{}, core.FieldErrorf(Vsys, "%q: scope %q is not 1-128 of [A-Za-z0-9._-] starting with a letter or digit", v, scope)
	}
	return VsysGrant{Op: op, Scope: scope}, nil
}

// VsysGrants returns the grants of a sliver's tags, and the values that
// do not parse (ignored: they grant nothing).
func VsysGrants(attrs []core.Attribute) (grants []VsysGrant, bad []string) {
	for _, a := range attrs {
		if a.TagName != Vsys {
			continue
		}
		g, err := ParseVsysGrant(a.Value)
		if err != nil {
			bad = append(bad, a.Value)
			continue
		}
		grants = append(grants, g)
	}
	return grants, bad
}

// VsysAllows reports whether grants allow op for the scoped argument
// value scope ("" when the operation has none: then only an unscoped
// grant allows it).
func VsysAllows(grants []VsysGrant, op, scope string) bool {
	for _, g := range grants {
		if g.Op == op && (g.Scope == "" || g.Scope == scope) {
			return true
		}
	}
	return false
}

// VsysGranted reports whether grants name op at all (any scope).
func VsysGranted(grants []VsysGrant, op string) bool {
	for _, g := range grants {
		if g.Op == op {
			return true
		}
	}
	return false
}
