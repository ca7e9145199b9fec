package sfa

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

const (
	fedURN   = "urn:publicid:IDN+fed.test+authority+root"
	saURN    = "urn:publicid:IDN+plc.test+authority+sa"
	aliceURN = "urn:publicid:IDN+plc.test+user+alice"
	bobURN   = "urn:publicid:IDN+plc.test+user+bob"
	carolURN = "urn:publicid:IDN+plc.test+user+carol"
	sliceURN = "urn:publicid:IDN+plc.test+slice+s1"
	otherURN = "urn:publicid:IDN+plc.test+slice+s2"
)

// federation: a root (fed), a slice authority under it (sa), users alice,
// bob, carol and slices s1, s2 under sa; a stranger root (evil) and a user
// of it (mallory) claiming to be alice.
func federation(t *testing.T) *pki {
	p := newPKI(t)
	p.root("fed", fedURN)
	p.issue("sa", "fed", saURN, true, nil)
	p.issue("alice", "sa", aliceURN, false, nil)
	p.issue("bob", "sa", bobURN, false, nil)
	p.issue("carol", "sa", carolURN, false, nil)
	p.issue("s1", "sa", sliceURN, false, nil)
	p.issue("s2", "sa", otherURN, false, nil)
	p.root("evil", "urn:publicid:IDN+evil.test+authority+root")
	p.issue("mallory", "evil", aliceURN, false, nil)
	return p
}

func (p *pki) verifier() *Verifier {
	return &Verifier{Roots: NewRoots(p.cert("fed"))}
}

var future = time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)

func rootCred(p *pki) string {
	return p.credential(credSpec{id: "ref0", owner: "alice", target: "s1", ownerURN: aliceURN, targetURN: sliceURN,
		expires: future, privs: priv("*", true)}, "sa")
}

func TestVerifyRootCredential(t *testing.T) {
	p := federation(t)
	v := p.verifier()
	cred := rootCred(p)
	c, err := v.Verify(context.Background(), []byte(cred), p.cert("alice"), sliceURN)
	if err != nil {
		t.Fatal(err)
	}
	if c.OwnerURN != aliceURN || c.TargetURN != sliceURN || !c.Has("refresh") || c.Parent != nil {
		t.Fatalf("credential %+v", c)
	}
	// The same check by xmlsec1 alone, with the chain to the root.
	p.write("c.xml", cred)
	p.run("xmlsec1", "--verify", "--node-id", "Sig_ref0", "--trusted-pem", "fed.pem", "--untrusted-pem", "sa.pem", "c.xml")
}

func TestVerifyDelegation(t *testing.T) {
	p := federation(t)
	v := p.verifier()
	parent := rootCred(p)
	soon := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	child := p.credential(credSpec{id: "ref1", owner: "bob", target: "s1", ownerURN: bobURN, targetURN: sliceURN,
		expires: soon, privs: priv("refresh", false), parent: parent}, "alice")
	c, err := v.Verify(context.Background(), []byte(child), p.cert("bob"), sliceURN)
	if err != nil {
		t.Fatal(err)
	}
	if c.Parent == nil || c.Parent.OwnerURN != aliceURN || c.OwnerURN != bobURN || !c.Has("refresh") || c.Has("control") {
		t.Fatalf("chain %+v / %+v", c, c.Parent)
	}
	// Two levels: bob may not delegate further (can_delegate false).
	grand := p.credential(credSpec{id: "ref2", owner: "carol", target: "s1", ownerURN: carolURN, targetURN: sliceURN,
		expires: soon, privs: priv("refresh", false), parent: child}, "bob")
	expectForbidden(t, v, grand, sliceURN, "does not let be delegated")

	cases := []struct {
		name, want string
		spec       credSpec
		signer     string
	}{
		{"signed by someone else than the parent's owner", "does not verify",
			credSpec{id: "ref1", owner: "bob", target: "s1", ownerURN: bobURN, targetURN: sliceURN, expires: soon, privs: priv("refresh", false), parent: parent}, "carol"},
		{"target changed", "changes the target",
			credSpec{id: "ref1", owner: "bob", target: "s2", ownerURN: bobURN, targetURN: otherURN, expires: soon, privs: priv("refresh", false), parent: parent}, "alice"},
		{"outlives the parent", "expires after its parent",
			credSpec{id: "ref1", owner: "bob", target: "s1", ownerURN: bobURN, targetURN: sliceURN, expires: time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339), privs: priv("refresh", false), parent: parent}, "alice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := p.credential(tc.spec, tc.signer)
			expectForbidden(t, v, bad, "", tc.want)
		})
	}
	t.Run("privilege the parent may not delegate", func(t *testing.T) {
		narrow := p.credential(credSpec{id: "ref0", owner: "alice", target: "s1", ownerURN: aliceURN, targetURN: sliceURN,
			expires: future, privs: priv("refresh", true) + priv("info", false)}, "sa")
		bad := p.credential(credSpec{id: "ref1", owner: "bob", target: "s1", ownerURN: bobURN, targetURN: sliceURN,
			expires: soon, privs: priv("info", false), parent: narrow}, "alice")
		expectForbidden(t, v, bad, sliceURN, `grants "info"`)
	})
}

