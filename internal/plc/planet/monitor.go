package planet

import (
	"fmt"
	"sort"
	"time"
)

// The monitor's policy, after planetlab-monitor (reference
// nodemanager.md §6.2), compressed from days to minutes and hours:
//
//	node:  unknown --report--> up --no report for DownAfter--> down --report--> up
//	            \--no report----------------------------------^
//	site (all its watched nodes down):
//	  0 (none) --SiteGrace--> 1 (no new slices) --SuspendAfter--> 2 (slices suspended)
//	  any level --a node of the site up again--> 0 (penalty lifted)
//
// A node is watched unless an admin took it out of service (boot_state
// disabled or safeboot) or it never reported (registered, not installed).
// Every transition is an Action with its reason; node transitions and
// penalty changes also notify the site (Notice): techs and PIs for node
// notices and level 1, slice users too at level 2, as the original.

// Status of a node as the monitor sees it.
type Status string

// Node statuses.
const (
	Unknown Status = "unknown" // never reported, or out of service
	Up      Status = "up"
	Down    Status = "down"
)

// Penalty levels of a site.
const (
	PenaltyNone      = 0
	PenaltyNoSlices  = 1 // no new slices (site disabled)
	PenaltySuspended = 2 // every slice of the site suspended
)

// Policy configures the monitor; zero fields take the defaults.
type Policy struct {
	DownAfter    time.Duration // silence after which a node is down; default 2 min
	SiteGrace    time.Duration // all nodes of a site down this long: no new slices; default 24 h
	SuspendAfter time.Duration // all down this long: slices suspended; default 7 days
}

// Defaults of Policy.
const (
	DefaultDownAfter    = 2 * time.Minute
	DefaultSiteGrace    = 24 * time.Hour
	DefaultSuspendAfter = 7 * 24 * time.Hour
)

// WithDefaults fills zero fields and keeps SuspendAfter >= SiteGrace.
func (p Policy) WithDefaults() Policy {
	if p.DownAfter <= 0 {
		p.DownAfter = DefaultDownAfter
	}
	if p.SiteGrace <= 0 {
		p.SiteGrace = DefaultSiteGrace
	}
	if p.SuspendAfter <= 0 {
		p.SuspendAfter = DefaultSuspendAfter
	}
	if p.SuspendAfter < p.SiteGrace {
		p.SuspendAfter = p.SiteGrace
	}
	return p
}

// NodeHealth is what the monitor observes of one node.
type NodeHealth struct {
	NodeID      int64
	SiteID      int64
	Hostname    string
	BootState   string
	LastContact int64 // UNIX seconds; 0 = never
}

// Kinds of Action.
const (
	ActNodeDown      = "node_down"
	ActNodeUp        = "node_up"
	ActSitePenalty   = "site_penalty"
	ActPenaltyLifted = "site_penalty_lifted"
	ActSliceSuspend  = "slice_suspend" // admin actions, recorded in the same log
	ActSliceResume   = "slice_resume"
)

// Action is one decision of the monitor.
type Action struct {
	Kind     string
	At       int64 // UNIX seconds
	NodeID   int64 // node actions
	Hostname string
	SiteID   int64
	Level    int // site actions: the new level
	Reason   string
	// Notify names who the site's notice goes to: "tech", "pi", "user"
	// (the users of the site's slices); empty = no notice.
	Notify []string
}

// NodeState is the monitor's persistent memory of a node.
type NodeState struct {
	NodeID int64
	Status Status
	Since  int64 // UNIX seconds of the last transition
}

// SiteState is the monitor's persistent memory of a site.
type SiteState struct {
	SiteID    int64
	DownSince int64 // UNIX seconds since every watched node is down; 0 = not all down
	Level     int
}

// Monitor is the monitor's state machine. It is pure: Step takes the time
// and the observations and returns decisions; the caller applies them and
// persists States. It is not safe for concurrent use.
type Monitor struct {
	p     Policy
	nodes map[int64]*NodeState
	sites map[int64]*SiteState
}

// NewMonitor returns a monitor with the given policy and the state it had
// (nil: none).
func NewMonitor(p Policy, nodes []NodeState, sites []SiteState) *Monitor {
	m := &Monitor{p: p.WithDefaults(), nodes: map[int64]*NodeState{}, sites: map[int64]*SiteState{}}
	for _, n := range nodes {
		m.nodes[n.NodeID] = &n
	}
	for _, s := range sites {
		m.sites[s.SiteID] = &s
	}
	return m
}

// Policy returns the effective policy.
func (m *Monitor) Policy() Policy { return m.p }

// Status returns a node's status.
func (m *Monitor) Status(nodeID int64) Status {
	if n := m.nodes[nodeID]; n != nil {
		return n.Status
	}
	return Unknown
}

// Level returns a site's penalty level.
func (m *Monitor) Level(siteID int64) int {
	if s := m.sites[siteID]; s != nil {
		return s.Level
	}
	return PenaltyNone
}

