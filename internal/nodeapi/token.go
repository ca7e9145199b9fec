package nodeapi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/tlspin"
)

const tokenPrefix = "plj1"

// String formats the token as "plj1:<node_id>:<secret>:<fingerprint>".
func (t JoinToken) String() string {
	return fmt.Sprintf("%s:%d:%s:%s", tokenPrefix, t.NodeID, t.Secret, t.Fingerprint)
}

// ParseJoinToken parses the output of JoinToken.String, naming what is wrong.
func ParseJoinToken(s string) (JoinToken, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) != 4 || parts[0] != tokenPrefix {
		return JoinToken{}, fmt.Errorf("join token: want %s:<node_id>:<secret>:<fingerprint>", tokenPrefix)
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || id <= 0 {
		return JoinToken{}, fmt.Errorf("join token: node id %q is not a positive integer", parts[1])
	}
	if parts[2] == "" {
		return JoinToken{}, fmt.Errorf("join token: empty secret")
	}
	fp := strings.ToLower(parts[3])
	if fp != "" {
		if _, err := tlspin.Parse(fp); err != nil {
			return JoinToken{}, fmt.Errorf("join token: fingerprint is not a hex SHA-256")
		}
	}
	return JoinToken{NodeID: id, Secret: parts[2], Fingerprint: fp}, nil
}
