package portal

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/slicedir"
)

// Expiry thresholds of the colour coding.
const (
	WarnBefore   = 7 * 24 * time.Hour // amber
	DangerBefore = 24 * time.Hour     // red
)

// expiry is a slice's expiry as a page shows it.
type expiry struct {
	At        time.Time
	Countdown string // "in 3 days 4 hours", "expired 2 hours ago"
	Level     string // ok, warn, danger, expired: the CSS class
}

func newExpiry(unix int64, now time.Time) expiry {
	at := time.Unix(unix, 0).UTC()
	d := at.Sub(now)
	e := expiry{At: at}
	switch {
	case d <= 0:
		e.Level, e.Countdown = "expired", "expired "+span(-d)+" ago"
	case d < DangerBefore:
		e.Level, e.Countdown = "danger", "in "+span(d)
	case d < WarnBefore:
		e.Level, e.Countdown = "warn", "in "+span(d)
	default:
		e.Level, e.Countdown = "ok", "in "+span(d)
	}
	return e
}

// span writes a duration, to the minute, in the two largest of days,
// hours, minutes.
func span(d time.Duration) string {
	d = d.Round(time.Minute)
	days := int(d / (24 * time.Hour))
	hours := int(d % (24 * time.Hour) / time.Hour)
	mins := int(d % time.Hour / time.Minute)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	switch {
	case days > 0 && hours > 0:
		return plural(days, "day") + " " + plural(hours, "hour")
	case days > 0:
		return plural(days, "day")
	case hours > 0 && mins > 0:
		return plural(hours, "hour") + " " + plural(mins, "minute")
	case hours > 0:
		return plural(hours, "hour")
	}
	return plural(max(mins, 1), "minute")
}

type sliceRow struct {
	Name        string
	Description string
	Expires     expiry
	Nodes       int
	Members     int
}

var sliceFields = []string{"slice_id", "name", "site_id", "description", "url", "expires", "node_ids", "person_ids", "max_nodes"}

// mySlices are the slices the caller is a member of and, for PIs, the
// slices of their sites.
func (h *Handler) mySlices(r *http.Request, s *session) ([]core.Record, error) {
	ctx := r.Context()
	me, err := h.reg.Get(ctx, s.caller, core.Person, &core.Filter{IsList: true, IDs: []int64{s.caller.PersonID}}, []string{"slice_ids"})
	if err != nil {
		return nil, err
	}
	var ids []int64
	if len(me) == 1 {
		ids = int64s(me[0]["slice_ids"])
	}
	seen := map[int64]bool{}
	var out []core.Record
	add := func(recs []core.Record) {
		for _, rec := range recs {
			id, _ := rec["slice_id"].(int64)
			if !seen[id] {
				seen[id] = true
				out = append(out, rec)
			}
		}
	}
	if len(ids) > 0 {
		recs, err := h.reg.Get(ctx, s.caller, core.Slice, &core.Filter{IsList: true, IDs: ids}, sliceFields)
		if err != nil {
			return nil, err
		}
		add(recs)
	}
	if s.caller.HasRole(core.RolePI) && len(s.caller.SiteIDs) > 0 {
		var sites []any
		for _, id := range s.caller.SiteIDs {
			sites = append(sites, id)
		}
		recs, err := h.reg.Get(ctx, s.caller, core.Slice, &core.Filter{Terms: []core.Term{{Field: "site_id", Op: core.Eq, Value: sites}}}, sliceFields)
		if err != nil {
			return nil, err
		}
		add(recs)
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i], "name") < str(out[j], "name") })
	return out, nil
}

func (h *Handler) slicesPage(w http.ResponseWriter, r *http.Request, s *session) {
	recs, err := h.mySlices(r, s)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	now := h.opts.Now()
	rows := make([]sliceRow, 0, len(recs))
	for _, rec := range recs {
		exp, _ := rec["expires"].(int64)
		rows = append(rows, sliceRow{
			Name: str(rec, "name"), Description: str(rec, "description"),
			Expires: newExpiry(exp, now),
			Nodes:   len(int64s(rec["node_ids"])), Members: len(int64s(rec["person_ids"])),
		})
	}
	h.render(w, http.StatusOK, "slices", s.page("My slices", rows))
}

// renewChoice is one option of the renew form.
type renewChoice struct {
	Value string // what the form sends
	Label string
}

// renewChoices are the policy's choices: whole weeks up to the longest
// renewal, and "as long as allowed".
func renewChoices() []renewChoice {
	var out []renewChoice
	for _, w := range []int{1, 2, 4} {
		out = append(out, renewChoice{Value: strconv.Itoa(w * 7), Label: fmt.Sprintf("%d week%s from now", w, map[bool]string{true: "s"}[w > 1])})
	}
	return append(out, renewChoice{Value: "max", Label: fmt.Sprintf("as long as allowed (%d weeks)", int(core.MaxRenewal/(7*24*time.Hour)))})
}

