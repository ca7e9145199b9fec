package sfa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Verifier checks signed credentials against trusted roots. It remembers
// the documents whose signatures and chains it verified (by their SHA-256,
// at most CacheSize of them, for CacheTTL), so a client presenting the
// same credential again costs no xmlsec1 run; expiry, owner and target
// are checked on every call.
type Verifier struct {
	Roots  *Roots
	XMLSec string           // the xmlsec1 program; "" = "xmlsec1" on PATH
	Now    func() time.Time // nil = time.Now

	mu    sync.Mutex
	cache map[[32]byte]cached
}

// The verified-credential cache's bounds.
const (
	CacheSize = 1024
	CacheTTL  = 5 * time.Minute
)

type cached struct {
	c  *Credential
	at time.Time
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks a signed credential completely (see the package comment)
// and that its owner is caller (when caller is not nil) and its target is
// target (when target is not ""). It returns the credential, its parents
// linked. Every refusal is a core.Forbidden error (core.Invalid for a
// document that is not a credential) saying which check failed.
func (v *Verifier) Verify(ctx context.Context, data []byte, caller *Cert, target string) (*Credential, error) {
	c, err := v.verified(ctx, data)
	if err != nil {
		return nil, err
	}
	if caller != nil && !sameKeyAndName(c.Owner[0], caller) {
		return nil, core.Errorf(core.Forbidden, "credential %s is owned by %s, not by the caller %s", c.ID, c.OwnerURN, caller.Name())
	}
	if target != "" && !equalURN(c.TargetURN, target) {
		return nil, core.Errorf(core.Forbidden, "credential %s is for %s, not %s", c.ID, c.TargetURN, target)
	}
	return c, nil
}

// verified is the credential data holds, its signatures and chains
// verified now or (cache) within CacheTTL; times are checked every time.
func (v *Verifier) verified(ctx context.Context, data []byte) (*Credential, error) {
	now := v.now()
	key := sha256.Sum256(data)
	v.mu.Lock()
	hit, ok := v.cache[key]
	v.mu.Unlock()
	if ok && now.Sub(hit.at) < CacheTTL && !now.Before(hit.at) {
		for cur := hit.c; cur != nil; cur = cur.Parent {
			if err := v.checkLevel(cur, now); err != nil {
				return nil, err
			}
		}
		return hit.c, nil
	}
	c, err := v.verify(ctx, data, now)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.cache == nil || len(v.cache) >= CacheSize {
		v.cache = map[[32]byte]cached{}
	}
	v.cache[key] = cached{c: c, at: now}
	v.mu.Unlock()
	return c, nil
}

func (v *Verifier) verify(ctx context.Context, data []byte, now time.Time) (*Credential, error) {
	c, err := ParseCredential(data)
	if err != nil {
		return nil, err
	}
	var child *Credential
	for cur := c; cur != nil; cur = cur.Parent {
		if err := v.checkLevel(cur, now); err != nil {
			return nil, err
		}
		if child != nil {
			if err := checkDelegation(child, cur); err != nil {
				return nil, err
			}
		}
		child = cur
	}
	// The credential at the root of the chain must be signed by the
	// authority that issued its target's certificate (or by the target
	// itself, for an authority's own credential).
	for cur := c; cur != nil; cur = cur.Parent {
		var signer *Cert
		if cur.Parent != nil {
			signer = cur.Parent.Owner[0]
		} else {
			signer, err = v.issuerOf(cur, now)
			if err != nil {
				return nil, err
			}
		}
		if err := v.checkSignature(ctx, data, cur, signer); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (v *Verifier) checkLevel(c *Credential, now time.Time) error {
	if !now.Before(c.Expires) {
		return core.Errorf(core.Forbidden, "credential %s (%s) expired at %s", c.ID, c.TargetURN, c.Expires.Format(time.RFC3339))
	}
	for _, g := range []struct {
		what, urn string
		chain     []*Cert
	}{{"owner", c.OwnerURN, c.Owner}, {"target", c.TargetURN, c.Target}} {
		if !equalURN(g.chain[0].URN, g.urn) {
			return core.Errorf(core.Forbidden, "credential %s: %s_urn %s but the %s certificate is %s", c.ID, g.what, g.urn, g.what, g.chain[0].Name())
		}
		cands := append(append([]*Cert{}, g.chain[1:]...), c.Signature.Certs...)
		chain, err := v.Roots.Verify(g.chain[0], cands, now)
		if err != nil {
			return fmt.Errorf("credential %s %s: %w", c.ID, g.what, err)
		}
		if err := CheckNamespace(chain); err != nil {
			return fmt.Errorf("credential %s %s: %w", c.ID, g.what, err)
		}
	}
	return nil
}

// checkDelegation checks child against the parent it was delegated from.
func checkDelegation(child, parent *Credential) error {
	switch {
	case !equalURN(child.TargetURN, parent.TargetURN) || !bytes.Equal(child.Target[0].Raw, parent.Target[0].Raw):
		return core.Errorf(core.Forbidden, "delegated credential %s changes the target from %s to %s", child.ID, parent.TargetURN, child.TargetURN)
	case child.Expires.After(parent.Expires):
		return core.Errorf(core.Forbidden, "delegated credential %s expires after its parent %s", child.ID, parent.ID)
	}
	for _, p := range child.Privileges {
		ok := false
		for _, q := range parent.Privileges {
			if (q.Name == p.Name || q.Name == "*") && q.CanDelegate {
				ok = true
			}
		}
		if !ok {
			return core.Errorf(core.Forbidden, "delegated credential %s grants %q, which its parent %s does not let be delegated", child.ID, p.Name, parent.ID)
		}
	}
	return nil
}

// issuerOf finds the certificate that issued the target of a root
// credential among the signature's KeyInfo, the target's chain and the
// trusted roots, and checks it chains to a trusted root.
func (v *Verifier) issuerOf(c *Credential, now time.Time) (*Cert, error) {
	t := c.Target[0]
	var cands []*Cert
	cands = append(cands, c.Signature.Certs...)
	cands = append(cands, c.Target...)
	cands = append(cands, v.Roots.Certs()...)
	for _, s := range cands {
		if bytes.Equal(s.RawSubject, t.RawIssuer) && t.CheckSignatureFrom(s) == nil {
			if _, err := v.Roots.Verify(s, cands, now); err != nil {
				return nil, fmt.Errorf("credential %s signer: %w", c.ID, err)
			}
			return s, nil
		}
	}
	return nil, core.Errorf(core.Forbidden, "credential %s: the authority that issued %s is not known", c.ID, t.Name())
}

// checkSignature runs xmlsec1 on the signature of c with the key pinned to
// signer's: a signature by any other key, even one trusted otherwise, fails.
func (v *Verifier) checkSignature(ctx context.Context, data []byte, c *Credential, signer *Cert) error {
	der, err := x509.MarshalPKIXPublicKey(signer.PublicKey)
	if err != nil {
		return core.Errorf(core.Forbidden, "credential %s: signer key: %v", c.ID, err)
	}
	dir, err := os.MkdirTemp("", "pl-cred-")
	if err != nil {
		return fmt.Errorf("credential %s: %w", c.ID, err)
	}
	defer os.RemoveAll(dir)
	doc, key := filepath.Join(dir, "cred.xml"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(doc, data, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	prog := v.XMLSec
	if prog == "" {
		prog = "xmlsec1"
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// hostdeps: xmlsec1
	cmd := exec.CommandContext(ctx, prog, "--verify", "--node-id", c.Signature.ID,
		"--pubkey-pem", key, "--enabled-key-data", "rsa,ecdsa",
		"--enabled-reference-uris", "same-doc", doc)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return core.Errorf(core.Unavailable, "credential %s: xmlsec1 timed out", c.ID)
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			return &core.Error{Code: core.Internal, Message: "cannot run xmlsec1", Err: err}
		}
		return &core.Error{Code: core.Forbidden, Message: fmt.Sprintf("credential %s (%s): the signature by %s does not verify", c.ID, c.TargetURN, signer.Name()),
			Err: fmt.Errorf("xmlsec1: %s", lastLine(out))}
	}
	return nil
}

func lastLine(b []byte) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.Contains(lines[i], []byte("error")) {
			return clip(string(lines[i]))
		}
	}
	return clip(string(lines[len(lines)-1]))
}

func sameKeyAndName(a, b *Cert) bool {
	if bytes.Equal(a.Raw, b.Raw) {
		return true
	}
	ka, err1 := x509.MarshalPKIXPublicKey(a.PublicKey)
	kb, err2 := x509.MarshalPKIXPublicKey(b.PublicKey)
	return err1 == nil && err2 == nil && bytes.Equal(ka, kb) && a.URN != "" && equalURN(a.URN, b.URN)
}

// equalURN compares URNs as GENI does: the prefix and authority case-
// insensitively, type and name exactly.
func equalURN(a, b string) bool {
	ua, err1 := ParseURN(a)
	ub, err2 := ParseURN(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return bytesEqualFold(ua.Authority, ub.Authority) && ua.Type == ub.Type && ua.Name == ub.Name
}

func bytesEqualFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

// CheckNamespace refuses a verified chain (leaf first) whose leaf names
// something outside the authority of the certificate that issued it: a
// user's or a slice's URN must be of its issuer's authority or a
// sub-authority of it (urn:publicid:IDN+plc.test+authority+sa issues
// plc.test and plc.test:project URNs, not other.test ones). Without it, any
// trusted root could issue a certificate naming another authority's user
// or slice and sign credentials over it. A leaf that is itself a trusted
// root (a chain of one) is not checked; an issuer without an authority
// URN cannot vouch for a URN.
func CheckNamespace(chain []*Cert) error {
	if len(chain) < 2 {
		return nil
	}
	leaf, issuer := chain[0], chain[1]
	lu, err := ParseURN(leaf.URN)
	if err != nil {
		return core.Errorf(core.Forbidden, "certificate %s carries no valid URN", leaf.Name())
	}
	iu, err := ParseURN(issuer.URN)
	if err != nil || iu.Type != "authority" {
		return core.Errorf(core.Forbidden, "certificate %s: its issuer %s is not a GENI authority (no authority URN)", leaf.Name(), issuer.Name())
	}
	if !WithinAuthority(lu.Authority, iu.Authority) {
		return core.Errorf(core.Forbidden, "certificate %s: %s is outside the namespace of its issuer %s", leaf.Name(), lu.String(), iu.String())
	}
	return nil
}

// WithinAuthority reports whether authority a is auth itself or one of its
// sub-authorities (auth:sub...), compared case-insensitively.
func WithinAuthority(a, auth string) bool {
	a, auth = strings.ToLower(a), strings.ToLower(auth)
	return a == auth || strings.HasPrefix(a, auth+":")
}
