package portal_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

var dotRE = regexp.MustCompile(`<a href="#node-([^"]+)"><circle class="dot st-(\w+)" cx="(\d+)" cy="(\d+)" r="32"><title>([^<]*)</title></circle></a>`)

func TestSliceMap(t *testing.T) {
	e := newEnv(t)
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, e.site, core.Record{"latitude": 40.3, "longitude": -74.6}))
	nowhere := e.add(core.Site, core.Record{"login_base": "nowhere", "name": "Nowhere", "abbreviated_name": "nowhere", "max_slices": int64(1)})
	u := e.person("user@example.org", 30)
	id := e.slice("princeton_map", "map", 30*24*time.Hour, u)
	n1 := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "planetlab1.cs.princeton.edu"})
	n2 := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "planetlab2.cs.princeton.edu"})
	n3 := e.add(core.Node, core.Record{"site_id": nowhere, "hostname": "pl1.nowhere.org"})
	for _, n := range []int64{n1, n2, n3} {
		e.must(e.svc.Link(e.ctx, e.admin, core.SliceNode, id, n, nil))
	}
	e.must(e.svc.MonitorStep(e.ctx)) // the planet table learns the nodes
	rows, err := e.svc.TopNodes(e.ctx, e.admin, core.TopQuery{})
	e.must(err)
	status := map[string]string{}
	for _, r := range rows {
		status[r.Hostname] = r.Status
	}
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")
	resp, body := b.get("/slices/princeton_map")
	wantStatus(t, "slice", resp, body, 200)
	wantBody(t, "map", body, `<image href="/static/world.svg"`, `viewBox="0 0 3600 1800"`,
		`<tr id="node-planetlab1.cs.princeton.edu">`, "1 without a site location not shown")
	dots := dotRE.FindAllStringSubmatch(body, -1)
	if len(dots) != 2 {
		t.Fatalf("%d dots, want 2 (the third node's site has no location):\n%s", len(dots), body)
	}
	for _, d := range dots {
		host, class, cx, cy, title := d[1], d[2], d[3], d[4], d[5]
		if class != status[host] || status[host] == "" {
			t.Errorf("%s: dot class st-%s, planet table says %q", host, class, status[host])
		}
		// lon -74.6 → (180-74.6)*10 = 1054; lat 40.3 → (90-40.3)*10 = 497.
		if cx != "1054" || cy != "497" {
			t.Errorf("%s: dot at (%s,%s), want (1054,497)", host, cx, cy)
		}
		if want := host + " (princeton): " + status[host]; title != want {
			t.Errorf("dot title %q, want %q", title, want)
		}
	}
}

func TestSliceMapEscaping(t *testing.T) {
	e := newEnv(t)
	e.must(e.svc.Update(e.ctx, e.admin, core.Site, e.site, core.Record{"latitude": 1.0, "longitude": 2.0}))
	u := e.person("user@example.org", 30)
	id := e.slice("princeton_esc", "x", 30*24*time.Hour, u)
	// Hostnames and login bases are checked by the service, so a dot's
	// link and title hold only what those allow (free text is covered by
	// TestEscaping); the link must still point at the node's row.
	n := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "a-b.example.org"})
	e.must(e.svc.Link(e.ctx, e.admin, core.SliceNode, id, n, nil))
	b := e.browser()
	b.login("user@example.org", "pw-user@example.org")
	_, body := b.get("/slices/princeton_esc")
	if strings.Count(body, `<circle class="dot`) != 1 {
		t.Fatalf("want one dot:\n%s", body)
	}
	if !strings.Contains(body, `<a href="#node-a-b.example.org">`) {
		t.Fatalf("dot link:\n%s", body)
	}
}

func TestWorldMapEmbedded(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp, body := b.get("/static/world.svg")
	wantStatus(t, "world.svg", resp, body, 200)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/svg+xml") || !strings.Contains(body, `viewBox="0 0 3600 1800"`) || len(body) < 20000 {
		t.Fatalf("world.svg: %s, %d bytes", resp.Header.Get("Content-Type"), len(body))
	}
}
