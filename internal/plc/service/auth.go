package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// DefaultSessionTTL is the lifetime of a person session.
const DefaultSessionTTL = 24 * time.Hour

// MaxSessionTTL bounds sessions and API tokens.
const MaxSessionTTL = 366 * 24 * time.Hour

// JoinSecretTTL is the lifetime of a node join secret.
const JoinSecretTTL = 24 * time.Hour

func randomB64(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// newNodeKey makes a node key as the original: base64 of 32 random bytes
// with '=' stripped.
func newNodeKey() string { return strings.TrimRight(randomB64(32), "=") }

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Passwords are bcrypt over the base64 SHA-256 of the password, so that
// passwords longer than bcrypt's 72 bytes keep all their entropy.
func prehash(pw string) []byte {
	h := sha256.Sum256([]byte(pw))
	return []byte(base64.StdEncoding.EncodeToString(h[:]))
}

func (s *Service) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword(prehash(pw), s.opts.PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

func checkPassword(hash, pw string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), prehash(pw)) == nil
}

// dummyHash equalises the time of logins for unknown accounts.
var dummyHash, _ = bcrypt.GenerateFromPassword(prehash("dummy"), 10)

var errAuth = core.Errorf(core.Unauthenticated, "Failed to authenticate call")

// Authenticate implements core.Registry. Every credential check runs
// under the login backoff (limiter.go); a caller who holds none of roles
// is refused by roleDenied.
func (s *Service) Authenticate(ctx context.Context, cred core.Credentials, roles []string) (*core.Caller, error) {
	var (
		c   *core.Caller
		err error
	)
	switch cred.Method {
	case "", "anonymous":
		c = &core.Caller{Kind: core.Anonymous, Roles: []string{core.RoleAnonymous}}
	case "password", "capability":
		c, err = s.authPassword(ctx, cred)
	case "session":
		c, err = s.authSession(ctx, cred.Session)
	case "node_key":
		c, err = s.authNodeKey(ctx, cred.NodeID, cred.NodeKey)
	default:
		return nil, core.FieldErrorf("AuthMethod", "Invalid AuthMethod value %q: must be password, capability, session, node_key or anonymous", cred.Method)
	}
	if err != nil {
		return nil, err
	}
	if len(roles) > 0 && !RolesOf(roles...).AllowsCaller(c) {
		return nil, s.roleDenied(ctx, cred.Method, c, roles)
	}
	return c, nil
}

// roleDenied is the one place where "the caller holds none of the
// operation's roles" becomes an error, with the original's codes
// (PLC/Auth.py, reference plcapi.md §3): a session caller gets Forbidden
// (PLCAPI fault 108, HTTP 403; the session survives); password, anonymous
// and node-key callers get Unauthenticated (fault 103, HTTP 401), as
// BootAuth callers do in the PLCAPI transport. The message says which
// roles are needed and, for a person, who holds them at their sites.
func (s *Service) roleDenied(ctx context.Context, method string, c *core.Caller, roles []string) error {
	var why string
	switch c.Kind {
	case core.Anonymous:
		why = "anonymous callers may not call this method (log in first)"
	case core.NodeCaller:
		why = "nodes may not call this method"
	default:
		why = s.missingRole(ctx, c, roles)
	}
	if method == "session" {
		return forbidden("Permission denied: %s", why)
	}
	return core.Errorf(core.Unauthenticated, "Failed to authenticate call: %s", why)
}

// siteRoleNames are the roles a site's own persons can grant or hold,
// with the words for their holders.
var siteRoleNames = []struct{ role, holders string }{
	{core.RolePI, "PIs"}, {core.RoleTech, "techs"}, {core.RoleUser, "users"},
}