type memberRow struct {
	ID          int64
	Email, Name string
}

type nodeRow struct {
	ID          int64
	Hostname    string
	Site        string
	BootState   string
	LastContact string
	Status      string // from the planet table: up, down, unknown; "" without it
	Load        string
	SSH         string // the copy-paste command
	// Where the node is on the world map (map.go); OnMap is false when
	// its site has no location.
	OnMap bool
	X, Y  string
}

type sliceData struct {
	Slice   sliceRow
	URL     string
	Members []memberRow
	Nodes   []nodeRow
	Health  bool // the planet table gave node health
	// Unplaced counts the nodes the map cannot show (no site location).
	Unplaced int
	Choices  []renewChoice
	Granted  *expiry // after a renewal
	// May are the actions the caller's roles allow (roles.go).
	May map[string]bool
	// The add-member form: what was typed and the service's error.
	MemberEmail, MemberError string
}

func (h *Handler) slicePage(w http.ResponseWriter, r *http.Request, s *session) {
	h.showSlice(w, r, s, http.StatusOK, "", nil)
}

// changeFlash is the notice after adding or removing nodes (nodes.go
// redirects here with ?added=N or ?removed=N).
func changeFlash(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Get("created") != "":
		return "Slice created. Add its members and nodes below."
	case q.Get("member") != "":
		return "Added " + q.Get("member") + " to the slice."
	case q.Get("unmember") != "":
		return "Removed the member from the slice."
	}
	for _, k := range []string{"added", "removed"} {
		if n, err := strconv.Atoi(q.Get(k)); err == nil && n >= 0 {
			return fmt.Sprintf("%s %d node%s.", map[string]string{"added": "Added", "removed": "Removed"}[k], n, map[bool]string{true: "s"}[n != 1])
		}
	}
	return ""
}

func (h *Handler) showSlice(w http.ResponseWriter, r *http.Request, s *session, st int, errMsg string, granted *expiry) {
	h.showSliceWith(w, r, s, st, errMsg, granted, nil)
}

// showSliceMember shows the slice page with the add-member form's input
// and its error beside the field.
func (h *Handler) showSliceMember(w http.ResponseWriter, r *http.Request, s *session, st int, email, msg string) {
	h.showSliceWith(w, r, s, st, "", nil, func(d *sliceData) { d.MemberEmail, d.MemberError = email, msg })
}

func (h *Handler) showSliceWith(w http.ResponseWriter, r *http.Request, s *session, st int, errMsg string, granted *expiry, mod func(*sliceData)) {
	ctx := r.Context()
	name := r.PathValue("name")
	recs, err := h.reg.Get(ctx, s.caller, core.Slice, &core.Filter{IsList: true, Names: []string{name}}, sliceFields)
	if err == nil && len(recs) == 0 {
		err = core.Errorf(core.NotFound, "no slice %q", name)
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	rec := recs[0]
	now := h.opts.Now()
	exp, _ := rec["expires"].(int64)
	d := sliceData{
		Slice: sliceRow{Name: str(rec, "name"), Description: str(rec, "description"), Expires: newExpiry(exp, now),
			Nodes: len(int64s(rec["node_ids"])), Members: len(int64s(rec["person_ids"]))},
		URL:     str(rec, "url"),
		Choices: renewChoices(),
		Granted: granted,
		May:     h.mayAll(s.caller, "AddPersonToSlice", "DeletePersonFromSlice"),
	}
	if mod != nil {
		mod(&d)
	}
	if ids := int64s(rec["person_ids"]); len(ids) > 0 {
		ps, err := h.reg.Get(ctx, s.caller, core.Person, &core.Filter{IsList: true, IDs: ids}, []string{"person_id", "email", "first_name", "last_name"})
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, p := range ps {
			pid, _ := p["person_id"].(int64)
			d.Members = append(d.Members, memberRow{ID: pid, Email: str(p, "email"), Name: str(p, "first_name") + " " + str(p, "last_name")})
		}
		sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].Email < d.Members[j].Email })
	}
	if ids := int64s(rec["node_ids"]); len(ids) > 0 {
		d.Nodes, d.Health, err = h.sliceNodes(r, s, d.Slice.Name, ids)
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		for _, n := range d.Nodes {
			if !n.OnMap {
				d.Unplaced++
			}
		}
	}
	p := s.page("Slice "+d.Slice.Name, d)
	p.Error = errMsg
	if r.Method == http.MethodGet {
		p.Flash = changeFlash(r)
	}
	h.render(w, st, "slice", p)
}

