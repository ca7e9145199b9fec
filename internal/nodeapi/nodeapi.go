// Package nodeapi defines the wire contract between PLC and node managers:
// the paths, authentication and message types of the REST node API. PLC's
// REST server implements it; the node agent is its client.
//
// Authentication: every call except Join carries
//
//	Authorization: PLNode <node_id>:<node_key>
//
// over TLS whose server certificate the node pinned at join time (SHA-256 of
// the DER certificate). The node key is the per-node secret PLC generated at
// registration (base64, 32 random bytes, as the original NODE_KEY).
//
// Watch is a long poll: GET WatchPath?version=V answers at once with the
// current state (200) when its Version differs from V or V is empty, and
// otherwise waits until the node's state changes (200 with the new state) or
// up to ?timeout=N seconds (default 55, max 300) and answers 304. A change
// affecting a node must be answered within a second.
package nodeapi

import "github.com/planetlab/pl/internal/core"

// Paths of the node API, relative to the PLC base URL.
const (
	JoinPath   = "/api/v1/node/join"   // POST JoinRequest -> JoinResponse (no auth: the token is the credential)
	StatePath  = "/api/v1/node/state"  // GET -> core.NodeState; updates last_contact
	WatchPath  = "/api/v1/node/watch"  // GET ?version=&timeout= -> core.NodeState | 304
	ReportPath = "/api/v1/node/report" // POST Report -> 204
)

// TimeHeader carries PLC's clock (RFC 3339 with nanoseconds, UTC) on every
// authenticated node API answer, set when PLC starts handling the request.
// Nodes estimate their clock offset from it on short calls (state,
// report): offset = midpoint of the call on the node's clock - PLC's time.
const TimeHeader = "PL-Time"

// AuthScheme is the Authorization scheme of node credentials.
const AuthScheme = "PLNode"

// JoinToken is what `pl node register` prints and `pl node join` consumes:
// "plj1:<node_id>:<one-time secret>:<sha256 hex of PLC's certificate>".
// The one-time secret is valid once and for a limited time (24 h).
type JoinToken struct {
	NodeID      int64
	Secret      string
	Fingerprint string // lowercase hex SHA-256 of PLC's DER certificate; empty for plain-HTTP PLCs
}

// JoinRequest exchanges a one-time join secret for the node's permanent key.
type JoinRequest struct {
	NodeID     int64  `json:"node_id"`
	Secret     string `json:"secret"`
	SSHHostKey string `json:"ssh_host_key,omitempty"` // authorized_keys format
}

// JoinResponse carries the node's permanent credentials.
type JoinResponse struct {
	NodeID   int64  `json:"node_id"`
	Hostname string `json:"hostname"`
	NodeKey  string `json:"node_key"`
}

// Report is what a node tells PLC about itself; empty fields are unchanged.
type Report struct {
	RunLevel   string `json:"run_level,omitempty"`  // boot, safeboot, failboot, reinstall
	BootState  string `json:"boot_state,omitempty"` // the state reached: "boot" (see core.NodeReport)
	SSHHostKey string `json:"ssh_host_key,omitempty"`
	Version    string `json:"version,omitempty"` // node manager version, pl-node/<version>+<vcs revision>
	// SliverErrors maps slice names to the reason their last configuration
	// was refused (bad attribute values); cleared slices are absent.
	SliverErrors map[string]string `json:"sliver_errors,omitempty"`
	// Figures is the node's sensor summary, bounded as core.NodeFigures
	// documents; absent from older node managers. PLC refuses a report
	// whose figures fail core.NodeFigures.Validate (400, naming the field).
	Figures *core.NodeFigures `json:"figures,omitempty"`
	// BwmonEvents are bwmon's events since the last accepted report
	// (core.ValidateBwmonEvents); absent from older node managers.
	BwmonEvents []core.BwmonEvent `json:"bwmon_events,omitempty"`
}

// State aliases core.NodeState for readers of this package.
type State = core.NodeState