// missingRole explains a role mismatch to a person: "needs role admin or
// pi (you have user); the PIs of site princeton are: a@x, b@y".
func (s *Service) missingRole(ctx context.Context, c *core.Caller, roles []string) string {
	set := RolesOf(roles...)
	var needed []string
	for _, r := range set.Names() {
		if r != core.RoleNode && r != core.RoleAnonymous {
			needed = append(needed, r)
		}
	}
	have := "no role"
	if len(c.Roles) > 0 {
		have = strings.Join(c.Roles, ", ")
	}
	msg := fmt.Sprintf("needs role %s (you have %s)", strings.Join(needed, " or "), have)
	var parts []string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		for _, site := range c.SiteIDs[:min(len(c.SiteIDs), 3)] {
			lb, err := tx.SiteLoginBase(ctx, site)
			if err != nil {
				return err
			}
			for _, sr := range siteRoleNames {
				if !set.Has(sr.role) {
					continue
				}
				who, err := tx.SiteRoleHolders(ctx, site, sr.role)
				if err != nil {
					return err
				}
				switch {
				case len(who) == 0:
					parts = append(parts, fmt.Sprintf("site %s has no %s", lb, sr.role))
				case len(who) > 10:
					parts = append(parts, fmt.Sprintf("the %s of site %s are: %s and %d more", sr.holders, lb, strings.Join(who[:10], ", "), len(who)-10))
				default:
					parts = append(parts, fmt.Sprintf("the %s of site %s are: %s", sr.holders, lb, strings.Join(who, ", ")))
				}
			}
		}
		return nil
	})
	switch {
	case err != nil:
		s.log.Warn("listing role holders for a permission message", "err", err)
	case len(parts) > 0:
		msg += "; " + strings.Join(parts, "; ")
	case len(c.SiteIDs) == 0:
		msg += "; you belong to no site: ask a PLC admin"
	default:
		msg += "; ask a PLC admin"
	}
	return msg
}

func (s *Service) authPassword(ctx context.Context, cred core.Credentials) (*core.Caller, error) {
	email := strings.ToLower(strings.TrimSpace(cred.Username))
	var login store.Login
	err := s.limiter.guard(ctx, email, func() (bad bool, err error) {
		var found bool
		err = s.db.Read(ctx, func(tx *store.Tx) error {
			var err error
			login, found, err = tx.PersonLogin(ctx, email)
			return err
		})
		if err != nil {
			return false, s.mapErr(err)
		}
		if !found || login.Hash == "" {
			bcrypt.CompareHashAndPassword(dummyHash, prehash(cred.Password))
			return true, errAuth
		}
		if s.pwCache.verified(login.PersonID, email, cred.Password, login.Hash) {
			return false, nil
		}
		if !s.checkPassword(login.Hash, cred.Password) {
			return true, errAuth
		}
		if login.Enabled {
			s.pwCache.remember(login.PersonID, email, cred.Password, login.Hash)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if !login.Enabled {
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: account %s is disabled", email)
	}
	return s.personCaller(ctx, login.PersonID)
}

func (s *Service) personCaller(ctx context.Context, pid int64) (*core.Caller, error) {
	c := &core.Caller{Kind: core.PersonCaller, PersonID: pid}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if c.Email, err = tx.PersonEmail(ctx, pid); err != nil {
			return err
		}
		o := &op{ctx: ctx, s: s, tx: tx, c: c}
		if err := o.refreshCaller(); err != nil {
			return err
		}
		c = o.c
		return nil
	})
	return c, s.mapErr(err)
}

func (s *Service) authSession(ctx context.Context, id string) (*core.Caller, error) {
	if id == "" {
		return nil, core.FieldErrorf("session", "'session' not specified")
	}
	h := hashSecret(id)
	var row store.SessionRow
	var found bool
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		row, found, err = tx.Session(ctx, h)
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	if !found {
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: invalid session")
	}
	// Any authentication failure of a session deletes it, as the original.
	drop := func(why string) (*core.Caller, error) {
		s.db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteSession(ctx, h) })
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: %s", why)
	}
	if row.NodeID != nil {
		c, err := s.nodeCaller(ctx, *row.NodeID)
		if err != nil {
			if core.ErrorCode(err) == core.Unauthenticated {
				return drop("node no longer exists")
			}
			return nil, err
		}
		c.Session = id
		return c, nil
	}
	if row.PersonID == nil {
		return drop("session has no owner")
	}
	if row.Expires != nil && *row.Expires <= s.now() {
		return drop("session expired")
	}
	c, err := s.personCaller(ctx, *row.PersonID)
	if err != nil {
		if core.ErrorCode(err) == core.Unauthenticated {
			return drop("account disabled or deleted")
		}
		return nil, err
	}
	c.Session = id
	return c, nil
}

