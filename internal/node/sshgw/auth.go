package sshgw

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// Authentication. The client only ever learns "Permission denied
// (publickey)" from a failed attempt; the reason is logged on the node, and
// for refusals that are not about the key (unknown slice, disabled,
// expired or stopped sliver) it is also shown in the pre-auth banner so a
// user knows why.

// errAuth is a refused authentication with the reason for the log.
type errAuth struct{ reason string }

func (e *errAuth) Error() string { return e.reason }

// checkKey is the PublicKeyCallback: the key must be one of the slice's
// current member keys and the sliver must accept logins.
func (g *Gateway) checkKey(md ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	slice := md.User()
	acc, ok := g.cfg.Slices.Lookup(slice)
	if !ok {
		return nil, &errAuth{"unknown slice"}
	}
	if why := acc.refusal(g.cfg.Now()); why != "" {
		return nil, &errAuth{"sliver " + why}
	}
	want := key.Marshal()
	for _, line := range acc.Keys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			g.log.Debug("ssh: ignoring unparseable slice key", "slice", slice, "err", err)
			continue
		}
		if bytes.Equal(k.Marshal(), want) {
			return &ssh.Permissions{Extensions: map[string]string{"key-fp": ssh.FingerprintSHA256(key)}}, nil
		}
	}
	return nil, &errAuth{"key " + ssh.FingerprintSHA256(key) + " is not a key of the slice's members"}
}

// logAuth logs every publickey attempt with its outcome.
func (g *Gateway) logAuth(md ssh.ConnMetadata, method string, err error) {
	log := g.log.With("slice", md.User(), "remote", md.RemoteAddr().String(), "method", method)
	var ea *errAuth
	switch {
	case err == nil:
		log.Info("ssh login")
	case errors.As(err, &ea):
		log.Info("ssh login refused", "reason", ea.reason)
	case method == "none":
		// Every client starts with "none" to learn the methods.
	default:
		log.Info("ssh login refused", "reason", err.Error())
	}
}

// banner tells the client, before authentication, why logins to the slice
// will be refused when the reason is the slice's state.
func (g *Gateway) banner(md ssh.ConnMetadata) string {
	acc, ok := g.cfg.Slices.Lookup(md.User())
	if !ok {
		return fmt.Sprintf("pl: there is no slice %q on this node\n", md.User())
	}
	if why := acc.refusal(g.cfg.Now()); why != "" {
		return fmt.Sprintf("pl: slice %s %s on this node; logins are refused\n", md.User(), why)
	}
	return ""
}