func expectForbidden(t *testing.T, v *Verifier, cred, target, want string) {
	t.Helper()
	_, err := v.Verify(context.Background(), []byte(cred), nil, target)
	if err == nil {
		t.Fatalf("verified; want %q", want)
	}
	if core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v (code %s); want Forbidden with %q", err, core.ErrorCode(err), want)
	}
}

func TestVerifyRefusals(t *testing.T) {
	p := federation(t)
	v := p.verifier()
	cred := rootCred(p)
	ctx := context.Background()
	check := func(t *testing.T, err error, code core.Code, want string) {
		t.Helper()
		if err == nil || core.ErrorCode(err) != code || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v (code %s); want %s with %q", err, core.ErrorCode(err), code, want)
		}
	}
	t.Run("expired", func(t *testing.T) {
		late := &Verifier{Roots: v.Roots, Now: func() time.Time { return time.Now().Add(72 * time.Hour) }}
		_, err := late.Verify(ctx, []byte(cred), nil, "")
		check(t, err, core.Forbidden, "expired")
	})
	t.Run("tampered privileges", func(t *testing.T) {
		bad := strings.Replace(cred, "<can_delegate>true</can_delegate>", "<can_delegate>false</can_delegate>", 1)
		_, err := v.Verify(ctx, []byte(bad), nil, "")
		check(t, err, core.Forbidden, "does not verify")
	})
	t.Run("tampered expiry", func(t *testing.T) {
		bad := strings.Replace(cred, future, time.Now().Add(40*time.Hour).UTC().Format(time.RFC3339), 1)
		_, err := v.Verify(ctx, []byte(bad), nil, "")
		check(t, err, core.Forbidden, "does not verify")
	})
	t.Run("signed by a user, not the authority", func(t *testing.T) {
		forged := p.credential(credSpec{id: "ref0", owner: "alice", target: "s1", ownerURN: aliceURN, targetURN: sliceURN,
			expires: future, privs: priv("*", true)}, "bob")
		_, err := v.Verify(ctx, []byte(forged), nil, "")
		check(t, err, core.Forbidden, "does not verify")
	})
	t.Run("untrusted root", func(t *testing.T) {
		other := &Verifier{Roots: NewRoots(p.cert("evil"))}
		_, err := other.Verify(ctx, []byte(cred), nil, "")
		check(t, err, core.Forbidden, "does not chain to a trusted root")
	})
	t.Run("owner from an untrusted root", func(t *testing.T) {
		forged := p.credential(credSpec{id: "ref0", owner: "mallory", target: "s1", ownerURN: aliceURN, targetURN: sliceURN,
			expires: future, privs: priv("*", true)}, "sa")
		_, err := v.Verify(ctx, []byte(forged), nil, "")
		check(t, err, core.Forbidden, "owner: certificate "+aliceURN+" does not chain")
	})
	t.Run("owner outside its issuer's namespace", func(t *testing.T) {
		// Even with evil trusted, its mallory may not be plc.test's alice.
		both := &Verifier{Roots: NewRoots(p.cert("fed"), p.cert("evil"))}
		forged := p.credential(credSpec{id: "ref0", owner: "mallory", target: "s1", ownerURN: aliceURN, targetURN: sliceURN,
			expires: future, privs: priv("*", true)}, "sa")
		_, err := both.Verify(ctx, []byte(forged), nil, "")
		check(t, err, core.Forbidden, aliceURN+" is outside the namespace of its issuer urn:publicid:IDN+evil.test+authority+root")
	})
	t.Run("caller is not the owner", func(t *testing.T) {
		_, err := v.Verify(ctx, []byte(cred), p.cert("bob"), "")
		check(t, err, core.Forbidden, "not by the caller")
		_, err = v.Verify(ctx, []byte(cred), p.cert("mallory"), "")
		check(t, err, core.Forbidden, "not by the caller")
	})
	t.Run("other target", func(t *testing.T) {
		_, err := v.Verify(ctx, []byte(cred), nil, otherURN)
		check(t, err, core.Forbidden, "not "+otherURN)
	})
	t.Run("owner_urn differs from the certificate", func(t *testing.T) {
		bad := p.credential(credSpec{id: "ref0", owner: "alice", target: "s1", ownerURN: bobURN, targetURN: sliceURN,
			expires: future, privs: priv("*", true)}, "sa")
		_, err := v.Verify(ctx, []byte(bad), nil, "")
		check(t, err, core.Forbidden, "owner_urn "+bobURN)
	})
	for _, tc := range []struct{ name, doc, want string }{
		{"DTD", strings.Replace(cred, "<signed-credential", "<!DOCTYPE x [<!ENTITY a \"b\">]><signed-credential", 1), "DTD"},
		{"duplicate id", strings.Replace(cred, "<signatures>", `<x xml:id="ref0"/><signatures>`, 1), "appears twice"},
		{"external reference", strings.Replace(cred, `URI="#ref0"`, `URI="file:///etc/passwd"`, 1), "not a same-document id"},
		{"XSLT transform", strings.Replace(cred, "http://www.w3.org/2000/09/xmldsig#enveloped-signature", "http://www.w3.org/TR/1999/REC-xslt-19991116", 1), "transform"},
		{"not XML", "<signed-credential", "well-formed"},
		{"unsigned", cred[:strings.Index(cred, "<signatures>")] + "<signatures/></signed-credential>", "not signed"},
		// Signature wrapping: an unsigned sibling <credential> whose fields
		// a lax reader would merge into the signed one.
		{"second credential", strings.Replace(cred, "<signatures>", "<credential><owner_urn>"+bobURN+"</owner_urn><privileges><privilege><name>pi</name><can_delegate>true</can_delegate></privilege></privileges></credential><signatures>", 1), "more than one <credential>"},
		{"second owner_urn", strings.Replace(cred, "</credential>", "<owner_urn>"+bobURN+"</owner_urn></credential>", 1), "more than one <owner_urn>"},
		{"wrong root", strings.Replace(strings.Replace(cred, "<signed-credential", "<x", 1), "</signed-credential>", "</x>", 1), "root"},
		{"huge", strings.Repeat(" ", MaxCredentialBytes+1), "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(ctx, []byte(tc.doc), nil, "")
			check(t, err, core.Invalid, tc.want)
		})
	}
}

