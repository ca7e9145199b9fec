package service

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/planet"
)

func figs(at time.Time, load float64, slivers ...core.SliverFigures) *core.NodeFigures {
	return &core.NodeFigures{Time: at, Load1: load, CPUs: 2, MemTotal: 4 << 30, MemUsed: 1 << 30, DiskTotal: 100 << 30,
		DiskUsed: 40 << 30, SliverCount: len(slivers), Slivers: slivers}
}

func actionKinds(acts []core.MonitorAction) string {
	var k []string
	for _, a := range acts {
		k = append(k, a.Kind)
	}
	return strings.Join(k, " ")
}

// TestPlanetAndMonitor: reports fill the table (and survive a restart),
// slice rows follow the read rules, selection adds nodes, and the monitor
// marks silent nodes down, notifies, penalises the site and lifts it all
// when a node returns; admins suspend and resume with a reason.
func TestPlanetAndMonitor(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := e.ctx
		tokyo := e.site("tokyo", 10)
		usp := e.site("usp", 10)
		e.must(e.s.Update(ctx, e.admin, core.Site, tokyo, core.Record{"latitude": 35.71, "longitude": 139.76}))
		e.must(e.s.Update(ctx, e.admin, core.Site, usp, core.Record{"latitude": -23.56, "longitude": -46.73}))
		e.add(e.admin, core.SiteTag, core.Record{"site_id": tokyo, "tag_type_id": e.tagType("country"), "value": "jp"})
		pi := e.person("pi@tokyo.test", tokyo, core.RolePI)
		e.person("tech@tokyo.test", tokyo, core.RoleTech)
		user := e.person("user@tokyo.test", tokyo, core.RoleUser)
		other := e.person("user@usp.test", usp, core.RoleUser)
		t1 := e.node(tokyo, "n1.tokyo.test")
		t2 := e.node(tokyo, "n2.tokyo.test")
		u1 := e.node(usp, "n1.usp.test")
		sl := e.slice(pi, "tokyo_exp")
		e.must(e.s.Link(ctx, pi, core.SlicePerson, sl, mustPersonID(t, e, "user@tokyo.test"), nil))

		report := func(node int64, load float64, sl ...core.SliverFigures) {
			t.Helper()
			e.must(e.s.ReportNode(ctx, e.nodeCaller(node), node, core.NodeReport{BootState: "boot", Version: "pl-node/test", Figures: figs(e.clock.Now(), load, sl...)}))
		}
		report(t1, 0.5, core.SliverFigures{Slice: "tokyo_exp", State: "running", CPUPct: 40})
		report(t2, 3)
		report(u1, 0.2)
		// A garbage summary is refused and leaves the row alone.
		bad := figs(e.clock.Now(), -1)
		wantCode(t, e.s.ReportNode(ctx, e.nodeCaller(u1), u1, core.NodeReport{Figures: bad}), core.Invalid, "negative load")

		mon := New(e.s.db, Options{Now: e.clock.Now, Monitor: planet.Policy{DownAfter: 2 * time.Minute, SiteGrace: 10 * time.Minute, SuspendAfter: 20 * time.Minute}})
		e.must(mon.MonitorStep(ctx))
		// The restarted service read the stored reports.
		rows, err := mon.TopNodes(ctx, nil, core.TopQuery{Where: `up && country == "JP" && load < 1`})
		e.must(err)
		if len(rows) != 1 || rows[0].NodeID != t1 || rows[0].Version != "pl-node/test" || rows[0].DiskFreeGB != 60 || rows[0].TopCPU[0] != "tokyo_exp" {
			t.Fatalf("rows after restart: %+v", rows)
		}
		if r, _ := mon.TopNodes(ctx, nil, core.TopQuery{Where: "node_id == " + itoa(u1)}); r[0].Load != 0.2 {
			t.Errorf("the refused report changed the row: %+v", r[0])
		}
		_, err = mon.TopNodes(ctx, nil, core.TopQuery{Where: "load <"})
		wantCode(t, err, core.Invalid, "bad query")

		// Slice rows: the member and the site's PI see tokyo_exp, others not.
		for _, c := range []*core.Caller{user, pi, e.admin} {
			rs, err := mon.TopSlices(ctx, c, core.TopQuery{Where: `name == "tokyo_exp"`})
			e.must(err)
			if len(rs) != 1 || rs[0].Nodes != 1 || rs[0].MaxCPU != 40 {
				t.Errorf("%s: %+v", c.Email, rs)
			}
		}
		if rs, _ := mon.TopSlices(ctx, other, core.TopQuery{}); len(rs) != 0 {
			t.Errorf("a stranger sees %+v", rs)
		}
		_, err = mon.TopSlices(ctx, nil, core.TopQuery{})
		wantCode(t, err, core.Unauthenticated, "anonymous slice rows")

		// Selection: one node per site near Tokyo, dry run then for real.
		sel, err := mon.SelectNodes(ctx, user, sl, core.NodeSelection{PerSite: 1, Near: "tokyo", DryRun: true})
		e.must(err)
		if len(sel) != 2 || sel[0].NodeID != t1 || sel[1].NodeID != u1 || sel[0].DistanceKm != 0 {
			t.Fatalf("selected %+v", sel)
		}
		if ids := get(t, e, e.admin, core.Slice, map[string]any{"slice_id": sl}, "node_ids")[0]["node_ids"].([]int64); len(ids) != 0 {
			t.Fatalf("dry run added nodes %v", ids)
		}
		_, err = mon.SelectNodes(ctx, user, sl, core.NodeSelection{Where: "load < 1", Count: 1, Near: "-23.5,-46.7"})
		e.must(err)
		if ids := get(t, e, e.admin, core.Slice, map[string]any{"slice_id": sl}, "node_ids")[0]["node_ids"].([]int64); !slices.Equal(ids, []int64{u1}) {
			t.Fatalf("slice nodes %v", ids)
		}
		_, err = mon.SelectNodes(ctx, other, sl, core.NodeSelection{})
		wantCode(t, err, core.Forbidden, "a stranger adds nodes")
		_, err = mon.SelectNodes(ctx, user, sl, core.NodeSelection{Near: "atlantis"})
		wantCode(t, err, core.Invalid, "unknown site")

		// Tokyo's nodes go silent; usp keeps reporting.
		e.clock.Add(2 * time.Minute)
		report(u1, 0.2)
		e.must(mon.MonitorStep(ctx))
		acts, err := mon.MonitorActions(ctx, e.admin, 0, 0)
		e.must(err)
		if actionKinds(acts) != "node_down node_down" {
			t.Fatalf("actions %q", actionKinds(acts))
		}
		if r, _ := mon.TopNodes(ctx, nil, core.TopQuery{Where: "!up"}); len(r) != 2 || r[0].Status != "down" {
			t.Errorf("down rows %+v", r)
		}
		ns, err := mon.Notices(ctx, pi, 0, 0)
		e.must(err)
		if len(ns) != 2 || strings.Join(ns[0].Recipients, ",") != "pi@tokyo.test,tech@tokyo.test" || !strings.Contains(ns[0].Subject, "n1.tokyo.test is down") {
			t.Fatalf("notices %+v", ns)
		}
		if ns, _ := mon.Notices(ctx, e.person("pi@usp.test", usp, core.RolePI), 0, 0); len(ns) != 0 {
			t.Errorf("usp's PI sees tokyo's notices: %+v", ns)
		}
		_, err = mon.MonitorActions(ctx, pi, 0, 0)
		wantCode(t, err, core.Forbidden, "pi reads the monitor's log")

		// Past the grace: no new slices; past SuspendAfter: suspended.
		e.clock.Add(10 * time.Minute)
		report(u1, 0.2)
		e.must(mon.MonitorStep(ctx))
		_, err = e.s.Add(ctx, pi, core.Slice, core.Record{"name": "tokyo_new", "url": "http://x.test", "description": "d"})
		if err == nil {
			t.Fatal("a penalised site created a slice")
		}
		e.clock.Add(10 * time.Minute)
		report(u1, 0.2)
		e.must(mon.MonitorStep(ctx))
		if !enabledZero(e.state(u1), "tokyo_exp") {
			t.Fatal("tokyo_exp not suspended on usp's node")
		}
		// An admin suspension stays when the monitor lifts its own.
		wantCode(t, mon.SuspendSlice(ctx, e.admin, sl, " "), core.Invalid, "no reason")
		e.must(mon.SuspendSlice(ctx, e.admin, sl, "abuse report #7"))
		e.clock.Add(time.Minute)
		report(t2, 1)
		report(u1, 0.2)
		e.must(mon.MonitorStep(ctx))
		acts, _ = mon.MonitorActions(ctx, e.admin, 0, 0)
		if got := actionKinds(acts); got != "node_down node_down site_penalty site_penalty slice_suspend node_up site_penalty_lifted" {
			t.Fatalf("actions %q", got)
		}
		if acts[4].Actor != adminEmail || acts[4].Reason != "abuse report #7" || acts[4].SliceID != sl {
			t.Errorf("suspend action %+v", acts[4])
		}
		if enabled := get(t, e, e.admin, core.Site, map[string]any{"site_id": tokyo}, "enabled")[0]["enabled"]; enabled != true {
			t.Errorf("site still disabled")
		}
		if !enabledZero(e.state(u1), "tokyo_exp") {
			t.Fatal("the monitor's lift resumed an admin suspension")
		}
		e.must(mon.ResumeSlice(ctx, e.admin, sl, "resolved"))
		// mon is a second Service on e's store, whose changes e's watch
		// hub does not hear (a store is served by one process, or by
		// replicas that listen to each other): e's cached node states
		// would answer until their lifetime ends.
		e.s.ForgetStates()
		if enabledZero(e.state(u1), "tokyo_exp") {
			t.Fatal("resumed slice still suspended")
		}
		wantCode(t, mon.SuspendSlice(ctx, pi, sl, "x"), core.Forbidden, "pi suspends")
	})
}

func enabledZero(st *core.NodeState, slice string) bool {
	for _, s := range st.Slivers {
		if s.Name == slice {
			for _, a := range s.Attributes {
				if a.TagName == "enabled" && a.Value == "0" {
					return true
				}
			}
		}
	}
	return false
}

func mustPersonID(t *testing.T, e *env, email string) int64 {
	t.Helper()
	id, err := e.s.Resolve(e.ctx, e.admin, core.Person, email)
	e.must(err)
	return id
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
