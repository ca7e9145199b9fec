package portal

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Adding nodes to a slice and removing them. The add page offers the
// nodes of every site as checkboxes (a site's whole set with one box),
// reached also from a world map of the sites (a dot per site, linking to
// its boxes: choosing on the map needs no script), and
// the node-selection filter of core.Planet (SelectNodes, as `pl slice
// select` and REST POST /api/v1/slices/{ref}/nodes/select): the filter is
// first run as a dry run and its choice shown; confirming posts exactly
// the nodes shown. Adding and removing link and unlink the slice and each
// node (Registry.Link/Unlink of core.SliceNode, the API's
// AddSliceToNodes/DeleteSliceFromNodes), so the service decides who may.

// maxNodesPerForm bounds the node ids one form may carry.
const maxNodesPerForm = 5000

type siteNodes struct {
	ID        int64
	LoginBase string
	Name      string
	Nodes     []siteNode
	Free      int // nodes not yet in the slice
	// Where the site is on the map (map.go): its dot links to its boxes.
	OnMap bool
	X, Y  string
}

type siteNode struct {
	ID        int64
	Hostname  string
	BootState string
	InSlice   bool
}

// selectForm is the node-selection filter as the form sends it.
type selectForm struct {
	Where, PerSite, Count, Near string
}

type addData struct {
	Slice   string
	Sites   []siteNodes
	Filter  selectForm
	Errors  map[string]string // filter field → message
	Preview []previewRow      // the dry run's choice; nil before one
	Ran     bool              // a dry run was made (Preview may be empty)
	New     int               // previewed nodes not yet in the slice
}

type previewRow struct {
	ID         int64
	Hostname   string
	Site       string
	Load       string
	DistanceKm string
	InSlice    bool
}

// sliceOf reads the slice named in the path: its id and nodes.
func (h *Handler) sliceOf(r *http.Request, s *session) (id int64, nodes map[int64]bool, err error) {
	name := r.PathValue("name")
	recs, err := h.reg.Get(r.Context(), s.caller, core.Slice, &core.Filter{IsList: true, Names: []string{name}}, []string{"slice_id", "node_ids"})
	if err == nil && len(recs) == 0 {
		err = core.Errorf(core.NotFound, "no slice %q", name)
	}
	if err != nil {
		return 0, nil, err
	}
	id, _ = recs[0]["slice_id"].(int64)
	nodes = map[int64]bool{}
	for _, n := range int64s(recs[0]["node_ids"]) {
		nodes[n] = true
	}
	return id, nodes, nil
}

func (h *Handler) addPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.showAdd(w, r, s, http.StatusOK, addData{})
}

// showAdd renders the add page with d's filter, errors and preview.
func (h *Handler) showAdd(w http.ResponseWriter, r *http.Request, s *session, st int, d addData) {
	ctx := r.Context()
	_, in, err := h.sliceOf(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d.Slice = r.PathValue("name")
	srecs, err := h.reg.Get(ctx, s.caller, core.Site, nil, []string{"site_id", "login_base", "name", "latitude", "longitude"})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	nrecs, err := h.reg.Get(ctx, s.caller, core.Node, nil, []string{"node_id", "hostname", "site_id", "boot_state"})
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	bySite := map[int64]*siteNodes{}
	for _, sr := range srecs {
		id, _ := sr["site_id"].(int64)
		sn := &siteNodes{ID: id, LoginBase: str(sr, "login_base"), Name: str(sr, "name")}
		lat, ok1 := sr["latitude"].(float64)
		lon, ok2 := sr["longitude"].(float64)
		if ok1 && ok2 {
			sn.OnMap = true
			sn.X, sn.Y = mapXY(lat, lon)
		}
		bySite[id] = sn
	}
	for _, nr := range nrecs {
		sid, _ := nr["site_id"].(int64)
		sn := bySite[sid]
		if sn == nil {
			continue
		}
		id, _ := nr["node_id"].(int64)
		n := siteNode{ID: id, Hostname: str(nr, "hostname"), BootState: str(nr, "boot_state"), InSlice: in[id]}
		if !n.InSlice {
			sn.Free++
		}
		sn.Nodes = append(sn.Nodes, n)
	}
	for _, sn := range bySite {
		if len(sn.Nodes) == 0 {
			continue
		}
		sort.Slice(sn.Nodes, func(i, j int) bool { return sn.Nodes[i].Hostname < sn.Nodes[j].Hostname })
		d.Sites = append(d.Sites, *sn)
	}
	sort.Slice(d.Sites, func(i, j int) bool { return d.Sites[i].LoginBase < d.Sites[j].LoginBase })
	h.render(w, st, "addnodes", s.page("Add nodes to "+d.Slice, d))
}

// formIDs reads the repeated id field name of a form.
func formIDs(r *http.Request, name string) ([]int64, error) {
	vals := r.PostForm[name]
	if len(vals) > maxNodesPerForm {
		return nil, core.Errorf(core.Invalid, "%s: at most %d at once (got %d)", name, maxNodesPerForm, len(vals))
	}
	out := make([]int64, 0, len(vals))
	for _, v := range vals {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return nil, core.Errorf(core.Invalid, "%s: %q is not an id", name, v)
		}
		out = append(out, id)
	}
	return out, nil
}

