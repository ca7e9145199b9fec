package portal

import (
	"fmt"
	"net/http"

	"github.com/planetlab/pl/internal/core"
)

type accountData struct {
	Errors map[string]string // field -> message
}

func (h *Handler) accountPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.render(w, http.StatusOK, "account", s.page("Account", accountData{}))
}

// changePassword checks the current password (through the service's
// login check, so guesses count in the login backoff) and sets the new
// one.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	fail := func(st int, field, msg string) {
		p := s.page("Account", accountData{Errors: map[string]string{field: msg}})
		h.render(w, st, "account", p)
	}
	if len(f.Get("new")) < core.MinPasswordLength {
		fail(http.StatusBadRequest, "new", fmt.Sprintf("must have at least %d characters", core.MinPasswordLength))
		return
	}
	if f.Get("new") != f.Get("new2") {
		fail(http.StatusBadRequest, "new2", "the two passwords differ")
		return
	}
	if _, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "password", Username: s.caller.Email, Password: f.Get("current")}, nil); err != nil {
		if core.ErrorCode(err) == core.RateLimited {
			h.fail(w, r, s, err)
			return
		}
		fail(http.StatusForbidden, "current", "this is not your current password")
		return
	}
	if err := h.reg.Update(r.Context(), s.caller, core.Person, s.caller.PersonID, core.Record{"password": f.Get("new")}); err != nil {
		if f := core.ErrorField(err); f == "password" {
			fail(statusOf(err), "new", fieldMessage(err))
			return
		}
		h.fail(w, r, s, err)
		return
	}
	p := s.page("Account", accountData{})
	p.Flash = "Password changed."
	h.render(w, http.StatusOK, "account", p)
}
