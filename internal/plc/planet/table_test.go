package planet

import (
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

func f64(v float64) *float64 { return &v }

// planet of four nodes on three sites: Princeton (2), Tokyo, Sao Paulo.
func testTable() *Table {
	t := NewTable()
	t.SetRegistry([]NodeInfo{
		{NodeID: 1, Hostname: "n1.princeton.edu", SiteID: 1, Site: "princeton", Country: "US", Lat: f64(40.35), Lon: f64(-74.66), BootState: "boot"},
		{NodeID: 2, Hostname: "n2.princeton.edu", SiteID: 1, Site: "princeton", Country: "US", Lat: f64(40.35), Lon: f64(-74.66), BootState: "boot"},
		{NodeID: 3, Hostname: "n1.u-tokyo.ac.jp", SiteID: 2, Site: "tokyo", Country: "JP", Lat: f64(35.71), Lon: f64(139.76), BootState: "boot"},
		{NodeID: 4, Hostname: "n1.usp.br", SiteID: 3, Site: "usp", Country: "BR", Lat: f64(-23.56), Lon: f64(-46.73), BootState: "boot"},
	}, []SliceInfo{{SliceID: 7, Name: "princeton_burn", SiteID: 1}, {SliceID: 8, Name: "tokyo_idle", SiteID: 2}})
	t.SetStatus(map[int64]string{1: "up", 2: "up", 3: "up", 4: "down"})
	return t
}

func figures(at time.Time, load float64, diskFreeGB uint64, tx uint64, slivers ...core.SliverFigures) *core.NodeFigures {
	return &core.NodeFigures{Time: at, Load1: load, CPUs: 4, MemTotal: 8 * gb, MemUsed: 2 * gb, DiskTotal: 100 * gb,
		DiskUsed: (100 - diskFreeGB) * gb, TxBytes: tx, SliverCount: len(slivers), Slivers: slivers}
}

func TestTableRowsAndRates(t *testing.T) {
	tb := testTable()
	t0 := time.Unix(1_700_000_000, 0)
	tb.Ingest(1, t0.Unix(), figures(t0, 0.5, 50, 0,
		core.SliverFigures{Slice: "princeton_burn", State: "running", CPUPct: 90, TxBytes: 0},
		core.SliverFigures{Slice: "tokyo_idle", State: "running", CPUPct: 1}), nil, "pl-node/1")
	t1 := t0.Add(10 * time.Second)
	// 10 s later: 1.25 MB sent by the node, 1 MB of it by tokyo_idle.
	tb.Ingest(1, t1.Unix(), figures(t1, 3.5, 50, 1_250_000,
		core.SliverFigures{Slice: "princeton_burn", State: "running", CPUPct: 90},
		core.SliverFigures{Slice: "tokyo_idle", State: "running", CPUPct: 1, TxBytes: 1_000_000, LastError: "bad vref"}),
		map[string]string{"ghost": "refused: mem_max out of range"}, "")
	r, ok := tb.Node(1)
	if !ok {
		t.Fatal("no row for node 1")
	}
	if r.Load != 3.5 || r.DiskFreeGB != 50 || r.MemPct != 25 || r.TxKbps != 1000 || r.Version != "pl-node/1" ||
		r.LastContact != t1.Unix() || r.LastReport != t1.Unix() || !r.Up || r.Country != "US" || r.Errors != 2 || r.Slivers != 2 {
		t.Errorf("row: %+v", r)
	}
	if strings.Join(r.TopCPU, ",") != "princeton_burn,tokyo_idle" || strings.Join(r.TopBW, ",") != "tokyo_idle" {
		t.Errorf("top: cpu %v bw %v", r.TopCPU, r.TopBW)
	}
	sl := tb.Slices()
	byName := map[string]core.SliceRow{}
	for _, s := range sl {
		byName[s.Name] = s
	}
	burn, idle, ghost := byName["princeton_burn"], byName["tokyo_idle"], byName["ghost"]
	if burn.SliceID != 7 || burn.Nodes != 1 || burn.Running != 1 || burn.CPUCores != 3.6 || burn.Errors != 0 {
		t.Errorf("burn: %+v", burn)
	}
	if idle.TxKbps != 800 || idle.Errors != 1 || idle.Slivers[0].Error != "bad vref" {
		t.Errorf("idle: %+v", idle)
	}
	if ghost.SliceID != 0 || ghost.Errors != 1 || ghost.Slivers[0].State != "error" {
		t.Errorf("ghost: %+v", ghost)
	}
	// The cache is invalidated by a report.
	tb.Ingest(1, t1.Unix()+10, figures(t1.Add(10*time.Second), 1, 50, 1_250_000), nil, "")
	for _, s := range tb.Slices() {
		if s.Name == "princeton_burn" && s.Nodes != 0 {
			t.Errorf("stale slice row %+v", s)
		}
	}
	// A node removed from the registry leaves the table.
	tb.SetRegistry(nil, nil)
	if len(tb.Nodes()) != 0 {
		t.Errorf("rows left: %v", tb.Nodes())
	}
}

func TestFilter(t *testing.T) {
	tb := testTable()
	now := time.Unix(1_700_000_000, 0)
	tb.Ingest(1, now.Unix(), figures(now, 0.5, 50, 0), nil, "")
	tb.Ingest(2, now.Unix(), figures(now, 4, 2, 0), nil, "")
	tb.Ingest(3, now.Unix(), figures(now, 1, 80, 0), nil, "")
	rows, err := Filter(tb.Nodes(), core.TopQuery{Where: `load < 2 && disk_free_gb > 5 && country in ["JP","US"]`, Sort: "-disk_free_gb"})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range rows {
		got = append(got, r.NodeID)
	}
	if len(got) != 2 || got[0] != 3 || got[1] != 1 {
		t.Errorf("got %v", got)
	}
	if rows, _ := Filter(tb.Nodes(), core.TopQuery{Sort: "-load", Limit: 1}); len(rows) != 1 || rows[0].NodeID != 2 {
		t.Errorf("limit: %v", rows)
	}
	for _, q := range []core.TopQuery{{Where: "load <"}, {Where: "load"}, {Sort: "nope"}, {Limit: -1}} {
		if _, err := Filter(tb.Nodes(), q); core.ErrorCode(err) != core.Invalid {
			t.Errorf("%+v: %v", q, err)
		}
	}
}

// TestSSHColumn: the ssh gateway's reported state is the ssh column
// (unknown until reported, or from an older node), and ssh_ok holds only
// while the node is up and its gateway answered.
func TestSSHColumn(t *testing.T) {
	tb := testTable()
	now := time.Unix(1_700_000_000, 0)
	for id, ssh := range map[int64]string{1: core.SSHUp, 2: core.SSHDown, 4: core.SSHUp} {
		f := figures(now, 1, 50, 0)
		f.SSH = ssh
		tb.Ingest(id, now.Unix(), f, nil, "")
	}
	tb.Ingest(3, now.Unix(), figures(now, 1, 50, 0), nil, "") // an older node: no ssh field
	want := map[int64]struct {
		ssh string
		ok  bool
	}{1: {"up", true}, 2: {"down", false}, 3: {"unknown", false}, 4: {"up", false}} // 4 is down
	for _, r := range tb.Nodes() {
		if w := want[r.NodeID]; r.SSH != w.ssh || r.SSHOK != w.ok {
			t.Errorf("node %d: ssh %q ssh_ok %v, want %q %v", r.NodeID, r.SSH, r.SSHOK, w.ssh, w.ok)
		}
	}
	rows, err := Filter(tb.Nodes(), core.TopQuery{Where: `ssh_ok || ssh == "down"`, Sort: "node_id"})
	if err != nil || len(rows) != 2 || rows[0].NodeID != 1 || rows[1].NodeID != 2 {
		t.Errorf("query on ssh: %v %+v", err, rows)
	}
	// A node that comes back up with its gateway answering is ssh_ok again.
	tb.SetStatus(map[int64]string{4: "up"})
	if r, _ := tb.Node(4); !r.SSHOK {
		t.Errorf("node 4 up again: %+v", r)
	}
}

func TestSelect(t *testing.T) {
	tb := testTable()
	now := time.Unix(1_700_000_000, 0)
	for id, load := range map[int64]float64{1: 2, 2: 1, 3: 0.5, 4: 0.1} {
		tb.Ingest(id, now.Unix(), figures(now, load, 50, 0), nil, "")
	}
	names := func(s []core.Selected) string {
		var out []string
		for _, x := range s {
			out = append(out, x.Hostname)
		}
		return strings.Join(out, " ")
	}
	// By load; node 4 is down and never chosen.
	s, err := Select(tb.Nodes(), core.NodeSelection{}, nil)
	if err != nil || names(s) != "n1.u-tokyo.ac.jp n2.princeton.edu n1.princeton.edu" {
		t.Errorf("by load: %q %v", names(s), err)
	}
	s, _ = Select(tb.Nodes(), core.NodeSelection{PerSite: 1}, nil)
	if names(s) != "n1.u-tokyo.ac.jp n2.princeton.edu" {
		t.Errorf("per site: %q", names(s))
	}
	// Near Rio de Janeiro: Princeton (7,700 km) before Tokyo (18,500 km).
	s, _ = Select(tb.Nodes(), core.NodeSelection{Count: 2}, &Point{-22.9, -43.2})
	if names(s) != "n2.princeton.edu n1.princeton.edu" || s[0].DistanceKm < 7500 || s[0].DistanceKm > 7900 {
		t.Errorf("near: %q %+v", names(s), s)
	}
	s, _ = Select(tb.Nodes(), core.NodeSelection{Where: `country == "JP"`}, nil)
	if names(s) != "n1.u-tokyo.ac.jp" {
		t.Errorf("where: %q", names(s))
	}
	for _, sel := range []core.NodeSelection{{Where: "1 +"}, {Count: -1}, {PerSite: -2}} {
		if _, err := Select(tb.Nodes(), sel, nil); core.ErrorCode(err) != core.Invalid {
			t.Errorf("%+v: %v", sel, err)
		}
	}
}
