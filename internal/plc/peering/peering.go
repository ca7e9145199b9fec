// Package peering is the wire contract between peering PLCs
// (docs/federation.md): each PLC's Ed25519 signing key and its text form,
// the signature of requests and answers over a canonical encoding, the
// paths, and the peer data a PLC hands its peers (data.go) with its strict
// decoder. It replaces the original's GPG signatures over canonicalised
// XML-RPC: Ed25519 keys are 32 bytes pasted by an admin, signing needs no
// keyring or external program, and the canonical form is a few lines of
// text instead of an XML canonicalisation.
//
// A signed message is, one field per line (LF), no trailing newline:
//
//	pl-peer-v1
//	<request|response>
//	<HTTP method>
//	<path with query>
//	<UNIX seconds>
//	<lowercase hex SHA-256 of the body>
//
// The signer puts its public key, the time and the signature in the
// headers PL-Peer-Key, PL-Peer-Time and PL-Peer-Signature. A request is
// answered only when the key is the key of a peer an admin added and the
// time is within MaxSkew; the answer is signed the same way (kind
// response, same method and path) and the caller checks it against the
// key it recorded for the peer. Replaying a request within the skew only
// repeats a read (peer data) or a refresh poke (notify), both idempotent.
package peering

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/tlspin"
)

// Paths served by every PLC for its peers, below the peer's URL (whose
// path ends with '/').
const (
	// PathPrefix is the common prefix of the peer paths.
	PathPrefix = "api/v1/peer/"
	// KeyPath answers GET, unsigned, with this PLC's public key (for its
	// peers' admins, who compare it out of band before AddPeer).
	KeyPath = "api/v1/peer/key"
	// DataPath answers GET with this PLC's peer data for the calling peer.
	DataPath = "api/v1/peer/data"
	// NotifyPath takes POST: the calling peer changed something this PLC
	// should refresh.
	NotifyPath = "api/v1/peer/notify"
)

// Headers of a signed request or answer.
const (
	HeaderKey       = "PL-Peer-Key"
	HeaderTime      = "PL-Peer-Time"
	HeaderSignature = "PL-Peer-Signature"
)

// MaxSkew is how far a signed message's time may be from the verifier's
// clock.
const MaxSkew = 5 * time.Minute

// KeyPrefix starts the text form of a public key.
const KeyPrefix = "ed25519:"

// FormatPublicKey is the text form of a public key: "ed25519:" and the
// standard base64 of its 32 bytes.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return KeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey parses the text form of a public key (the prefix may be
// left out; surrounding space is ignored).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), KeyPrefix)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not an Ed25519 public key (%q + base64 of 32 bytes): %v", KeyPrefix, err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("not an Ed25519 public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePin parses a peer's cacert: the SHA-256 fingerprint of its TLS
// certificate (tlspin), or a PEM certificate whose fingerprint is taken.
func ParsePin(s string) ([]byte, error) {
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("certificate: %v", err)
		}
		return tlspin.Parse(tlspin.Fingerprint(blk.Bytes))
	}
	return tlspin.Parse(s)
}

// LoadOrCreateKey reads this PLC's signing key from path (PKCS#8 PEM),
// creating it (mode 0600) on first start.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		der, merr := x509.MarshalPKCS8PrivateKey(priv)
		if merr != nil {
			return nil, merr
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Create(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if b, err = os.ReadFile(path); err != nil { // a concurrent first start wins
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return priv, nil
}

// Kinds of signed messages.
const (
	KindRequest  = "request"
	KindResponse = "response"
)

// Message is the canonical text that is signed (see the package comment).
func Message(kind, method, path string, unix int64, body []byte) []byte {
	h := sha256.Sum256(body)
	return []byte("pl-peer-v1\n" + kind + "\n" + method + "\n" + path + "\n" + strconv.FormatInt(unix, 10) + "\n" + hex.EncodeToString(h[:]))
}

// Sign sets the signature headers of a message on h.
func Sign(h http.Header, key ed25519.PrivateKey, kind, method, path string, now time.Time, body []byte) {
	unix := now.Unix()
	h.Set(HeaderKey, FormatPublicKey(key.Public().(ed25519.PublicKey)))
	h.Set(HeaderTime, strconv.FormatInt(unix, 10))
	h.Set(HeaderSignature, base64.StdEncoding.EncodeToString(ed25519.Sign(key, Message(kind, method, path, unix, body))))
}

// SignedKey returns the public key a message's headers claim (in text
// form), without verifying anything: the verifier looks it up among its
// peers, then calls Verify.
func SignedKey(h http.Header) (string, error) {
	k := h.Get(HeaderKey)
	if k == "" {
		return "", errors.New("unsigned: no " + HeaderKey + " header")
	}
	pub, err := ParsePublicKey(k)
	if err != nil {
		return "", fmt.Errorf("%s: %v", HeaderKey, err)
	}
	return FormatPublicKey(pub), nil
}

// Verify checks that h carries a signature by pub of the message, made
// within MaxSkew of now. Errors say what was wrong.
func Verify(h http.Header, pub ed25519.PublicKey, kind, method, path string, now time.Time, body []byte) error {
	claimed, err := SignedKey(h)
	if err != nil {
		return err
	}
	if claimed != FormatPublicKey(pub) {
		return errors.New("signed by another key than the peer's")
	}
	ts := h.Get(HeaderTime)
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not UNIX seconds", HeaderTime, ts)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("signature time %s is %s away from this PLC's clock (at most %s)", time.Unix(unix, 0).UTC().Format(time.RFC3339), d.Round(time.Second), MaxSkew)
	}
	sig, err := base64.StdEncoding.DecodeString(h.Get(HeaderSignature))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%s is not a base64 Ed25519 signature", HeaderSignature)
	}
	if !ed25519.Verify(pub, Message(kind, method, path, unix, body), sig) {
		return errors.New("bad signature")
	}
	return nil
}
