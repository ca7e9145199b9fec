package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/planetlab/pl/internal/atomicfile"
)

// TicketKeyFile holds PLC's ticket signing key: the base64 of the 32-byte
// Ed25519 seed, mode 0600, in the data directory.
const TicketKeyFile = "ticket.key"

// LoadOrCreateTicketKey reads the ticket key in dir, creating it on first
// use (two processes racing agree on one key: the file is created
// exclusively).
func LoadOrCreateTicketKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, TicketKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := atomicfile.Create(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("ticket key: %w", err)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("ticket key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ticket key %s: not the base64 of a %d-byte Ed25519 seed", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