// addNodes adds the checked nodes (field node) and every node of the
// checked sites (field site) that is not yet in the slice.
func (h *Handler) addNodes(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	sliceID, in, err := h.sliceOf(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	nodes, err := formIDs(r, "node")
	if err == nil {
		var sites []int64
		if sites, err = formIDs(r, "site"); err == nil && len(sites) > 0 {
			var vals []any
			for _, id := range sites {
				vals = append(vals, id)
			}
			var recs []core.Record
			recs, err = h.reg.Get(ctx, s.caller, core.Node, &core.Filter{Terms: []core.Term{{Field: "site_id", Op: core.Eq, Value: vals}}}, []string{"node_id"})
			for _, rec := range recs {
				id, _ := rec["node_id"].(int64)
				nodes = append(nodes, id)
			}
		}
	}
	if err != nil {
		h.showAdd(w, r, s, statusOf(err), addData{Errors: map[string]string{"nodes": core.PublicMessage(err)}})
		return
	}
	added := 0
	for _, id := range nodes {
		if in[id] {
			continue
		}
		if err := h.reg.Link(ctx, s.caller, core.SliceNode, sliceID, id, nil); err != nil {
			h.showAdd(w, r, s, statusOf(err), addData{Errors: map[string]string{"nodes": fmt.Sprintf("added %d; then node %d: %s", added, id, core.PublicMessage(err))}})
			return
		}
		in[id] = true
		added++
	}
	if added == 0 {
		h.showAdd(w, r, s, http.StatusBadRequest, addData{Errors: map[string]string{"nodes": "choose at least one node that is not in the slice yet"}})
		return
	}
	http.Redirect(w, r, "/slices/"+urlEscape(r.PathValue("name"))+"?added="+strconv.Itoa(added)+"#nodes", http.StatusSeeOther)
}

// selectNodes runs the node-selection filter as a dry run and shows what
// it would add, with a form that adds exactly those nodes.
func (h *Handler) selectNodes(w http.ResponseWriter, r *http.Request, s *session) {
	sliceID, in, err := h.sliceOf(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	f := selectForm{Where: strings.TrimSpace(r.PostForm.Get("where")), PerSite: strings.TrimSpace(r.PostForm.Get("per_site")),
		Count: strings.TrimSpace(r.PostForm.Get("count")), Near: strings.TrimSpace(r.PostForm.Get("near"))}
	d := addData{Filter: f, Errors: map[string]string{}}
	sel := core.NodeSelection{Where: f.Where, Near: f.Near, DryRun: true}
	for _, num := range []struct {
		field, val string
		dst        *int
	}{{"per_site", f.PerSite, &sel.PerSite}, {"count", f.Count, &sel.Count}} {
		if num.val == "" {
			continue
		}
		n, err := strconv.Atoi(num.val)
		if err != nil {
			d.Errors[num.field] = fmt.Sprintf("%q is not a whole number", num.val)
			continue
		}
		*num.dst = n
	}
	if len(d.Errors) > 0 {
		h.showAdd(w, r, s, http.StatusBadRequest, d)
		return
	}
	if h.opts.Planet == nil {
		h.fail(w, r, s, core.Errorf(core.Unavailable, "node selection needs the planet table, which this portal does not have"))
		return
	}
	chosen, err := h.opts.Planet.SelectNodes(r.Context(), s.caller, sliceID, sel)
	if err != nil {
		field := core.ErrorField(err)
		if field == "" || statusOf(err) >= 500 {
			h.fail(w, r, s, err)
			return
		}
		d.Errors[field] = fieldMessage(err)
		h.showAdd(w, r, s, statusOf(err), d)
		return
	}
	d.Ran = true
	d.Preview = []previewRow{}
	for _, c := range chosen {
		p := previewRow{ID: c.NodeID, Hostname: c.Hostname, Site: c.Site, Load: strconv.FormatFloat(c.Load, 'f', 2, 64), InSlice: in[c.NodeID]}
		if f.Near != "" {
			p.DistanceKm = strconv.FormatFloat(c.DistanceKm, 'f', 0, 64)
		}
		if !p.InSlice {
			d.New++
		}
		d.Preview = append(d.Preview, p)
	}
	h.showAdd(w, r, s, http.StatusOK, d)
}

// removeNodes removes the checked nodes (field node) from the slice.
func (h *Handler) removeNodes(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	sliceID, in, err := h.sliceOf(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	nodes, err := formIDs(r, "node")
	if err == nil && len(nodes) == 0 {
		err = core.Errorf(core.Invalid, "choose at least one node to remove")
	}
	if err != nil {
		h.showSlice(w, r, s, statusOf(err), "remove: "+core.PublicMessage(err), nil)
		return
	}
	removed := 0
	for _, id := range nodes {
		if !in[id] {
			continue
		}
		if err := h.reg.Unlink(ctx, s.caller, core.SliceNode, sliceID, id); err != nil {
			h.showSlice(w, r, s, statusOf(err), fmt.Sprintf("remove: removed %d; then node %d: %s", removed, id, core.PublicMessage(err)), nil)
			return
		}
		removed++
	}
	http.Redirect(w, r, "/slices/"+urlEscape(r.PathValue("name"))+"?removed="+strconv.Itoa(removed)+"#nodes", http.StatusSeeOther)
}
