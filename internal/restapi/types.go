package restapi

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
)

// SessionRequest is the body of POST /api/v1/sessions.
type SessionRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TTL      int64  `json:"ttl,omitempty"` // seconds; 0 = the server default
}

// TokenRequest is the optional body of POST /api/v1/tokens.
type TokenRequest struct {
	TTL int64 `json:"ttl,omitempty"` // seconds; 0 = the server default
}

// SessionResponse answers POST /api/v1/sessions.
type SessionResponse struct {
	Token   string `json:"token"`
	Expires int64  `json:"expires"`
}

// Whoami describes the authenticated caller.
type Whoami struct {
	Kind     string   `json:"kind"` // anonymous, person, node
	PersonID int64    `json:"person_id,omitempty"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles"`
	SiteIDs  []int64  `json:"site_ids"`
	NodeID   int64    `json:"node_id,omitempty"`
}

// RenewRequest is the body of POST /api/v1/slices/{ref}/renew.
type RenewRequest struct {
	Expires int64 `json:"expires"` // UNIX seconds
}

// RenewResponse carries the expiry actually granted.
type RenewResponse struct {
	Expires int64 `json:"expires"`
}

// JoinTokenResponse answers POST /api/v1/nodes/{ref}/join-token.
type JoinTokenResponse struct {
	NodeID int64  `json:"node_id"`
	Secret string `json:"secret"`
	Token  string `json:"token"` // nodeapi.JoinToken string, for `pl node join`
}

// LeasesRequest is the body of POST /api/v1/leases (AddLeases).
type LeasesRequest struct {
	NodeIDs []int64 `json:"node_ids"`
	SliceID int64   `json:"slice_id"`
	TFrom   int64   `json:"t_from"`
	TUntil  int64   `json:"t_until"`
}

// LeasesResponse answers AddLeases.
type LeasesResponse struct {
	NewIDs []int64  `json:"new_ids"`
	Errors []string `json:"errors"`
}

// ResolveResponse answers GET /api/v1/resolve.
type ResolveResponse struct {
	ID int64 `json:"id"`
}

// RolesResponse answers GET /api/v1/op-roles/{op}.
type RolesResponse struct {
	Roles []string `json:"roles"`
}

// ReportRequest is the body of POST /api/v1/nodes/{ref}/report.
type ReportRequest struct {
	RunLevel     string            `json:"run_level,omitempty"`
	BootState    string            `json:"boot_state,omitempty"`
	SSHHostKey   string            `json:"ssh_host_key,omitempty"`
	Version      string            `json:"version,omitempty"`
	SliverErrors map[string]string `json:"sliver_errors,omitempty"`
}

// WhoamiOf describes a caller.
func WhoamiOf(c *core.Caller) Whoami {
	w := Whoami{Kind: "anonymous", Roles: []string{}, SiteIDs: []int64{}}
	if c == nil {
		return w
	}
	switch c.Kind {
	case core.PersonCaller:
		w.Kind = "person"
	case core.NodeCaller:
		w.Kind = "node"
	}
	w.PersonID, w.Email, w.NodeID = c.PersonID, c.Email, c.NodeID
	if c.Roles != nil {
		w.Roles = c.Roles
	}
	if c.SiteIDs != nil {
		w.SiteIDs = c.SiteIDs
	}
	return w
}

// Created is the body of a 201 answer. Warnings say what the caller
// should know about the object although it was created (a key that is
// stored but not usable, and why).
type Created struct {
	ID       int64    `json:"id"`
	Warnings []string `json:"warnings,omitempty"`
}

// ErrorBody is the JSON body of every error response:
//
//	{"error":{"code":"invalid","field":"email","message":"..."}}
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error. Code is a core.Code; Field names the
// offending request field when there is one; RetryAfter (seconds, also in
// the Retry-After header) says when a rate_limited caller may try again.
type ErrorDetail struct {
	Code       core.Code `json:"code"`
	Field      string    `json:"field,omitempty"`
	Message    string    `json:"message"`
	RetryAfter int64     `json:"retry_after,omitempty"`
}

// Paths of monitoring (docs/monitoring.md), relative to the PLC base URL.
const (
	TopNodesPath       = Prefix + "/top/nodes"       // GET ?where=&sort=&limit= -> []core.NodeRow
	TopSlicesPath      = Prefix + "/top/slices"      // GET ?where=&sort=&limit= -> []core.SliceRow
	MonitorActionsPath = Prefix + "/monitor/actions" // GET ?since=&limit= -> []core.MonitorAction
	NoticesPath        = Prefix + "/monitor/notices" // GET ?since=&limit= -> []core.Notice
	HistoryPath        = Prefix + "/top/history"     // GET ?since= -> []core.PlanetSample
	AuditWhoPath       = Prefix + "/audit/who"       // GET ?addr=&port=&proto=&since=&until=&limit= -> core.AuditAnswer
	AuditSlicePath     = Prefix + "/audit/slice"     // GET ?slice=&since=&until=&top= -> core.SliceTraffic
	SelectNodesSuffix  = "/nodes/select"             // POST /slices/{ref}/nodes/select core.NodeSelection -> []core.Selected
	SuspendSuffix      = "/suspend"                  // POST /slices/{ref}/suspend ReasonRequest -> 204
	ResumeSuffix       = "/resume"                   // POST /slices/{ref}/resume ReasonRequest -> 204
	TicketSuffix       = "/ticket"                   // POST /slices/{ref}/ticket TicketRequest -> TicketResponse
)

