package sshgw

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/atomicfile"
)

// LoadOrCreateHostKey returns the node's SSH host key stored at path (an
// OpenSSH private key file), creating a new ed25519 key there if the file
// does not exist. The file is written atomically with mode 0600, so a crash
// never leaves a half-written key. The node agent calls this before joining
// PLC to report the public half (see AuthorizedKey).
func LoadOrCreateHostKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("host key %s: %w", path, err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("host key: generate: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "pl node host key")
	if err != nil {
		return nil, fmt.Errorf("host key: encode: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	// Create, not replace, so that two processes racing to create the key
	// agree on one: the loser reads the winner's key.
	if err := atomicfile.Create(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateHostKey(path)
		}
		return nil, fmt.Errorf("host key: %w", err)
	}
	return ssh.NewSignerFromKey(priv)
}

// AuthorizedKey formats a public key in authorized_keys format without the
// trailing newline ("ssh-ed25519 AAAA..."), the form PLC stores as the
// node's ssh_rsa_key and nodeapi.Report.SSHHostKey carries.
func AuthorizedKey(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}
