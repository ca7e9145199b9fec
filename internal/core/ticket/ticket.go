// Package ticket is the signed ticket: a grant by PLC (or a broker whose
// key PLC distributes) of resources on some nodes to one slice for a time.
// A node manager verifies a ticket with the keys in its last desired state
// and honours it without asking PLC (reference nodemanager.md §4.4; the
// original signed an XML-RPC dump with GPG and had neither nonce nor
// expiry).
//
// Wire form (one line of ASCII):
//
//	pl1.<payload>.<signature>
//
// payload and signature are unpadded base64url (RFC 4648 §5). The payload
// is the canonical encoding of a Ticket: the JSON that encoding/json's
// Marshal produces for the Ticket struct (fields in declaration order, no
// insignificant white space, HTML characters escaped as \u003c etc.).
// Decode refuses any payload that is not byte for byte the encoding of
// what it decodes to, so a ticket has exactly one signed form. The
// signature is Ed25519 (RFC 8032) over "pl-ticket-1\n" followed by the
// payload bytes.
package ticket

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
)

// Prefix starts every ticket; Domain is signed before the payload.
const (
	Prefix = "pl1."
	Domain = "pl-ticket-1\n"
	// MaxSize bounds a ticket's wire form (a sliver record with many keys
	// and tags fits easily).
	MaxSize = 64 << 10
	// MaxNodes bounds the nodes one ticket names.
	MaxNodes = 1000
)

// Ticket is what a ticket grants.
type Ticket struct {
	V         int         `json:"v"`          // 1
	Key       string      `json:"key"`        // KeyID of the signer
	Nonce     string      `json:"nonce"`      // 32 lower-case hex digits, unique per ticket
	NotBefore int64       `json:"not_before"` // UNIX seconds
	NotAfter  int64       `json:"not_after"`  // UNIX seconds, exclusive
	Nodes     []int64     `json:"nodes"`      // node ids, ascending, no repeats
	RSpec     rspec.RSpec `json:"rspec"`
	// Sliver is the slice as PLC lists it to nodes (name, id, keys, tags):
	// enough for a node to create the sliver without asking PLC.
	Sliver core.Sliver `json:"sliver"`
}

// KeyID names a public key: "ed25519:" and the first 8 bytes of its
// SHA-256 in hex.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(h[:8])
}

// NewNonce returns a fresh random nonce.
func NewNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ticket: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Check validates the fields of t (not its signature).
func (t *Ticket) Check() error {
	if t.V != 1 {
		return core.FieldErrorf("v", "version %d is not 1", t.V)
	}
	if !strings.HasPrefix(t.Key, "ed25519:") || len(t.Key) != len("ed25519:")+16 {
		return core.FieldErrorf("key", "%q is not a key id", t.Key)
	}
	if len(t.Nonce) != 32 || strings.Trim(t.Nonce, "0123456789abcdef") != "" {
		return core.FieldErrorf("nonce", "want 32 lower-case hex digits")
	}
	if t.NotBefore <= 0 || t.NotAfter <= t.NotBefore {
		return core.FieldErrorf("not_after", "validity window [%d, %d) is empty", t.NotBefore, t.NotAfter)
	}
	if len(t.Nodes) == 0 || len(t.Nodes) > MaxNodes {
		return core.FieldErrorf("nodes", "%d nodes (want 1 to %d)", len(t.Nodes), MaxNodes)
	}
	for i, n := range t.Nodes {
		if n <= 0 || (i > 0 && n <= t.Nodes[i-1]) {
			return core.FieldErrorf("nodes", "node ids must be positive, ascending and distinct")
		}
	}
	if err := t.RSpec.Validate(); err != nil {
		return err
	}
	if t.Sliver.Name == "" || t.Sliver.SliceID <= 0 {
		return core.FieldErrorf("sliver", "no slice name or id")
	}
	return nil
}

// For reports whether t names node.
func (t *Ticket) For(node int64) bool {
	_, ok := slices.BinarySearch(t.Nodes, node)
	return ok
}

// Encode returns the canonical payload of t.
func (t *Ticket) Encode() ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("ticket: %w", err)
	}
	return b, nil
}

// Sign checks t, sets its Key from priv and returns the wire form.
func Sign(t Ticket, priv ed25519.PrivateKey) (string, error) {
	t.Key = KeyID(priv.Public().(ed25519.PublicKey))
	if err := t.Check(); err != nil {
		return "", err
	}
	p, err := t.Encode()
	if err != nil {
		return "", err
	}
	sig := ed25519.Sign(priv, append([]byte(Domain), p...))
	enc := base64.RawURLEncoding
	return Prefix + enc.EncodeToString(p) + "." + enc.EncodeToString(sig), nil
}