// OutboxPath is PLC's mail outbox (core.Outbox): GET ?state=&before=&limit=
// -> []core.OutboxMail, newest first (admins; anyone under pl dev).
const OutboxPath = Prefix + "/outbox"

// Peering paths (core.Peering, docs/federation.md); the peer PLCs' own
// signed endpoints are package peering's.
const (
	PeerDataPath = Prefix + "/peer-data" // GET -> GetPeerData's struct (admin)
	PeerNamePath = Prefix + "/peer-name" // GET -> PeerName (GetPeerName: admin, node)
)

// PeerName is GetPeerName's answer: this PLC's name.
type PeerName struct {
	Peername string `json:"peername"`
}

// PeerObjectsPath is DELETE: DeleteAllPeerEntries of the peer ref.
func PeerObjectsPath(ref string) string { return Prefix + "/peers/" + ref + "/objects" }

// PeerObjectPath is PUT (BindRequest: BindObjectToPeer) and DELETE
// (UnBindObjectFromPeer) of object id of class (site, person, key, node,
// slice) and the peer ref.
func PeerObjectPath(ref, class, id string) string {
	return PeerObjectsPath(ref) + "/" + class + "/" + id
}

// BindRequest gives the object's id at the peer (0: unknown).
type BindRequest struct {
	RemoteObjectID int64 `json:"remote_object_id"`
}

// PeerRefreshPath is POST: RefreshPeer of the peer ref (id or peername);
// the answer is RefreshPeer's struct.
func PeerRefreshPath(ref string) string { return Prefix + "/peers/" + ref + "/refresh" }

// SliceRefusalPath is PUT (RefusalRequest: refuse a peer's slice on this
// PLC's nodes) and DELETE (admit it again).
func SliceRefusalPath(ref string) string { return Prefix + "/slices/" + ref + "/refusal" }

// RefusalRequest says why a peer's slice is refused.
type RefusalRequest struct {
	Reason string `json:"reason"`
}

// RegisterPath is where a person signs up (core.Accounts): POST
// core.Registration, anonymous, -> 201 Created with the new person's id.
const RegisterPath = Prefix + "/register"

// Paths of the mailed one-time links (core.Accounts), all anonymous POSTs
// answered 204.
const (
	PasswordResetPath = Prefix + "/password-reset"          // ResetRequest: mail a reset link (same answer for any address)
	ResetCompletePath = Prefix + "/password-reset/complete" // ResetComplete: set the password with the link's token
	VerifyEmailPath   = Prefix + "/verify-email"            // LinkToken: confirm the address with the link's token
)

// ResetRequest asks for a password reset link.
type ResetRequest struct {
	Email string `json:"email"`
}

// ResetComplete sets a new password with a reset link's token.
type ResetComplete struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

// LinkToken carries a verification link's token.
type LinkToken struct {
	Token string `json:"token"`
}

// ReasonRequest is the body of a slice suspend or resume.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// Paths of the GENI slice authority (core.SliceAuthority; docs/geni.md).
const (
	GENICertificatePath = Prefix + "/geni/certificate" // POST GENICertificateRequest -> GENICertificateResponse
	GENICredentialPath  = Prefix + "/geni/credential"  // POST GENICredentialRequest -> GENICredentialResponse
)

// GENICertificateRequest asks the slice authority to certify a key.
type GENICertificateRequest struct {
	PublicKey string `json:"public_key"` // PEM PUBLIC KEY
}

// GENICertificateResponse carries the user's certificate, then the
// authority's (PEM).
type GENICertificateResponse struct {
	Certificate string `json:"certificate"`
}

// GENICredentialRequest asks for a credential owned by Certificate: for
// Slice (a name), or the user's own when Slice is "".
type GENICredentialRequest struct {
	Certificate string `json:"certificate"`
	Slice       string `json:"slice,omitempty"`
}

// GENICredentialResponse carries a signed SFA credential (XML).
type GENICredentialResponse struct {
	Credential string `json:"credential"`
}

// TicketRequest is the body of POST /slices/{ref}/ticket (GetSliceTicket).
type TicketRequest struct {
	NodeIDs  []int64      `json:"node_ids,omitempty"` // empty: the slice's nodes
	Duration int64        `json:"duration,omitempty"` // seconds; 0: a day
	RSpec    *rspec.RSpec `json:"rspec,omitempty"`    // admins only; absent: the slice's tags
}

// TicketResponse carries a signed ticket (package core/ticket).
type TicketResponse struct {
	Ticket string `json:"ticket"`
}