func (s *Service) nodeCaller(ctx context.Context, nid int64) (*core.Caller, error) {
	var site int64
	var found bool
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		site, found, err = tx.NodeSite(ctx, nid)
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	if !found {
		return nil, errAuth
	}
	return &core.Caller{Kind: core.NodeCaller, NodeID: nid, Roles: []string{core.RoleNode}, SiteIDs: []int64{site}}, nil
}

func (s *Service) nodeKey(ctx context.Context, nid int64) (string, error) {
	var key string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		key, err = tx.NodeKey(ctx, nid)
		return err
	})
	return key, s.mapErr(err)
}

func (s *Service) authNodeKey(ctx context.Context, nid int64, given string) (*core.Caller, error) {
	var c *core.Caller
	err := s.limiter.guard(ctx, fmt.Sprintf("node %d", nid), func() (bool, error) {
		key, err := s.nodeKey(ctx, nid)
		if err != nil {
			return false, err
		}
		if key == "" || given == "" || subtle.ConstantTimeCompare([]byte(key), []byte(given)) != 1 {
			return true, errAuth
		}
		c, err = s.nodeCaller(ctx, nid)
		return false, err
	})
	return c, err
}

// VerifyNodeHMAC implements core.Registry (PLCAPI BootAuth).
func (s *Service) VerifyNodeHMAC(ctx context.Context, nodeID int64, value, message string) (*core.Caller, error) {
	var c *core.Caller
	err := s.limiter.guard(ctx, fmt.Sprintf("node %d", nodeID), func() (bool, error) {
		key, err := s.nodeKey(ctx, nodeID)
		if err != nil {
			return false, err
		}
		if key == "" {
			return true, core.Errorf(core.Unauthenticated, "Failed to authenticate call: no such node or node has no key")
		}
		m := hmac.New(sha1.New, []byte(key))
		m.Write([]byte(message))
		want := hex.EncodeToString(m.Sum(nil))
		if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(value))) != 1 {
			return true, core.Errorf(core.Unauthenticated, "Failed to authenticate call: Call could not be authenticated")
		}
		c, err = s.nodeCaller(ctx, nodeID)
		return false, err
	})
	return c, err
}

// CreateSession implements core.Registry. Person sessions last ttl (24 h by
// default, at most MaxSessionTTL: long ones serve as API tokens); a node
// has one session without expiry, replacing any earlier one.
func (s *Service) CreateSession(ctx context.Context, c *core.Caller, ttl time.Duration) (core.SessionInfo, error) {
	if err := authorize(c, opGetSession); err != nil {
		return core.SessionInfo{}, err
	}
	if ttl < 0 || ttl > MaxSessionTTL {
		return core.SessionInfo{}, core.FieldErrorf("expires", "session lifetime must be between 0 and %v", MaxSessionTTL)
	}
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	id := randomB64(32)
	var info core.SessionInfo
	err := s.write(ctx, c, func(o *op) error {
		if c.Session != "" && ttl == DefaultSessionTTL {
			// Under session auth, GetSession returns the same session.
			row, found, err := o.tx.Session(ctx, hashSecret(c.Session))
			if err != nil {
				return err
			}
			if found {
				info = core.SessionInfo{ID: c.Session}
				if row.Expires != nil {
					info.Expires = *row.Expires
				}
				return nil
			}
		}
		h := hashSecret(id)
		if isNode(c) {
			info = core.SessionInfo{ID: id}
			return o.tx.ReplaceNodeSession(ctx, h, c.NodeID, o.now)
		}
		exp := o.now + int64(ttl/time.Second)
		info = core.SessionInfo{ID: id, Expires: exp}
		return o.tx.InsertPersonSession(ctx, h, o.c.PersonID, o.now, exp)
	})
	return info, err
}

