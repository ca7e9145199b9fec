package portal

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Sites, nodes and people pages for PIs, techs and admins. Every read is
// the API's Get and every action the API's update or link
// (UpdatePerson enabled, AddRoleToPerson/DeleteRoleFromPerson,
// UpdateNode boot_state, UpdateSite enabled), with the caller's rights:
// a page offers an action to those whose roles and sites allow it
// (roles.go, and the service's site rules mirrored in canManage*), and
// the service refuses anyone else with its own error.

type siteRow struct {
	ID                    int64
	LoginBase, Name       string
	Enabled               bool
	Nodes, People, Slices int
	MaxSlices             int64
}

type sitesData struct {
	Pending []siteRow // disabled sites: admins approve them
	Sites   []siteRow
	Admin   bool
}

var siteFields = []string{"site_id", "login_base", "name", "enabled", "url", "latitude", "longitude", "max_slices", "node_ids", "person_ids", "slice_ids"}

func siteRowOf(rec core.Record) siteRow {
	id, _ := rec["site_id"].(int64)
	en, _ := rec["enabled"].(bool)
	ms, _ := rec["max_slices"].(int64)
	return siteRow{ID: id, LoginBase: str(rec, "login_base"), Name: str(rec, "name"), Enabled: en,
		Nodes: len(int64s(rec["node_ids"])), People: len(int64s(rec["person_ids"])), Slices: len(int64s(rec["slice_ids"])), MaxSlices: ms}
}

func (h *Handler) sitesPage(w http.ResponseWriter, r *http.Request, s *session) {
	recs, err := h.reg.Get(r.Context(), s.caller, core.Site, nil, siteFields)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := sitesData{Admin: s.caller.HasRole(core.RoleAdmin)}
	for _, rec := range recs {
		row := siteRowOf(rec)
		if !row.Enabled && d.Admin {
			d.Pending = append(d.Pending, row)
			continue
		}
		d.Sites = append(d.Sites, row)
	}
	sort.Slice(d.Sites, func(i, j int) bool { return d.Sites[i].LoginBase < d.Sites[j].LoginBase })
	p := s.page("Sites", d)
	p.Flash = savedFlash(r)
	h.render(w, http.StatusOK, "sites", p)
}

// personRow is a person on the site and people pages.
type personRow struct {
	ID      int64
	Email   string
	Name    string
	Enabled bool
	Roles   []string
	Sites   string
	// Manage: the caller may enable, disable and change roles (an admin,
	// or a PI of a site of the person's who is not that person).
	Manage bool
	// Grant are the roles the caller may add; Revoke those it may remove.
	Grant, Revoke []string
}

type nodeBrief struct {
	ID          int64
	Hostname    string
	BootState   string
	LastContact string
	Status      string
	Load        string
	Manage      bool // the caller may change the boot state
}

type siteData struct {
	Site       siteRow
	URL        string
	People     []personRow
	Nodes      []nodeBrief
	Slices     []sliceRow
	BootStates []string
	Approve    bool // an admin may enable the (disabled) site
	ManageAny  bool // the caller may change some node's boot state
	ShowSlices bool // the caller may read slices (techs may not)
}

// grantable are the roles the portal offers to grant, most powerful last
// (admin is given with the CLI or API only).
var grantable = []string{core.RoleUser, core.RoleTech, core.RolePI}

// canManagePerson mirrors the service's rule for enabling a person and
// changing roles: admins; PIs of one of the person's sites, not for
// themselves (service/persons.go).
func canManagePerson(c *core.Caller, id int64, sites []int64) bool {
	if c.HasRole(core.RoleAdmin) {
		return true
	}
	if !c.HasRole(core.RolePI) || c.PersonID == id {
		return false
	}
	for _, s := range sites {
		if slices.Contains(c.SiteIDs, s) {
			return true
		}
	}
	return false
}

// canManageNode mirrors UpdateNode's: admins; PIs and techs of the node's site.
func canManageNode(c *core.Caller, site int64) bool {
	return c.HasRole(core.RoleAdmin) || (c.HasRole(core.RolePI) || c.HasRole(core.RoleTech)) && slices.Contains(c.SiteIDs, site)
}

