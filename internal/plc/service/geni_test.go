package service

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/sfa"
)

func pubPEM(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestGENISliceAuthority: persons get certificates with their URN, and
// credentials for their own user and for the slices they may manage, that
// an aggregate trusting this PLC verifies; nobody gets one for a slice of
// others or with someone else's certificate.
func TestGENISliceAuthority(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "plc.db"))
	if _, err := e.s.GENICertificate(e.ctx, e.admin, pubPEM(t)); core.ErrorCode(err) != core.Unimplemented {
		t.Fatalf("without an authority: %v", err)
	}
	a, _, err := sfa.NewAuthority("plc.test", 20*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a.Now = e.clock.Now
	e.s.opts.GENI = a
	site := e.site("pr", 10)
	pi := e.person("pi@pr.test", site, core.RolePI)
	alice := e.person("alice@pr.test", site, core.RoleUser)
	bob := e.person("bob@pr.test", site, core.RoleUser)
	sid := e.slice(pi, "pr_geni")
	e.must(e.s.Link(e.ctx, pi, core.SlicePerson, sid, alice.PersonID, nil))

	certOf := func(c *core.Caller) string {
		t.Helper()
		pemText, err := e.s.GENICertificate(e.ctx, c, pubPEM(t))
		if err != nil {
			t.Fatal(err)
		}
		chain, err := sfa.ParseChain(pemText)
		if err != nil || len(chain) != 2 {
			t.Fatalf("chain %v %v", chain, err)
		}
		want := "urn:publicid:IDN+plc.test+user+" + sfa.UserName(c.Email)
		if chain[0].URN != want || chain[0].Email != c.Email || chain[0].UUID == "" {
			t.Fatalf("certificate %s %s %s, want %s", chain[0].URN, chain[0].Email, chain[0].UUID, want)
		}
		return pemText
	}
	ac, bc := certOf(alice), certOf(bob)
	v := &sfa.Verifier{Roots: sfa.NewRoots(a.Cert), Now: e.clock.Now}
	aliceCert, _ := sfa.ParseChain(ac)

	cred, err := e.s.GENICredential(e.ctx, alice, ac, "pr_geni")
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(e.ctx, []byte(cred), aliceCert[0], "urn:publicid:IDN+plc.test+slice+pr_geni")
	if err != nil {
		t.Fatal(err)
	}
	var exp int64
	recs := get(t, e, e.admin, core.Slice, []int64{sid}, "expires")
	exp = recs[0]["expires"].(int64)
	if !c.Has("control") || c.Expires.Unix() != exp {
		t.Fatalf("credential grants %v until %v; slice expires %d", c.Privileges, c.Expires, exp)
	}
	if cred, err = e.s.GENICredential(e.ctx, alice, ac, ""); err != nil {
		t.Fatal(err)
	}
	if c, err = v.Verify(e.ctx, []byte(cred), aliceCert[0], aliceCert[0].URN); err != nil || c.Has("control") || !c.Has("info") {
		t.Fatalf("user credential %v %v", c, err)
	}
	// The PI of the slice's site may; bob, not a member, may not.
	if _, err := e.s.GENICredential(e.ctx, pi, certOf(pi), "pr_geni"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.GENICredential(e.ctx, bob, bc, "pr_geni")
	wantCode(t, err, core.Forbidden, "bob for a slice he is not in")
	_, err = e.s.GENICredential(e.ctx, bob, ac, "")
	wantCode(t, err, core.Forbidden, "bob with alice's certificate")
	_, err = e.s.GENICredential(e.ctx, alice, ac, "pr_nosuch")
	wantCode(t, err, core.NotFound, "unknown slice")
	other, _, _ := sfa.NewAuthority("plc.test", time.Hour)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, _ := other.IssueCert(sfa.URN{Authority: "plc.test", Type: "user", Name: sfa.UserName(alice.Email)}, "", k.Public(), time.Hour)
	_, err = e.s.GENICredential(e.ctx, alice, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: forged})), "")
	wantCode(t, err, core.Invalid, "a certificate of another authority")
	_, err = e.s.GENICertificate(e.ctx, alice, "not a key")
	wantCode(t, err, core.Invalid, "garbage key")
}