// TestTolerance: certificates crypto/x509 refuses (a negative serial
// number, as some old federation CAs wrote) or cannot verify (SHA-1
// signatures) still verify here.
func TestTolerance(t *testing.T) {
	p := federation(t)
	p.issue("neg", "sa", "urn:publicid:IDN+plc.test+user+neg", false, nil, "-set_serial", "-4242")
	p.issue("old", "sa", "urn:publicid:IDN+plc.test+user+old", false, nil, "-sha1")
	p.issue("crit", "sa", "urn:publicid:IDN+plc.test+user+crit", false, []string{"1.3.6.1.4.1.99999.1=critical,ASN1:UTF8String:x"})
	neg, old, crit := p.cert("neg"), p.cert("old"), p.cert("crit")
	if _, err := x509.ParseCertificate(neg.Raw); err == nil || !neg.Lenient {
		t.Fatalf("crypto/x509 accepts the negative serial (%v) or the lenient reader was not used", err)
	}
	xold, _ := x509.ParseCertificate(old.Raw)
	xsa, _ := x509.ParseCertificate(p.cert("sa").Raw)
	if err := xold.CheckSignatureFrom(xsa); err == nil {
		t.Fatal("crypto/x509 verifies SHA-1; the tolerance test means nothing")
	}
	xcrit, _ := x509.ParseCertificate(crit.Raw)
	if len(xcrit.UnhandledCriticalExtensions) == 0 {
		t.Fatal("no unhandled critical extension")
	}
	for _, c := range []*Cert{neg, old, crit} {
		if _, err := p.verifier().Roots.Verify(c, []*Cert{p.cert("sa")}, time.Now()); err != nil {
			t.Errorf("%s: %v", c.Name(), err)
		}
	}
	// And as a credential's owner.
	cred := p.credential(credSpec{id: "ref0", owner: "neg", target: "s1", ownerURN: "urn:publicid:IDN+plc.test+user+neg", targetURN: sliceURN,
		expires: future, privs: priv("*", false)}, "sa")
	if _, err := p.verifier().Verify(context.Background(), []byte(cred), neg, sliceURN); err != nil {
		t.Fatal(err)
	}
}

