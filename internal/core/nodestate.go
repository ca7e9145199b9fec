package core

// NodeState is the complete desired state of one node as PLC sees it: the
// content of PLCAPI's GetSlivers (reference plcapi.md §4). The REST node API
// serves it as JSON and the PLCAPI layer as an XML-RPC struct; both come from
// one implementation in the PLC service. Field names are the PLCAPI names.
//
// Version identifies the content (a hash of everything except Timestamp):
// two states with the same Version are the same desired state. Node watchers
// use it to detect changes.
type NodeState struct {
	Version           string        `json:"version"`
	Timestamp         int64         `json:"timestamp"`
	NodeID            int64         `json:"node_id"`
	Hostname          string        `json:"hostname"`
	Interfaces        []Record      `json:"interfaces"`
	Groups            []string      `json:"groups"`
	ConfFiles         []Record      `json:"conf_files"`
	InitScripts       []InitScript  `json:"initscripts"`
	Accounts          []Account     `json:"accounts"`
	Slivers           []Sliver      `json:"slivers"`
	XMPP              XMPP          `json:"xmpp"`
	HRN               *string       `json:"hrn"`
	ReservationPolicy string        `json:"reservation_policy"` // "none" or "lease_or_idle"
	Leases            []SliverLease `json:"leases"`
	LeaseGranularity  int64         `json:"lease_granularity"`
	// TicketKeys are the keys whose signed tickets the node honours
	// (package core/ticket): PLC's, and brokers' PLC trusts.
	TicketKeys []TicketKey `json:"ticket_keys,omitempty"`
}

// TicketKey is a trusted ticket signer as PLC distributes it.
type TicketKey struct {
	ID     string `json:"id"`     // ticket.KeyID
	Key    string `json:"key"`    // base64 (standard) of the 32-byte Ed25519 public key
	Issuer string `json:"issuer"` // "plc" or the broker's name
}

// Sliver is one slice as a node must host it.
type Sliver struct {
	Name           string      `json:"name"`
	SliceID        int64       `json:"slice_id"`
	Instantiation  string      `json:"instantiation"`
	Expires        int64       `json:"expires"` // UNIX seconds, capped at 2^31-1 as the original
	Keys           []SliverKey `json:"keys"`    // ssh keys of the slice's enabled members
	Attributes     []Attribute `json:"attributes"`
	GetSliceFamily string      `json:"GetSliceFamily"`
}

// SliverKey is an ssh public key of a slice member.
type SliverKey struct {
	KeyType string `json:"key_type"`
	Key     string `json:"key"`
}

// Attribute is one merged slice tag (node > nodegroup > global precedence).
// Multi-valued tags (vsys, ...) appear once per value.
type Attribute struct {
	TagName string `json:"tagname"`
	Value   string `json:"value"`
}

// InitScript is an enabled PLC init script.
type InitScript struct {
	InitScriptID int64  `json:"initscript_id"`
	Name         string `json:"name"`
	Enabled      bool   `json:"enabled"`
	Script       string `json:"script"`
}

// Account is a node-level special account (root, site_admin) with its keys.
type Account struct {
	Name string   `json:"name"`
	Keys []string `json:"keys"`
}

// XMPP is the (unused) XMPP server setting of GetSlivers.
type XMPP struct {
	Server *string `json:"server"`
}

// SliverLease is a lease on a reservable node within the next 24 hours.
type SliverLease struct {
	SliceID int64  `json:"slice_id"`
	TFrom   int64  `json:"t_from"`
	TUntil  int64  `json:"t_until"`
	Name    string `json:"name"`
}

// Record is one registry object as a map from field name to value, the
// shape PLCAPI returns and REST serves. Values are nil, bool, int64,
// float64, string, []int64, []string or []Record.
type Record map[string]any
