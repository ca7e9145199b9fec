package portal

import (
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// What a page offers follows the service's role gate: an action is shown
// when the caller holds one of the roles of its PLCAPI operation
// (Registry.OpRoles, the table the service checks, also served at REST
// GET /api/v1/op-roles/{op}). The service still decides each call (a PI
// acts on their own sites only); a page reached without the role is
// refused with the service's own error.

// may reports whether the caller holds a role of operation op.
func (h *Handler) may(c *core.Caller, op string) bool {
	for _, r := range h.reg.OpRoles(op) {
		if c.HasRole(r) {
			return true
		}
	}
	return false
}

// refusal is the service's error for a caller without a role of op.
func (h *Handler) refusal(op string) error {
	return core.Errorf(core.Forbidden, "%s: role not allowed (needs one of %s)", op, strings.Join(h.reg.OpRoles(op), ", "))
}

// mayAll is may over several operations, for templates: "AddSlice" -> true.
func (h *Handler) mayAll(c *core.Caller, ops ...string) map[string]bool {
	out := make(map[string]bool, len(ops))
	for _, op := range ops {
		out[op] = h.may(c, op)
	}
	return out
}
