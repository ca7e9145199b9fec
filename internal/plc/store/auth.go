package store

import (
	"context"
	"strings"
)

// The queries of authentication: logins, sessions, node keys and join
// secrets. The service decides; these only read and write rows.

// Login is what a password login needs of a person.
type Login struct {
	PersonID int64
	Hash     string // bcrypt hash; "" = no password set
	Enabled  bool
}

// PersonLogin returns the live (not deleted) person with the email
// (lowercased by the caller); found is false when there is none.
func (t *Tx) PersonLogin(ctx context.Context, email string) (l Login, found bool, err error) {
	var hash *string
	var enabled int64
	found, err = t.QueryRow(ctx, "SELECT person_id, password, enabled FROM persons WHERE email = ? AND deleted = 0", []any{email}, &l.PersonID, &hash, &enabled)
	if hash != nil {
		l.Hash = *hash
	}
	l.Enabled = enabled != 0
	return l, found, err
}

// PersonEmail returns a person's email ("" when there is no such person).
func (t *Tx) PersonEmail(ctx context.Context, personID int64) (string, error) {
	var email string
	_, err := t.QueryRow(ctx, "SELECT email FROM persons WHERE person_id = ?", []any{personID}, &email)
	return email, err
}

// SiteRoleHolders returns the emails of the enabled, live persons of a
// site who hold a role, sorted.
func (t *Tx) SiteRoleHolders(ctx context.Context, siteID int64, role string) ([]string, error) {
	return t.Strings(ctx, `SELECT p.email FROM persons p
		JOIN person_site ps ON ps.person_id = p.person_id
		JOIN person_role pr ON pr.person_id = p.person_id
		JOIN roles r ON r.role_id = pr.role_id
		WHERE ps.site_id = ? AND r.name = ? AND p.enabled = 1 AND p.deleted = 0
		ORDER BY p.email`, siteID, role)
}

// SiteLoginBase returns a site's login_base ("" when there is no such site).
func (t *Tx) SiteLoginBase(ctx context.Context, siteID int64) (string, error) {
	var lb string
	_, err := t.QueryRow(ctx, "SELECT login_base FROM sites WHERE site_id = ?", []any{siteID}, &lb)
	return lb, err
}

// SessionRow is a stored session: a person's (with an expiry) or a node's.
type SessionRow struct {
	PersonID *int64
	NodeID   *int64
	Expires  *int64 // UNIX seconds; nil = never
}

// Session returns the session with the hash.
func (t *Tx) Session(ctx context.Context, hash string) (r SessionRow, found bool, err error) {
	found, err = t.QueryRow(ctx, "SELECT person_id, node_id, expires FROM sessions WHERE session_hash = ?", []any{hash}, &r.PersonID, &r.NodeID, &r.Expires)
	return r, found, err
}

// DeleteSession deletes the session with the hash.
func (t *Tx) DeleteSession(ctx context.Context, hash string) error {
	_, err := t.Exec(ctx, "DELETE FROM sessions WHERE session_hash = ?", hash)
	return err
}

// InsertPersonSession stores a person's session.
func (t *Tx) InsertPersonSession(ctx context.Context, hash string, personID, created, expires int64) error {
	if _, err := t.Exec(ctx, "DELETE FROM sessions WHERE person_id = ? AND expires <= ?", personID, created); err != nil {
		return err
	}
	_, err := t.Exec(ctx, "INSERT INTO sessions (session_hash, person_id, created, expires) VALUES (?, ?, ?, ?)", hash, personID, created, expires)
	return err
}

// ReplaceNodeSession makes hash the node's only session.
func (t *Tx) ReplaceNodeSession(ctx context.Context, hash string, nodeID, created int64) error {
	if _, err := t.Exec(ctx, "DELETE FROM sessions WHERE node_id = ?", nodeID); err != nil {
		return err
	}
	_, err := t.Exec(ctx, "INSERT INTO sessions (session_hash, node_id, created) VALUES (?, ?, ?)", hash, nodeID, created)
	return err
}

// NodeSite returns the site of a live node; found is false when there is
// no such node.
func (t *Tx) NodeSite(ctx context.Context, nodeID int64) (site int64, found bool, err error) {
	found, err = t.QueryRow(ctx, "SELECT site_id FROM nodes WHERE node_id = ? AND deleted = 0", []any{nodeID}, &site)
	return site, found, err
}

// NodeKey returns the key of a live node ("" when it has none or there is
// no such node).
func (t *Tx) NodeKey(ctx context.Context, nodeID int64) (string, error) {
	var key *string
	if _, err := t.QueryRow(ctx, "SELECT key FROM nodes WHERE node_id = ? AND deleted = 0", []any{nodeID}, &key); err != nil || key == nil {
		return "", err
	}
	return *key, nil
}

// SetJoinSecret stores the hash of a node's join secret and its expiry.
func (t *Tx) SetJoinSecret(ctx context.Context, nodeID int64, hash string, expires int64) error {
	_, err := t.Exec(ctx, "UPDATE nodes SET join_secret = ?, join_expires = ? WHERE node_id = ?", hash, expires, nodeID)
	return err
}

// JoinSecret returns the hash and expiry of a live node's join secret
// ("", 0 when it has none or there is no such node).
func (t *Tx) JoinSecret(ctx context.Context, nodeID int64) (hash string, expires int64, err error) {
	var h *string
	var exp *int64
	if _, err := t.QueryRow(ctx, "SELECT join_secret, join_expires FROM nodes WHERE node_id = ? AND deleted = 0", []any{nodeID}, &h, &exp); err != nil || h == nil || exp == nil {
		return "", 0, err
	}
	return *h, *exp, nil
}

// CompleteJoin consumes a node's join secret, gives it its permanent key
// (and ssh host key, when not empty) and ends its sessions.
func (t *Tx) CompleteJoin(ctx context.Context, nodeID int64, key, sshHostKey string, now int64) error {
	q := "UPDATE nodes SET join_secret = NULL, join_expires = NULL, key = ?, last_updated = ?"
	args := []any{key, now}
	if sshHostKey != "" {
		q += ", ssh_rsa_key = ?"
		args = append(args, strings.TrimSpace(sshHostKey))
	}
	if _, err := t.Exec(ctx, q+" WHERE node_id = ?", append(args, nodeID)...); err != nil {
		return err
	}
	_, err := t.Exec(ctx, "DELETE FROM sessions WHERE node_id = ?", nodeID)
	return err
}