// TestAuthority: credentials this package signs verify with xmlsec1 alone
// and with Verify; certificates it issues carry the URN, a UUID and the
// e-mail.
func TestAuthority(t *testing.T) {
	p := newPKI(t)
	a, err := LoadAuthority(p.dir, "plc.test")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadAuthority(p.dir, "plc.test")
	if err != nil || string(again.Cert.Raw) != string(a.Cert.Raw) {
		t.Fatalf("reload: %v", err)
	}
	if _, err := LoadAuthority(p.dir, "other.test"); err == nil {
		t.Fatal("loaded for another host")
	}
	p.run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "u.key", "-out", "u.csr", "-subj", "/CN=u")
	pubPEM := p.run("openssl", "req", "-in", "u.csr", "-noout", "-pubkey")
	pub, err := parsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	user := URN{Authority: "plc.test", Type: "user", Name: UserName("Alice@Example.org")}
	der, err := a.IssueCert(user, "alice@example.org", pub, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := ParseCert(der)
	if err != nil {
		t.Fatal(err)
	}
	if uc.URN != "urn:publicid:IDN+plc.test+user+alice_at_example.org" || uc.UUID == "" || uc.Email != "alice@example.org" {
		t.Fatalf("user certificate %+v", uc)
	}
	p.write("user.pem", string(uc.PEM()))
	p.run("openssl", "verify", "-CAfile", "geni-sa.pem", "user.pem")
	slice := URN{Authority: "plc.test", Type: "slice", Name: "plc_s1"}
	sc, err := a.SliceCert(slice, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := a.Credential(context.Background(), der, sc, time.Now().Add(2*time.Hour), []Privilege{{Name: "*", CanDelegate: true}})
	if err != nil {
		t.Fatal(err)
	}
	p.write("cred.xml", string(cred))
	p.run("xmlsec1", "--verify", "--node-id", "Sig_ref0", "--trusted-pem", "geni-sa.pem", "cred.xml")
	v := &Verifier{Roots: NewRoots(a.Cert)}
	c, err := v.Verify(context.Background(), cred, uc, slice.String())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expires.Before(time.Now().Add(time.Hour + time.Minute)) {
		t.Fatalf("expiry %v not capped by the slice certificate", c.Expires)
	}
	// The user delegates to bob with Delegate; xmlsec1 and Verify agree.
	bk, _ := rsa.GenerateKey(rand.Reader, 2048)
	bob, err := a.IssueCert(URN{Authority: "plc.test", Type: "user", Name: "bob"}, "", bk.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	uk, err := parsePrivateKeyPEM([]byte(p.read("u.key")))
	if err != nil {
		t.Fatal(err)
	}
	del, err := Delegate(context.Background(), "", cred, bob, uk, uc, time.Now().Add(time.Hour), []Privilege{{Name: "control"}})
	if err != nil {
		t.Fatal(err)
	}
	p.write("del.xml", string(del))
	p.write("user.pem", string(uc.PEM()))
	p.run("xmlsec1", "--verify", "--node-id", "Sig_"+between(string(del), `<credential xml:id="`, `">`, false)[:15], "--pubkey-cert-pem", "user.pem", "del.xml")
	bc, _ := ParseCert(bob)
	d, err := v.Verify(context.Background(), del, bc, slice.String())
	if err != nil || d.Parent == nil || !d.Has("control") || d.Has("refresh") {
		t.Fatalf("delegated: %+v %v", d, err)
	}
	if _, err := a.IssueCert(URN{Authority: "elsewhere", Type: "user", Name: "x"}, "", pub, time.Hour); core.ErrorCode(err) != core.Invalid {
		t.Fatalf("foreign URN: %v", err)
	}
}

func TestURN(t *testing.T) {
	for _, s := range []string{"urn:publicid:IDN+plc.test+slice+s1", "URN:publicid:IDN+a:b+user+x.y"} {
		if _, err := ParseURN(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "urn:publicid:IDN+a+b", "urn:publicid:IDN+a+bogus+x", "urn:publicid:IDN++slice+x", "urn:publicid:IDN+a+slice+x y", "urn:x+a+slice+b"} {
		if _, err := ParseURN(s); core.ErrorCode(err) != core.Invalid {
			t.Errorf("%q: %v", s, err)
		}
	}
	if !equalURN("urn:publicid:IDN+PLC.test+slice+s1", "urn:publicid:IDN+plc.test+slice+s1") || equalURN(sliceURN, otherURN) {
		t.Fatal("equalURN")
	}
}

// TestVerifyCache: a credential verified once is not given to xmlsec1
// again, but its expiry, owner and target are checked on every call.
func TestVerifyCache(t *testing.T) {
	p := federation(t)
	cred := []byte(rootCred(p))
	now := time.Now()
	v := &Verifier{Roots: NewRoots(p.cert("fed")), Now: func() time.Time { return now }}
	ctx := context.Background()
	if _, err := v.Verify(ctx, cred, p.cert("alice"), sliceURN); err != nil {
		t.Fatal(err)
	}
	v.XMLSec = filepath.Join(t.TempDir(), "no-xmlsec1") // a second xmlsec1 run would fail
	if _, err := v.Verify(ctx, cred, p.cert("alice"), sliceURN); err != nil {
		t.Fatalf("cache hit: %v", err)
	}
	if _, err := v.Verify(ctx, cred, p.cert("bob"), sliceURN); core.ErrorCode(err) != core.Forbidden {
		t.Fatalf("cache hit for another caller: %v", err)
	}
	other := p.credential(credSpec{id: "ref0", owner: "bob", target: "s1", ownerURN: bobURN, targetURN: sliceURN,
		expires: future, privs: priv("*", true)}, "sa")
	if _, err := v.Verify(ctx, []byte(other), nil, ""); core.ErrorCode(err) != core.Internal {
		t.Fatalf("a new credential must run xmlsec1: %v", err)
	}
	now = now.Add(49 * time.Hour)
	if _, err := v.Verify(ctx, cred, p.cert("alice"), sliceURN); core.ErrorCode(err) != core.Forbidden || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired credential from the cache: %v", err)
	}
}
