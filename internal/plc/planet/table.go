// Package planet is PLC's view of the running planet: the planet table
// (one row per node and per slice, kept current from the nodes' reports),
// node selection by measured properties and location, and the monitor's
// state machine (monitor.go). It is pure: the PLC service feeds it the
// registry facts and the reports and applies the monitor's decisions.
package planet

import (
	"cmp"
	"slices"
	"sync"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/planet/query"
)

// NodeInfo is what the registry says of a node.
type NodeInfo struct {
	NodeID      int64
	Hostname    string
	SiteID      int64
	Site        string // login_base
	Country     string
	Lat, Lon    *float64
	BootState   string
	LastContact int64
	Version     string
}

// SliceInfo is what the registry says of a slice.
type SliceInfo struct {
	SliceID int64
	Name    string
	SiteID  int64
}

// report is a node's latest figures and what rates need of the one before.
type report struct {
	at     int64 // PLC clock, UNIX seconds
	f      *core.NodeFigures
	errs   map[string]string
	rx, tx float64 // node kbit/s
	sliver map[string][2]float64
}

// Table is the planet table. It is safe for concurrent use.
type Table struct {
	mu       sync.RWMutex
	info     map[int64]NodeInfo
	slices   map[string]SliceInfo
	reports  map[int64]*report
	status   map[int64]string
	rows     map[int64]*core.NodeRow // built on change; readers copy
	sliceGen int64                   // bumped on every change
	sliceAt  int64                   // sliceGen of sliceRows
	sliceRow []core.SliceRow
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{info: map[int64]NodeInfo{}, slices: map[string]SliceInfo{}, reports: map[int64]*report{},
		status: map[int64]string{}, rows: map[int64]*core.NodeRow{}, sliceAt: -1}
}

// SetRegistry replaces the registry facts: nodes (rows of nodes not listed
// are dropped) and slices.
func (t *Table) SetRegistry(nodes []NodeInfo, sl []SliceInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info := make(map[int64]NodeInfo, len(nodes))
	for _, n := range nodes {
		info[n.NodeID] = n
	}
	t.info = info
	t.slices = make(map[string]SliceInfo, len(sl))
	for _, s := range sl {
		t.slices[s.Name] = s
	}
	for id := range t.reports {
		if _, ok := info[id]; !ok {
			delete(t.reports, id)
		}
	}
	t.rows = make(map[int64]*core.NodeRow, len(info))
	for id := range info {
		t.rebuild(id)
	}
	t.sliceGen++
}

// SetStatus records the monitor's view of each node ("up", "down",
// "unknown").
func (t *Table) SetStatus(status map[int64]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, s := range status {
		if t.status[id] != s {
			t.status[id] = s
			t.rebuild(id)
		}
	}
}

// Ingest records a node's report received at (PLC clock). figures may be
// nil (the report carried none: the previous figures stay); sliverErrors
// nil leaves the errors unchanged. Rates are computed from the previous
// report's counters.
func (t *Table) Ingest(nodeID, at int64, f *core.NodeFigures, sliverErrors map[string]string, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	info, ok := t.info[nodeID]
	if !ok {
		info = NodeInfo{NodeID: nodeID}
	}
	info.LastContact = at
	if version != "" {
		info.Version = version
	}
	t.info[nodeID] = info
	prev := t.reports[nodeID]
	r := &report{at: at}
	if prev != nil {
		*r = *prev
		r.at = at
	}
	if sliverErrors != nil {
		r.errs = sliverErrors
	}
	if f != nil {
		r.rx, r.tx, r.sliver = 0, 0, map[string][2]float64{}
		if prev != nil && prev.f != nil && at > prev.at && !f.Time.Before(prev.f.Time) {
			dt := f.Time.Sub(prev.f.Time).Seconds()
			if dt <= 0 {
				dt = float64(at - prev.at)
			}
			r.rx, r.tx = kbps(prev.f.RxBytes, f.RxBytes, dt), kbps(prev.f.TxBytes, f.TxBytes, dt)
			old := make(map[string]*core.SliverFigures, len(prev.f.Slivers))
			for i := range prev.f.Slivers {
				old[prev.f.Slivers[i].Slice] = &prev.f.Slivers[i]
			}
			for _, s := range f.Slivers {
				if o := old[s.Slice]; o != nil {
					r.sliver[s.Slice] = [2]float64{kbps(o.RxBytes, s.RxBytes, dt), kbps(o.TxBytes, s.TxBytes, dt)}
				}
			}
		}
		r.f = f
	}
	t.reports[nodeID] = r
	t.rebuild(nodeID)
	t.sliceGen++
}

