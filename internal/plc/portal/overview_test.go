package portal_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/portal"
	"github.com/planetlab/pl/internal/plc/service"
)

// TestPlanetOverview: monitor steps a minute apart and one an hour later
// (a node down) give four samples; the admin's overview plots them
// (inline SVG, four points a line) and lists the monitor's action; a user has no link and is
// refused at the URL with the service's error.
func TestPlanetOverview(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := newEnvOpts(t, service.Options{Now: now}, portal.Options{})
	e.person("user@princeton.edu", 30)
	n1 := e.add(core.Node, core.Record{"site_id": e.site, "hostname": "pl1.princeton.edu"})
	e.add(core.Node, core.Record{"site_id": e.site, "hostname": "pl2.princeton.edu"})
	for i, load := range []float64{0.5, 1.5, 2.5} {
		e.up(n1, load)
		e.must(e.svc.MonitorStep(e.ctx))
		skew.Store(int64(time.Duration(i+1) * time.Minute))
	}
	// An hour without a report: pl1 is down, a monitor action.
	skew.Store(int64(time.Hour))
	e.must(e.svc.MonitorStep(e.ctx))
	hist, err := e.svc.PlanetHistory(e.ctx, e.admin, 0)
	e.must(err)
	if len(hist) != 4 || hist[2].NodesUp != 1 || hist[2].MeanLoad != 2.5 || hist[2].NodesUp+hist[2].NodesDown+hist[2].NodesUnknown != 2 ||
		hist[3].NodesDown != 1 || hist[3].MeanLoad != 0 {
		t.Fatalf("history: %+v", hist)
	}
	a := e.browser()
	a.login(adminEmail, adminPW)
	resp, body := a.get("/planet")
	wantStatus(t, "overview", resp, body, http.StatusOK)
	wantBody(t, "overview", body, `<a href="/planet">Planet</a>`, "0 nodes up, 1 down", "4 samples", `aria-label="Load (1 minute)"`,
		`<span class="key s1">mean</span> 0 <span`, `<span class="key s2">max</span> 0 (now)`, "<td>node_down</td>")
	if n := strings.Count(body, "<polyline"); n != 9 {
		t.Fatalf("%d lines, want 9 (3 + 2 + 2 + 2)", n)
	}
	i := strings.Index(body, `aria-label="Load (1 minute)"`)
	pts := body[strings.Index(body[i:], `points="`)+i+8:]
	pts = pts[:strings.Index(pts, `"`)]
	if len(strings.Fields(pts)) != 4 {
		t.Fatalf("the load line has points %q, want 4", pts)
	}
	u := e.browser()
	u.login("user@princeton.edu", "pw-user@princeton.edu")
	_, body = u.get("/slices")
	if strings.Contains(body, `href="/planet"`) {
		t.Fatalf("a user's menu has the overview:\n%s", body)
	}
	resp, body = u.get("/planet")
	wantStatus(t, "a user", resp, body, http.StatusForbidden)
	wantBody(t, "a user", body, "GetPlanetHistory: role not allowed (needs one of admin)")
}
