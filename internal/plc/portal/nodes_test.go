package portal_test

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// up makes a node report figures with the given load, so that the planet
// table has it up (as a node manager's report does).
func (e *env) up(node int64, load float64) {
	e.t.Helper()
	var key string
	e.must(e.db.Read(e.ctx, func(tx *store.Tx) error {
		_, err := tx.QueryRow(e.ctx, "SELECT key FROM nodes WHERE node_id = ?", []any{node}, &key)
		return err
	}))
	nc, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "node_key", NodeID: node, NodeKey: key}, nil)
	e.must(err)
	e.must(e.svc.ReportNode(e.ctx, nc, node, core.NodeReport{BootState: "boot", Figures: &core.NodeFigures{
		Time: time.Now(), Load1: load, CPUs: 2, MemTotal: 4 << 30, MemUsed: 1 << 30, DiskTotal: 100 << 30, DiskUsed: 40 << 30}}))
}

// sliceNodeNames lists the hostnames of a slice's nodes, sorted.
func (e *env) sliceNodeNames(slice int64) string {
	e.t.Helper()
	recs, err := e.svc.Get(e.ctx, e.admin, core.Slice, &core.Filter{IsList: true, IDs: []int64{slice}}, []string{"node_ids"})
	e.must(err)
	var names []string
	if ids := recs[0]["node_ids"]; ids != nil {
		var list []int64
		switch v := ids.(type) {
		case []int64:
			list = v
		case []any:
			for _, x := range v {
				list = append(list, x.(int64))
			}
		}
		if len(list) > 0 {
			ns, err := e.svc.Get(e.ctx, e.admin, core.Node, &core.Filter{IsList: true, IDs: list}, []string{"hostname"})
			e.must(err)
			for _, n := range ns {
				names = append(names, n["hostname"].(string))
			}
		}
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// nodesEnv: two sites with located nodes, a user's slice without nodes.
type nodesEnv struct {
	*env
	slice               int64
	p1, p2, e1, e2      int64
	eth                 int64
	userEmail, userPass string
}

func newNodesEnv(t *testing.T) *nodesEnv {
	e := newEnv(t)
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, e.site, core.Record{"latitude": 40.35, "longitude": -74.65}))
	n := &nodesEnv{env: e, userEmail: "user@example.org", userPass: "pw-user@example.org"}
	n.eth = e.add(core.Site, core.Record{"login_base": "eth", "name": "ETH <Zürich>", "abbreviated_name": "eth", "max_slices": int64(1), "latitude": 47.37, "longitude": 8.55})
	u := e.person(n.userEmail, 30)
	n.slice = e.slice("princeton_sel", "selection", 30*24*time.Hour, u)
	n.p1 = e.add(core.Node, core.Record{"site_id": e.site, "hostname": "pl1.princeton.edu"})
	n.p2 = e.add(core.Node, core.Record{"site_id": e.site, "hostname": "pl2.princeton.edu"})
	n.e1 = e.add(core.Node, core.Record{"site_id": n.eth, "hostname": "pl1.ethz.ch"})
	n.e2 = e.add(core.Node, core.Record{"site_id": n.eth, "hostname": "pl2.ethz.ch"})
	e.up(n.p1, 0.5)
	e.up(n.p2, 3)
	e.up(n.e1, 0.2)
	e.up(n.e2, 0.9)
	e.must(e.svc.MonitorStep(e.ctx))
	return n
}

