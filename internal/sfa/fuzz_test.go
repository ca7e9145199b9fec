package sfa

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"
)

// seedCredential is a structurally complete, unsigned credential made in
// Go (no xmlsec1), the fuzzers' starting point.
func seedCredential(f *testing.F) (string, []byte) {
	a, _, err := NewAuthority("plc.test", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	owner, err := a.IssueCert(URN{Authority: "plc.test", Type: "user", Name: "alice"}, "", k.Public(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	oc, _ := ParseCert(owner)
	doc := `<?xml version="1.0"?><signed-credential><credential xml:id="ref0"><type>privilege</type><serial>1</serial>` +
		`<owner_gid>` + string(oc.PEM()) + `</owner_gid><owner_urn>` + oc.URN + `</owner_urn>` +
		`<target_gid>` + string(a.Cert.PEM()) + `</target_gid><target_urn>` + a.URN().String() + `</target_urn>` +
		`<expires>2030-01-01T00:00:00Z</expires><privileges><privilege><name>*</name><can_delegate>true</can_delegate></privilege></privileges>` +
		`<parent/></credential><signatures>` + SignatureTemplate("ref0", a.Cert) + `</signatures></signed-credential>`
	return doc, owner
}

func FuzzParseCredential(f *testing.F) {
	doc, _ := seedCredential(f)
	if _, err := ParseCredential([]byte(doc)); err != nil {
		f.Fatalf("seed: %v", err)
	}
	f.Add(doc)
	f.Add(`<signed-credential><credential xml:id="a"><parent><credential xml:id="a"/></parent></credential></signed-credential>`)
	f.Add(`<!DOCTYPE x><signed-credential/>`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredential([]byte(s))
		if err != nil {
			return
		}
		n := 0
		for x := c; x != nil; x = x.Parent {
			if x.Signature == nil || len(x.Owner) == 0 || len(x.Target) == 0 || len(x.Privileges) == 0 {
				t.Fatalf("accepted an incomplete level %+v", x)
			}
			n++
		}
		if n > MaxDelegation+1 {
			t.Fatalf("%d levels", n)
		}
		// Verification of a fuzzed document never passes: no trusted root.
		v := &Verifier{Roots: NewRoots()}
		if _, err := v.Verify(context.Background(), []byte(s), nil, ""); err == nil {
			t.Fatal("verified without trusted roots")
		}
	})
}

func FuzzParseCert(f *testing.F) {
	_, owner := seedCredential(f)
	f.Add(owner)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := ParseCert(der)
		if err != nil {
			return
		}
		if c.PublicKey == nil || len(c.RawTBS) == 0 {
			t.Fatalf("accepted a certificate without key or TBS")
		}
		_ = c.CheckSignatureFrom(c)
	})
}

func TestScanUnbalanced(t *testing.T) {
	for _, doc := range []string{"</a><b>", "<signed-credential></signed-credential></x><y>", "<a/><a/>"} {
		if err := scan([]byte(doc)); err == nil {
			t.Errorf("%q: accepted", doc)
		}
	}
}
