package portal

import (
	"net/http"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Creating a slice and managing its members, through the service as the
// API's AddSlice and AddPersonToSlice/DeletePersonFromSlice (Registry.Add
// of core.Slice, Registry.Link/Unlink of core.SlicePerson): the service
// checks the name (<login_base>_<name> of one of the caller's sites), the
// site's slice quota and who may.

type newSliceForm struct {
	Site, Short, Description, URL string
}

type newSliceData struct {
	Form   newSliceForm
	Sites  []siteChoice
	Errors map[string]string // field -> message, beside the field
}

// ownSites are the sites a caller may create slices at: their own
// (admins: every site).
func (h *Handler) ownSites(r *http.Request, s *session) ([]siteChoice, error) {
	var f *core.Filter
	if !s.caller.HasRole(core.RoleAdmin) {
		f = &core.Filter{IsList: true, IDs: s.caller.SiteIDs}
		if len(s.caller.SiteIDs) == 0 {
			return nil, nil
		}
	}
	recs, err := h.reg.Get(r.Context(), s.caller, core.Site, f, []string{"login_base", "name"})
	if err != nil {
		return nil, err
	}
	out := make([]siteChoice, 0, len(recs))
	for _, rec := range recs {
		out = append(out, siteChoice{LoginBase: str(rec, "login_base"), Name: str(rec, "name")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LoginBase < out[j].LoginBase })
	return out, nil
}

func (h *Handler) newSlicePage(w http.ResponseWriter, r *http.Request, s *session) {
	if !h.may(s.caller, "AddSlice") {
		h.fail(w, r, s, h.refusal("AddSlice"))
		return
	}
	h.showNewSlice(w, r, s, http.StatusOK, newSliceData{}, "")
}

func (h *Handler) showNewSlice(w http.ResponseWriter, r *http.Request, s *session, st int, d newSliceData, errMsg string) {
	sites, err := h.ownSites(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d.Sites = sites
	if d.Form.Site == "" && len(sites) == 1 {
		d.Form.Site = sites[0].LoginBase
	}
	p := s.page("New slice", d)
	p.Error = errMsg
	h.render(w, st, "newslice", p)
}

// sliceFormFields are the form's fields; a service error on "name" is
// shown beside the short name, which makes the name.
var sliceFormFields = map[string]string{"name": "short", "description": "description", "url": "url", "site": "site"}

func (h *Handler) createSlice(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	form := newSliceForm{Site: strings.TrimSpace(f.Get("site")), Short: strings.TrimSpace(f.Get("short")),
		Description: strings.TrimSpace(f.Get("description")), URL: strings.TrimSpace(f.Get("url"))}
	d := newSliceData{Form: form}
	if form.Site == "" {
		d.Errors = map[string]string{"site": "choose the site the slice belongs to"}
		h.showNewSlice(w, r, s, http.StatusBadRequest, d, "")
		return
	}
	name := form.Site + "_" + form.Short
	_, err := h.reg.Add(r.Context(), s.caller, core.Slice, core.Record{"name": name, "description": form.Description, "url": form.URL})
	if err != nil {
		if statusOf(err) >= 500 || statusOf(err) == http.StatusUnauthorized || statusOf(err) == http.StatusTooManyRequests {
			h.fail(w, r, s, err)
			return
		}
		if field, ok := sliceFormFields[core.ErrorField(err)]; ok {
			d.Errors = map[string]string{field: fieldMessage(err)}
			h.showNewSlice(w, r, s, statusOf(err), d, "")
			return
		}
		h.showNewSlice(w, r, s, statusOf(err), d, core.PublicMessage(err))
		return
	}
	http.Redirect(w, r, "/slices/"+urlEscape(name)+"?created=1", http.StatusSeeOther)
}

// addMember adds the person with the e-mail address of field email to
// the slice.
func (h *Handler) addMember(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	sliceID, _, err := h.sliceOf(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	var pid int64
	if email == "" {
		err = core.FieldErrorf("email", "give the e-mail address of the person to add")
	} else if pid, err = h.reg.Resolve(ctx, s.caller, core.Person, email); err == nil {
		err = h.reg.Link(ctx, s.caller, core.SlicePerson, sliceID, pid, nil)
	}
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, r, s, err)
			return
		}
		if core.ErrorCode(err) == core.Forbidden {
			h.showSlice(w, r, s, statusOf(err), "add member: "+core.PublicMessage(err), nil)
			return
		}
		h.showSliceMember(w, r, s, statusOf(err), email, core.PublicMessage(err))
		return
	}
	http.Redirect(w, r, "/slices/"+urlEscape(r.PathValue("name"))+"?member="+urlEscape(email)+"#members", http.StatusSeeOther)
}

// removeMember removes the person of field person (an id) from the slice.
func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request, s *session) {
	sliceID, _, err := h.sliceOf(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	ids, err := formIDs(r, "person")
	if err == nil && len(ids) != 1 {
		err = core.Errorf(core.Invalid, "choose one person to remove")
	}
	if err == nil {
		err = h.reg.Unlink(r.Context(), s.caller, core.SlicePerson, sliceID, ids[0])
	}
	if err != nil {
		if statusOf(err) >= 500 {
			h.fail(w, r, s, err)
			return
		}
		h.showSlice(w, r, s, statusOf(err), "remove member: "+core.PublicMessage(err), nil)
		return
	}
	http.Redirect(w, r, "/slices/"+urlEscape(r.PathValue("name"))+"?unmember=1#members", http.StatusSeeOther)
}