// Decode parses the wire form without checking the signature: the
// payload (canonical, checked) and the signature bytes. Every refusal is
// Invalid and says what was wrong.
func Decode(wire string) (*Ticket, []byte, []byte, error) {
	wire = strings.TrimSpace(wire)
	if len(wire) > MaxSize {
		return nil, nil, nil, core.FieldErrorf("ticket", "%d bytes, more than %d", len(wire), MaxSize)
	}
	rest, ok := strings.CutPrefix(wire, Prefix)
	if !ok {
		return nil, nil, nil, core.FieldErrorf("ticket", "does not start with %q", Prefix)
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, nil, nil, core.FieldErrorf("ticket", "no signature part")
	}
	enc := base64.RawURLEncoding.Strict()
	payload, err := enc.DecodeString(p64)
	if err != nil {
		return nil, nil, nil, core.FieldErrorf("ticket", "payload is not base64url: %v", err)
	}
	sig, err := enc.DecodeString(s64)
	if err != nil {
		return nil, nil, nil, core.FieldErrorf("ticket", "signature is not base64url: %v", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, nil, nil, core.FieldErrorf("ticket", "signature is %d bytes, not %d", len(sig), ed25519.SignatureSize)
	}
	var t Ticket
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, nil, nil, core.FieldErrorf("ticket", "payload: %v", err)
	}
	if again, err := t.Encode(); err != nil || !bytes.Equal(again, payload) {
		return nil, nil, nil, core.FieldErrorf("ticket", "payload is not in canonical form")
	}
	if err := t.Check(); err != nil {
		return nil, nil, nil, err
	}
	return &t, payload, sig, nil
}

// Verify decodes wire and checks its signature against the trusted key
// its Key names: unknown keys and bad signatures are Unauthenticated.
// It checks neither the node, the validity window nor the nonce (the
// node manager does, with its clock and its record of redeemed nonces).
func Verify(wire string, trusted map[string]ed25519.PublicKey) (*Ticket, error) {
	t, payload, sig, err := Decode(wire)
	if err != nil {
		return nil, err
	}
	pub, ok := trusted[t.Key]
	if !ok {
		return nil, core.Errorf(core.Unauthenticated, "ticket signed by %s, a key this node does not trust", t.Key)
	}
	if !ed25519.Verify(pub, append([]byte(Domain), payload...), sig) {
		return nil, core.Errorf(core.Unauthenticated, "ticket signature does not verify with %s", t.Key)
	}
	return t, nil
}

// NewPublicKey describes pub for nodes' state.
func NewPublicKey(pub ed25519.PublicKey, issuer string) core.TicketKey {
	return core.TicketKey{ID: KeyID(pub), Key: base64.StdEncoding.EncodeToString(pub), Issuer: issuer}
}

// Trusted turns distributed keys into a verification set; a key whose id
// does not match its bytes is refused.
func Trusted(keys []core.TicketKey) (map[string]ed25519.PublicKey, error) {
	out := map[string]ed25519.PublicKey{}
	for _, k := range keys {
		b, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, core.FieldErrorf("ticket_keys", "key %s of %s is not an Ed25519 public key", k.ID, k.Issuer)
		}
		if KeyID(b) != k.ID {
			return nil, core.FieldErrorf("ticket_keys", "key of %s has id %s, its bytes say %s", k.Issuer, k.ID, KeyID(b))
		}
		out[k.ID] = b
	}
	return out, nil
}

// Request asks PLC for a ticket (GetSliceTicket).
type Request struct {
	SliceID int64
	// NodeIDs are the nodes the ticket is for; empty = the slice's nodes.
	NodeIDs []int64
	// Duration of validity from now; 0 = DefaultDuration. The ticket
	// never outlives the slice.
	Duration time.Duration
	// RSpec, if set, is what the ticket grants (admins only); nil = what
	// the slice's tags say on the first node.
	RSpec *rspec.RSpec
}

// DefaultDuration and MaxDuration bound a ticket's validity.
const (
	DefaultDuration = 24 * time.Hour
	MaxDuration     = 30 * 24 * time.Hour
)

// Issuer issues tickets (PLC's service; the REST client).
type Issuer interface {
	SliceTicket(ctx context.Context, c *core.Caller, r Request) (string, error)
}

// ParseBrokers reads the brokers an admin trusts, each "<name>=<base64 of
// the 32-byte Ed25519 public key>" (`pl plc --ticket-broker`). A name is
// lower-case letters, digits, '.', '_' and '-' (at most 64, not "plc",
// PLC's own issuer name); a name or key given twice is refused.
func ParseBrokers(specs []string) ([]core.TicketKey, error) {
	var out []core.TicketKey
	names := map[string]bool{}
	keys := map[string]string{}
	for _, spec := range specs {
		name, key, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, core.FieldErrorf("ticket-broker", "%q: want <name>=<base64 Ed25519 public key>", spec)
		}
		if err := checkBrokerName(name); err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
		if err != nil {
			return nil, core.FieldErrorf("ticket-broker", "broker %s: key is not standard base64: %v", name, err)
		}
		if len(b) != ed25519.PublicKeySize {
			return nil, core.FieldErrorf("ticket-broker", "broker %s: key is %d bytes, an Ed25519 public key is %d", name, len(b), ed25519.PublicKeySize)
		}
		if names[name] {
			return nil, core.FieldErrorf("ticket-broker", "broker %s named twice", name)
		}
		k := NewPublicKey(b, name)
		if other, dup := keys[k.ID]; dup {
			return nil, core.FieldErrorf("ticket-broker", "brokers %s and %s have the same key %s", other, name, k.ID)
		}
		names[name], keys[k.ID] = true, name
		out = append(out, k)
	}
	return out, nil
}

func checkBrokerName(name string) error {
	if name == "" || len(name) > 64 {
		return core.FieldErrorf("ticket-broker", "broker name %q: want 1 to 64 characters", name)
	}
	if name == "plc" {
		return core.FieldErrorf("ticket-broker", "broker name plc is PLC's own key's")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return core.FieldErrorf("ticket-broker", "broker name %q: %q is not a lower-case letter, digit, '.', '_' or '-'", name, r)
		}
	}
	return nil
}