// sliceNodes builds the node table of a slice: the registry's node
// records, the planet table's health when there is one, and the ssh
// command of each sliver (slicedir's directory, as pl ssh: primary IP, ssh_port tag).
func (h *Handler) sliceNodes(r *http.Request, s *session, slice string, ids []int64) ([]nodeRow, bool, error) {
	ctx := r.Context()
	recs, err := h.reg.Get(ctx, s.caller, core.Node, &core.Filter{IsList: true, IDs: ids}, []string{"node_id", "hostname", "site_id", "boot_state", "last_contact"})
	if err != nil {
		return nil, false, err
	}
	sites := map[int64]string{}
	locs := map[int64][2]float64{}
	if srecs, err := h.reg.Get(ctx, s.caller, core.Site, nil, []string{"site_id", "login_base", "latitude", "longitude"}); err == nil {
		for _, sr := range srecs {
			id, _ := sr["site_id"].(int64)
			sites[id] = str(sr, "login_base")
			lat, ok1 := sr["latitude"].(float64)
			lon, ok2 := sr["longitude"].(float64)
			if ok1 && ok2 {
				locs[id] = [2]float64{lat, lon}
			}
		}
	}
	health := map[int64]core.NodeRow{}
	if h.opts.Planet != nil {
		rows, err := h.opts.Planet.TopNodes(ctx, s.caller, core.TopQuery{})
		if err == nil {
			for _, nr := range rows {
				health[nr.NodeID] = nr
			}
		}
	}
	addrs := map[string]string{}
	dir := slicedir.RegistryDirectory{Reg: boundRegistry{Registry: h.reg, c: s.caller}}
	if ns, err := dir.SliceNodes(ctx, slice); err == nil {
		for _, n := range ns {
			addrs[n.Hostname] = n.Addr
		}
	} else {
		h.log.Warn("portal: ssh addresses", "slice", slice, "err", err)
	}
	var out []nodeRow
	for _, rec := range recs {
		id, _ := rec["node_id"].(int64)
		site, _ := rec["site_id"].(int64)
		host := str(rec, "hostname")
		row := nodeRow{ID: id, Hostname: host, Site: sites[site], BootState: str(rec, "boot_state"), LastContact: "never"}
		if lc, _ := rec["last_contact"].(int64); lc > 0 {
			row.LastContact = span(h.opts.Now().Sub(time.Unix(lc, 0))) + " ago"
		}
		if hr, ok := health[id]; ok {
			row.Status = hr.Status
			if hr.LastReport > 0 {
				row.Load = strconv.FormatFloat(hr.Load, 'f', 2, 64)
			}
		}
		row.SSH = sshCommand(slice, host, addrs[host])
		if ll, ok := locs[site]; ok {
			row.OnMap = true
			row.X, row.Y = mapXY(ll[0], ll[1])
		}
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out, len(health) > 0, nil
}

// sshCommand is the command that logs in to a sliver: `ssh slice@host`,
// with -p when the node's gateway is not on port 22 and the node's
// address (host:port from the directory) when it has one.
func sshCommand(slice, hostname, addr string) string {
	host, port := hostname, strconv.Itoa(slicedir.DefaultPort)
	if addr != "" {
		if h, p, err := net.SplitHostPort(addr); err == nil {
			host, port = h, p
		}
	}
	if port != strconv.Itoa(slicedir.DefaultPort) {
		return fmt.Sprintf("ssh -p %s %s@%s", port, slice, host)
	}
	return fmt.Sprintf("ssh %s@%s", slice, host)
}

func (h *Handler) renew(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	name := r.PathValue("name")
	id, err := h.reg.Resolve(ctx, s.caller, core.Slice, name)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	now := h.opts.Now()
	var want int64
	switch v := r.PostForm.Get("for"); v {
	case "max":
		want = now.Add(core.MaxRenewal).Unix()
	default:
		days, err := strconv.Atoi(v)
		if err != nil || days <= 0 {
			h.showSlice(w, r, s, http.StatusBadRequest, fmt.Sprintf("renew: choose how long (got %q)", v), nil)
			return
		}
		want = now.Add(time.Duration(days) * 24 * time.Hour).Unix()
	}
	got, err := h.reg.RenewSlice(ctx, s.caller, id, want)
	if err != nil {
		if core.ErrorCode(err) == core.Invalid || core.ErrorCode(err) == core.Forbidden {
			h.showSlice(w, r, s, statusOf(err), "renew: "+core.PublicMessage(err), nil)
			return
		}
		h.fail(w, r, s, err)
		return
	}
	e := newExpiry(got, now)
	h.showSlice(w, r, s, http.StatusOK, "", &e)
}

func str(r core.Record, k string) string {
	v, _ := r[k].(string)
	return v
}

func int64s(v any) []int64 {
	switch x := v.(type) {
	case []int64:
		return x
	case []any:
		out := make([]int64, 0, len(x))
		for _, e := range x {
			if n, ok := e.(int64); ok {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}
