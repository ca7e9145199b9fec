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
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

type remoteAddrKey struct{}

// WithRemoteAddr tells Authenticate where a request comes from, for the
// per-source rate limit of failed logins. Transports should set it.
func WithRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteAddrKey{}, addr)
}

func remoteAddr(ctx context.Context) string {
	s, _ := ctx.Value(remoteAddrKey{}).(string)
	return s
}

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

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

var errAuth = core.Errorf(core.Unauthenticated, "Failed to authenticate call")

// Authenticate implements core.Registry.
func (s *Service) Authenticate(ctx context.Context, cred core.Credentials, roles []string) (*core.Caller, error) {
	switch cred.Method {
	case "", "anonymous":
		if len(roles) > 0 && !contains(roles, core.RoleAnonymous) {
			return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: anonymous callers may not call this method")
		}
		return &core.Caller{Kind: core.Anonymous, Roles: []string{core.RoleAnonymous}}, nil
	case "password", "capability":
		return s.authPassword(ctx, cred, roles)
	case "session":
		return s.authSession(ctx, cred.Session, roles)
	case "node_key":
		c, err := s.authNodeKey(ctx, cred.NodeID, cred.NodeKey)
		if err != nil {
			return nil, err
		}
		if len(roles) > 0 && !contains(roles, core.RoleNode) {
			return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: nodes may not call this method")
		}
		return c, nil
	}
	return nil, core.FieldErrorf("AuthMethod", "Invalid AuthMethod value %q: must be password, capability, session, node_key or anonymous", cred.Method)
}

func (s *Service) authPassword(ctx context.Context, cred core.Credentials, roles []string) (*core.Caller, error) {
	email := strings.ToLower(strings.TrimSpace(cred.Username))
	src := remoteAddr(ctx)
	if !s.limiter.allow(email, src) {
		return nil, core.Errorf(core.Unavailable, "too many failed logins; try again later")
	}
	var (
		pid     int64
		hash    *string
		enabled int64
	)
	var found bool
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		found, err = tx.QueryRow(ctx, "SELECT person_id, password, enabled FROM persons WHERE email = ? AND deleted = 0", []any{email}, &pid, &hash, &enabled)
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	h := ""
	if hash != nil {
		h = *hash
	}
	if !found || h == "" {
		bcrypt.CompareHashAndPassword(dummyHash, prehash(cred.Password))
		s.limiter.fail(email, src)
		return nil, errAuth
	}
	if !checkPassword(h, cred.Password) {
		s.limiter.fail(email, src)
		return nil, errAuth
	}
	if enabled == 0 {
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: account %s is disabled", email)
	}
	c, err := s.personCaller(ctx, pid)
	if err != nil {
		return nil, err
	}
	if len(roles) > 0 && !intersects(c.Roles, roles) {
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: not allowed to call this method")
	}
	return c, nil
}

func (s *Service) personCaller(ctx context.Context, pid int64) (*core.Caller, error) {
	c := &core.Caller{Kind: core.PersonCaller, PersonID: pid}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		if _, err := tx.QueryRow(ctx, "SELECT email FROM persons WHERE person_id = ?", []any{pid}, &c.Email); err != nil {
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

func (s *Service) authSession(ctx context.Context, id string, roles []string) (*core.Caller, error) {
	if id == "" {
		return nil, core.FieldErrorf("session", "'session' not specified")
	}
	h := hashSecret(id)
	var pid, nid *int64
	var expires *int64
	var found bool
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		found, err = tx.QueryRow(ctx, "SELECT person_id, node_id, expires FROM sessions WHERE session_hash = ?", []any{h}, &pid, &nid, &expires)
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	if !found {
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: invalid session")
	}
	drop := func(why string) (*core.Caller, error) {
		s.db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, "DELETE FROM sessions WHERE session_hash = ?", h)
			return err
		})
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: %s", why)
	}
	if nid != nil {
		c, err := s.nodeCaller(ctx, *nid)
		if err != nil {
			if core.ErrorCode(err) == core.Unauthenticated {
				return drop("node no longer exists")
			}
			return nil, err
		}
		if len(roles) > 0 && !contains(roles, core.RoleNode) {
			return nil, forbidden("Permission denied: nodes may not call this method")
		}
		c.Session = id
		return c, nil
	}
	if pid == nil {
		return drop("session has no owner")
	}
	if expires != nil && *expires <= s.now() {
		return drop("session expired")
	}
	c, err := s.personCaller(ctx, *pid)
	if err != nil {
		if core.ErrorCode(err) == core.Unauthenticated {
			return drop("account disabled or deleted")
		}
		return nil, err
	}
	c.Session = id
	if len(roles) > 0 && !intersects(c.Roles, roles) {
		return nil, forbidden("Permission denied: not allowed to call this method")
	}
	return c, nil
}

