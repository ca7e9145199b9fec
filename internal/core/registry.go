package core

import (
	"context"
	"slices"
	"time"
)

// Class names a kind of registry object. The names are the PLCAPI object
// names in snake case; REST paths use the plural (sites, persons, ...).
type Class string

// Registry object classes.
const (
	Site               Class = "site"
	Address            Class = "address"
	AddressType        Class = "address_type"
	Person             Class = "person"
	Role               Class = "role"
	Key                Class = "key"
	KeyType            Class = "key_type"
	Node               Class = "node"
	Interface          Class = "interface"
	TagType            Class = "tag_type"
	SiteTag            Class = "site_tag"
	PersonTag          Class = "person_tag"
	NodeTag            Class = "node_tag"
	InterfaceTag       Class = "interface_tag"
	SliceTag           Class = "slice_tag"
	NodeGroup          Class = "nodegroup"
	PCU                Class = "pcu"
	ConfFile           Class = "conf_file"
	Slice              Class = "slice"
	InitScriptClass    Class = "initscript"
	Lease              Class = "lease"
	Ilink              Class = "ilink"
	Session            Class = "session"
	Peer               Class = "peer"                // a peering PLC (federation.go, docs/federation.md)
	BootState          Class = "boot_state"          // lookup table: name only
	NodeType           Class = "node_type"           // lookup table
	NetworkType        Class = "network_type"        // lookup table
	NetworkMethod      Class = "network_method"      // lookup table
	SliceInstantiation Class = "slice_instantiation" // lookup table
)

// Relation names a many-to-many link between two classes.
type Relation string

// Relations; the comment gives the (a, b) order of Link and Unlink.
const (
	PersonSite         Relation = "person_site"          // (person, site)
	PersonRole         Relation = "person_role"          // (person, role)
	SlicePerson        Relation = "slice_person"         // (slice, person)
	SliceNode          Relation = "slice_node"           // (slice, node)
	SliceNodeWhitelist Relation = "slice_node_whitelist" // (slice, node)
	NodePCU            Relation = "node_pcu"             // (node, pcu); extra {"port": int}
	ConfFileNode       Relation = "conf_file_node"       // (conf_file, node)
	ConfFileNodeGroup  Relation = "conf_file_nodegroup"  // (conf_file, nodegroup)
	TagTypeRole        Relation = "tag_type_role"        // (tag_type, role)
	AddressAddressType Relation = "address_address_type" // (address, address_type)
)

// Role names and ids, as the original.
const (
	RoleAdmin = "admin" // 10
	RolePI    = "pi"    // 20
	RoleUser  = "user"  // 30
	RoleTech  = "tech"  // 40
	// Pseudo-roles of callers that are not persons.
	RoleNode      = "node"
	RoleAnonymous = "anonymous"
	RolePeer      = "peer" // a peering PLC, authenticated by its signature
)

// CallerKind says who is calling.
type CallerKind int

// Caller kinds.
const (
	Anonymous CallerKind = iota
	PersonCaller
	NodeCaller
	PeerCaller
)

// Caller is an authenticated principal. Services decide every permission
// from it; transports only build it through Registry.Authenticate.
type Caller struct {
	Kind     CallerKind
	PersonID int64    // PersonCaller
	Email    string   // PersonCaller
	Roles    []string // PersonCaller: role names; NodeCaller: ["node"]
	SiteIDs  []int64  // PersonCaller: sites, primary first; NodeCaller: the node's site
	NodeID   int64    // NodeCaller
	PeerID   int64    // PeerCaller
	Session  string   // set when authenticated by a session or token
}

// HasRole reports whether the caller holds role (including pseudo-roles).
func (c *Caller) HasRole(role string) bool {
	if c == nil {
		return role == RoleAnonymous
	}
	switch c.Kind {
	case Anonymous:
		return role == RoleAnonymous
	case NodeCaller:
		return role == RoleNode
	case PeerCaller:
		return role == RolePeer
	}
	return slices.Contains(c.Roles, role)
}

