package service

import (
	"crypto/rsa"
	"fmt"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// MinRSABits is the smallest RSA key accepted.
const MinRSABits = 2048

// SSHKey is a parsed, accepted public key.
type SSHKey struct {
	Type     string // ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...
	Material string // "type base64" without comment: the blacklist identity
	Line     string // the normalised authorized_keys line (with comment)
}

// ParseSSHKey parses one authorized_keys line and accepts ed25519, ECDSA
// and RSA keys of at least MinRSABits bits (and their security-key
// variants); DSA and short RSA keys are refused with the reason.
func ParseSSHKey(s string) (SSHKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return SSHKey{}, fmt.Errorf("empty key")
	}
	if strings.ContainsAny(s, "\r\n") {
		return SSHKey{}, fmt.Errorf("one key per call: the value has several lines")
	}
	pub, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return SSHKey{}, fmt.Errorf("not an OpenSSH public key: %v", err)
	}
	if len(options) > 0 {
		return SSHKey{}, fmt.Errorf("authorized_keys options (%s) are not allowed", strings.Join(options, ","))
	}
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256:
	case ssh.KeyAlgoRSA:
		ck, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return SSHKey{}, fmt.Errorf("unreadable RSA key")
		}
		rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
		if !ok {
			return SSHKey{}, fmt.Errorf("unreadable RSA key")
		}
		if bits := rk.N.BitLen(); bits < MinRSABits {
			return SSHKey{}, fmt.Errorf("RSA key of %d bits is too short: at least %d bits", bits, MinRSABits)
		}
	default:
		return SSHKey{}, fmt.Errorf("key type %s is not accepted: use ed25519, ecdsa or rsa >= %d bits", pub.Type(), MinRSABits)
	}
	material := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	line := material
	if comment = strings.TrimSpace(comment); comment != "" {
		line += " " + comment
	}
	return SSHKey{Type: pub.Type(), Material: material, Line: line}, nil
}

// originalKeyPattern is what the original PLCAPI checks an ssh key against
// (PLC/Keys.py, validate_key): any line holding "ssh-dss" or "ssh-rsa",
// blanks, then base64. The captures are the type and the base64 text.
var originalKeyPattern = regexp.MustCompile(`^.*(ssh-dss|ssh-rsa)[ ]+([A-Za-z0-9+/=]+)(?: .*)?$`)

// PersonKey is a key given to AddPersonKey or UpdateKey: either usable
// (Usable, with the normalised Line) or stored as given but not installed
// anywhere, with the reason.
type PersonKey struct {
	SSHKey
	Usable bool
	Reason string // why it is not usable ("" when usable)
}

// ParsePersonKey accepts what the original PLCAPI accepts and tells which
// keys can be used: a key that ParseSSHKey accepts is usable; an ssh-rsa or
// ssh-dss line that it refuses (DSA, short RSA, options, bad base64 or a
// body that is not a key) but that matches the original's pattern is
// accepted as not usable, kept as given, with ParseSSHKey's refusal as the
// reason. Other key types get the strict check only: the original did not
// know them.
func ParsePersonKey(s string) (PersonKey, error) {
	k, err := ParseSSHKey(s)
	if err == nil {
		return PersonKey{SSHKey: k, Usable: true}, nil
	}
	line := strings.TrimSpace(s)
	if strings.ContainsAny(line, "\r\n") {
		return PersonKey{}, err
	}
	m := originalKeyPattern.FindStringSubmatch(line)
	if m == nil {
		return PersonKey{}, err
	}
	return PersonKey{
		SSHKey: SSHKey{Type: m[1], Material: m[1] + " " + m[2], Line: line},
		Reason: err.Error(),
	}, nil
}