func (s *Service) nodeCaller(ctx context.Context, nid int64) (*core.Caller, error) {
	var site int64
	var found bool
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		found, err = tx.QueryRow(ctx, "SELECT site_id FROM nodes WHERE node_id = ? AND deleted = 0", []any{nid}, &site)
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
	var key *string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		_, err := tx.QueryRow(ctx, "SELECT key FROM nodes WHERE node_id = ? AND deleted = 0", []any{nid}, &key)
		return err
	})
	if err != nil {
		return "", s.mapErr(err)
	}
	if key == nil {
		return "", nil
	}
	return *key, nil
}

func (s *Service) authNodeKey(ctx context.Context, nid int64, given string) (*core.Caller, error) {
	lk := fmt.Sprintf("node:%d", nid)
	src := remoteAddr(ctx)
	if !s.limiter.allow(lk, src) {
		return nil, core.Errorf(core.Unavailable, "too many failed logins; try again later")
	}
	key, err := s.nodeKey(ctx, nid)
	if err != nil {
		return nil, err
	}
	if key == "" || given == "" || subtle.ConstantTimeCompare([]byte(key), []byte(given)) != 1 {
		s.limiter.fail(lk, src)
		return nil, errAuth
	}
	return s.nodeCaller(ctx, nid)
}

// VerifyNodeHMAC implements core.Registry (PLCAPI BootAuth).
func (s *Service) VerifyNodeHMAC(ctx context.Context, nodeID int64, value, message string) (*core.Caller, error) {
	lk := fmt.Sprintf("node:%d", nodeID)
	src := remoteAddr(ctx)
	if !s.limiter.allow(lk, src) {
		return nil, core.Errorf(core.Unavailable, "too many failed logins; try again later")
	}
	key, err := s.nodeKey(ctx, nodeID)
	if err != nil {
		return nil, err
	}
	if key == "" {
		s.limiter.fail(lk, src)
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: no such node or node has no key")
	}
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(message))
	want := hex.EncodeToString(m.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(value))) != 1 {
		s.limiter.fail(lk, src)
		return nil, core.Errorf(core.Unauthenticated, "Failed to authenticate call: Call could not be authenticated")
	}
	return s.nodeCaller(ctx, nodeID)
}

// CreateSession implements core.Registry. Person sessions last ttl (24 h by
// default, at most MaxSessionTTL: long ones serve as API tokens); a node
// has one session without expiry, replacing any earlier one.
func (s *Service) CreateSession(ctx context.Context, c *core.Caller, ttl time.Duration) (core.SessionInfo, error) {
	if err := authorize(c, "GetSession"); err != nil {
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
			var exp *int64
			found, err := o.tx.QueryRow(ctx, "SELECT expires FROM sessions WHERE session_hash = ?", []any{hashSecret(c.Session)}, &exp)
			if err != nil {
				return err
			}
			if found {
				info = core.SessionInfo{ID: c.Session}
				if exp != nil {
					info.Expires = *exp
				}
				return nil
			}
		}
		h := hashSecret(id)
		if isNode(c) {
			if _, err := o.tx.Exec(ctx, "DELETE FROM sessions WHERE node_id = ?", c.NodeID); err != nil {
				return err
			}
			if _, err := o.tx.Exec(ctx, "INSERT INTO sessions (session_hash, node_id, created) VALUES (?, ?, ?)", h, c.NodeID, o.now); err != nil {
				return err
			}
			info = core.SessionInfo{ID: id}
			return nil
		}
		exp := o.now + int64(ttl/time.Second)
		if _, err := o.tx.Exec(ctx, "DELETE FROM sessions WHERE person_id = ? AND expires <= ?", c.PersonID, o.now); err != nil {
			return err
		}
		if _, err := o.tx.Exec(ctx, "INSERT INTO sessions (session_hash, person_id, created, expires) VALUES (?, ?, ?, ?)", h, o.c.PersonID, o.now, exp); err != nil {
			return err
		}
		info = core.SessionInfo{ID: id, Expires: exp}
		return nil
	})
	return info, err
}

