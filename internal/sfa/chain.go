package sfa

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Roots are the trusted root certificates of the federations this side
// accepts (its own slice authority's among them).
type Roots struct {
	certs []*Cert
}

// NewRoots trusts the given certificates.
func NewRoots(certs ...*Cert) *Roots { return &Roots{certs: certs} }

// LoadRoots reads PEM files, each holding one or more trusted roots.
func LoadRoots(paths ...string) (*Roots, error) {
	r := &Roots{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		cs, err := ParseChain(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		r.certs = append(r.certs, cs...)
	}
	return r, nil
}

// Certs are the trusted roots.
func (r *Roots) Certs() []*Cert { return r.certs }

const maxChain = 8

// Verify walks from leaf through the candidate issuers to a trusted root:
// each step's issuer has the subject named as issuer, is a CA and signed
// the step; every certificate is valid at now. Unknown critical
// extensions are not a reason to refuse (see the package comment). It
// returns the chain, leaf first, root last.
func (r *Roots) Verify(leaf *Cert, candidates []*Cert, now time.Time) ([]*Cert, error) {
	chain := []*Cert{leaf}
	cur := leaf
	for range maxChain {
		if now.Before(cur.NotBefore) || now.After(cur.NotAfter) {
			return nil, core.Errorf(core.Forbidden, "certificate %s is not valid now (valid %s to %s)",
				cur.Name(), cur.NotBefore.UTC().Format(time.RFC3339), cur.NotAfter.UTC().Format(time.RFC3339))
		}
		for _, root := range r.certs {
			if bytes.Equal(root.Raw, cur.Raw) {
				return chain, nil
			}
		}
		for _, root := range r.certs {
			if bytes.Equal(root.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(root) == nil {
				if now.Before(root.NotBefore) || now.After(root.NotAfter) {
					return nil, core.Errorf(core.Forbidden, "trusted root %s is not valid now", root.Name())
				}
				return append(chain, root), nil
			}
		}
		var next *Cert
		for _, c := range candidates {
			if c != cur && c.IsCA && bytes.Equal(c.RawSubject, cur.RawIssuer) && !bytes.Equal(c.Raw, cur.Raw) &&
				cur.CheckSignatureFrom(c) == nil {
				next = c
				break
			}
		}
		if next == nil {
			return nil, core.Errorf(core.Forbidden, "certificate %s does not chain to a trusted root", leaf.Name())
		}
		chain = append(chain, next)
		cur = next
	}
	return nil, core.Errorf(core.Forbidden, "certificate %s: chain longer than %d", leaf.Name(), maxChain)
}
