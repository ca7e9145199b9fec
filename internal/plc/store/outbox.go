package store

import (
	"context"
	"strings"
)

// Mail is one message of the outbox.
type Mail struct {
	ID         int64
	Key        string // "" = none; a second message with the same key is dropped
	Created    int64
	Kind       string
	Recipients []string
	Subject    string
	Body       string
	Attempts   int64
	NextTry    int64
	SentAt     int64 // 0 = not yet
	LastError  string
}

// EnqueueMail adds a message to the outbox, due at once. A message whose
// key is already in the outbox is not added again: added reports whether
// this one was.
func (t *Tx) EnqueueMail(ctx context.Context, m Mail) (id int64, added bool, err error) {
	var key any
	if m.Key != "" {
		key = m.Key
	}
	found, err := t.QueryRow(ctx, `INSERT INTO outbox (key, created, kind, recipients, subject, body, next_try)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING mail_id`,
		[]any{key, m.Created, m.Kind, strings.Join(m.Recipients, ","), m.Subject, m.Body, m.Created}, &id)
	return id, found, err
}

const mailColumns = `mail_id, COALESCE(key, ''), created, kind, recipients, subject, body, attempts, next_try, COALESCE(sent_at, 0), last_error`

func (t *Tx) mails(ctx context.Context, where string, args ...any) ([]Mail, error) {
	rows, err := t.Query(ctx, `SELECT `+mailColumns+` FROM outbox WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Mail
	for rows.Next() {
		var m Mail
		var rcpt string
		if err := rows.Scan(&m.ID, &m.Key, &m.Created, &m.Kind, &rcpt, &m.Subject, &m.Body, &m.Attempts, &m.NextTry, &m.SentAt, &m.LastError); err != nil {
			return nil, wrapDB("scan", err)
		}
		if rcpt != "" {
			m.Recipients = strings.Split(rcpt, ",")
		}
		out = append(out, m)
	}
	return out, wrapDB("rows", rows.Err())
}

// DueMail returns at most limit unsent messages due at now, oldest first.
func (t *Tx) DueMail(ctx context.Context, now int64, limit int) ([]Mail, error) {
	return t.mails(ctx, `sent_at IS NULL AND next_try <= ? ORDER BY next_try, mail_id LIMIT ?`, now, limit)
}

// RecentMail returns the last limit messages, newest first.
func (t *Tx) RecentMail(ctx context.Context, limit int) ([]Mail, error) {
	return t.mails(ctx, `1 = 1 ORDER BY mail_id DESC LIMIT ?`, limit)
}

// OutboxPage returns at most limit messages, newest first: state ""
// (all), "queued" (never tried), "failed" (tried, unsent) or "sent";
// before > 0 keeps the ids below it.
func (t *Tx) OutboxPage(ctx context.Context, state string, before int64, limit int) ([]Mail, error) {
	where := "1 = 1"
	switch state {
	case "queued":
		where = "sent_at IS NULL AND attempts = 0"
	case "failed":
		where = "sent_at IS NULL AND attempts > 0"
	case "sent":
		where = "sent_at IS NOT NULL"
	}
	if before <= 0 {
		before = 1 << 62
	}
	return t.mails(ctx, where+` AND mail_id < ? ORDER BY mail_id DESC LIMIT ?`, before, limit)
}

// MailSent records a delivery.
func (t *Tx) MailSent(ctx context.Context, id, at int64) error {
	_, err := t.Exec(ctx, `UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = '' WHERE mail_id = ?`, at, id)
	return err
}

// MailFailed records a failed attempt and when to try again.
func (t *Tx) MailFailed(ctx context.Context, id, nextTry int64, why string) error {
	_, err := t.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE mail_id = ?`, nextTry, why, id)
	return err
}

// ExpiringSlice is a live slice that expires in a window.
type ExpiringSlice struct {
	ID      int64
	Name    string
	SiteID  int64
	Expires int64
}

// ExpiringSlices returns the live slices with from < expires <= until.
func (t *Tx) ExpiringSlices(ctx context.Context, from, until int64) ([]ExpiringSlice, error) {
	rows, err := t.Query(ctx, `SELECT slice_id, name, site_id, expires FROM slices WHERE deleted = 0 AND expires > ? AND expires <= ? ORDER BY slice_id`, from, until)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExpiringSlice
	for rows.Next() {
		var s ExpiringSlice
		if err := rows.Scan(&s.ID, &s.Name, &s.SiteID, &s.Expires); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, s)
	}
	return out, wrapDB("rows", rows.Err())
}

// SliceMailRecipients returns the e-mail addresses of a slice's enabled,
// live members and of the enabled, live PIs of its site, sorted, once each.
func (t *Tx) SliceMailRecipients(ctx context.Context, sliceID, siteID int64) ([]string, error) {
	rows, err := t.Query(ctx, `SELECT p.email FROM persons p JOIN slice_person sp ON sp.person_id = p.person_id
		WHERE sp.slice_id = ? AND p.enabled = 1 AND p.deleted = 0
		UNION SELECT p.email FROM persons p JOIN person_site ps ON ps.person_id = p.person_id JOIN person_role pr ON pr.person_id = p.person_id
		WHERE ps.site_id = ? AND pr.role_id = 20 AND p.enabled = 1 AND p.deleted = 0
		ORDER BY 1`, sliceID, siteID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, e)
	}
	return out, wrapDB("rows", rows.Err())
}