// DeleteSession implements core.Registry: callers end their own sessions
// (id "" = the session the caller authenticated with); admins any.
func (s *Service) DeleteSession(ctx context.Context, c *core.Caller, id string) error {
	if err := authorize(c, opDeleteSession); err != nil {
		return err
	}
	if id == "" {
		id = c.Session
	}
	if id == "" {
		return core.FieldErrorf("session", "no session to delete")
	}
	return s.write(ctx, c, func(o *op) error {
		h := hashSecret(id)
		if len(id) == 64 && !strings.ContainsAny(id, "+/=") {
			// GetSessions shows hashes; admins may delete by hash.
			if isAdmin(o.c) {
				h = id
			}
		}
		row, found, err := o.tx.Session(ctx, h)
		if err != nil {
			return err
		}
		if !found {
			return notFound(core.Session, "(given id)")
		}
		own := (row.PersonID != nil && isPerson(o.c) && *row.PersonID == o.c.PersonID) ||
			(row.NodeID != nil && isNode(o.c) && *row.NodeID == o.c.NodeID)
		if !own && !isAdmin(o.c) {
			return forbidden("Permission denied: not your session")
		}
		return o.tx.DeleteSession(ctx, h)
	})
}

// IssueJoinToken implements core.Registry.
func (s *Service) IssueJoinToken(ctx context.Context, c *core.Caller, nodeID int64) (string, error) {
	if err := authorize(c, opIssueJoinToken); err != nil {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", core.Errorf(core.Internal, "random: %v", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	err := s.write(ctx, c, func(o *op) error {
		site, err := o.nodeSite(nodeID)
		if err != nil {
			return err
		}
		if err := o.local(core.Node, nodeID); err != nil {
			return err
		}
		if !isAdmin(o.c) && !(atSite(o.c, site) && (o.c.HasRole(core.RolePI) || o.c.HasRole(core.RoleTech))) {
			return forbidden("Permission denied: not a pi or tech of the node's site")
		}
		return o.tx.SetJoinSecret(ctx, nodeID, hashSecret(secret), o.now+int64(JoinSecretTTL/time.Second))
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// JoinNode implements core.Registry: a valid, unexpired join secret is
// consumed and the node gets a fresh permanent key.
func (s *Service) JoinNode(ctx context.Context, nodeID int64, secret, sshHostKey string) (string, error) {
	if sshHostKey != "" {
		if _, err := ParseSSHKey(sshHostKey); err != nil {
			return "", core.FieldErrorf("ssh_host_key", "%v", err)
		}
	}
	key := newNodeKey()
	err := s.limiter.guard(ctx, fmt.Sprintf("join of node %d", nodeID), func() (bool, error) {
		err := s.write(ctx, nil, func(o *op) error {
			h, exp, err := o.tx.JoinSecret(ctx, nodeID)
			if err != nil {
				return err
			}
			if h == "" || exp <= o.now || subtle.ConstantTimeCompare([]byte(h), []byte(hashSecret(secret))) != 1 {
				return core.Errorf(core.Unauthenticated, "invalid, used or expired join secret for node %d", nodeID)
			}
			return o.tx.CompleteJoin(ctx, nodeID, key, sshHostKey, o.now)
		})
		return core.ErrorCode(err) == core.Unauthenticated, err
	})
	if err != nil {
		return "", err
	}
	return key, nil
}
