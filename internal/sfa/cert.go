package sfa

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/planetlab/pl/internal/core"
)

// Cert is what verification needs of an X.509 certificate (a GID in SFA's
// words). Lenient says Go's crypto/x509 refused the certificate and the
// lenient reader read it.
type Cert struct {
	Raw        []byte
	RawTBS     []byte
	RawSubject []byte
	RawIssuer  []byte
	Subject    string // the subject's common name, if any
	PublicKey  crypto.PublicKey
	SigAlg     asn1.ObjectIdentifier
	Signature  []byte
	NotBefore  time.Time
	NotAfter   time.Time
	IsCA       bool
	URN        string // the urn:publicid URI of subjectAltName, if any
	Email      string
	UUID       string // the urn:uuid URI of subjectAltName, if any
	Lenient    bool
	ParseError error // why crypto/x509 refused it, when Lenient
}

// MaxCertBytes bounds one certificate.
const MaxCertBytes = 16 << 10

// ParseCert reads one DER certificate: with crypto/x509 when it accepts
// it, else with the lenient reader, which takes only the fields
// verification needs and tolerates what real federations' certificates
// carry and Go refuses (negative or oversized serial numbers, malformed
// e-mail or other names in subjectAltName, odd string types in names).
func ParseCert(der []byte) (*Cert, error) {
	if len(der) > MaxCertBytes {
		return nil, core.FieldErrorf("certificate", "longer than %d bytes", MaxCertBytes)
	}
	c, xerr := x509.ParseCertificate(der)
	if xerr == nil {
		out := &Cert{
			Raw: c.Raw, RawTBS: c.RawTBSCertificate, RawSubject: c.RawSubject, RawIssuer: c.RawIssuer,
			Subject: c.Subject.CommonName, PublicKey: c.PublicKey, Signature: c.Signature,
			NotBefore: c.NotBefore, NotAfter: c.NotAfter, IsCA: c.BasicConstraintsValid && c.IsCA,
		}
		for _, u := range c.URIs {
			setURI(out, u.String())
		}
		if len(c.EmailAddresses) > 0 {
			out.Email = c.EmailAddresses[0]
		}
		alg, err := sigAlgOID(der)
		if err != nil {
			return nil, err
		}
		out.SigAlg = alg
		return out, nil
	}
	out, err := parseLenient(der)
	if err != nil {
		return nil, core.FieldErrorf("certificate", "unreadable: %v (crypto/x509: %v)", err, xerr)
	}
	out.Lenient, out.ParseError = true, xerr
	return out, nil
}

func setURI(c *Cert, u string) {
	switch {
	case len(u) >= len(urnPrefix) && strings.EqualFold(u[:len(urnPrefix)], urnPrefix):
		if c.URN == "" {
			c.URN = u
		}
	case strings.HasPrefix(strings.ToLower(u), "urn:uuid:"):
		c.UUID = u[len("urn:uuid:"):]
	}
}

// ParseChain reads the certificates of a GID text: PEM blocks, or one bare
// base64 certificate (the form SFA puts in owner_gid and KeyInfo). The
// first certificate is the subject; the rest, if any, its issuers.
func ParseChain(text string) ([]*Cert, error) {
	rest := []byte(strings.TrimSpace(text))
	var out []*Cert
	if !bytes.Contains(rest, []byte("-----BEGIN")) {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(rest)), ""))
		if err != nil {
			return nil, core.FieldErrorf("certificate", "neither PEM nor base64: %v", err)
		}
		c, err := ParseCert(der)
		if err != nil {
			return nil, err
		}
		return []*Cert{c}, nil
	}
	for len(out) < 16 {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := ParseCert(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, core.FieldErrorf("certificate", "no PEM CERTIFICATE block")
	}
	return out, nil
}

// PEM is the certificate in PEM armour.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Name is the certificate's URN, else its common name, for messages.
func (c *Cert) Name() string {
	if c.URN != "" {
		return c.URN
	}
	return "CN=" + c.Subject
}

var (
	oidSHA1RSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256RSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384RSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512RSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519     = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidSAN         = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicCons   = asn1.ObjectIdentifier{2, 5, 29, 19}
)

// CheckSignatureFrom checks that parent's key signed c. SHA-1 with RSA is
// accepted (GENI federations issued SHA-1 certificates for years); MD5 and
// RSA-PSS are not.
func (c *Cert) CheckSignatureFrom(parent *Cert) error {
	var h crypto.Hash
	switch {
	case c.SigAlg.Equal(oidSHA1RSA):
		h = crypto.SHA1
	case c.SigAlg.Equal(oidSHA256RSA), c.SigAlg.Equal(oidECDSASHA256):
		h = crypto.SHA256
	case c.SigAlg.Equal(oidSHA384RSA), c.SigAlg.Equal(oidECDSASHA384):
		h = crypto.SHA384
	case c.SigAlg.Equal(oidSHA512RSA), c.SigAlg.Equal(oidECDSASHA512):
		h = crypto.SHA512
	case c.SigAlg.Equal(oidEd25519):
		k, ok := parent.PublicKey.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, c.RawTBS, c.Signature) {
			return errors.New("bad Ed25519 signature")
		}
		return nil
	default:
		return fmt.Errorf("unsupported signature algorithm %v", c.SigAlg)
	}
	d := h.New()
	d.Write(c.RawTBS)
	sum := d.Sum(nil)
	switch k := parent.PublicKey.(type) {
	case *rsa.PublicKey:
		if c.SigAlg.Equal(oidECDSASHA256) || c.SigAlg.Equal(oidECDSASHA384) || c.SigAlg.Equal(oidECDSASHA512) {
			return errors.New("ECDSA signature from an RSA key")
		}
		if err := rsa.VerifyPKCS1v15(k, h, sum, c.Signature); err != nil {
			return errors.New("bad RSA signature")
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, sum, c.Signature) {
			return errors.New("bad ECDSA signature")
		}
	default:
		return fmt.Errorf("unsupported issuer key %T", parent.PublicKey)
	}
	return nil
}

