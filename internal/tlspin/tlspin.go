// Package tlspin trusts a TLS server by the SHA-256 fingerprint of its
// certificate, whatever signed it: how the CLI (`pl login --fingerprint`),
// `pl dev` and nodes (the join token) trust a PLC with a self-signed
// certificate. A fingerprint is written as lowercase hex of the SHA-256 of
// the DER certificate; colons and upper case are accepted on input.
package tlspin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Fingerprint returns the lowercase hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// Parse parses a hex SHA-256 fingerprint (colons and case ignored).
func Parse(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(s, ":", "")))
	if err != nil || len(b) != sha256.Size {
		return nil, core.FieldErrorf("fingerprint", "%q is not a hex SHA-256", s)
	}
	return b, nil
}

// Config returns a TLS configuration that accepts exactly the server
// certificate whose DER SHA-256 is want.
func Config(want []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("PLC presented no certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("PLC certificate fingerprint %x does not match the pinned %x", got, want)
			}
			return nil
		},
	}
}

// Peer returns the fingerprint of the certificate that the TLS server at
// addr (host:port) presents. It connects without verification only to read
// the certificate, for showing or comparing; nothing is sent.
func Peer(ctx context.Context, addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: host}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("no certificate")
	}
	return Fingerprint(certs[0].Raw), nil
}
