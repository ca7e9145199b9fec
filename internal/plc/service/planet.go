package service

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/geo"
	"github.com/planetlab/pl/internal/plc/planet"
	"github.com/planetlab/pl/internal/plc/store"
)

// Monitoring at PLC (docs/monitoring.md): the planet table is in memory
// (planet.Table), fed by ReportNode; each node's latest summary is also
// stored (node_reports, in the report's own transaction) so that a
// restarted PLC serves a full table at once. The monitor (RunMonitor)
// steps the pure state machine of package planet and applies and records
// its decisions here.

var _ core.Planet = (*Service)(nil)

// Notifier delivers the monitor's notices to a site's contacts. Notices
// are always recorded (table notices, GET /api/v1/monitor/notices) and
// logged; a Notifier (the mail outbox, when it exists) sends them too.
type Notifier interface {
	Notify(ctx context.Context, n core.Notice) error
}

// Planet returns the planet table.
func (s *Service) Planet() *planet.Table { return s.planet }

// MonitorPolicy returns the monitor's effective policy.
func (s *Service) MonitorPolicy() planet.Policy { return s.opts.Monitor.WithDefaults() }

// loadPlanet fills the table and the monitor from the store.
func (s *Service) loadPlanet(ctx context.Context) error {
	var reports []store.NodeReportRow
	var mn []store.MonitorNode
	var ms []store.MonitorSite
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		if err := s.refreshRegistry(ctx, tx); err != nil {
			return err
		}
		var err error
		if reports, err = tx.NodeReports(ctx); err != nil {
			return err
		}
		mn, ms, err = tx.MonitorState(ctx)
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range reports {
		var f core.NodeFigures
		if r.Figures == "" || json.Unmarshal([]byte(r.Figures), &f) != nil || f.Validate() != nil {
			s.log.Warn("planet: ignoring a stored report", "node", r.NodeID)
			continue
		}
		s.planet.Ingest(r.NodeID, r.Received, &f, nil, "")
	}
	nodes := make([]planet.NodeState, len(mn))
	status := map[int64]string{}
	for i, n := range mn {
		nodes[i] = planet.NodeState{NodeID: n.NodeID, Status: planet.Status(n.Status), Since: n.Since}
		status[n.NodeID] = n.Status
	}
	sites := make([]planet.SiteState, len(ms))
	for i, x := range ms {
		sites[i] = planet.SiteState{SiteID: x.SiteID, DownSince: x.DownSince, Level: x.Level}
	}
	s.monMu.Lock()
	s.mon = planet.NewMonitor(s.opts.Monitor, nodes, sites)
	s.monMu.Unlock()
	s.planet.SetStatus(status)
	return nil
}

// refreshRegistry gives the table the registry's facts; it returns them
// as the monitor's observations too.
func (s *Service) refreshRegistry(ctx context.Context, tx *store.Tx) error {
	_, err := s.registryFacts(ctx, tx)
	return err
}

