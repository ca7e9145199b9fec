// Package rcap is resource capabilities on one node (the rcap of
// PlanetLab's node manager design, reference nodemanager.md §4): a slice
// acquires a capability for part of what it holds, an unguessable bearer
// token; whoever presents the token may bind it to a slice it controls
// (the resources then move there, as a loan would move them), split part
// of it off as a new capability, or release it (the resources go back to
// the slice they came from). Capabilities never create resources: they
// are taken out of what their slice holds with the loans' arithmetic
// (rspec.CheckTake), counted together with its loans.
//
// The token is "rcap1." and 32 random bytes in unpadded base64url. The
// node keeps only its SHA-256 (Cap.Hash), so its state files hold nothing
// a reader could present; the first 16 hex digits of the hash are the
// capability's public id.
//
// Lifecycle of one capability:
//
//	Acquire ──> unbound (reserved: the resources stay with From, but
//	   │          neither loans nor other capabilities may take them)
//	   │  Bind(to) ──> bound (From − Amount, To + Amount, applied live)
//	   │                  │  Bind(other) moves it; Delegate splits it
//	   └──────────────────┴──> Release or Until passes: gone, From has it back
//
// Everything here is pure: callers pass now and the random bytes' source.
package rcap

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
)

// Prefix starts every token.
const Prefix = "rcap1."

// tokenBytes is the token's randomness.
const tokenBytes = 32

// Cap is one capability as the node keeps it.
type Cap struct {
	Hash   string      `json:"hash"`         // hex SHA-256 of the token
	From   string      `json:"from"`         // the slice whose resources these are
	To     string      `json:"to,omitempty"` // the slice it is bound to; "" = unbound
	Amount rspec.RSpec `json:"amount"`
	Until  int64       `json:"until"` // UNIX seconds; it ends then
}

// ID is the capability's public id (what listings show; not a token).
func (c Cap) ID() string { return c.Hash[:min(16, len(c.Hash))] }

// Active reports whether c is in force at now.
func (c Cap) Active(now int64) bool { return now < c.Until }

// NewToken returns a fresh token read from random (crypto/rand.Reader
// when nil) and its hash.
func NewToken(random io.Reader) (token, hash string, err error) {
	if random == nil {
		random = rand.Reader
	}
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", "", fmt.Errorf("rcap: random bytes: %w", err)
	}
	token = Prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashOf(token), nil
}

func hashOf(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Parse checks a presented token's form and returns its hash: the prefix
// and exactly 32 bytes of strict unpadded base64url. The error is Invalid
// on field "rcap" and does not echo the token.
func Parse(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, Prefix)
	if !ok {
		return "", core.FieldErrorf("rcap", "not a capability: it does not start with %q", Prefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != rest { // the decoder skips \r and \n
		return "", core.FieldErrorf("rcap", "not a capability: not unpadded base64url")
	}
	if len(b) != tokenBytes {
		return "", core.FieldErrorf("rcap", "not a capability: %d bytes, not %d", len(b), tokenBytes)
	}
	return hashOf(token), nil
}

// Find returns the index of the capability with hash in caps at now. An
// unknown hash (never issued here, released, or split into nothing) is
// NotFound; an ended one is Forbidden with its end.
func Find(caps []Cap, hash string, now int64) (int, error) {
	for i, c := range caps {
		if c.Hash != hash {
			continue
		}
		if !c.Active(now) {
			return -1, core.Errorf(core.Forbidden, "capability %s ended at %d (now %d)", c.ID(), c.Until, now)
		}
		return i, nil
	}
	return -1, core.Errorf(core.NotFound, "no such capability on this node (never issued here, or released)")
}

// Taken is what the active capabilities of holder take out of it at now,
// bound or not.
func Taken(caps []Cap, holder string, now int64) rspec.RSpec {
	var t rspec.RSpec
	for _, c := range caps {
		if c.From == holder && c.Active(now) {
			t = t.Add(c.Amount)
		}
	}
	return t
}

// Loans returns the bound, active capabilities as the loans that move
// their resources (rspec.Effective applies them).
func Loans(caps []Cap, now int64) []rspec.Loan {
	var out []rspec.Loan
	for _, c := range caps {
		if c.To != "" && c.Active(now) {
			out = append(out, rspec.Loan{From: c.From, To: c.To, Amount: c.Amount, Until: c.Until})
		}
	}
	return out
}

// CheckAmount refuses an amount no capability can carry: negative or
// inconsistent values (rspec.Validate) and nothing at all.
func CheckAmount(a rspec.RSpec) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a == (rspec.RSpec{}) {
		return core.FieldErrorf("amount", "a capability for nothing")
	}
	return nil
}

// CheckAcquire says why holder cannot take amount into a new capability
// at now, given what it holds (holdings: own allocations), what it lends
// (lent: its active loans) and caps; nil if it can.
func CheckAcquire(holder string, amount rspec.RSpec, holdings map[string]rspec.RSpec, lent rspec.RSpec, caps []Cap, now int64) error {
	if err := CheckAmount(amount); err != nil {
		return err
	}
	return rspec.CheckTake(holder, amount, holdings, lent.Add(Taken(caps, holder, now)))
}

// Split takes amount out of c: it returns what is left of c and the new
// capability's part (same slice, binding none, same end). amount must be
// a part of c's amount, and not all of it (give away the token instead).
func Split(c Cap, amount rspec.RSpec) (rest, part Cap, err error) {
	if err := CheckAmount(amount); err != nil {
		return Cap{}, Cap{}, err
	}
	if n := c.Amount.Exceeds(amount); n != "" {
		return Cap{}, Cap{}, core.Errorf(core.Forbidden, "%s: capability %s holds %d: %d is more", n, c.ID(), c.Amount.Get(n), amount.Get(n))
	}
	if amount == c.Amount {
		return Cap{}, Cap{}, core.FieldErrorf("amount", "all of capability %s: hand over its token instead", c.ID())
	}
	rest, part = c, c
	rest.Amount = c.Amount.Sub(amount)
	part.Amount, part.To, part.Hash = amount, "", ""
	return rest, part, nil
}

// Prune drops the capabilities that ended before now.
func Prune(caps []Cap, now int64) []Cap {
	var out []Cap
	for _, c := range caps {
		if c.Active(now) {
			out = append(out, c)
		}
	}
	return out
}