// States returns the monitor's memory, sorted by id.
func (m *Monitor) States() ([]NodeState, []SiteState) {
	ns := make([]NodeState, 0, len(m.nodes))
	for _, n := range m.nodes {
		ns = append(ns, *n)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].NodeID < ns[j].NodeID })
	ss := make([]SiteState, 0, len(m.sites))
	for _, s := range m.sites {
		ss = append(ss, *s)
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].SiteID < ss[j].SiteID })
	return ns, ss
}

func watched(h NodeHealth) bool {
	return h.LastContact > 0 && h.BootState != "disabled" && h.BootState != "safeboot"
}

// Step observes every node at time now and returns the actions taken, in
// a deterministic order (nodes by id, then sites by id). Nodes absent from
// nodes (deleted) are forgotten; a site without watched nodes keeps no
// penalty.
func (m *Monitor) Step(now time.Time, nodes []NodeHealth) []Action {
	t := now.Unix()
	var acts []Action
	sorted := append([]NodeHealth(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].NodeID < sorted[j].NodeID })

	type siteObs struct{ watched, up int }
	obs := map[int64]*siteObs{}
	seen := map[int64]bool{}
	for _, h := range sorted {
		seen[h.NodeID] = true
		so := obs[h.SiteID]
		if so == nil {
			so = &siteObs{}
			obs[h.SiteID] = so
		}
		n := m.nodes[h.NodeID]
		if n == nil {
			n = &NodeState{NodeID: h.NodeID, Status: Unknown, Since: t}
			m.nodes[h.NodeID] = n
		}
		if !watched(h) {
			if n.Status != Unknown {
				n.Status, n.Since = Unknown, t
			}
			continue
		}
		so.watched++
		silent := now.Sub(time.Unix(h.LastContact, 0))
		want := Up
		if silent >= m.p.DownAfter {
			want = Down
		}
		if want == Up {
			so.up++
		}
		if want == n.Status {
			continue
		}
		prev := n.Status
		n.Status, n.Since = want, t
		switch {
		case want == Down:
			acts = append(acts, Action{Kind: ActNodeDown, At: t, NodeID: h.NodeID, Hostname: h.Hostname, SiteID: h.SiteID,
				Reason: fmt.Sprintf("no report for %s (down after %s); last contact %s",
					silent.Round(time.Second), m.p.DownAfter, time.Unix(h.LastContact, 0).UTC().Format(time.RFC3339)),
				Notify: []string{"tech", "pi"}})
		case prev == Down:
			acts = append(acts, Action{Kind: ActNodeUp, At: t, NodeID: h.NodeID, Hostname: h.Hostname, SiteID: h.SiteID,
				Reason: fmt.Sprintf("reporting again (last contact %s)", time.Unix(h.LastContact, 0).UTC().Format(time.RFC3339)),
				Notify: []string{"tech", "pi"}})
		}
	}
	for id := range m.nodes {
		if !seen[id] {
			delete(m.nodes, id)
		}
	}

	siteIDs := make([]int64, 0, len(obs)+len(m.sites))
	for id := range obs {
		siteIDs = append(siteIDs, id)
	}
	for id := range m.sites {
		if obs[id] == nil {
			siteIDs = append(siteIDs, id)
		}
	}
	sort.Slice(siteIDs, func(i, j int) bool { return siteIDs[i] < siteIDs[j] })
	for _, id := range siteIDs {
		so := obs[id]
		s := m.sites[id]
		if s == nil {
			s = &SiteState{SiteID: id}
		}
		allDown := so != nil && so.watched > 0 && so.up == 0
		switch {
		case !allDown:
			if s.Level > PenaltyNone {
				reason := "a node of the site reports again"
				if so == nil || so.watched == 0 {
					reason = "the site has no node in service"
				}
				acts = append(acts, Action{Kind: ActPenaltyLifted, At: t, SiteID: id, Level: PenaltyNone,
					Reason: reason + fmt.Sprintf("; penalty level %d lifted", s.Level), Notify: []string{"tech", "pi"}})
			}
			s.DownSince, s.Level = 0, PenaltyNone
		default:
			if s.DownSince == 0 {
				s.DownSince = t
			}
			down := now.Sub(time.Unix(s.DownSince, 0))
			level := PenaltyNone
			switch {
			case down >= m.p.SuspendAfter:
				level = PenaltySuspended
			case down >= m.p.SiteGrace:
				level = PenaltyNoSlices
			}
			if level > s.Level {
				a := Action{Kind: ActSitePenalty, At: t, SiteID: id, Level: level, Notify: []string{"tech", "pi"}}
				if level == PenaltySuspended {
					a.Reason = fmt.Sprintf("all %d nodes down for %s (suspend after %s): the site's slices are suspended", so.watched, down.Round(time.Second), m.p.SuspendAfter)
					a.Notify = append(a.Notify, "user")
				} else {
					a.Reason = fmt.Sprintf("all %d nodes down for %s (grace %s): no new slices", so.watched, down.Round(time.Second), m.p.SiteGrace)
				}
				acts = append(acts, a)
				s.Level = level
			}
		}
		if s.DownSince == 0 && s.Level == PenaltyNone {
			delete(m.sites, id)
		} else {
			m.sites[id] = s
		}
	}
	return acts
}
