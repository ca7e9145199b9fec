package sfa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
)

// Authority is a slice authority: it issues certificates for its users and
// slices and signs credentials over them (PLC for its own users).
type Authority struct {
	Host   string // the authority part of every URN it issues
	Cert   *Cert
	key    crypto.Signer
	XMLSec string           // "" = "xmlsec1" on PATH
	Now    func() time.Time // nil = time.Now
}

// URN is the authority's own URN, urn:publicid:IDN+<host>+authority+sa.
func (a *Authority) URN() URN { return URN{Authority: a.Host, Type: "authority", Name: "sa"} }

func (a *Authority) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// LoadAuthority reads the authority's key and certificate from dir
// (geni-sa.key, geni-sa.pem), creating them (RSA 2048, ten years) the
// first time.
func LoadAuthority(dir, host string) (*Authority, error) {
	keyPath, certPath := filepath.Join(dir, "geni-sa.key"), filepath.Join(dir, "geni-sa.pem")
	kb, err := os.ReadFile(keyPath)
	if os.IsNotExist(err) {
		a, keyPEM, err := NewAuthority(host, 10*365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(certPath, a.Cert.PEM(), 0o644); err != nil {
			return nil, err
		}
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	certs, err := ParseChain(string(cb))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", keyPath)
	}
	if !strings.EqualFold(URNAuthority(certs[0].URN), host) {
		return nil, fmt.Errorf("%s is the authority of %s, not %s", certPath, certs[0].URN, host)
	}
	return &Authority{Host: host, Cert: certs[0], key: signer}, nil
}

// URNAuthority is the authority part of a URN ("" if it is not one).
func URNAuthority(s string) string {
	u, err := ParseURN(s)
	if err != nil {
		return ""
	}
	return u.Authority
}

// NewAuthority makes a fresh authority: an RSA key and a self-signed CA
// certificate for urn:publicid:IDN+<host>+authority+sa. It returns the
// key in PKCS#8 PEM.
func NewAuthority(host string, lifetime time.Duration) (*Authority, []byte, error) {
	if _, err := ParseURN(URN{Authority: host, Type: "authority", Name: "sa"}.String()); err != nil {
		return nil, nil, err
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	a := &Authority{Host: host, key: k}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: host + " slice authority"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		URIs:                  []*url.URL{{Scheme: "urn", Opaque: strings.TrimPrefix(a.URN().String(), "urn:")}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, nil, err
	}
	if a.Cert, err = ParseCert(der); err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return a, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n.Add(n, big.NewInt(1))
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// UserName is the GENI name of a user of this authority: the e-mail
// address with '@' as "_at_" and every other character outside
// [A-Za-z0-9_.-] as '_' (alice@example.org -> alice_at_example.org).
func UserName(email string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.Replace(email, "@", "_at_", 1)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// IssueCert certifies pub for u (a user or slice of this authority), with
// the URN, a urn:uuid and, when given, the e-mail in subjectAltName, as AM
// API v3 asks. It returns the DER certificate.
func (a *Authority) IssueCert(u URN, email string, pub crypto.PublicKey, lifetime time.Duration) ([]byte, error) {
	if !strings.EqualFold(u.Authority, a.Host) {
		return nil, core.FieldErrorf("urn", "%s is not of this authority (%s)", u, a.Host)
	}
	if !nameRE.MatchString(u.Name) {
		return nil, core.FieldErrorf("urn", "name %q: letters, digits, '_', '.', '-', at most 64", u.Name)
	}
	uuid := make([]byte, 16)
	_, _ = rand.Read(uuid)
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	us := fmt.Sprintf("%x-%x-%x-%x-%x", uuid[0:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:])
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: u.Name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{
			{Scheme: "urn", Opaque: strings.TrimPrefix(u.String(), "urn:")},
			{Scheme: "urn", Opaque: "uuid:" + us},
		},
	}
	if tmpl.NotAfter.After(a.Cert.NotAfter) {
		tmpl.NotAfter = a.Cert.NotAfter
	}
	if email != "" {
		tmpl.EmailAddresses = []string{email}
	}
	parent, err := x509.ParseCertificate(a.Cert.Raw)
	if err != nil {
		return nil, err
	}
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, a.key)
}

// SliceCert makes the certificate of a slice (a target_gid), with a fresh
// key nobody needs to hold.
func (a *Authority) SliceCert(slice URN, lifetime time.Duration) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return a.IssueCert(slice, "", k.Public(), lifetime)
}

// Credential signs a credential granting privs over target to owner until
// expires (capped at the certificates' expiry). owner and target are DER
// certificates this authority issued.
func (a *Authority) Credential(ctx context.Context, owner, target []byte, expires time.Time, privs []Privilege) ([]byte, error) {
	oc, err := ParseCert(owner)
	if err != nil {
		return nil, err
	}
	tc, err := ParseCert(target)
	if err != nil {
		return nil, err
	}
	for _, c := range []*Cert{oc, tc} {
		if expires.After(c.NotAfter) {
			expires = c.NotAfter
		}
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<signed-credential xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://www.geni.net/resources/credential/2/credential.xsd">` + "\n")
	b.WriteString(`<credential xml:id="ref0">` + "\n<type>privilege</type>\n")
	el := func(name, val string) {
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(&b, []byte(val))
		b.WriteString("</" + name + ">\n")
	}
	el("serial", serial().Text(16))
	el("owner_gid", string(oc.PEM()))
	el("owner_urn", oc.URN)
	el("target_gid", string(tc.PEM()))
	el("target_urn", tc.URN)
	el("uuid", "")
	el("expires", expires.UTC().Format(time.RFC3339))
	b.WriteString("<privileges>\n")
	for _, p := range privs {
		fmt.Fprintf(&b, "<privilege><name>%s</name><can_delegate>%t</can_delegate></privilege>\n", escape(p.Name), p.CanDelegate)
	}
	b.WriteString("</privileges>\n</credential>\n<signatures>\n")
	b.WriteString(SignatureTemplate("ref0", a.Cert))
	b.WriteString("</signatures>\n</signed-credential>\n")
	return a.sign(ctx, b.Bytes(), "Sig_ref0")
}

func escape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// SignatureTemplate is the unsigned XML-DSig template SFA uses for the
// credential with xml:id ref: enveloped transform, inclusive C14N,
// RSA-SHA256, and the signer's certificates in KeyInfo.
func SignatureTemplate(ref string, signer ...*Cert) string {
	var certs strings.Builder
	for _, c := range signer {
		certs.WriteString("<X509Certificate>" + base64.StdEncoding.EncodeToString(c.Raw) + "</X509Certificate>")
	}
	return `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#" xml:id="Sig_` + ref + `">
<SignedInfo>
<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
<SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
<Reference URI="#` + ref + `">
<Transforms><Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></Transforms>
<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
<DigestValue></DigestValue>
</Reference>
</SignedInfo>
<SignatureValue/>
<KeyInfo><X509Data>` + certs.String() + `</X509Data></KeyInfo>
</Signature>
`
}

// sign fills the signature sigID of doc with xmlsec1 and the authority's key.
func (a *Authority) sign(ctx context.Context, doc []byte, sigID string) ([]byte, error) {
	return sign(ctx, a.XMLSec, a.key, doc, sigID)
}

// sign fills the signature sigID of doc with xmlsec1 and key.
func sign(ctx context.Context, prog string, key crypto.Signer, doc []byte, sigID string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "pl-sa-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	in, out, keyFile := filepath.Join(dir, "in.xml"), filepath.Join(dir, "out.xml"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(in, doc, 0o600); err != nil {
		return nil, err
	}
	if prog == "" {
		prog = "xmlsec1"
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// hostdeps: xmlsec1
	if b, err := exec.CommandContext(ctx, prog, "--sign", "--node-id", sigID, "--privkey-pem", keyFile, "--output", out, in).CombinedOutput(); err != nil {
		return nil, &core.Error{Code: core.Internal, Message: "signing the credential failed", Err: fmt.Errorf("xmlsec1: %v: %s", err, lastLine(b))}
	}
	return os.ReadFile(out)
}

// Delegate signs, as the owner of parent (key and cert are theirs), a
// credential delegating privs over parent's target to owner (a DER
// certificate) until expires: SFA's delegation, the parent embedded and
// its signatures carried along. The parent is used as given (not
// verified here).
func Delegate(ctx context.Context, xmlsec string, parent []byte, owner []byte, key crypto.Signer, cert *Cert, expires time.Time, privs []Privilege) ([]byte, error) {
	p, err := ParseCredential(parent)
	if err != nil {
		return nil, err
	}
	oc, err := ParseCert(owner)
	if err != nil {
		return nil, err
	}
	text := string(parent)
	i := strings.Index(text, "<credential ")
	j := strings.LastIndex(text, "</credential>")
	k := strings.Index(text, "<signatures>")
	l := strings.LastIndex(text, "</signatures>")
	if i < 0 || j < i || k < j || l < k {
		return nil, core.FieldErrorf("credential", "cannot find the parent's credential and signatures")
	}
	_ = p
	id := "ref" + serial().Text(16)[:12]
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<signed-credential xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://www.geni.net/resources/credential/2/credential.xsd">` + "\n")
	b.WriteString(`<credential xml:id="` + id + `">` + "\n<type>privilege</type>\n")
	el := func(name, val string) {
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(&b, []byte(val))
		b.WriteString("</" + name + ">\n")
	}
	el("serial", serial().Text(16))
	el("owner_gid", string(oc.PEM()))
	el("owner_urn", oc.URN)
	el("target_gid", string(p.Target[0].PEM()))
	el("target_urn", p.TargetURN)
	el("uuid", "")
	if expires.After(p.Expires) {
		expires = p.Expires
	}
	el("expires", expires.UTC().Format(time.RFC3339))
	b.WriteString("<privileges>\n")
	for _, pr := range privs {
		fmt.Fprintf(&b, "<privilege><name>%s</name><can_delegate>%t</can_delegate></privilege>\n", escape(pr.Name), pr.CanDelegate)
	}
	b.WriteString("</privileges>\n<parent>" + text[i:j+len("</credential>")] + "</parent>\n</credential>\n<signatures>\n")
	b.WriteString(SignatureTemplate(id, cert))
	b.WriteString(text[k+len("<signatures>") : l])
	b.WriteString("</signatures>\n</signed-credential>\n")
	return sign(ctx, xmlsec, key, b.Bytes(), "Sig_"+id)
}
