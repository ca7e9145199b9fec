package nodecmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/node/sshgw"
	"github.com/planetlab/pl/internal/nodeapi"
)

// DefaultStateDir is where a node keeps its identity and state.
const DefaultStateDir = "/var/lib/pl/node"

// Files under the state directory.
const (
	nodeFileName    = "node.json"
	hostKeyFileName = "ssh_host_ed25519_key"
)

// NodeFile is the node's identity, written by `pl node join`.
type NodeFile struct {
	PLCURL      string `json:"plc_url"`
	NodeID      int64  `json:"node_id"`
	NodeKey     string `json:"node_key"`
	Fingerprint string `json:"fingerprint"` // pinned PLC certificate (hex SHA-256), "" = plain HTTP
	Hostname    string `json:"hostname"`
}

// LoadNodeFile reads and validates <state>/node.json.
func LoadNodeFile(state string) (NodeFile, error) {
	path := filepath.Join(state, nodeFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return NodeFile{}, core.Errorf(core.NotFound, "%s does not exist: join the node to PLC first with `pl node join <plc-url> <token>`", path)
	}
	if err != nil {
		return NodeFile{}, err
	}
	var nf NodeFile
	if err := json.Unmarshal(data, &nf); err != nil {
		return NodeFile{}, core.Errorf(core.Invalid, "%s: %v", path, err)
	}
	if nf.PLCURL == "" || nf.NodeID <= 0 || nf.NodeKey == "" {
		return NodeFile{}, core.Errorf(core.Invalid, "%s: plc_url, node_id and node_key are required", path)
	}
	return nf, nil
}

// SaveNodeFile writes <state>/node.json with mode 0600, atomically.
func SaveNodeFile(state string, nf NodeFile) error {
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(nf, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(state, nodeFileName)
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600)
}

// HostKey loads (creating it if absent) the node's persistent SSH host key
// and returns its public half in authorized_keys format.
func HostKey(state string) (string, error) {
	signer, err := sshgw.LoadOrCreateHostKey(filepath.Join(state, hostKeyFileName))
	if err != nil {
		return "", err
	}
	return sshgw.AuthorizedKey(signer.PublicKey()), nil
}

// Join joins the node to PLC with a one-time token (see nodeapi.JoinToken)
// and writes node.json under state. The host key is created if needed and
// sent to PLC.
func Join(ctx context.Context, state, plcURL, token string) (NodeFile, error) {
	tok, err := nodeapi.ParseJoinToken(token)
	if err != nil {
		return NodeFile{}, core.Errorf(core.Invalid, "%v", err)
	}
	pub, err := HostKey(state)
	if err != nil {
		return NodeFile{}, err
	}
	plcURL = strings.TrimRight(plcURL, "/")
	resp, err := plcclient.Join(ctx, plcURL, tok, pub)
	if err != nil {
		return NodeFile{}, fmt.Errorf("join %s: %w", plcURL, err)
	}
	nf := NodeFile{PLCURL: plcURL, NodeID: resp.NodeID, NodeKey: resp.NodeKey, Fingerprint: tok.Fingerprint, Hostname: resp.Hostname}
	if err := SaveNodeFile(state, nf); err != nil {
		return NodeFile{}, fmt.Errorf("save node identity: %w", err)
	}
	return nf, nil
}
