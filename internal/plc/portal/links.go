package portal

import (
	"fmt"
	"net/http"

	"github.com/planetlab/pl/internal/core"
)

// The pages of the mailed one-time links (service tokens.go): "forgot
// password", the reset form and the verification landing page. Opening a
// link changes nothing (mail scanners fetch links): the page shows a form
// whose POST, with the CSRF token, uses the link once.

type linkData struct {
	Email  string
	Token  string
	Errors map[string]string
	Sent   bool // forgot: the request was taken
	Done   bool // reset or verify: the link was used
}

func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "forgot", page{Title: "Forgotten password", CSRF: h.formCSRF(w, r), Data: linkData{}})
}

// forgot asks the service for a reset link and answers the same whether
// or not the address has an account; only a rate limit or a bad address
// is shown.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) {
	if !h.checkFormCSRF(w, r) {
		return
	}
	if h.opts.Accounts == nil {
		h.fail(w, r, nil, core.Errorf(core.Unimplemented, "password reset is not served here"))
		return
	}
	email := r.PostForm.Get("email")
	anon, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "anonymous"}, nil)
	if err == nil {
		err = h.opts.Accounts.RequestPasswordReset(r.Context(), anon, email)
	}
	if err != nil {
		if core.ErrorField(err) == "email" {
			d := linkData{Email: email, Errors: map[string]string{"email": fieldMessage(err)}}
			h.render(w, statusOf(err), "forgot", page{Title: "Forgotten password", CSRF: h.formCSRF(w, r), Data: d})
			return
		}
		h.fail(w, r, nil, err)
		return
	}
	h.render(w, http.StatusOK, "forgot", page{Title: "Forgotten password", Data: linkData{Email: email, Sent: true}})
}

func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) {
	d := linkData{Token: r.URL.Query().Get("token")}
	h.render(w, http.StatusOK, "reset", page{Title: "Choose a new password", CSRF: h.formCSRF(w, r), Data: d})
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	if !h.checkFormCSRF(w, r) {
		return
	}
	if h.opts.Accounts == nil {
		h.fail(w, r, nil, core.Errorf(core.Unimplemented, "password reset is not served here"))
		return
	}
	f := r.PostForm
	d := linkData{Token: f.Get("token")}
	show := func(st int, field, msg string) {
		d.Errors = map[string]string{field: msg}
		h.render(w, st, "reset", page{Title: "Choose a new password", CSRF: h.formCSRF(w, r), Data: d})
	}
	if len(f.Get("password")) < core.MinPasswordLength {
		show(http.StatusBadRequest, "password", fmt.Sprintf("must have at least %d characters", core.MinPasswordLength))
		return
	}
	if f.Get("password") != f.Get("password2") {
		show(http.StatusBadRequest, "password2", "the two passwords differ")
		return
	}
	anon, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "anonymous"}, nil)
	if err == nil {
		err = h.opts.Accounts.CompletePasswordReset(r.Context(), anon, d.Token, f.Get("password"))
	}
	if err != nil {
		if core.ErrorField(err) == "password" {
			show(statusOf(err), "password", fieldMessage(err))
			return
		}
		h.fail(w, r, nil, err)
		return
	}
	d.Done = true
	h.render(w, http.StatusOK, "reset", page{Title: "Password set", Data: d})
}

func (h *Handler) verifyPage(w http.ResponseWriter, r *http.Request) {
	d := linkData{Token: r.URL.Query().Get("token")}
	h.render(w, http.StatusOK, "verify", page{Title: "Confirm your e-mail address", CSRF: h.formCSRF(w, r), Data: d})
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	if !h.checkFormCSRF(w, r) {
		return
	}
	if h.opts.Accounts == nil {
		h.fail(w, r, nil, core.Errorf(core.Unimplemented, "e-mail verification is not served here"))
		return
	}
	anon, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "anonymous"}, nil)
	var email string
	if err == nil {
		email, err = h.opts.Accounts.ConfirmEmail(r.Context(), anon, r.PostForm.Get("token"))
	}
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.render(w, http.StatusOK, "verify", page{Title: "E-mail address confirmed", Data: linkData{Email: email, Done: true}})
}
