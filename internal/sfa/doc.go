// Package sfa holds the identities of the GENI/SFA world: URNs, the X.509
// certificates that carry them (GIDs), and SFA credentials, the signed XML
// documents that grant an owner privileges over a target.
//
// Verification (Verifier.Verify) is complete: the XML signature of every
// credential in a delegation chain (checked by xmlsec1, with the key pinned
// to the certificate the chain says must have signed it), the certificate
// chain of every owner, target and signer to the configured trusted roots,
// the expiry of every level, owner and target URNs, privileges, and
// delegation (each parent's owner signs its child, the target never
// changes, privileges only narrow and only where the parent lets them be
// delegated, expiry never grows).
//
// Certificates are read by Go's crypto/x509 and, when that refuses one, by
// a lenient reader of just the fields verification needs (ParseCert); the
// signature of every certificate is checked here, so SHA-1 certificates of
// older federations verify. docs/geni.md says what is tolerated and why.
//
// Authority issues certificates and credentials: PLC acting as the slice
// authority of its own users.
package sfa
