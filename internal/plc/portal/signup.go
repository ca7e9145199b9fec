package portal

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/planetlab/pl/internal/core"
)

type siteChoice struct {
	LoginBase, Name string
}

type signupData struct {
	Form   core.Registration // what was typed (not the password)
	Sites  []siteChoice
	Errors map[string]string // field -> message, shown beside the field
	Done   bool
}

func (h *Handler) signupSites(r *http.Request) ([]siteChoice, error) {
	anon, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "anonymous"}, nil)
	if err != nil {
		return nil, err
	}
	recs, err := h.reg.Get(r.Context(), anon, core.Site, &core.Filter{Terms: []core.Term{{Field: "enabled", Op: core.Eq, Value: true}}}, []string{"login_base", "name"})
	if err != nil {
		return nil, err
	}
	out := make([]siteChoice, 0, len(recs))
	for _, s := range recs {
		out = append(out, siteChoice{LoginBase: str(s, "login_base"), Name: str(s, "name")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (h *Handler) signupPage(w http.ResponseWriter, r *http.Request) {
	h.showSignup(w, r, http.StatusOK, signupData{})
}

func (h *Handler) showSignup(w http.ResponseWriter, r *http.Request, st int, d signupData) {
	sites, err := h.signupSites(r)
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	d.Sites = sites
	h.render(w, st, "signup", page{Title: "Sign up", CSRF: h.formCSRF(w, r), Data: d})
}

func (h *Handler) signup(w http.ResponseWriter, r *http.Request) {
	if !h.checkFormCSRF(w, r) {
		return
	}
	if h.opts.Accounts == nil {
		h.fail(w, r, nil, core.Errorf(core.Unimplemented, "sign-up is not served here"))
		return
	}
	f := r.PostForm
	reg := core.Registration{FirstName: f.Get("first_name"), LastName: f.Get("last_name"), Email: f.Get("email"),
		Site: f.Get("site"), Password: f.Get("password"), Key: f.Get("key")}
	d := signupData{Form: reg}
	d.Form.Password = ""
	if reg.Password != f.Get("password2") {
		d.Errors = map[string]string{"password2": "the two passwords differ"}
		h.showSignup(w, r, http.StatusBadRequest, d)
		return
	}
	anon, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "anonymous"}, nil)
	if err == nil {
		_, err = h.opts.Accounts.RegisterPerson(r.Context(), anon, reg)
	}
	if err != nil {
		field := core.ErrorField(err)
		if field == "" || statusOf(err) >= 500 || statusOf(err) == http.StatusTooManyRequests {
			h.fail(w, r, nil, err)
			return
		}
		d.Errors = map[string]string{field: fieldMessage(err)}
		h.showSignup(w, r, statusOf(err), d)
		return
	}
	d.Done = true
	h.render(w, http.StatusOK, "signup", page{Title: "Sign up", Data: d})
}

// fieldMessage is an error's message without the field name (the page
// shows it beside the field).
func fieldMessage(err error) string {
	var msg = core.PublicMessage(err)
	if f := core.ErrorField(err); f != "" && len(msg) > len(f)+2 && msg[:len(f)+2] == f+": " {
		return msg[len(f)+2:]
	}
	return msg
}

type pendingRow struct {
	ID      int64
	Name    string
	Email   string
	Sites   string
	Created string
	Keys    int
}

// pending are the disabled persons of the caller's sites (all of them for
// admins): the sign-ups awaiting approval.
func (h *Handler) pending(r *http.Request, s *session) ([]pendingRow, error) {
	recs, err := h.reg.Get(r.Context(), s.caller, core.Person, &core.Filter{Terms: []core.Term{{Field: "enabled", Op: core.Eq, Value: false}}},
		[]string{"person_id", "email", "first_name", "last_name", "site_ids", "date_created", "key_ids"})
	if err != nil {
		return nil, err
	}
	sites := map[int64]string{}
	if srecs, err := h.reg.Get(r.Context(), s.caller, core.Site, nil, []string{"site_id", "login_base"}); err == nil {
		for _, sr := range srecs {
			id, _ := sr["site_id"].(int64)
			sites[id] = str(sr, "login_base")
		}
	}
	admin := s.caller.HasRole(core.RoleAdmin)
	var out []pendingRow
	for _, p := range recs {
		ids := int64s(p["site_ids"])
		mine := admin
		var names []string
		for _, id := range ids {
			mine = mine || slices.Contains(s.caller.SiteIDs, id)
			names = append(names, sites[id])
		}
		if !mine {
			continue
		}
		id, _ := p["person_id"].(int64)
		row := pendingRow{ID: id, Name: str(p, "first_name") + " " + str(p, "last_name"), Email: str(p, "email"), Keys: len(int64s(p["key_ids"]))}
		for i, n := range names {
			if i > 0 {
				row.Sites += ", "
			}
			row.Sites += n
		}
		if c, _ := p["date_created"].(int64); c > 0 {
			row.Created = time.Unix(c, 0).UTC().Format("2006-01-02 15:04 UTC")
		}
		out = append(out, row)
	}
	return out, nil
}

func (h *Handler) pendingPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.showPending(w, r, s, "")
}

func (h *Handler) showPending(w http.ResponseWriter, r *http.Request, s *session, flash string) {
	if !s.caller.HasRole(core.RolePI) && !s.caller.HasRole(core.RoleAdmin) {
		h.fail(w, r, s, core.Errorf(core.Forbidden, "only PIs and admins approve accounts"))
		return
	}
	rows, err := h.pending(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	p := s.page("Pending accounts", rows)
	p.Flash = flash
	h.render(w, http.StatusOK, "pending", p)
}

// decide approves (enables) or rejects (deletes) a pending account; the
// service decides who may.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.fail(w, r, s, core.Errorf(core.Invalid, "person id %q is not a number", r.PathValue("id")))
		return
	}
	recs, err := h.reg.Get(r.Context(), s.caller, core.Person, &core.Filter{IsList: true, IDs: []int64{id}}, []string{"email", "enabled"})
	if err == nil && len(recs) == 0 {
		err = core.Errorf(core.NotFound, "no person %d", id)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	email := str(recs[0], "email")
	if en, _ := recs[0]["enabled"].(bool); en {
		h.showPending(w, r, s, email+" is already approved.")
		return
	}
	var flash string
	switch r.PathValue("verb") {
	case "approve":
		err, flash = h.reg.Update(r.Context(), s.caller, core.Person, id, core.Record{"enabled": true}), "Approved "+email+"."
	case "reject":
		err, flash = h.reg.Delete(r.Context(), s.caller, core.Person, id), "Rejected "+email+": the account is deleted."
	default:
		h.notFound(w, r)
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.showPending(w, r, s, flash)
}