func (s *Service) registryFacts(ctx context.Context, tx *store.Tx) ([]planet.NodeHealth, error) {
	pn, err := tx.PlanetNodes(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := tx.PlanetSlices(ctx)
	if err != nil {
		return nil, err
	}
	info := make([]planet.NodeInfo, len(pn))
	health := make([]planet.NodeHealth, len(pn))
	for i, n := range pn {
		info[i] = planet.NodeInfo{NodeID: n.NodeID, Hostname: n.Hostname, SiteID: n.SiteID, Site: n.LoginBase,
			Country: countryCode(n.Country), Lat: n.Lat, Lon: n.Lon, BootState: n.BootState, LastContact: n.LastContact, Version: n.Version}
		health[i] = planet.NodeHealth{NodeID: n.NodeID, SiteID: n.SiteID, Hostname: n.Hostname, BootState: n.BootState, LastContact: n.LastContact}
	}
	sl := make([]planet.SliceInfo, len(ps))
	for i, x := range ps {
		sl[i] = planet.SliceInfo{SliceID: x.SliceID, Name: x.Name, SiteID: x.SiteID}
	}
	s.planet.SetRegistry(info, sl)
	return health, nil
}

// countryCode keeps a two-letter code (upper case); anything else is
// unknown.
func countryCode(v string) string {
	v = strings.ToUpper(strings.TrimSpace(v))
	if len(v) == 2 && v[0] >= 'A' && v[0] <= 'Z' && v[1] >= 'A' && v[1] <= 'Z' {
		return v
	}
	return ""
}

// RunMonitor steps the monitor until ctx ends, every quarter of the
// down-after time (at least every second, at most every 15 s), and at
// once when a node that is not up reports (so it shows up without delay).
//
// Of several replicas on one PostgreSQL database only the one holding the
// monitor's job lock steps it (store.DB.RunExclusive); it starts from the
// state the previous holder recorded, and the others reload the planet
// table and the monitor's state from the store every period.
func (s *Service) RunMonitor(ctx context.Context) error {
	every := min(max(s.MonitorPolicy().DownAfter/4, time.Second), 15*time.Second)
	if s.db.Dialect != store.Postgres {
		s.runMonitor(ctx, every)
		return nil
	}
	var leading atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !leading.Load() {
				if err := s.loadPlanet(ctx); err != nil && ctx.Err() == nil {
					s.log.Warn("planet table: reloading the leader's state", "err", err)
				}
			}
		}
	}()
	s.db.RunExclusive(ctx, "monitor", func(ctx context.Context) {
		s.log.Info("this replica runs the monitor")
		if err := s.loadPlanet(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("planet table: loading the recorded state", "err", err)
		}
		s.runMonitor(ctx, every)
	}, leading.Store)
	<-done
	return nil
}

func (s *Service) runMonitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.jobs.monitor.Add(1)
		if err := s.MonitorStep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("monitor step", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.monWake:
		}
	}
}

