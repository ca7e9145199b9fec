package codemux

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// MaxHello bounds the ClientHello codemux reads to route a TLS connection
// (large post-quantum key shares fit with room to spare).
const MaxHello = 32 << 10

// ReadClientHello reads the TLS records that carry a ClientHello from r
// and returns the server name it asks for (SNI, "" when absent) and every
// byte read, which the caller forwards unchanged to the chosen sliver.
// Nothing is decrypted or terminated: only the cleartext first handshake
// message is parsed. Errors say what was wrong (not TLS, truncated, too
// large, malformed).
func ReadClientHello(r io.Reader) (sni string, raw []byte, err error) {
	var hs []byte // handshake bytes gathered from the records
	for {
		var hdr [5]byte
		if n, err := io.ReadFull(r, hdr[:]); err != nil {
			return "", append(raw, hdr[:n]...), fmt.Errorf("tls record header: %w", err)
		}
		raw = append(raw, hdr[:]...)
		if hdr[0] != 22 { // handshake
			return "", raw, fmt.Errorf("not a TLS handshake (record type %d)", hdr[0])
		}
		if hdr[1] != 3 {
			return "", raw, fmt.Errorf("not TLS (record version %d.%d)", hdr[1], hdr[2])
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > 1<<14 {
			return "", raw, fmt.Errorf("tls record length %d out of range 1..16384", n)
		}
		if len(raw)+n > MaxHello {
			return "", raw, fmt.Errorf("ClientHello longer than %d bytes", MaxHello)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if got, err := io.ReadFull(r, raw[start:]); err != nil {
			return "", raw[:start+got], fmt.Errorf("tls record: %w", err)
		}
		hs = append(hs, raw[start:]...)
		if len(hs) < 4 {
			continue
		}
		if hs[0] != 1 {
			return "", raw, fmt.Errorf("first handshake message is type %d, not a ClientHello", hs[0])
		}
		want := 4 + (int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]))
		if want > MaxHello {
			return "", raw, fmt.Errorf("ClientHello longer than %d bytes", MaxHello)
		}
		if len(hs) >= want {
			sni, err := parseClientHello(hs[4:want])
			return sni, raw, err
		}
	}
}

var errHello = errors.New("malformed ClientHello")

// parseClientHello returns the host_name of the server_name extension of
// a ClientHello body (RFC 8446 4.1.2, RFC 6066 3).
func parseClientHello(body []byte) (string, error) {
	s := cryptobyte.String(body)
	var version uint16
	var random, session, suites, compression []byte
	if !s.ReadUint16(&version) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&session)) ||
		!s.ReadUint16LengthPrefixed((*cryptobyte.String)(&suites)) ||
		!s.ReadUint8LengthPrefixed((*cryptobyte.String)(&compression)) {
		return "", errHello
	}
	if s.Empty() { // no extensions, so no SNI
		return "", nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return "", errHello
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return "", errHello
		}
		if typ != 0 { // server_name
			continue
		}
		var list cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
			return "", fmt.Errorf("%w: bad server_name extension", errHello)
		}
		for !list.Empty() {
			var nameType uint8
			var name cryptobyte.String
			if !list.ReadUint8(&nameType) || !list.ReadUint16LengthPrefixed(&name) {
				return "", fmt.Errorf("%w: bad server_name list", errHello)
			}
			if nameType == 0 { // host_name
				if len(name) == 0 {
					return "", fmt.Errorf("%w: empty host_name", errHello)
				}
				return string(name), nil
			}
		}
		return "", nil
	}
	return "", nil
}
