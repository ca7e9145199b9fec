package sfa

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pki makes certificates and signs credentials with the openssl and
// xmlsec1 command-line tools, so the tests do not check this package only
// against itself.
type pki struct {
	t      *testing.T
	dir    string
	issuer map[string]string // certificate name -> its issuer's
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	for _, p := range []string{"openssl", "xmlsec1"} {
		if _, err := exec.LookPath(p); err != nil { // hostdeps: openssl xmlsec1
			t.Fatalf("%s is needed (scripts/deps.sh test): %v", p, err)
		}
	}
	return &pki{t: t, dir: t.TempDir(), issuer: map[string]string{}}
}

func (p *pki) run(name string, args ...string) []byte {
	p.t.Helper()
	cmd := exec.Command(name, args...) // hostdeps: openssl xmlsec1
	cmd.Dir = p.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) read(name string) string {
	b, err := os.ReadFile(p.path(name))
	if err != nil {
		p.t.Fatal(err)
	}
	return string(b)
}

func (p *pki) write(name, text string) {
	if err := os.WriteFile(p.path(name), []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// root makes a self-signed CA name.key/name.pem with the URN.
func (p *pki) root(name, urn string, extra ...string) {
	args := []string{"req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
		"-days", "30", "-subj", "/CN=" + name, "-addext", "subjectAltName=URI:" + urn,
		"-addext", "basicConstraints=critical,CA:TRUE"}
	p.run("openssl", append(args, extra...)...)
}

// issue makes name.key/name.pem signed by ca, with the URN; ext lines are
// added to the extensions; opts go to openssl x509 (-sha1, -set_serial).
func (p *pki) issue(name, ca, urn string, isCA bool, ext []string, opts ...string) {
	p.issuer[name] = ca
	p.run("openssl", "req", "-newkey", "rsa:1024", "-nodes", "-keyout", name+".key", "-out", name+".csr", "-subj", "/CN="+name)
	lines := []string{"subjectAltName=URI:" + urn}
	if isCA {
		lines = append(lines, "basicConstraints=critical,CA:TRUE")
	} else {
		lines = append(lines, "basicConstraints=CA:FALSE")
	}
	p.write(name+".ext", strings.Join(append(lines, ext...), "\n")+"\n")
	args := []string{"x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
		"-out", name + ".pem", "-days", "10", "-extfile", name + ".ext"}
	if !containsSerial(opts) {
		args = append(args, "-CAcreateserial")
	}
	p.run("openssl", append(args, opts...)...)
}

func containsSerial(opts []string) bool {
	for _, o := range opts {
		if o == "-set_serial" {
			return true
		}
	}
	return false
}

func (p *pki) cert(name string) *Cert {
	p.t.Helper()
	cs, err := ParseChain(p.read(name + ".pem"))
	if err != nil {
		p.t.Fatal(err)
	}
	return cs[0]
}

type credSpec struct {
	id, owner, target, ownerURN, targetURN, expires string
	privs                                           string // <privilege> elements
	parent                                          string // a signed credential to delegate from
}

// credential writes the credential's template, signs it with xmlsec1 as
// signer (key and certificate files of that name) and returns the
// signed document.
func (p *pki) credential(c credSpec, signer string) string {
	p.t.Helper()
	// A GID carries its issuers up to the root, as SFA writes them.
	gid := func(n string) string {
		text := p.read(n + ".pem")
		if iss := p.issuer[n]; iss != "" && iss != n {
			text += p.read(iss + ".pem")
		}
		return text
	}
	var parentCred, parentSigs string
	if c.parent != "" {
		parentCred = "<parent>" + between(c.parent, "<credential ", "</credential>\n<signatures>", true) + "</parent>\n"
		parentSigs = between(c.parent, "<signatures>", "</signatures>", false)
	}
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<signed-credential xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://www.geni.net/resources/credential/2/credential.xsd">
<credential xml:id="` + c.id + `">
<type>privilege</type>
<serial>7</serial>
<owner_gid>` + gid(c.owner) + `</owner_gid>
<owner_urn>` + c.ownerURN + `</owner_urn>
<target_gid>` + gid(c.target) + `</target_gid>
<target_urn>` + c.targetURN + `</target_urn>
<uuid/>
<expires>` + c.expires + `</expires>
<privileges>` + c.privs + `</privileges>
` + parentCred + `</credential>
<signatures>
<Signature xmlns="http://www.w3.org/2000/09/xmldsig#" xml:id="Sig_` + c.id + `">
<SignedInfo>
<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
<SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>
<Reference URI="#` + c.id + `">
<Transforms><Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></Transforms>
<DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>
<DigestValue/>
</Reference>
</SignedInfo>
<SignatureValue/>
<KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo>
</Signature>
` + parentSigs + `</signatures>
</signed-credential>
`
	p.write("tmpl.xml", doc)
	p.run("xmlsec1", "--sign", "--node-id", "Sig_"+c.id, "--privkey-pem", signer+".key,"+signer+".pem", "--output", "signed.xml", "tmpl.xml")
	return p.read("signed.xml")
}

// between returns the text from the first from (included when keep) to the
// last to (included when keep... of from's element: the closing tag of the
// outermost credential).
func between(s, from, to string, keep bool) string {
	i := strings.Index(s, from)
	j := strings.LastIndex(s, to)
	if i < 0 || j < i {
		return ""
	}
	if keep {
		return s[i : j+len("</credential>")]
	}
	return s[i+len(from) : j]
}

func priv(name string, del bool) string {
	d := "false"
	if del {
		d = "true"
	}
	return "<privilege><name>" + name + "</name><can_delegate>" + d + "</can_delegate></privilege>"
}