// Credentials are what a transport extracted from a request.
type Credentials struct {
	Method   string // "password", "session", "node_key", "anonymous"
	Username string // password: the person's email
	Password string // password
	Session  string // session: a session id or API token
	NodeID   int64  // node_key
	NodeKey  string // node_key
}

// SessionInfo is a session or API token.
type SessionInfo struct {
	ID      string
	Expires int64 // UNIX seconds; 0 = never (node sessions)
}

// MaxRenewal is how far from now a non-admin may renew a slice (the
// original's 8 weeks); RenewSlice lowers a later expiry to it.
const MaxRenewal = 8 * 7 * 24 * time.Hour

// Registry is PLC's service: every registry operation, with the original's
// policy and authorization enforced here and nowhere else. It is implemented
// by the PLC service (in-process) and by the REST client (remote); the REST
// and PLCAPI transports, the CLI and the tests all go through it.
//
// Arguments that name objects are ids; transports turn names into ids with
// Resolve. Records carry PLCAPI field names and value types (see Record).
type Registry interface {
	// Authenticate checks credentials and returns the caller. roles, when
	// non-empty, is the role set of the operation about to be called: a
	// caller holding none of them fails as the original: Forbidden (fault
	// 108) under session auth, Unauthenticated (fault 103) otherwise. A
	// source that keeps failing is refused with RateLimited.
	Authenticate(ctx context.Context, cred Credentials, roles []string) (*Caller, error)
	// VerifyNodeHMAC authenticates a node by PLCAPI BootAuth: value must be
	// the hex HMAC-SHA1 of message keyed with the node's key.
	VerifyNodeHMAC(ctx context.Context, nodeID int64, value, message string) (*Caller, error)
	// OpRoles returns the role set of a PLCAPI-named operation ("AddSlice"),
	// nil for an operation the registry does not know.
	OpRoles(op string) []string

	// CreateSession starts a session for the caller; ttl 0 = the default (24 h).
	CreateSession(ctx context.Context, c *Caller, ttl time.Duration) (SessionInfo, error)
	DeleteSession(ctx context.Context, c *Caller, id string) error

	// Resolve turns an int64 id or a string name (the class's secondary key:
	// login_base, email, hostname, slice name, tagname, groupname, ...) into
	// an id. It fails with NotFound naming the class and the reference.
	Resolve(ctx context.Context, c *Caller, class Class, ref any) (int64, error)

	// Get lists objects matching f (nil = all) with the given fields (nil =
	// every native field, no tags), filtered by what the caller may see.
	// The records may be shared with other callers (PLC's read cache):
	// callers must not modify them.
	Get(ctx context.Context, c *Caller, class Class, f *Filter, fields []string) ([]Record, error)
	// Add creates an object and returns its id. Parent references are fields
	// (site_id of a node, node_id of an interface, person_id of a key,
	// slice_id/tag_type_id/node_id/nodegroup_id of a slice tag, ...).
	Add(ctx context.Context, c *Caller, class Class, fields Record) (int64, error)
	// Update changes fields of an object.
	Update(ctx context.Context, c *Caller, class Class, id int64, fields Record) error
	// Delete removes an object (soft delete for persons, sites, nodes, slices).
	Delete(ctx context.Context, c *Caller, class Class, id int64) error

	// Link and Unlink add and remove relation members; adding a present or
	// removing an absent member is not an error.
	Link(ctx context.Context, c *Caller, rel Relation, a, b int64, extra Record) error
	Unlink(ctx context.Context, c *Caller, rel Relation, a, b int64) error

	SetPersonPrimarySite(ctx context.Context, c *Caller, personID, siteID int64) error
	BlacklistKey(ctx context.Context, c *Caller, keyID int64) error
	// RenewSlice sets a slice's expiry and returns the expiry granted:
	// for non-admins at most MaxRenewal from now (a later wish is
	// lowered to it).
	RenewSlice(ctx context.Context, c *Caller, sliceID, expires int64) (int64, error)
	// AddLeases reserves nodes for a slice; times are rounded to the lease
	// granularity. It returns the new lease ids and per-node errors.
	AddLeases(ctx context.Context, c *Caller, nodeIDs []int64, sliceID, from, until int64) (newIDs []int64, errs []string, err error)

	// IssueJoinToken creates a one-time join secret for a node (admin, or
	// pi/tech of the node's site), replacing any earlier one.
	IssueJoinToken(ctx context.Context, c *Caller, nodeID int64) (secret string, err error)
	// JoinNode exchanges a join secret for the node's permanent key.
	JoinNode(ctx context.Context, nodeID int64, secret, sshHostKey string) (nodeKey string, err error)
	// NodeState computes a node's desired state (GetSlivers) and records
	// the node's contact when the caller is the node itself.
	NodeState(ctx context.Context, c *Caller, nodeID int64) (*NodeState, error)
	// WatchNodeState returns a channel that is closed when the node's state
	// may differ from the given version (at once if it already does).
	WatchNodeState(ctx context.Context, c *Caller, nodeID int64, version string) (<-chan struct{}, error)
	// ReportNode records what a node says about itself.
	ReportNode(ctx context.Context, c *Caller, nodeID int64, r NodeReport) error
}