// sigAlgOID reads the outer signatureAlgorithm of a certificate crypto/x509
// has accepted (x509.Certificate has only an enumeration of it).
func sigAlgOID(der []byte) (asn1.ObjectIdentifier, error) {
	s := cryptobyte.String(der)
	var cert, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.SkipASN1(cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, core.FieldErrorf("certificate", "no signature algorithm")
	}
	return oid, nil
}

// parseLenient reads Certificate ::= SEQUENCE { tbs, sigAlg, sig } and of
// the TBS only serial (skipped, any form), issuer, validity, subject, the
// public key, subjectAltName and basicConstraints; other extensions, even
// critical ones, are ignored.
func parseLenient(der []byte) (*Cert, error) {
	c := &Cert{Raw: der}
	s := cryptobyte.String(der)
	var cert, tbsFull, alg, tbs cryptobyte.String
	var sig asn1.BitString
	if !s.ReadASN1(&cert, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errors.New("not one DER SEQUENCE")
	}
	if !cert.ReadASN1Element(&tbsFull, cbasn1.SEQUENCE) {
		return nil, errors.New("no tbsCertificate")
	}
	c.RawTBS = tbsFull
	if !cert.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&c.SigAlg) {
		return nil, errors.New("no signatureAlgorithm")
	}
	if !cert.ReadASN1BitString(&sig) {
		return nil, errors.New("no signatureValue")
	}
	c.Signature = sig.RightAlign()
	tbs = tbsFull
	if !tbs.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("bad tbsCertificate")
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || !tbs.SkipASN1(cbasn1.SEQUENCE) {
		return nil, errors.New("bad version, serial or signature")
	}
	var issuer, validity, subject, spki cryptobyte.String
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !tbs.ReadASN1(&validity, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) || !tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, errors.New("bad issuer, validity, subject or key")
	}
	c.RawIssuer, c.RawSubject = issuer, subject
	var err error
	if c.NotBefore, err = readTime(&validity); err != nil {
		return nil, fmt.Errorf("notBefore: %v", err)
	}
	if c.NotAfter, err = readTime(&validity); err != nil {
		return nil, fmt.Errorf("notAfter: %v", err)
	}
	if c.PublicKey, err = x509.ParsePKIXPublicKey(spki); err != nil {
		return nil, fmt.Errorf("public key: %v", err)
	}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(subject, &rdn); err == nil && len(rest) == 0 {
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		c.Subject = n.CommonName
	}
	_ = tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific())
	_ = tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific())
	var exts cryptobyte.String
	var has bool
	if !tbs.ReadOptionalASN1(&exts, &has, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return nil, errors.New("bad extensions")
	}
	if has && !exts.ReadASN1(&exts, cbasn1.SEQUENCE) {
		return nil, errors.New("bad extensions")
	}
	for has && !exts.Empty() {
		var ext, val cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return nil, errors.New("bad extension")
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) && !ext.SkipASN1(cbasn1.BOOLEAN) {
			return nil, errors.New("bad extension")
		}
		if !ext.ReadASN1(&val, cbasn1.OCTET_STRING) {
			return nil, errors.New("bad extension value")
		}
		switch {
		case oid.Equal(oidSAN):
			readSAN(c, val)
		case oid.Equal(oidBasicCons):
			var bc cryptobyte.String
			if val.ReadASN1(&bc, cbasn1.SEQUENCE) && bc.PeekASN1Tag(cbasn1.BOOLEAN) {
				var ca bool
				if bc.ReadASN1Boolean(&ca) {
					c.IsCA = ca
				}
			}
		}
	}
	return c, nil
}

func readTime(s *cryptobyte.String) (time.Time, error) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(cbasn1.UTCTime):
		if !s.ReadASN1UTCTime(&t) {
			return t, errors.New("bad UTCTime")
		}
	case s.PeekASN1Tag(cbasn1.GeneralizedTime):
		if !s.ReadASN1GeneralizedTime(&t) {
			return t, errors.New("bad GeneralizedTime")
		}
	default:
		return t, errors.New("not a time")
	}
	return t, nil
}

// readSAN takes the URIs and the first e-mail of a subjectAltName, as they
// are, skipping names it cannot read.
func readSAN(c *Cert, val cryptobyte.String) {
	var names cryptobyte.String
	if !val.ReadASN1(&names, cbasn1.SEQUENCE) {
		return
	}
	for !names.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&v, &tag) {
			return
		}
		switch tag {
		case cbasn1.Tag(6).ContextSpecific():
			setURI(c, string(v))
		case cbasn1.Tag(1).ContextSpecific():
			if c.Email == "" {
				c.Email = string(v)
			}
		}
	}
}

func parsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}

func parsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		if rk, err2 := x509.ParsePKCS1PrivateKey(blk.Bytes); err2 == nil {
			return rk, nil
		}
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	return s, nil
}
