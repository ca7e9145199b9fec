package sshcli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/planetlab/pl/internal/atomicfile"
)

// KnownHostsFile is the file, in the pl configuration directory, that
// holds the host keys of nodes as PLC reported them.
const KnownHostsFile = "known_hosts"

// WriteKnownHost records node's host key under its hostname (ssh is run
// with HostKeyAlias=<hostname>) in the known_hosts file at path, replacing
// any earlier entry for that name. The file is rewritten atomically.
func WriteKnownHost(path string, n Node) error {
	if n.HostKey == nil {
		return fmt.Errorf("node %s has no ssh host key at PLC (it has not joined or reported yet)", n.Hostname)
	}
	var kept bytes.Buffer
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) > 0 && f[0] == n.Hostname {
			continue
		}
		kept.WriteString(line + "\n")
	}
	kept.WriteString(n.Hostname + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(n.HostKey))) + "\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, kept.Bytes(), 0o600)
}

// hostKeyCallback accepts exactly the node's key from PLC.
func hostKeyCallback(n Node) (ssh.HostKeyCallback, error) {
	if n.HostKey == nil {
		return nil, fmt.Errorf("no ssh host key at PLC")
	}
	want := n.HostKey.Marshal()
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if !bytes.Equal(key.Marshal(), want) {
			return fmt.Errorf("host key mismatch: the node presented %s, PLC has %s",
				ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(n.HostKey))
		}
		return nil
	}, nil
}

// Auth collects the user's credentials: the keys in ssh-agent
// ($SSH_AUTH_SOCK) and the given identity files, or the default
// ~/.ssh/id_{ed25519,ecdsa,rsa} when none are given. Encrypted key files
// are skipped with a warning (use ssh-agent for them). close releases the
// agent connection.
func Auth(identityFiles []string, warn func(string)) (methods []ssh.AuthMethod, close func(), err error) {
	close = func() {}
	var signers []ssh.Signer
	explicit := len(identityFiles) > 0
	if !explicit {
		if home, err := os.UserHomeDir(); err == nil {
			for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				identityFiles = append(identityFiles, filepath.Join(home, ".ssh", n))
			}
		}
	}
	for _, p := range identityFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			if explicit {
				return nil, close, fmt.Errorf("identity file: %w", err)
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(b)
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			warn(fmt.Sprintf("skipping %s: it is encrypted; add it to ssh-agent", p))
			continue
		}
		if err != nil {
			return nil, close, fmt.Errorf("identity file %s: %w", p, err)
		}
		signers = append(signers, s)
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			ag := agent.NewClient(c)
			close = func() { c.Close() }
			if as, err := ag.Signers(); err == nil {
				signers = append(signers, as...)
			}
		}
	}
	if len(signers) == 0 {
		return nil, close, errors.New("no ssh keys: start ssh-agent or give -i <key file>")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, close, nil
}