// MonitorStep observes every node once, applies the monitor's decisions
// and records them (tests call it with a fake clock).
func (s *Service) MonitorStep(ctx context.Context) error {
	s.monMu.Lock()
	defer s.monMu.Unlock()
	var health []planet.NodeHealth
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		health, err = s.registryFacts(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	now := s.opts.Now()
	beforeN, beforeS := s.mon.States()
	acts := s.mon.Step(now, health)
	afterN, afterS := s.mon.States()
	status := map[int64]string{}
	for _, n := range afterN {
		status[n.NodeID] = string(n.Status)
	}
	s.planet.SetStatus(status)
	s.sampleHistory(now)
	nodeDiff, siteDiff, goneSites := diffStates(beforeN, afterN, beforeS, afterS)
	if len(acts) == 0 && len(nodeDiff) == 0 && len(siteDiff) == 0 && len(goneSites) == 0 {
		return nil
	}
	var notices []core.Notice
	err = s.write(ctx, nil, func(o *op) error {
		notices = nil
		for _, n := range nodeDiff {
			if err := o.tx.PutMonitorNode(ctx, n); err != nil {
				return err
			}
		}
		for _, x := range siteDiff {
			if err := o.tx.PutMonitorSite(ctx, x); err != nil {
				return err
			}
		}
		for _, a := range acts {
			n, err := o.applyMonitorAction(a)
			if err != nil {
				return err
			}
			if n != nil {
				notices = append(notices, *n)
			}
		}
		for _, id := range goneSites {
			if _, err := o.tx.DeleteMonitorSite(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range acts {
		s.log.Info("monitor", "action", a.Kind, "node", a.Hostname, "site", a.SiteID, "level", a.Level, "reason", a.Reason)
	}
	for _, n := range notices {
		s.log.Info("monitor notice", "site", n.SiteID, "to", strings.Join(n.Recipients, ","), "subject", n.Subject)
		if s.opts.Notifier != nil {
			if err := s.opts.Notifier.Notify(ctx, n); err != nil {
				s.log.Warn("monitor notice not sent", "notice", n.NoticeID, "err", err)
			}
		}
	}
	return nil
}

func diffStates(bn, an []planet.NodeState, bs, as []planet.SiteState) (nodes []store.MonitorNode, sites []store.MonitorSite, gone []int64) {
	old := map[int64]planet.NodeState{}
	for _, n := range bn {
		old[n.NodeID] = n
	}
	for _, n := range an {
		if o, ok := old[n.NodeID]; !ok || o != n {
			nodes = append(nodes, store.MonitorNode{NodeID: n.NodeID, Status: string(n.Status), Since: n.Since})
		}
		delete(old, n.NodeID)
	}
	for id := range old {
		nodes = append(nodes, store.MonitorNode{NodeID: id}) // forget
	}
	oldS := map[int64]planet.SiteState{}
	for _, x := range bs {
		oldS[x.SiteID] = x
	}
	for _, x := range as {
		if o, ok := oldS[x.SiteID]; !ok || o != x {
			sites = append(sites, store.MonitorSite{SiteID: x.SiteID, DownSince: x.DownSince, Level: x.Level})
		}
		delete(oldS, x.SiteID)
	}
	for id := range oldS {
		gone = append(gone, id)
	}
	return nodes, sites, gone
}

// applyMonitorAction carries out and records one decision and returns the
// notice it recorded (nil: none).
func (o *op) applyMonitorAction(a planet.Action) (*core.Notice, error) {
	ctx := o.ctx
	switch a.Kind {
	case planet.ActSitePenalty:
		if a.Level >= planet.PenaltyNoSlices {
			changed, err := o.tx.SetSiteEnabled(ctx, a.SiteID, false)
			if err != nil {
				return nil, err
			}
			if changed {
				if err := o.tx.PutMonitorSite(ctx, store.MonitorSite{SiteID: a.SiteID, Level: a.Level, DownSince: a.At, DisabledSite: true}); err != nil {
					return nil, err
				}
			}
		}
		if a.Level >= planet.PenaltySuspended {
			ids, err := o.tx.SiteSlices(ctx, a.SiteID)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if err := o.tx.AddSuspension(ctx, id, "monitor", "monitor", a.Reason, a.At); err != nil {
					return nil, err
				}
			}
			o.ch.all = true
		}
	case planet.ActPenaltyLifted:
		disabled, err := o.tx.DeleteMonitorSite(ctx, a.SiteID)
		if err != nil {
			return nil, err
		}
		if disabled {
			if _, err := o.tx.SetSiteEnabled(ctx, a.SiteID, true); err != nil {
				return nil, err
			}
		}
		ids, err := o.tx.SiteSlices(ctx, a.SiteID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if _, err := o.tx.RemoveSuspension(ctx, id, "monitor"); err != nil {
				return nil, err
			}
		}
		o.ch.all = true
	}
	if _, err := o.tx.InsertMonitorAction(ctx, core.MonitorAction{At: a.At, Kind: a.Kind, NodeID: a.NodeID, SiteID: a.SiteID,
		Level: a.Level, Actor: "monitor", Reason: a.Reason}); err != nil {
		return nil, err
	}
	if len(a.Notify) == 0 {
		return nil, nil
	}
	var rcpt []string
	seen := map[string]bool{}
	for _, who := range a.Notify {
		var emails []string
		var err error
		if who == "user" {
			emails, err = o.tx.SiteSliceUsers(ctx, a.SiteID)
		} else {
			emails, err = o.tx.SiteRoleHolders(ctx, a.SiteID, who)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range emails {
			if !seen[e] {
				seen[e] = true
				rcpt = append(rcpt, e)
			}
		}
	}
	sort.Strings(rcpt)
	lb, err := o.tx.SiteLoginBase(ctx, a.SiteID)
	if err != nil {
		return nil, err
	}
	n := core.Notice{At: a.At, SiteID: a.SiteID, NodeID: a.NodeID, Kind: a.Kind, Recipients: rcpt}
	if n.Recipients == nil {
		n.Recipients = []string{}
	}
	switch a.Kind {
	case planet.ActNodeDown:
		n.Subject = fmt.Sprintf("PlanetLab node %s is down", a.Hostname)
	case planet.ActNodeUp:
		n.Subject = fmt.Sprintf("PlanetLab node %s is up again", a.Hostname)
	case planet.ActSitePenalty:
		n.Subject = fmt.Sprintf("PlanetLab site %s penalised (level %d)", lb, a.Level)
	case planet.ActPenaltyLifted:
		n.Subject = fmt.Sprintf("PlanetLab site %s: penalty lifted", lb)
	default:
		n.Subject = fmt.Sprintf("PlanetLab site %s: %s", lb, a.Kind)
	}
	n.Body = fmt.Sprintf("%s\n\nSite: %s\nWhen: %s\nReason: %s\n", n.Subject, lb, time.Unix(a.At, 0).UTC().Format(time.RFC3339), a.Reason)
	id, err := o.tx.InsertNotice(ctx, n)
	if err != nil {
		return nil, err
	}
	n.NoticeID = id
	return &n, o.mailNotice(n) // outbox.go
}

// ingestReport persists a report's figures in the report's transaction.
func (o *op) storeFigures(nodeID int64, f *core.NodeFigures) error {
	if f == nil {
		return nil
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return o.tx.PutNodeReport(o.ctx, nodeID, o.now, string(b))
}

// TopNodes implements core.Planet.
func (s *Service) TopNodes(ctx context.Context, c *core.Caller, q core.TopQuery) ([]core.NodeRow, error) {
	if err := authorize(c, opGetPlanetNodes); err != nil {
		return nil, err
	}
	return planet.Filter(s.planet.Nodes(), q)
}

// TopSlices implements core.Planet.
func (s *Service) TopSlices(ctx context.Context, c *core.Caller, q core.TopQuery) ([]core.SliceRow, error) {
	if err := authorize(c, opGetPlanetSlices); err != nil {
		return nil, err
	}
	rows := s.planet.Slices()
	if !isAdmin(c) {
		var ids []int64
		err := s.read(ctx, c, func(o *op) error {
			var pi []int64
			if o.c.HasRole(core.RolePI) {
				pi = o.c.SiteIDs
			}
			var err error
			ids, err = o.tx.ReadableSlices(ctx, o.c.PersonID, pi)
			return err
		})
		if err != nil {
			return nil, err
		}
		ok := map[int64]bool{}
		for _, id := range ids {
			ok[id] = true
		}
		kept := rows[:0]
		for _, r := range rows {
			if r.SliceID != 0 && ok[r.SliceID] {
				kept = append(kept, r)
			}
		}
		rows = kept
	}
	return planet.Filter(rows, q)
}

// SelectNodes implements core.Planet.
func (s *Service) SelectNodes(ctx context.Context, c *core.Caller, sliceID int64, sel core.NodeSelection) ([]core.Selected, error) {
	if err := authorize(c, opSelectNodes); err != nil {
		return nil, err
	}
	var near *planet.Point
	if sel.Near != "" {
		lat, lon, ok, err := geo.ParseLatLon(sel.Near)
		if err != nil {
			return nil, core.FieldErrorf("near", "%v", err)
		}
		if ok {
			near = &planet.Point{Lat: lat, Lon: lon}
		} else {
			err := s.read(ctx, c, func(o *op) error {
				la, lo, found, err := o.tx.SiteLocation(ctx, sel.Near)
				if err != nil {
					return err
				}
				if !found {
					return core.FieldErrorf("near", "no site %q (want a site login_base or lat,lon)", sel.Near)
				}
				if la == nil || lo == nil {
					return core.FieldErrorf("near", "site %q has no latitude and longitude", sel.Near)
				}
				near = &planet.Point{Lat: *la, Lon: *lo}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	chosen, err := planet.Select(s.planet.Nodes(), sel, near)
	if err != nil {
		return nil, err
	}
	do := s.write
	if sel.DryRun {
		do = s.read
	}
	err = do(ctx, c, func(o *op) error {
		sl, err := o.slice(sliceID)
		if err != nil {
			return err
		}
		if err := o.sliceWriter(sl); err != nil {
			return err
		}
		if sel.DryRun {
			return nil
		}
		for _, n := range chosen {
			if err := o.link(core.SliceNode, sliceID, n.NodeID, nil, true); err != nil {
				return fmt.Errorf("node %s: %w", n.Hostname, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return chosen, nil
}

// MonitorActions implements core.Planet.
func (s *Service) MonitorActions(ctx context.Context, c *core.Caller, since int64, limit int) ([]core.MonitorAction, error) {
	if err := authorize(c, opGetMonitorActions); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []core.MonitorAction
	err := s.read(ctx, c, func(o *op) error {
		var err error
		out, err = o.tx.MonitorActions(ctx, since, limit)
		return err
	})
	return out, err
}

// Notices implements core.Planet.
func (s *Service) Notices(ctx context.Context, c *core.Caller, since int64, limit int) ([]core.Notice, error) {
	if err := authorize(c, opGetNotices); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var out []core.Notice
	err := s.read(ctx, c, func(o *op) error {
		// Admins: all; PIs and techs: their sites'; everyone: those
		// addressed to them (e.g. a slice's throttle, bwmon.go).
		var sites []int64
		if !isAdmin(o.c) {
			sites = []int64{}
			if o.c.HasRole(core.RolePI) || o.c.HasRole(core.RoleTech) {
				sites = append(sites, o.c.SiteIDs...)
			}
		}
		var err error
		out, err = o.tx.Notices(ctx, since, limit, sites, o.c.Email)
		return err
	})
	return out, err
}

// SuspendSlice implements core.Planet.
func (s *Service) SuspendSlice(ctx context.Context, c *core.Caller, sliceID int64, reason string) error {
	if err := authorize(c, opSuspendSlice); err != nil {
		return err
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		if _, err := o.slice(sliceID); err != nil {
			return err
		}
		if err := o.tx.AddSuspension(o.ctx, sliceID, "admin", o.c.Email, reason, o.now); err != nil {
			return err
		}
		o.ch.all = true
		_, err := o.tx.InsertMonitorAction(o.ctx, core.MonitorAction{At: o.now, Kind: planet.ActSliceSuspend, SliceID: sliceID, Actor: o.c.Email, Reason: reason})
		return err
	})
}

// ResumeSlice implements core.Planet.
func (s *Service) ResumeSlice(ctx context.Context, c *core.Caller, sliceID int64, reason string) error {
	if err := authorize(c, opResumeSlice); err != nil {
		return err
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		if _, err := o.slice(sliceID); err != nil {
			return err
		}
		if _, err := o.tx.RemoveSuspension(o.ctx, sliceID, ""); err != nil {
			return err
		}
		o.ch.all = true
		_, err := o.tx.InsertMonitorAction(o.ctx, core.MonitorAction{At: o.now, Kind: planet.ActSliceResume, SliceID: sliceID, Actor: o.c.Email, Reason: reason})
		return err
	})
}

func checkReason(r string) error {
	if strings.TrimSpace(r) == "" {
		return core.FieldErrorf("reason", "required")
	}
	if len(r) > 1000 || strings.ContainsRune(r, 0) {
		return core.FieldErrorf("reason", "at most 1000 bytes, no NUL")
	}
	return nil
}

// HistoryEvery is the default interval of the planet history's samples.
const HistoryEvery = time.Minute

// sampleHistory adds a whole-planet sample to the history when the last
// is at least Options.HistoryEvery old (the monitor steps more often).
func (s *Service) sampleHistory(now time.Time) {
	every := s.opts.HistoryEvery
	if every <= 0 {
		every = HistoryEvery
	}
	if last := s.history.Last(); last != 0 && now.Unix()-last < int64(every/time.Second) {
		return
	}
	s.history.Add(planet.Summarize(now.Unix(), s.planet.Nodes(), s.planet.Slices()))
}

// PlanetHistory implements core.Planet: the samples after since, oldest
// first (admins). They are kept in memory only: a restart starts empty.
func (s *Service) PlanetHistory(ctx context.Context, c *core.Caller, since int64) ([]core.PlanetSample, error) {
	if err := authorize(c, opGetPlanetHistory); err != nil {
		return nil, err
	}
	out := s.history.Since(since)
	if out == nil {
		out = []core.PlanetSample{}
	}
	return out, nil
}
