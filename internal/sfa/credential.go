package sfa

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Limits of what ParseCredential reads.
const (
	MaxCredentialBytes = 256 << 10 // a credential with a few delegations is ~20 KB
	MaxDelegation      = 8         // parents above the credential
	maxElements        = 4096
	maxXMLDepth        = 64
)

// Privilege is one right a credential grants.
type Privilege struct {
	Name        string
	CanDelegate bool
}

// Credential is one level of a signed SFA credential; Parent is the
// credential it was delegated from (nil for one an authority issued).
type Credential struct {
	ID         string // xml:id
	Type       string
	Serial     string
	OwnerURN   string
	TargetURN  string
	Owner      []*Cert // owner_gid: the owner's certificate, then any issuers
	Target     []*Cert // target_gid
	Expires    time.Time
	Privileges []Privilege
	Parent     *Credential
	Signature  *Signature
}

// Signature is the XML-DSig signature over one credential, as far as
// verification needs it.
type Signature struct {
	ID        string   // its xml:id, for xmlsec1 --node-id
	Reference string   // the one Reference URI, "#" + the credential's xml:id
	Certs     []*Cert  // KeyInfo/X509Data certificates: the signer and its issuers
	Algs      []string // canonicalization, signature, transforms and digest algorithms
}

// Has reports whether the credential grants name ("*" grants all).
func (c *Credential) Has(name string) bool {
	for _, p := range c.Privileges {
		if p.Name == name || p.Name == "*" {
			return true
		}
	}
	return false
}

// HasAny reports whether the credential grants one of names.
func (c *Credential) HasAny(names ...string) bool {
	for _, n := range names {
		if c.Has(n) {
			return true
		}
	}
	return false
}

type xmlSigned struct {
	XMLName    xml.Name  `xml:"signed-credential"`
	Credential *xmlCred  `xml:"credential"`
	Signatures []xmlSig  `xml:"signatures>Signature"`
	Other      []xmlSkip `xml:",any"`
}

type xmlSkip struct {
	XMLName xml.Name
}

type xmlCred struct {
	ID         string    `xml:"http://www.w3.org/XML/1998/namespace id,attr"`
	Type       string    `xml:"type"`
	Serial     string    `xml:"serial"`
	OwnerGID   string    `xml:"owner_gid"`
	OwnerURN   string    `xml:"owner_urn"`
	TargetGID  string    `xml:"target_gid"`
	TargetURN  string    `xml:"target_urn"`
	Expires    string    `xml:"expires"`
	Privileges []xmlPriv `xml:"privileges>privilege"`
	Parent     *xmlCred  `xml:"parent>credential"`
}

type xmlPriv struct {
	Name        string `xml:"name"`
	CanDelegate string `xml:"can_delegate"`
}

type xmlAlg struct {
	Algorithm string `xml:"Algorithm,attr"`
}

const dsigNS = "http://www.w3.org/2000/09/xmldsig#"

type xmlSig struct {
	XMLName    xml.Name
	ID         string   `xml:"http://www.w3.org/XML/1998/namespace id,attr"`
	C14N       []xmlAlg `xml:"SignedInfo>CanonicalizationMethod"`
	Method     []xmlAlg `xml:"SignedInfo>SignatureMethod"`
	References []struct {
		URI        string   `xml:"URI,attr"`
		Transforms []xmlAlg `xml:"Transforms>Transform"`
		Digest     []xmlAlg `xml:"DigestMethod"`
	} `xml:"SignedInfo>Reference"`
	Certs []string `xml:"KeyInfo>X509Data>X509Certificate"`
}

