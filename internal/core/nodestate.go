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
	Version    string   `json:"version"`
	Timestamp  int64    `json:"timestamp"`
	NodeID     int64    `json:"node_id"`
	Hostname   string   `json:"hostname"`
	Interfaces []Record `json:"interfaces"`
	// IPv6Prefix is the prefix of the node's slivers' IPv6 addresses: the
	// sliversipv6prefix tag of its primary interface (else of its first
	// interface that has one); "" = none (slivers are IPv4-only unless
	// the node has a prefix of its own, pl node --ipv6-prefix).
	IPv6Prefix        string        `json:"ipv6_prefix,omitempty"`
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
	// VLinks are the sliver's ends of its slice's virtual links (the
	// vlinks tag) on this node; absent when it has none.
	VLinks []VLink `json:"vlinks,omitempty"`
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

// VLink is one end of a virtual link or LAN (package core/vlinks, the
// vlinks slice tag) as the node hosting it must build it: PLC resolves the
// slice's topology into one VLink per link or LAN that touches the node, on
// the sliver of that slice (Sliver.VLinks). A LAN end has Peers (the other
// members) and no Remote, PeerNode or PeerAddr.
type VLink struct {
	Name     string `json:"name"`      // interface name inside the sliver
	VNI      uint32 `json:"vni"`       // tunnel id, unique per link among all slices
	Local    string `json:"local"`     // this end's private address and prefix length ("10.200.0.1/30")
	Remote   string `json:"remote"`    // the other end's private address ("10.200.0.2")
	PeerNode string `json:"peer_node"` // host name of the node at the other end
	PeerAddr string `json:"peer_addr"` // that node's public IPv4 address, where the tunnel goes
	RateKbit int64  `json:"rate_kbit"` // capacity, each direction
	DelayUS  int64  `json:"delay_us"`  // one-way delay to add, microseconds
	LossPPM  int64  `json:"loss_ppm"`  // random loss, parts per million, each direction
	// Peers are a LAN end's other members (absent on a point-to-point
	// link's end).
	Peers []VLinkPeer `json:"peers,omitempty"`
}

// VLinkPeer is another member of a virtual LAN, as one member's end sees it.
type VLinkPeer struct {
	Node    string `json:"node"`    // its node's host name
	Addr    string `json:"addr"`    // its node's public IPv4 address, where the tunnel goes
	Private string `json:"private"` // its address on the LAN ("10.200.0.250")
}