func kbps(before, after uint64, dt float64) float64 {
	if after < before || dt <= 0 { // counter reset
		return 0
	}
	return float64(after-before) * 8 / 1000 / dt
}

const gb = 1 << 30

// rebuild recomputes a node's row; t.mu is held.
func (t *Table) rebuild(id int64) {
	info, ok := t.info[id]
	if !ok {
		delete(t.rows, id)
		return
	}
	row := &core.NodeRow{NodeID: id, Hostname: info.Hostname, SiteID: info.SiteID, Site: info.Site, Country: info.Country,
		BootState: info.BootState, LastContact: info.LastContact, Version: info.Version, Status: t.status[id],
		SSH: "unknown", TopCPU: []string{}, TopBW: []string{}}
	if row.Status == "" {
		row.Status = "unknown"
	}
	row.Up = row.Status == "up"
	if info.Lat != nil && info.Lon != nil {
		row.Latitude, row.Longitude, row.HasLocation = *info.Lat, *info.Lon, true
	}
	if r := t.reports[id]; r != nil {
		for _, e := range r.errs {
			if e != "" {
				row.Errors++
			}
		}
		if f := r.f; f != nil {
			row.LastReport = r.at
			row.Load, row.Load5, row.CPUs, row.CPUPct = f.Load1, f.Load5, f.CPUs, f.CPUPct
			row.MemPct, row.MemFreeGB = pctOf(f.MemUsed, f.MemTotal), float64(f.MemTotal-f.MemUsed)/gb
			row.SwapPct = pctOf(f.SwapUsed, f.SwapTotal)
			row.DiskPct, row.DiskFreeGB = pctOf(f.DiskUsed, f.DiskTotal), float64(f.DiskTotal-f.DiskUsed)/gb
			row.UptimeHours = f.UptimeSec / 3600
			row.ClockOffsetMs, row.ClockKnown = f.ClockOffsetMs, f.ClockKnown
			row.RxKbps, row.TxKbps = r.rx, r.tx
			row.Drops = f.RxDrops + f.TxDrops
			if f.SSH != "" {
				row.SSH = f.SSH
			}
			row.SSHOK = row.Up && f.SSH == core.SSHUp
			row.Slivers = f.SliverCount
			for _, s := range f.Slivers {
				if s.LastError != "" && r.errs[s.Slice] == "" {
					row.Errors++
				}
			}
			row.TopCPU = top(f.Slivers, func(s *core.SliverFigures) float64 { return s.CPUPct })
			row.TopBW = top(f.Slivers, func(s *core.SliverFigures) float64 { b := r.sliver[s.Slice]; return b[0] + b[1] })
		}
	}
	t.rows[id] = row
}

func pctOf(used, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(used) * 100 / float64(total)
}

// top returns the names of the (at most) three slivers with the largest
// positive key.
func top(s []core.SliverFigures, key func(*core.SliverFigures) float64) []string {
	type kv struct {
		name string
		v    float64
	}
	var all []kv
	for i := range s {
		if v := key(&s[i]); v > 0 {
			all = append(all, kv{s[i].Slice, v})
		}
	}
	slices.SortFunc(all, func(a, b kv) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	out := []string{}
	for i := 0; i < len(all) && i < 3; i++ {
		out = append(out, all[i].name)
	}
	return out
}

// Nodes returns every node's row, by node id.
func (t *Table) Nodes() []core.NodeRow {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]core.NodeRow, 0, len(t.rows))
	for _, r := range t.rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b core.NodeRow) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// Node returns one node's row.