func TestAddNodesBySite(t *testing.T) {
	n := newNodesEnv(t)
	b := n.browser()
	b.login(n.userEmail, n.userPass)
	resp, body := b.get("/slices/princeton_sel/add")
	wantStatus(t, "add page", resp, body, 200)
	wantBody(t, "add page", body, "ETH &lt;Zürich&gt; (eth)", `name="site" value="`+itoa(n.eth)+`"`,
		`name="node" value="`+itoa(n.p1)+`"`, "pl2.ethz.ch")
	if strings.Contains(body, "ETH <Zürich>") {
		t.Fatalf("site name unescaped:\n%s", body)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]

	// One node by its box, and all of eth by the site's box.
	resp, body = b.post("/slices/princeton_sel/nodes/add", url.Values{"csrf": {csrf}, "node": {itoa(n.p1)}, "site": {itoa(n.eth)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/slices/princeton_sel?added=3#nodes" {
		t.Fatalf("add: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if got := n.sliceNodeNames(n.slice); got != "pl1.ethz.ch pl1.princeton.edu pl2.ethz.ch" {
		t.Fatalf("slice nodes %q", got)
	}
	_, body = b.get("/slices/princeton_sel?added=3")
	wantBody(t, "after add", body, "Added 3 nodes.", "Nodes (3)")
	// The add page now shows them checked and disabled; eth has no free node left.
	_, body = b.get("/slices/princeton_sel/add")
	wantBody(t, "add page after", body, `value="`+itoa(n.e1)+`" checked disabled`)
	if strings.Contains(body, `name="site" value="`+itoa(n.eth)+`"`) {
		t.Errorf("eth still offered as a whole:\n%s", body)
	}

	// Nothing new chosen: refused with the reason.
	resp, body = b.post("/slices/princeton_sel/nodes/add", url.Values{"csrf": {csrf}, "node": {itoa(n.p1)}})
	wantStatus(t, "add nothing new", resp, body, http.StatusBadRequest)
	wantBody(t, "add nothing new", body, "choose at least one node that is not in the slice yet")
	resp, body = b.post("/slices/princeton_sel/nodes/add", url.Values{"csrf": {csrf}, "node": {"x1"}})
	wantStatus(t, "bad id", resp, body, http.StatusBadRequest)
	wantBody(t, "bad id", body, "node: &#34;x1&#34; is not an id")
	resp, body = b.post("/slices/princeton_sel/nodes/add", url.Values{"csrf": {csrf}, "node": {"999999"}})
	if resp.StatusCode < 400 {
		t.Fatalf("unknown node added: %d\n%s", resp.StatusCode, body)
	}
}

var previewRowRE = regexp.MustCompile(`<tr><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>`)

func TestAddNodesByFilterWithPreview(t *testing.T) {
	n := newNodesEnv(t)
	b := n.browser()
	b.login(n.userEmail, n.userPass)
	csrf := b.csrf("/slices/princeton_sel/add")

	// The dry run: up, load < 1, one per site, nearest to Princeton first.
	resp, body := b.post("/slices/princeton_sel/nodes/select", url.Values{"csrf": {csrf}, "where": {"load < 1"}, "per_site": {"1"}, "near": {"princeton"}})
	wantStatus(t, "preview", resp, body, 200)
	wantBody(t, "preview", body, "The filter chooses 2 nodes (2 not in the slice yet)", "Add these 2 nodes",
		`<input type="hidden" name="node" value="`+itoa(n.p1)+`">`, `<input type="hidden" name="node" value="`+itoa(n.e1)+`">`,
		`value="load &lt; 1"`)
	rows := previewRowRE.FindAllStringSubmatch(body, -1)
	if len(rows) != 2 || rows[0][1] != "pl1.princeton.edu" || rows[1][1] != "pl1.ethz.ch" {
		t.Fatalf("preview rows %v\n%s", rows, body)
	}
	if got := n.sliceNodeNames(n.slice); got != "" {
		t.Fatalf("the dry run added nodes: %q", got)
	}

	// Confirm: exactly the previewed nodes.
	resp, body = b.post("/slices/princeton_sel/nodes/add", url.Values{"csrf": {csrf}, "node": {itoa(n.p1), itoa(n.e1)}})
	wantStatus(t, "confirm", resp, body, http.StatusSeeOther)
	if got := n.sliceNodeNames(n.slice); got != "pl1.ethz.ch pl1.princeton.edu" {
		t.Fatalf("slice nodes after confirm %q", got)
	}
	// A second preview marks them as in the slice and offers nothing to add.
	_, body = b.post("/slices/princeton_sel/nodes/select", url.Values{"csrf": {csrf}, "where": {"load < 1"}, "per_site": {"1"}})
	wantBody(t, "preview again", body, "(0 not in the slice yet)", "already in the slice")
	if strings.Contains(body, "Add these") {
		t.Fatalf("nothing to add, yet a confirm button:\n%s", body)
	}

	// Errors beside their fields, the input kept (escaped).
	for _, tc := range []struct {
		form  url.Values
		field string
		msg   string
	}{
		{url.Values{"where": {`load < "><script>`}}, "where", "where-error"},
		{url.Values{"count": {"many"}}, "count", `&#34;many&#34; is not a whole number`},
		{url.Values{"per_site": {"-1"}}, "per_site", "must not be negative"},
		{url.Values{"near": {"atlantis"}}, "near", `no site &#34;atlantis&#34;`},
	} {
		tc.form.Set("csrf", csrf)
		resp, body := b.post("/slices/princeton_sel/nodes/select", tc.form)
		wantStatus(t, tc.field, resp, body, http.StatusBadRequest)
		wantBody(t, tc.field, body, `id="`+tc.field+`-error"`, tc.msg, `aria-invalid="true" aria-describedby="`+tc.field+`-error"`)
		if strings.Contains(body, "<script>") {
			t.Fatalf("%s: input unescaped:\n%s", tc.field, body)
		}
	}
}

func TestRemoveNodes(t *testing.T) {
	n := newNodesEnv(t)
	for _, id := range []int64{n.p1, n.p2, n.e1} {
		n.must(n.svc.Link(n.ctx, n.admin, core.SliceNode, n.slice, id, nil))
	}
	b := n.browser()
	b.login(n.userEmail, n.userPass)
	_, body := b.get("/slices/princeton_sel")
	wantBody(t, "slice", body, `action="/slices/princeton_sel/nodes/remove"`, `name="node" value="`+itoa(n.p2)+`"`, `href="/slices/princeton_sel/add"`)
	csrf := csrfRE.FindStringSubmatch(body)[1]
	resp, body := b.post("/slices/princeton_sel/nodes/remove", url.Values{"csrf": {csrf}, "node": {itoa(n.p2), itoa(n.e1)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/slices/princeton_sel?removed=2#nodes" {
		t.Fatalf("remove: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if got := n.sliceNodeNames(n.slice); got != "pl1.princeton.edu" {
		t.Fatalf("slice nodes after remove %q", got)
	}
	resp, body = b.post("/slices/princeton_sel/nodes/remove", url.Values{"csrf": {csrf}})
	wantStatus(t, "remove nothing", resp, body, http.StatusBadRequest)
	wantBody(t, "remove nothing", body, "remove: choose at least one node to remove")
}

// Another user's slice: not shown, and no form action works on it.
func TestNodesOfAnothersSlice(t *testing.T) {
	n := newNodesEnv(t)
	n.must(n.svc.Link(n.ctx, n.admin, core.SliceNode, n.slice, n.p1, nil))
	other := n.add(core.Person, core.Record{"email": "other@example.org", "first_name": "O", "last_name": "O", "password": "pw-other@example.org"})
	n.must(n.svc.Update(n.ctx, n.admin, core.Person, other, core.Record{"enabled": true}))
	n.must(n.svc.Link(n.ctx, n.admin, core.PersonSite, other, n.eth, nil))
	n.must(n.svc.Link(n.ctx, n.admin, core.PersonRole, other, 30, nil))
	b := n.browser()
	b.login("other@example.org", "pw-other@example.org")
	csrf := b.csrf("/keys")
	for _, p := range []struct {
		path string
		form url.Values
	}{
		{"/slices/princeton_sel/nodes/add", url.Values{"node": {itoa(n.e1)}}},
		{"/slices/princeton_sel/nodes/select", url.Values{"where": {"load < 1"}}},
		{"/slices/princeton_sel/nodes/remove", url.Values{"node": {itoa(n.p1)}}},
	} {
		p.form.Set("csrf", csrf)
		resp, body := b.post(p.path, p.form)
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s by a stranger: %d\n%s", p.path, resp.StatusCode, body)
		}
	}
	if got := n.sliceNodeNames(n.slice); got != "pl1.princeton.edu" {
		t.Fatalf("a stranger changed the slice's nodes: %q", got)
	}
}

func TestNodesCSRF(t *testing.T) {
	n := newNodesEnv(t)
	n.must(n.svc.Link(n.ctx, n.admin, core.SliceNode, n.slice, n.p1, nil))
	b := n.browser()
	b.login(n.userEmail, n.userPass)
	for _, p := range []struct {
		path string
		form url.Values
	}{
		{"/slices/princeton_sel/nodes/add", url.Values{"node": {itoa(n.e1)}}},
		{"/slices/princeton_sel/nodes/add", url.Values{"node": {itoa(n.e1)}, "csrf": {strings.Repeat("0", 64)}}},
		{"/slices/princeton_sel/nodes/select", url.Values{"where": {"load < 1"}}},
		{"/slices/princeton_sel/nodes/remove", url.Values{"node": {itoa(n.p1)}}},
	} {
		resp, body := b.post(p.path, p.form)
		wantStatus(t, p.path+" without CSRF", resp, body, http.StatusForbidden)
		wantBody(t, p.path, body, "security token")
	}
	if got := n.sliceNodeNames(n.slice); got != "pl1.princeton.edu" {
		t.Fatalf("a form without its token changed the slice's nodes: %q", got)
	}
}

var siteDotRE = regexp.MustCompile(`<a href="#site-(\w+)"><circle class="dot (free|full)" cx="(\d+)" cy="(\d+)" r="32"><title>([^<]*)</title></circle></a>`)

// The add page's map: a dot per located site with nodes, linking to its
// boxes, blue while it has nodes not in the slice.
func TestAddPageMap(t *testing.T) {
	n := newNodesEnv(t)
	n.must(n.svc.Link(n.ctx, n.admin, core.SliceNode, n.slice, n.e1, nil))
	n.must(n.svc.Link(n.ctx, n.admin, core.SliceNode, n.slice, n.e2, nil))
	b := n.browser()
	b.login(n.userEmail, n.userPass)
	_, body := b.get("/slices/princeton_sel/add")
	dots := siteDotRE.FindAllStringSubmatch(body, -1)
	if len(dots) != 2 {
		t.Fatalf("%d site dots, want 2:\n%s", len(dots), body)
	}
	want := map[string][]string{
		"eth":       {"full", "1886", "426", "ETH &lt;Zürich&gt; (eth): 2 nodes, 0 not in the slice"},
		"princeton": {"free", "1054", "497", "Princeton (princeton): 2 nodes, 2 not in the slice"},
	}
	for _, d := range dots {
		w := want[d[1]]
		if w == nil || d[2] != w[0] || d[3] != w[1] || d[4] != w[2] || d[5] != w[3] {
			t.Errorf("dot %q, want %q", d[1:], w)
		}
		wantBody(t, "site box", body, `<fieldset class="site" id="site-`+d[1]+`">`)
	}
}
