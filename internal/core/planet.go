package core

import "context"

// The planet table (CoMon's modern form): one NodeRow per node and one
// SliceRow per slice, kept current at PLC from the nodes' reports
// (NodeFigures) and served by REST (/api/v1/top/...), the CLI (pl top)
// and Prometheus. The `expr` tags name the columns of the query language
// (package plc/planet/query); docs/monitoring.md lists them.

// NodeRow is one node's row of the planet table.
type NodeRow struct {
	NodeID        int64    `json:"node_id" expr:"node_id"`
	Hostname      string   `json:"hostname" expr:"hostname"`
	SiteID        int64    `json:"site_id" expr:"site_id"`
	Site          string   `json:"site" expr:"site"`       // login_base
	Country       string   `json:"country" expr:"country"` // ISO 3166-1 alpha-2 (site tag "country"); "" = unknown
	Latitude      float64  `json:"latitude" expr:"lat"`    // the site's; 0 when HasLocation is false
	Longitude     float64  `json:"longitude" expr:"lon"`
	HasLocation   bool     `json:"has_location" expr:"has_location"`
	Status        string   `json:"status" expr:"status"` // up, down, unknown (never reported, or out of service)
	Up            bool     `json:"up" expr:"up"`
	BootState     string   `json:"boot_state" expr:"boot_state"`
	LastContact   int64    `json:"last_contact" expr:"last_contact"` // UNIX seconds; 0 = never
	LastReport    int64    `json:"last_report" expr:"last_report"`   // when the figures below arrived; 0 = none
	Version       string   `json:"version" expr:"version"`           // node manager version
	Load          float64  `json:"load" expr:"load"`                 // 1-minute load average
	Load5         float64  `json:"load5" expr:"load5"`
	CPUs          int      `json:"cpus" expr:"cpus"`
	CPUPct        float64  `json:"cpu_pct" expr:"cpu_pct"` // busy share of all CPUs
	MemPct        float64  `json:"mem_pct" expr:"mem_pct"` // memory used
	MemFreeGB     float64  `json:"mem_free_gb" expr:"mem_free_gb"`
	SwapPct       float64  `json:"swap_pct" expr:"swap_pct"`
	DiskPct       float64  `json:"disk_pct" expr:"disk_pct"` // sliver store used
	DiskFreeGB    float64  `json:"disk_free_gb" expr:"disk_free_gb"`
	UptimeHours   float64  `json:"uptime_hours" expr:"uptime_hours"`
	ClockOffsetMs int64    `json:"clock_offset_ms" expr:"clock_offset_ms"` // node clock minus PLC's
	ClockKnown    bool     `json:"clock_known" expr:"clock_known"`
	RxKbps        float64  `json:"rx_kbps" expr:"rx_kbps"` // between the last two reports
	TxKbps        float64  `json:"tx_kbps" expr:"tx_kbps"`
	Drops         uint64   `json:"drops" expr:"drops"`     // dropped packets, in and out, since boot
	SSH           string   `json:"ssh" expr:"ssh"`         // the ssh gateway as last reported: up, down, off (none), unknown (not reported)
	SSHOK         bool     `json:"ssh_ok" expr:"ssh_ok"`   // the node is up and its ssh gateway answered at its last report
	Slivers       int      `json:"slivers" expr:"slivers"` // sliver count
	Errors        int      `json:"errors" expr:"errors"`   // slivers with an error
	TopCPU        []string `json:"top_cpu" expr:"top_cpu"` // busiest slices by CPU, at most 3
	TopBW         []string `json:"top_bw" expr:"top_bw"`   // by bandwidth (sent + received), at most 3
}

// SliceRow is one slice's row of the planet table: its slivers as the
// nodes report them and their totals.
type SliceRow struct {
	SliceID  int64       `json:"slice_id" expr:"slice_id"`
	Name     string      `json:"name" expr:"name"`
	SiteID   int64       `json:"site_id" expr:"site_id"`
	Nodes    int         `json:"nodes" expr:"nodes"`             // nodes reporting a sliver of it
	Running  int         `json:"running" expr:"running"`         // of which running
	CPUCores float64     `json:"cpu_cores" expr:"cpu_cores"`     // CPUs busy, summed over nodes
	MaxCPU   float64     `json:"max_cpu_pct" expr:"max_cpu_pct"` // the largest share of one node
	MemGB    float64     `json:"mem_gb" expr:"mem_gb"`
	RxKbps   float64     `json:"rx_kbps" expr:"rx_kbps"`
	TxKbps   float64     `json:"tx_kbps" expr:"tx_kbps"`
	Procs    uint64      `json:"procs" expr:"procs"`
	Errors   int         `json:"errors" expr:"errors"` // slivers with an error
	Hosts    []string    `json:"hosts" expr:"hosts"`
	Slivers  []SliverRow `json:"slivers" expr:"-"`
}

// SliverRow is one sliver of a SliceRow.
type SliverRow struct {
	NodeID   int64   `json:"node_id"`
	Hostname string  `json:"hostname"`
	State    string  `json:"state"`
	CPUPct   float64 `json:"cpu_pct"`
	MemUsed  uint64  `json:"mem_used"`
	RxKbps   float64 `json:"rx_kbps"`
	TxKbps   float64 `json:"tx_kbps"`
	Error    string  `json:"error,omitempty"`
	IPv6     string  `json:"ipv6,omitempty"` // the sliver's IPv6 address, as its node reports it
}