// The algorithms a credential's signature may use; anything else (XPath,
// XSLT, external references) is refused before xmlsec1 sees the document.
var (
	okC14N = map[string]bool{
		"http://www.w3.org/TR/2001/REC-xml-c14n-20010315":              true,
		"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": true,
		"http://www.w3.org/2001/10/xml-exc-c14n#":                      true,
		"http://www.w3.org/2006/12/xml-c14n11":                         true,
	}
	okSigMethod = map[string]bool{
		"http://www.w3.org/2000/09/xmldsig#rsa-sha1":          true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": true,
	}
	okTransform = map[string]bool{
		"http://www.w3.org/2000/09/xmldsig#enveloped-signature": true,
	}
	okDigest = map[string]bool{
		"http://www.w3.org/2000/09/xmldsig#sha1":        true,
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
)

// ParseCredential reads a signed SFA credential without verifying it:
// structure, URNs, certificates, expiry text, privileges, the delegation
// chain and, for each level, the signature that references it. Documents
// with a DTD, repeated xml:ids, more than MaxDelegation parents or more
// than MaxCredentialBytes are refused.
func ParseCredential(data []byte) (*Credential, error) {
	if len(data) > MaxCredentialBytes {
		return nil, core.FieldErrorf("credential", "longer than %d bytes", MaxCredentialBytes)
	}
	if err := scan(data); err != nil {
		return nil, err
	}
	var doc xmlSigned
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, core.FieldErrorf("credential", "not a signed-credential document: %v", err)
	}
	if doc.Credential == nil {
		return nil, core.FieldErrorf("credential", "no <credential> element")
	}
	sigs := map[string]*Signature{}
	for i := range doc.Signatures {
		s, err := parseSig(&doc.Signatures[i])
		if err != nil {
			return nil, err
		}
		if sigs[s.Reference] != nil {
			return nil, core.FieldErrorf("credential", "two signatures reference %s", s.Reference)
		}
		sigs[s.Reference] = s
	}
	var top *Credential
	var child *Credential
	depth := 0
	for x := doc.Credential; x != nil; x = x.Parent {
		if depth > MaxDelegation {
			return nil, core.FieldErrorf("credential", "delegated more than %d times", MaxDelegation)
		}
		c, err := parseCred(x)
		if err != nil {
			return nil, err
		}
		c.Signature = sigs["#"+c.ID]
		if c.Signature == nil {
			return nil, core.FieldErrorf("credential", "credential %s (%s) is not signed", c.ID, c.TargetURN)
		}
		if child == nil {
			top = c
		} else {
			child.Parent = c
		}
		child = c
		depth++
	}
	return top, nil
}

func parseCred(x *xmlCred) (*Credential, error) {
	c := &Credential{ID: x.ID, Type: strings.TrimSpace(x.Type), Serial: strings.TrimSpace(x.Serial),
		OwnerURN: strings.TrimSpace(x.OwnerURN), TargetURN: strings.TrimSpace(x.TargetURN)}
	if c.ID == "" {
		return nil, core.FieldErrorf("credential", "a <credential> has no xml:id")
	}
	if c.Type != "privilege" {
		return nil, core.FieldErrorf("credential", "credential %s: type %q, want privilege", c.ID, clip(c.Type))
	}
	for _, u := range []string{c.OwnerURN, c.TargetURN} {
		if _, err := ParseURN(u); err != nil {
			return nil, fmt.Errorf("credential %s: %w", c.ID, err)
		}
	}
	var err error
	if c.Owner, err = ParseChain(x.OwnerGID); err != nil {
		return nil, fmt.Errorf("credential %s owner_gid: %w", c.ID, err)
	}
	if c.Target, err = ParseChain(x.TargetGID); err != nil {
		return nil, fmt.Errorf("credential %s target_gid: %w", c.ID, err)
	}
	if c.Expires, err = ParseTime(x.Expires); err != nil {
		return nil, core.FieldErrorf("credential", "credential %s: expires: %v", c.ID, err)
	}
	for _, p := range x.Privileges {
		name := strings.TrimSpace(p.Name)
		if name == "" || len(name) > 64 {
			return nil, core.FieldErrorf("credential", "credential %s: bad privilege name %q", c.ID, clip(name))
		}
		var del bool
		switch strings.ToLower(strings.TrimSpace(p.CanDelegate)) {
		case "true", "1":
			del = true
		case "false", "0", "":
		default:
			return nil, core.FieldErrorf("credential", "credential %s: can_delegate %q", c.ID, clip(p.CanDelegate))
		}
		c.Privileges = append(c.Privileges, Privilege{Name: name, CanDelegate: del})
	}
	if len(c.Privileges) == 0 {
		return nil, core.FieldErrorf("credential", "credential %s grants no privilege", c.ID)
	}
	return c, nil
}