// people builds person rows from person records, with the login_base of
// each site id in names.
func (h *Handler) people(s *session, recs []core.Record, names map[int64]string) []personRow {
	var out []personRow
	for _, p := range recs {
		id, _ := p["person_id"].(int64)
		en, _ := p["enabled"].(bool)
		sites := int64s(p["site_ids"])
		row := personRow{ID: id, Email: str(p, "email"), Name: str(p, "first_name") + " " + str(p, "last_name"), Enabled: en}
		if rs, ok := p["roles"].([]string); ok {
			row.Roles = rs
		}
		var sn []string
		for _, sid := range sites {
			sn = append(sn, names[sid])
		}
		row.Sites = strings.Join(sn, ", ")
		row.Manage = h.may(s.caller, "UpdatePerson") && canManagePerson(s.caller, id, sites)
		if row.Manage && h.may(s.caller, "AddRoleToPerson") {
			for _, role := range grantable {
				if role == core.RolePI && !s.caller.HasRole(core.RoleAdmin) {
					continue // below admin, only roles below one's own
				}
				if slices.Contains(row.Roles, role) {
					row.Revoke = append(row.Revoke, role)
				} else {
					row.Grant = append(row.Grant, role)
				}
			}
		}
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out
}

var personFields = []string{"person_id", "email", "first_name", "last_name", "enabled", "roles", "site_ids"}

func (h *Handler) sitePage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	lb := r.PathValue("name")
	recs, err := h.reg.Get(ctx, s.caller, core.Site, &core.Filter{IsList: true, Names: []string{lb}}, siteFields)
	if err == nil && len(recs) == 0 {
		err = core.Errorf(core.NotFound, "no site %q", lb)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	rec := recs[0]
	d := siteData{Site: siteRowOf(rec), URL: str(rec, "url")}
	d.Approve = !d.Site.Enabled && s.caller.HasRole(core.RoleAdmin)
	names := map[int64]string{d.Site.ID: d.Site.LoginBase}
	if ids := int64s(rec["person_ids"]); len(ids) > 0 {
		ps, err := h.reg.Get(ctx, s.caller, core.Person, &core.Filter{IsList: true, IDs: ids}, personFields)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		d.People = h.people(s, ps, names)
	}
	if ids := int64s(rec["node_ids"]); len(ids) > 0 {
		d.Nodes, err = h.nodeBriefs(r, s, &core.Filter{IsList: true, IDs: ids}, d.Site.ID)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, n := range d.Nodes {
			d.ManageAny = d.ManageAny || n.Manage
		}
		if bs, err := h.reg.Get(ctx, s.caller, core.BootState, nil, nil); err == nil && d.ManageAny {
			for _, b := range bs {
				d.BootStates = append(d.BootStates, str(b, "boot_state"))
			}
			sort.Strings(d.BootStates)
		}
	}
	d.ShowSlices = h.may(s.caller, "GetSlices") // not techs
	if ids := int64s(rec["slice_ids"]); len(ids) > 0 && d.ShowSlices {
		ss, err := h.reg.Get(ctx, s.caller, core.Slice, &core.Filter{IsList: true, IDs: ids}, sliceFields)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		now := h.opts.Now()
		for _, sr := range ss {
			exp, _ := sr["expires"].(int64)
			d.Slices = append(d.Slices, sliceRow{Name: str(sr, "name"), Description: str(sr, "description"), Expires: newExpiry(exp, now),
				Nodes: len(int64s(sr["node_ids"])), Members: len(int64s(sr["person_ids"]))})
		}
		sort.Slice(d.Slices, func(i, j int) bool { return d.Slices[i].Name < d.Slices[j].Name })
	}
	p := s.page("Site "+d.Site.Name, d)
	p.Flash = savedFlash(r)
	h.render(w, http.StatusOK, "site", p)
}

// nodeBriefs are the node rows of f, with the planet table's state; site
// (0: each node's own) decides who may change boot states.
func (h *Handler) nodeBriefs(r *http.Request, s *session, f *core.Filter, site int64) ([]nodeBrief, error) {
	ctx := r.Context()
	recs, err := h.reg.Get(ctx, s.caller, core.Node, f, []string{"node_id", "hostname", "site_id", "boot_state", "last_contact"})
	if err != nil {
		return nil, err
	}
	health := h.health(r, s)
	mayUpdate := h.may(s.caller, "UpdateNode")
	out := make([]nodeBrief, 0, len(recs))
	for _, rec := range recs {
		id, _ := rec["node_id"].(int64)
		ns, _ := rec["site_id"].(int64)
		nb := nodeBrief{ID: id, Hostname: str(rec, "hostname"), BootState: str(rec, "boot_state"), LastContact: "never",
			Manage: mayUpdate && canManageNode(s.caller, ns)}
		if lc, _ := rec["last_contact"].(int64); lc > 0 {
			nb.LastContact = span(h.opts.Now().Sub(unixTime(lc))) + " ago"
		}
		if hr, ok := health[id]; ok {
			nb.Status = hr.Status
			if hr.LastReport > 0 {
				nb.Load = strconv.FormatFloat(hr.Load, 'f', 2, 64)
			}
		}
		out = append(out, nb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out, nil
}

// health is the planet table by node id (empty without one).
func (h *Handler) health(r *http.Request, s *session) map[int64]core.NodeRow {
	out := map[int64]core.NodeRow{}
	if h.opts.Planet == nil {
		return out
	}
	rows, err := h.opts.Planet.TopNodes(r.Context(), s.caller, core.TopQuery{})
	if err != nil {
		h.log.Warn("portal: planet table", "err", err)
		return out
	}
	for _, nr := range rows {
		out[nr.NodeID] = nr
	}
	return out
}

func savedFlash(r *http.Request) string {
	if m := r.URL.Query().Get("saved"); m != "" {
		return "Saved: " + m + "."
	}
	return ""
}

// back redirects to the page the form came from (field back, on this
// site) with what was saved.
func back(w http.ResponseWriter, r *http.Request, what string) {
	to := safeNext(r.PostForm.Get("back"))
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	http.Redirect(w, r, to+sep+"saved="+urlEscape(what), http.StatusSeeOther)
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, core.Errorf(core.Invalid, "id %q is not a number", r.PathValue("id"))
	}
	return id, nil
}

// setPersonEnabled enables or disables a person (field enabled: true or
// false): UpdatePerson.
func (h *Handler) setPersonEnabled(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	v := r.PostForm.Get("enabled")
	if v != "true" && v != "false" {
		h.fail(w, r, s, core.FieldErrorf("enabled", "want true or false, got %q", v))
		return
	}
	if err := h.reg.Update(r.Context(), s.caller, core.Person, id, core.Record{"enabled": v == "true"}); err != nil {
		h.fail(w, r, s, err)
		return
	}
	back(w, r, map[bool]string{true: "enabled", false: "disabled"}[v == "true"]+" person "+strconv.FormatInt(id, 10))
}

// personRole grants (verb add) or revokes (remove) the role of field
// role: AddRoleToPerson, DeleteRoleFromPerson.
func (h *Handler) personRole(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	role := r.PostForm.Get("role")
	rid, err := h.reg.Resolve(r.Context(), s.caller, core.Role, role)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	switch r.PathValue("verb") {
	case "add":
		err = h.reg.Link(r.Context(), s.caller, core.PersonRole, id, rid, nil)
	case "remove":
		err = h.reg.Unlink(r.Context(), s.caller, core.PersonRole, id, rid)
	default:
		h.notFound(w, r)
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	back(w, r, r.PathValue("verb")+" role "+role+" of person "+strconv.FormatInt(id, 10))
}

// setBootState sets the boot state (field boot_state) of the chosen
// nodes (field node): UpdateNode of each, stopping at the first refusal.
func (h *Handler) setBootState(w http.ResponseWriter, r *http.Request, s *session) {
	ids, err := formIDs(r, "node")
	if err == nil && len(ids) == 0 {
		err = core.FieldErrorf("node", "choose at least one node")
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	bs := r.PostForm.Get("boot_state")
	for i, id := range ids {
		if err := h.reg.Update(r.Context(), s.caller, core.Node, id, core.Record{"boot_state": bs}); err != nil {
			if i > 0 {
				err = fmt.Errorf("set %d nodes, then node %d: %w", i, id, err)
			}
			h.fail(w, r, s, err)
			return
		}
	}
	back(w, r, fmt.Sprintf("boot state %s of %d node%s", bs, len(ids), map[bool]string{true: "s"}[len(ids) != 1]))
}

// approveSite enables a pending site: UpdateSite enabled=true.
func (h *Handler) approveSite(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := pathID(r)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	if err := h.reg.Update(r.Context(), s.caller, core.Site, id, core.Record{"enabled": true}); err != nil {
		h.fail(w, r, s, err)
		return
	}
	back(w, r, "approved site "+strconv.FormatInt(id, 10))
}

type peopleData struct {
	People []personRow
}

// peoplePage lists the persons the caller may read (admins: all; PIs and
// techs: their sites'; users: themselves, as GetPersons).
func (h *Handler) peoplePage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	recs, err := h.reg.Get(ctx, s.caller, core.Person, nil, personFields)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	names := map[int64]string{}
	if srecs, err := h.reg.Get(ctx, s.caller, core.Site, nil, []string{"site_id", "login_base"}); err == nil {
		for _, sr := range srecs {
			id, _ := sr["site_id"].(int64)
			names[id] = str(sr, "login_base")
		}
	}
	p := s.page("People", peopleData{People: h.people(s, recs, names)})
	p.Flash = savedFlash(r)
	h.render(w, http.StatusOK, "people", p)
}

type nodesData struct {
	Nodes  []nodeSiteRow
	Health bool
}

type nodeSiteRow struct {
	nodeBrief
	Site string
}

// nodesPage lists every node (GetNodes is public) with its site and the
// planet table's state; ?site= keeps one site's.
func (h *Handler) nodesPage(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	var f *core.Filter
	sites := map[int64]string{}
	srecs, err := h.reg.Get(ctx, s.caller, core.Site, nil, []string{"site_id", "login_base"})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	for _, sr := range srecs {
		id, _ := sr["site_id"].(int64)
		sites[id] = str(sr, "login_base")
	}
	if lb := r.URL.Query().Get("site"); lb != "" {
		id, err := h.reg.Resolve(ctx, s.caller, core.Site, lb)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		f = &core.Filter{Terms: []core.Term{{Field: "site_id", Op: core.Eq, Value: id}}}
	}
	recs, err := h.reg.Get(ctx, s.caller, core.Node, f, []string{"node_id", "hostname", "site_id", "boot_state", "last_contact"})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	health := h.health(r, s)
	d := nodesData{Health: len(health) > 0}
	for _, rec := range recs {
		id, _ := rec["node_id"].(int64)
		ns, _ := rec["site_id"].(int64)
		row := nodeSiteRow{nodeBrief: nodeBrief{ID: id, Hostname: str(rec, "hostname"), BootState: str(rec, "boot_state"), LastContact: "never"}, Site: sites[ns]}
		if lc, _ := rec["last_contact"].(int64); lc > 0 {
			row.LastContact = span(h.opts.Now().Sub(unixTime(lc))) + " ago"
		}
		if hr, ok := health[id]; ok {
			row.Status = hr.Status
			if hr.LastReport > 0 {
				row.Load = strconv.FormatFloat(hr.Load, 'f', 2, 64)
			}
		}
		d.Nodes = append(d.Nodes, row)
	}
	sort.Slice(d.Nodes, func(i, j int) bool { return d.Nodes[i].Hostname < d.Nodes[j].Hostname })
	h.render(w, http.StatusOK, "nodes", s.page("Nodes", d))
}

func unixTime(s int64) time.Time { return time.Unix(s, 0) }