// TopQuery selects and orders rows of the planet table.
type TopQuery struct {
	Where string // query language expression; "" = every row
	Sort  string // "-load,hostname"; "" = by id
	Limit int    // 0 = all
}

// NodeSelection chooses nodes for a slice by what they measure (SWORD's
// modern form): rows matching Where, at most PerSite per site, the Count
// nearest to Near (or the least loaded when Near is unset).
type NodeSelection struct {
	Where   string `json:"where,omitempty"`
	PerSite int    `json:"per_site,omitempty"` // 0 = no limit
	Count   int    `json:"count,omitempty"`    // 0 = all that match
	Near    string `json:"near,omitempty"`     // a site login_base or "lat,lon"
	DryRun  bool   `json:"dry_run,omitempty"`  // choose, do not add
}

// Selected is a node chosen by a NodeSelection.
type Selected struct {
	NodeID     int64   `json:"node_id"`
	Hostname   string  `json:"hostname"`
	Site       string  `json:"site"`
	DistanceKm float64 `json:"distance_km,omitempty"` // from Near
	Load       float64 `json:"load"`
}

// MonitorAction is one recorded decision of the monitor, or an admin's
// suspend or resume of a slice.
type MonitorAction struct {
	ActionID int64  `json:"action_id"`
	At       int64  `json:"at"`
	Kind     string `json:"kind"` // node_down, node_up, site_penalty, site_penalty_lifted, slice_suspend, slice_resume
	NodeID   int64  `json:"node_id,omitempty"`
	SiteID   int64  `json:"site_id,omitempty"`
	SliceID  int64  `json:"slice_id,omitempty"`
	Level    int    `json:"level,omitempty"`
	Actor    string `json:"actor"` // "monitor" or the admin's email
	Reason   string `json:"reason"`
}

// Notice is a message the monitor sent (or recorded) to a site's contacts.
type Notice struct {
	NoticeID   int64    `json:"notice_id"`
	At         int64    `json:"at"`
	SiteID     int64    `json:"site_id"`
	NodeID     int64    `json:"node_id,omitempty"`
	Kind       string   `json:"kind"` // the action kind it tells of
	Recipients []string `json:"recipients"`
	Subject    string   `json:"subject"`
	Body       string   `json:"body"`
}

// Planet is PLC's monitoring service: the planet table, node selection,
// the monitor's log and admin suspension. The PLC service implements it,
// the REST client speaks it remotely (like Registry).
type Planet interface {
	// TopNodes returns node rows (public).
	TopNodes(ctx context.Context, c *Caller, q TopQuery) ([]NodeRow, error)
	// TopSlices returns the rows of the slices the caller may read:
	// members, PIs of the slice's site, admins.
	TopSlices(ctx context.Context, c *Caller, q TopQuery) ([]SliceRow, error)
	// SelectNodes chooses nodes by sel and, unless sel.DryRun, adds the
	// slice to them (with AddSliceToNodes' rules).
	SelectNodes(ctx context.Context, c *Caller, sliceID int64, sel NodeSelection) ([]Selected, error)
	// MonitorActions lists recorded actions after id since, oldest first,
	// at most limit (0: 1000). Admins only.
	MonitorActions(ctx context.Context, c *Caller, since int64, limit int) ([]MonitorAction, error)
	// Notices lists recorded notices after id since (admins: all; PIs and
	// techs: their sites').
	Notices(ctx context.Context, c *Caller, since int64, limit int) ([]Notice, error)
	// SuspendSlice stops a slice everywhere (slice tag enabled=0) with a
	// reason; ResumeSlice lifts every suspension of it. Admins only;
	// both are recorded as monitor actions.
	SuspendSlice(ctx context.Context, c *Caller, sliceID int64, reason string) error
	ResumeSlice(ctx context.Context, c *Caller, sliceID int64, reason string) error
	// PlanetHistory returns the planet's recent samples taken after
	// since (UNIX seconds), oldest first. Admins only.
	PlanetHistory(ctx context.Context, c *Caller, since int64) ([]PlanetSample, error)
}

// PlanetSample is the whole planet at one moment, summed from the planet
// table: what the admin overview plots over time.
type PlanetSample struct {
	At           int64   `json:"at"` // UNIX seconds
	NodesUp      int     `json:"nodes_up"`
	NodesDown    int     `json:"nodes_down"`
	NodesUnknown int     `json:"nodes_unknown"`
	MeanLoad     float64 `json:"mean_load"` // 1-minute load averaged over the up nodes that report
	MaxLoad      float64 `json:"max_load"`
	CPUPct       float64 `json:"cpu_pct"` // busy share averaged over the up nodes that report
	Slivers      int     `json:"slivers"`
	Slices       int     `json:"slices"`  // slices with a sliver on some node
	RxKbps       float64 `json:"rx_kbps"` // summed over nodes
	TxKbps       float64 `json:"tx_kbps"`
}
