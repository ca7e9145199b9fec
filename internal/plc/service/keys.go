package service

import (
	"crypto/rsa"
	"fmt"
	"regexp"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
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

func (o *op) checkKeyMaterial(rec core.Record) error {
	if kt, ok := rec["key_type"]; ok {
		found, err := o.lookupExists("key_types", "key_type", kt.(string))
		if err != nil {
			return err
		}
		if !found {
			return core.FieldErrorf("key_type", "unknown key type %q", kt)
		}
	}
	k, ok := rec["key"]
	if !ok {
		return nil
	}
	parsed, err := ParsePersonKey(k.(string))
	if err != nil {
		return core.FieldErrorf("key", "%v", err)
	}
	var one int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM keys WHERE material = ? AND is_blacklisted = 1", []any{parsed.Material}, &one)
	if err != nil {
		return err
	}
	if found {
		return core.FieldErrorf("key", "this key is blacklisted")
	}
	rec["key"] = parsed.Line
	rec["material"] = parsed.Material
	rec["usable"] = parsed.Usable
	rec["unusable_reason"] = nil
	if !parsed.Usable {
		rec["unusable_reason"] = parsed.Reason
	}
	return nil
}

func (o *op) addKey(t *store.Table, rec core.Record) (int64, error) {
	pid := i64(rec, "person_id")
	if err := o.exists(core.Person, pid); err != nil {
		return 0, err
	}
	if !isAdmin(o.c) && pid != o.c.PersonID {
		return 0, forbidden("Permission denied: you may add keys to your own account only")
	}
	if err := o.checkKeyMaterial(rec); err != nil {
		return 0, err
	}
	if err := o.touchPerson(pid); err != nil {
		return 0, err
	}
	return o.tx.InsertRecord(o.ctx, t, rec)
}

func (o *op) updateKey(t *store.Table, id int64, rec core.Record) error {
	var pid int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT person_id FROM keys WHERE key_id = ? AND is_blacklisted = 0", []any{id}, &pid)
	if err != nil {
		return err
	}
	if !found {
		return notFound(core.Key, id)
	}
	if !isAdmin(o.c) && pid != o.c.PersonID {
		return forbidden("Permission denied: not your key")
	}
	if err := o.checkKeyMaterial(rec); err != nil {
		return err
	}
	if err := o.touchPerson(pid); err != nil {
		return err
	}
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}
