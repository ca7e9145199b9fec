package core

import (
	"context"
	"time"
)

// SliceAuthority is PLC as the GENI slice authority of its own users
// (docs/geni.md): it certifies a user's key with the user's URN,
// urn:publicid:IDN+<plc-host>+user+<name>, and signs SFA credentials for
// that certificate, so the user's GENI tools (omni, jFed) work with any
// aggregate that trusts this PLC, this PLC's own included. The PLC
// service implements it, the REST client speaks it remotely.
type SliceAuthority interface {
	// GENICertificate certifies publicKey (PEM, PKIX) for the calling
	// person. It returns PEM: the user's certificate, then the
	// authority's.
	GENICertificate(ctx context.Context, c *Caller, publicKey string) (string, error)
	// GENICredential signs an SFA credential whose owner is cert (PEM, a
	// certificate this authority issued to the calling person): for
	// slice, a slice the caller may manage (member, PI of its site,
	// admin), granting every privilege until the slice expires; or, for
	// slice "", the caller's user credential.
	GENICredential(ctx context.Context, c *Caller, cert, slice string) (string, error)
}

// GENISliver is what PLC's GENI aggregate remembers of a slice beyond the
// registry (docs/geni.md, "What is persisted"): a sliver (Kind "node",
// Ref the node id) or a link (Kind "link", Ref its vlinks link name) with
// the client_id the request gave it; allocated ones (AllocatedUntil > 0,
// UNIX seconds) are promises not yet provisioned, kept until then; a
// sliver between the stop and the start of geni_restart has RestartUntil
// and the URN of the user the start is made as.
type GENISliver struct {
	SliceID        int64
	Kind           string // GENINode or GENILink
	Ref            string
	ClientID       string
	AllocatedUntil int64
	Spec           string // a link's vlinks statement
	RestartUntil   int64
	RestartActor   string
}

// Kinds of GENISliver.
const (
	GENINode = "node"
	GENILink = "link"
)

// GENIForeign asks PLC for the stand-in of a slice of another GENI
// authority (docs/geni.md, "Slices of other authorities"): the GENI
// aggregate has verified a credential over SliceURN whose chain starts
// with UserURN.
type GENIForeign struct {
	SliceURN string
	UserURN  string
	// Expires is the credential's expiry: a new stand-in slice expires
	// then at the latest.
	Expires time.Time
	// Create makes the site, slice and person when missing (Allocate);
	// without it a missing slice is not found.
	Create bool
	// MaxSlices is a new authority site's max_slices.
	MaxSlices int64
}