func parseSig(x *xmlSig) (*Signature, error) {
	if x.XMLName.Space != dsigNS {
		return nil, core.FieldErrorf("credential", "<Signature> not in the XML-DSig namespace")
	}
	if x.ID == "" {
		return nil, core.FieldErrorf("credential", "a <Signature> has no xml:id")
	}
	if len(x.References) != 1 || len(x.C14N) != 1 || len(x.Method) != 1 {
		return nil, core.FieldErrorf("credential", "signature %s: want one Reference, CanonicalizationMethod and SignatureMethod", x.ID)
	}
	r := x.References[0]
	s := &Signature{ID: x.ID, Reference: r.URI}
	if !strings.HasPrefix(r.URI, "#") || len(r.URI) < 2 || strings.ContainsAny(r.URI, "()/ ") {
		return nil, core.FieldErrorf("credential", "signature %s references %q, not a same-document id", x.ID, clip(r.URI))
	}
	check := func(kind string, ok map[string]bool, alg string) error {
		if !ok[alg] {
			return core.FieldErrorf("credential", "signature %s: %s algorithm %q not accepted", x.ID, kind, clip(alg))
		}
		s.Algs = append(s.Algs, alg)
		return nil
	}
	if err := check("canonicalization", okC14N, x.C14N[0].Algorithm); err != nil {
		return nil, err
	}
	if err := check("signature", okSigMethod, x.Method[0].Algorithm); err != nil {
		return nil, err
	}
	for _, t := range r.Transforms {
		if !okTransform[t.Algorithm] && !okC14N[t.Algorithm] {
			return nil, core.FieldErrorf("credential", "signature %s: transform %q not accepted", x.ID, clip(t.Algorithm))
		}
		s.Algs = append(s.Algs, t.Algorithm)
	}
	if len(r.Digest) != 1 {
		return nil, core.FieldErrorf("credential", "signature %s: want one DigestMethod", x.ID)
	}
	if err := check("digest", okDigest, r.Digest[0].Algorithm); err != nil {
		return nil, err
	}
	for _, t := range x.Certs {
		cs, err := ParseChain(t)
		if err != nil {
			return nil, fmt.Errorf("signature %s KeyInfo: %w", x.ID, err)
		}
		s.Certs = append(s.Certs, cs...)
	}
	return s, nil
}

// once are the elements that may appear at most once under a parent
// (by the parent's local name): encoding/xml would merge a second one into
// the first's struct, and a second, unsigned <credential> beside the
// signed one must not lend it fields (signature wrapping).
var once = map[string]map[string]bool{
	"signed-credential": {"credential": true, "signatures": true},
	"credential": {"type": true, "serial": true, "owner_gid": true, "owner_urn": true, "target_gid": true,
		"target_urn": true, "uuid": true, "expires": true, "privileges": true, "parent": true},
	"parent": {"credential": true},
}

// scan refuses DTDs (and with them entities and DTD-declared ids),
// repeated xml:ids, a root other than <signed-credential>, repeated
// elements of once, and documents too deep or with too many elements,
// before anything else reads the document.
func scan(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	ids := map[string]bool{}
	depth, n := 0, 0
	type frame struct {
		name   string
		counts map[string]int
	}
	stack := []frame{{name: "", counts: map[string]int{}}}
	for {
		t, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return core.FieldErrorf("credential", "not well-formed XML: %v", err)
		}
		switch t := t.(type) {
		case xml.Directive:
			return core.FieldErrorf("credential", "a DTD or other <!...> directive is not accepted")
		case xml.StartElement:
			depth++
			n++
			if depth > maxXMLDepth || n > maxElements {
				return core.FieldErrorf("credential", "more than %d elements or deeper than %d", maxElements, maxXMLDepth)
			}
			top := stack[len(stack)-1]
			name := t.Name.Local
			if top.counts[name]++; depth == 1 && (name != "signed-credential" || top.counts[name] > 1) {
				return core.FieldErrorf("credential", "the root must be one <signed-credential>, not <%s>", clip(name))
			}
			if once[top.name][name] && top.counts[name] > 1 {
				return core.FieldErrorf("credential", "more than one <%s> in <%s>", name, top.name)
			}
			stack = append(stack, frame{name: name, counts: map[string]int{}})
			for _, a := range t.Attr {
				if a.Name.Space == "xml" && a.Name.Local == "id" {
					if ids[a.Value] {
						return core.FieldErrorf("credential", "xml:id %q appears twice", clip(a.Value))
					}
					ids[a.Value] = true
				}
			}
		case xml.EndElement:
			if len(stack) == 1 {
				return core.FieldErrorf("credential", "not well-formed XML: </%s> closes nothing", clip(t.Name.Local))
			}
			depth--
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// ParseTime reads the times of credentials and of the AM API: RFC 3339,
// or without a zone (UTC, as SFA writes them).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not an RFC 3339 time: " + clip(s))
}