// DeleteSession implements core.Registry: callers end their own sessions
// (id "" = the session the caller authenticated with); admins any.
func (s *Service) DeleteSession(ctx context.Context, c *core.Caller, id string) error {
	if err := authorize(c, "DeleteSession"); err != nil {
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
		var pid, nid *int64
		found, err := o.tx.QueryRow(ctx, "SELECT person_id, node_id FROM sessions WHERE session_hash = ?", []any{h}, &pid, &nid)
		if err != nil {
			return err
		}
		if !found {
			return notFound(core.Session, "(given id)")
		}
		own := (pid != nil && isPerson(o.c) && *pid == o.c.PersonID) || (nid != nil && isNode(o.c) && *nid == o.c.NodeID)
		if !own && !isAdmin(o.c) {
			return forbidden("Permission denied: not your session")
		}
		_, err = o.tx.Exec(ctx, "DELETE FROM sessions WHERE session_hash = ?", h)
		return err
	})
}

// IssueJoinToken implements core.Registry.
func (s *Service) IssueJoinToken(ctx context.Context, c *core.Caller, nodeID int64) (string, error) {
	if err := authorize(c, "IssueJoinToken"); err != nil {
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
		if !isAdmin(o.c) && !(atSite(o.c, site) && (o.c.HasRole(core.RolePI) || o.c.HasRole(core.RoleTech))) {
			return forbidden("Permission denied: not a pi or tech of the node's site")
		}
		_, err = o.tx.Exec(ctx, "UPDATE nodes SET join_secret = ?, join_expires = ? WHERE node_id = ?", hashSecret(secret), o.now+int64(JoinSecretTTL/time.Second), nodeID)
		return err
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// JoinNode implements core.Registry: a valid, unexpired join secret is
// consumed and the node gets a fresh permanent key.
func (s *Service) JoinNode(ctx context.Context, nodeID int64, secret, sshHostKey string) (string, error) {
	lk := fmt.Sprintf("join:%d", nodeID)
	src := remoteAddr(ctx)
	if !s.limiter.allow(lk, src) {
		return "", core.Errorf(core.Unavailable, "too many failed joins; try again later")
	}
	if sshHostKey != "" {
		if _, err := ParseSSHKey(sshHostKey); err != nil {
			return "", core.FieldErrorf("ssh_host_key", "%v", err)
		}
	}
	key := newNodeKey()
	err := s.write(ctx, nil, func(o *op) error {
		var h *string
		var exp *int64
		found, err := o.tx.QueryRow(ctx, "SELECT join_secret, join_expires FROM nodes WHERE node_id = ? AND deleted = 0", []any{nodeID}, &h, &exp)
		if err != nil {
			return err
		}
		if !found || h == nil || exp == nil || *exp <= o.now ||
			subtle.ConstantTimeCompare([]byte(*h), []byte(hashSecret(secret))) != 1 {
			return core.Errorf(core.Unauthenticated, "invalid, used or expired join secret for node %d", nodeID)
		}
		q := "UPDATE nodes SET join_secret = NULL, join_expires = NULL, key = ?, last_updated = ?"
		args := []any{key, o.now}
		if sshHostKey != "" {
			q += ", ssh_rsa_key = ?"
			args = append(args, strings.TrimSpace(sshHostKey))
		}
		_, err = o.tx.Exec(ctx, q+" WHERE node_id = ?", append(args, nodeID)...)
		if err != nil {
			return err
		}
		_, err = o.tx.Exec(ctx, "DELETE FROM sessions WHERE node_id = ?", nodeID)
		return err
	})
	if core.ErrorCode(err) == core.Unauthenticated {
		s.limiter.fail(lk, src)
	}
	if err != nil {
		return "", err
	}
	return key, nil
}

// limiter counts failed logins per account and per source in a window.
type limiter struct {
	mu         sync.Mutex
	window     time.Duration
	maxAccount int
	maxSource  int
	now        func() time.Time
	fails      map[string][]time.Time
}

func newLimiter(window time.Duration, maxAccount, maxSource int, now func() time.Time) *limiter {
	return &limiter{window: window, maxAccount: maxAccount, maxSource: maxSource, now: now, fails: map[string][]time.Time{}}
}

func (l *limiter) recent(key string) int {
	cut := l.now().Add(-l.window)
	ts := l.fails[key]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = ts
	}
	return len(ts)
}

func (l *limiter) allow(account, source string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recent("a:"+account) >= l.maxAccount {
		return false
	}
	return source == "" || l.recent("s:"+source) < l.maxSource
}

func (l *limiter) fail(account, source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.fails["a:"+account] = append(l.fails["a:"+account], now)
	if source != "" {
		l.fails["s:"+source] = append(l.fails["s:"+source], now)
	}
	if len(l.fails) > 100000 {
		for k := range l.fails {
			l.recent(k)
		}
	}
}