// NodeReport is what a node says about itself (ReportRunlevel,
// BootUpdateNode, the node API's report). Empty fields leave the node's
// record unchanged.
type NodeReport struct {
	RunLevel string // run_level: boot, safeboot, failboot, reinstall
	// BootState is the boot state the node reached ("boot": it runs
	// normally). PLC takes it over a boot_state of reinstall or failboot
	// (installed, or recovered); safeboot and disabled are the admin's
	// and stay.
	BootState    string
	SSHHostKey   string
	Version      string            // node manager version (nodes.version)
	SliverErrors map[string]string // slice -> why its configuration was refused; nil = unchanged
	// Figures is the node's sensor summary (figures.go); nil from nodes
	// that do not send one (older node managers) and from ReportRunlevel.
	Figures *NodeFigures
	// BwmonEvents are the node's bwmon events since its last accepted
	// report (at most MaxBwmonEvents; ValidateBwmonEvents). PLC records a
	// notice to the slice's members for each throttle, once.
	BwmonEvents []BwmonEvent
}

// Peering is federation between PLCs (docs/federation.md): the PLCAPI
// methods beyond the generic AddPeer, GetPeers, UpdatePeer and DeletePeer.
type Peering interface {
	// RefreshPeer pulls the peer's data now and stores it as foreign
	// objects; it returns timers (seconds) and counts of what changed.
	RefreshPeer(ctx context.Context, c *Caller, peerID int64) (Record, error)
	// GetPeerData returns what this PLC hands its peers (the original's
	// struct: Sites, Keys, Nodes, Persons, Slices, PeerNodes, db_time).
	GetPeerData(ctx context.Context, c *Caller) (Record, error)
	// RefuseSlice refuses (refuse=true) or admits again a peer's slice on
	// this PLC's nodes.
	RefuseSlice(ctx context.Context, c *Caller, sliceID int64, refuse bool, reason string) error
	// BindObjectToPeer marks a local object (class site, person, key,
	// node or slice) as peer peerID's, remoteID its id there (0:
	// unknown); UnBindObjectFromPeer makes a peer's object local again.
	BindObjectToPeer(ctx context.Context, c *Caller, class Class, id, peerID, remoteID int64) error
	UnBindObjectFromPeer(ctx context.Context, c *Caller, class Class, id, peerID int64) error
	// DeleteAllPeerEntries deletes every object of the peer here and
	// keeps the peer.
	DeleteAllPeerEntries(ctx context.Context, c *Caller, peerID int64) error
	// GetPeerName returns this PLC's name.
	GetPeerName(ctx context.Context, c *Caller) (string, error)
}
