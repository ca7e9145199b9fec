package core

import "context"

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