func (t *Table) Node(id int64) (core.NodeRow, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	r, ok := t.rows[id]
	if !ok {
		return core.NodeRow{}, false
	}
	return *r, true
}

// Slices returns every slice's row, by slice id: every registered slice
// (with no slivers when no node reports one) and, with id 0, slivers whose
// slice PLC does not know (system slivers, deleted slices).
func (t *Table) Slices() []core.SliceRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sliceAt == t.sliceGen {
		return slices.Clone(t.sliceRow)
	}
	byName := map[string]*core.SliceRow{}
	for name, s := range t.slices {
		byName[name] = &core.SliceRow{SliceID: s.SliceID, Name: name, SiteID: s.SiteID, Hosts: []string{}, Slivers: []core.SliverRow{}}
	}
	ids := make([]int64, 0, len(t.reports))
	for id := range t.reports {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r := t.reports[id]
		host := t.info[id].Hostname
		seen := map[string]bool{}
		add := func(name string) *core.SliceRow {
			row := byName[name]
			if row == nil {
				row = &core.SliceRow{Name: name, Hosts: []string{}, Slivers: []core.SliverRow{}}
				byName[name] = row
			}
			return row
		}
		if r.f != nil {
			for _, s := range r.f.Slivers {
				row := add(s.Slice)
				seen[s.Slice] = true
				bw := r.sliver[s.Slice]
				sr := core.SliverRow{NodeID: id, Hostname: host, State: s.State, CPUPct: s.CPUPct, MemUsed: s.MemUsed,
					RxKbps: bw[0], TxKbps: bw[1], Error: s.LastError, IPv6: s.IPv6}
				if e := r.errs[s.Slice]; e != "" {
					sr.Error = e
				}
				row.Nodes++
				if s.State == "running" {
					row.Running++
				}
				row.CPUCores += s.CPUPct / 100 * float64(max(r.f.CPUs, 1))
				row.MaxCPU = max(row.MaxCPU, s.CPUPct)
				row.MemGB += float64(s.MemUsed) / gb
				row.RxKbps += bw[0]
				row.TxKbps += bw[1]
				row.Procs += s.Procs
				if sr.Error != "" {
					row.Errors++
				}
				row.Hosts = append(row.Hosts, host)
				row.Slivers = append(row.Slivers, sr)
			}
		}
		// Errors of slivers the figures do not list (refused configurations).
		for name, e := range r.errs {
			if e == "" || seen[name] {
				continue
			}
			row := add(name)
			row.Errors++
			row.Slivers = append(row.Slivers, core.SliverRow{NodeID: id, Hostname: host, State: "error", Error: e})
		}
	}
	out := make([]core.SliceRow, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b core.SliceRow) int {
		if c := cmp.Compare(a.SliceID, b.SliceID); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	t.sliceRow, t.sliceAt = out, t.sliceGen
	return slices.Clone(out)
}

// Filter applies a TopQuery to rows: compile Where against T, keep the
// matching rows, sort, cut to Limit. A bad query or sort is an
// Invalid error naming the parameter.
func Filter[T any](rows []T, q core.TopQuery) ([]T, error) {
	cq, err := query.Compile[T](q.Where)
	if err != nil {
		return nil, core.FieldErrorf("where", "%v", err)
	}
	ord, err := query.ParseOrder[T](q.Sort)
	if err != nil {
		return nil, core.FieldErrorf("sort", "%v", err)
	}
	if q.Limit < 0 {
		return nil, core.FieldErrorf("limit", "must not be negative")
	}
	out := rows[:0:0]
	for i := range rows {
		ok, err := cq.Match(&rows[i])
		if err != nil {
			return nil, core.FieldErrorf("where", "%v", err)
		}
		if ok {
			out = append(out, rows[i])
		}
	}
	ord.Sort(out)
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}
