package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/store"
)

// One-time links: e-mail verification and password reset (the original's
// VerifyPerson and ResetPassword). A link carries a random token (32
// bytes of crypto/rand, base64url); the person's row keeps only
// "<purpose>:<hex SHA-256 of the token>" in verification_key and its end
// in verification_expires, as the original kept its key there. A person
// has at most one pending link; using it clears both columns in the
// transaction that checks it, so a link works once.
//
//	sign-up ──> verify link mailed ──> /verify?token= ──> key cleared (address verified)
//	forgot password / ResetPassword ──> reset link mailed ──> /reset?token= + new password ──> key cleared
//
// A disabled person whose verification_key starts with "verify:" has not
// verified the address yet.

// Link purposes (the prefix of verification_key).
const (
	PurposeVerify = "verify"
	PurposeReset  = "reset"
)

// TokenLifetime is how long a mailed link works (the original's 24 hours).
const TokenLifetime = 24 * time.Hour

// Notice and mail kinds of the links.
const (
	MailVerify        = "email_verify"
	MailReset         = "password_reset"
	MailResetPassword = "password_reset_done"
	MailNotifyPersons = "notify_persons"
	MailNotifySupport = "notify_support"
)

var errBadLink = core.Errorf(core.Forbidden, "this link is not valid: it was used already or replaced by a newer one")

// newToken returns a random token and what the store keeps of it.
func newToken(purpose string) (raw, stored string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	raw = base64.RawURLEncoding.EncodeToString(b[:])
	return raw, storedToken(purpose, raw), nil
}

func storedToken(purpose, raw string) string {
	h := sha256.Sum256([]byte(raw))
	return purpose + ":" + hex.EncodeToString(h[:])
}

// SetPortalURL sets Options.PortalURL; call it before serving (pl plc
// learns its URL once it listens).
func (s *Service) SetPortalURL(u string) { s.opts.PortalURL = u }

// linkURL is the portal page path with the token, under Options.PortalURL.
func (s *Service) linkURL(path, raw string) string {
	return strings.TrimRight(s.opts.PortalURL, "/") + path + "?token=" + url.QueryEscape(raw)
}

// tokenPerson is what the link code needs of a person.
type tokenPerson struct {
	id                 int64
	email, first, last string
	enabled            bool
	key                string
	expires            int64
	admin              bool
}

// findPerson reads a local live person by id or e-mail.
func (o *op) findPerson(who any) (tokenPerson, bool, error) {
	var p tokenPerson
	var key *string
	var exp *int64
	q := "SELECT person_id, email, first_name, last_name, enabled, verification_key, verification_expires FROM persons WHERE deleted = 0 AND "
	var arg any
	switch v := who.(type) {
	case int64:
		q, arg = q+"person_id = ?", v
	case string:
		q, arg = q+"email = ?", strings.ToLower(strings.TrimSpace(v))
	default:
		return p, false, core.FieldErrorf("person_id_or_email", "must be a person id or an e-mail address")
	}
	found, err := o.tx.QueryRow(o.ctx, q, []any{arg}, &p.id, &p.email, &p.first, &p.last, &p.enabled, &key, &exp)
	if err != nil || !found {
		return p, found, err
	}
	if key != nil {
		p.key = *key
	}
	if exp != nil {
		p.expires = *exp
	}
	roles, err := o.tx.Ints(o.ctx, "SELECT role_id FROM person_role WHERE person_id = ?", p.id)
	if err != nil {
		return p, false, err
	}
	aid, _ := RoleID(core.RoleAdmin)
	for _, r := range roles {
		p.admin = p.admin || r == aid
	}
	return p, true, nil
}

// issueLink stores a new link of purpose for p (expiring at expires; 0:
// TokenLifetime from now) and returns its token.
func (o *op) issueLink(p tokenPerson, purpose string, expires int64) (string, error) {
	raw, stored, err := newToken(purpose)
	if err != nil {
		return "", err
	}
	if expires == 0 {
		expires = o.now + int64(TokenLifetime/time.Second)
	}
	if _, err := o.tx.Exec(o.ctx, "UPDATE persons SET verification_key = ?, verification_expires = ? WHERE person_id = ?", stored, expires, p.id); err != nil {
		return "", err
	}
	return raw, nil
}

// useLink checks raw as p's pending link of purpose and clears it.
func (o *op) useLink(p tokenPerson, purpose, raw string) error {
	if p.key == "" || !strings.HasPrefix(p.key, purpose+":") || p.key != storedToken(purpose, raw) {
		return errBadLink
	}
	if p.expires < o.now {
		return core.Errorf(core.Forbidden, "this link has expired: ask for a new one")
	}
	n, err := o.tx.Exec(o.ctx, "UPDATE persons SET verification_key = NULL, verification_expires = NULL WHERE person_id = ? AND verification_key = ?", p.id, p.key)
	if err != nil {
		return err
	}
	if n != 1 {
		return errBadLink
	}
	return nil
}

// personByToken finds the person whose pending link is raw.
func (o *op) personByToken(purpose, raw string) (tokenPerson, error) {
	var id int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT person_id FROM persons WHERE deleted = 0 AND verification_key = ?", []any{storedToken(purpose, raw)}, &id)
	if err != nil {
		return tokenPerson{}, err
	}
	if !found {
		return tokenPerson{}, errBadLink
	}
	p, _, err := o.findPerson(id)
	return p, err
}

// mailTo puts one message to rcpt in the outbox.
func (o *op) mailTo(kind string, rcpt []string, subject, body string) error {
	if _, _, err := o.tx.EnqueueMail(o.ctx, store.Mail{Created: o.now, Kind: kind, Recipients: rcpt,
		Subject: mail.OneLine(subject), Body: body}); err != nil {
		return err
	}
	o.s.pokeMail()
	return nil
}

// mailVerifyLink issues p's verification link and mails it.
func (o *op) mailVerifyLink(p tokenPerson, expires int64) error {
	raw, err := o.issueLink(p, PurposeVerify, expires)
	if err != nil {
		return err
	}
	body := fmt.Sprintf("Dear %s,\n\nplease confirm that %s is your e-mail address by opening this link within 24 hours:\n\n  %s\n\n"+
		"Your account also needs the approval of a PI of your site. If you did not sign up for PlanetLab, ignore this message.\n",
		oneLine(p.first+" "+p.last), p.email, o.s.linkURL("/verify", raw))
	return o.mailTo(MailVerify, []string{p.email}, "PlanetLab: confirm your e-mail address", body)
}

// mailResetLink issues p's password reset link and mails it.
func (o *op) mailResetLink(p tokenPerson, expires int64) error {
	raw, err := o.issueLink(p, PurposeReset, expires)
	if err != nil {
		return err
	}
	body := fmt.Sprintf("Dear %s,\n\nsomeone (we hope you) asked to reset the password of the PlanetLab account %s. "+
		"To choose a new password, open this link within 24 hours:\n\n  %s\n\nIf you did not ask for it, ignore this message: your password stays as it is.\n",
		oneLine(p.first+" "+p.last), p.email, o.s.linkURL("/reset", raw))
	return o.mailTo(MailReset, []string{p.email}, "PlanetLab: reset your password", body)
}

// RequestPasswordReset implements core.Accounts: it mails a reset link to
// the enabled, non-admin account of email if there is one, and answers
// the same (nil) whether or not there is, so that it tells nobody which
// addresses have accounts. Requests count in the login backoff (by
// address and source), so it cannot flood a mailbox.
func (s *Service) RequestPasswordReset(ctx context.Context, c *core.Caller, email string) error {
	if err := authorize(c, opRequestPasswordReset); err != nil {
		return err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return core.FieldErrorf("email", "must not be empty")
	}
	return s.limiter.guard(ctx, "reset "+email, func() (bool, error) {
		err := s.write(ctx, c, func(o *op) error {
			p, found, err := o.findPerson(email)
			if err != nil || !found || !p.enabled || p.admin {
				return err
			}
			return o.mailResetLink(p, 0)
		})
		return true, err // every request counts: a mail is sent
	})
}

// CompletePasswordReset implements core.Accounts: it sets the password of
// the person whose reset link token is, and ends the link.
func (s *Service) CompletePasswordReset(ctx context.Context, c *core.Caller, token, password string) error {
	if err := authorize(c, opCompletePasswordReset); err != nil {
		return err
	}
	if len(password) < core.MinPasswordLength {
		return core.FieldErrorf("password", "must have at least %d characters", core.MinPasswordLength)
	}
	h, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	return s.limiter.guard(ctx, "reset link", func() (bool, error) {
		err := s.write(ctx, c, func(o *op) error {
			p, err := o.personByToken(PurposeReset, token)
			if err != nil {
				return err
			}
			if err := o.useLink(p, PurposeReset, token); err != nil {
				return err
			}
			if _, err := o.tx.Exec(o.ctx, "UPDATE persons SET password = ? WHERE person_id = ?", h, p.id); err != nil {
				return err
			}
			return o.touchPerson(p.id)
		})
		return err == errBadLink, err
	})
}

// ConfirmEmail implements core.Accounts: it marks the address of the
// person whose verification link token is as verified (the link ends) and
// returns it.
func (s *Service) ConfirmEmail(ctx context.Context, c *core.Caller, token string) (string, error) {
	if err := authorize(c, opConfirmEmail); err != nil {
		return "", err
	}
	var email string
	err := s.limiter.guard(ctx, "verify link", func() (bool, error) {
		err := s.write(ctx, c, func(o *op) error {
			p, err := o.personByToken(PurposeVerify, token)
			if err != nil {
				return err
			}
			email = p.email
			if err := o.useLink(p, PurposeVerify, token); err != nil {
				return err
			}
			return o.touchPerson(p.id)
		})
		return err == errBadLink, err
	})
	return email, err
}

// VerifyPerson is PLCAPI's VerifyPerson (admin): without a key it mails a
// verification link to a disabled local person (refused while one is
// pending); with the key (the token of the link) it checks and ends it;
// an expired key gets a new link mailed and is refused.
func (s *Service) VerifyPerson(ctx context.Context, c *core.Caller, who any, key string, expires int64) error {
	if err := authorize(c, opVerifyPerson); err != nil {
		return err
	}
	var expired bool
	err := s.write(ctx, c, func(o *op) error {
		p, found, err := o.findPerson(who)
		if err != nil {
			return err
		}
		if !found {
			return core.Errorf(core.NotFound, "no such account %v", who)
		}
		if p.enabled {
			return core.Errorf(core.Invalid, "account %v must be new (disabled)", who)
		}
		if key != "" && p.key != "" && p.expires < o.now {
			expired = true
		}
		if key == "" || expired {
			if p.key != "" && p.expires > o.now {
				return core.Errorf(core.Forbidden, "verification request already pending")
			}
			return o.mailVerifyLink(p, expires)
		}
		if err := o.useLink(p, PurposeVerify, key); err != nil {
			return err
		}
		return o.touchPerson(p.id)
	})
	if err == nil && expired {
		return core.Errorf(core.Forbidden, "verification key has expired; another e-mail has been sent")
	}
	return err
}

// ResetPassword is PLCAPI's ResetPassword (admin): without a key it mails
// a reset link to an enabled local non-admin person (refused while one is
// pending); with the key it checks and ends it, sets a new random
// password and mails it to the person, as the original did.
func (s *Service) ResetPassword(ctx context.Context, c *core.Caller, who any, key string, expires int64) error {
	if err := authorize(c, opResetPassword); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		p, found, err := o.findPerson(who)
		if err != nil {
			return err
		}
		if !found {
			return core.Errorf(core.NotFound, "no such account %v", who)
		}
		if !p.enabled {
			return core.Errorf(core.Invalid, "account %v must be enabled", who)
		}
		if p.admin {
			return core.Errorf(core.Invalid, "cannot reset admin passwords")
		}
		if key == "" {
			if p.key != "" && p.expires > o.now {
				return core.Errorf(core.Forbidden, "password reset request already pending")
			}
			return o.mailResetLink(p, expires)
		}
		if p.key != "" && p.expires < o.now {
			return core.Errorf(core.Forbidden, "verification key has expired")
		}
		if err := o.useLink(p, PurposeReset, key); err != nil {
			return err
		}
		pw, _, err := newToken("")
		if err != nil {
			return err
		}
		h, err := o.s.hashPassword(pw)
		if err != nil {
			return err
		}
		if _, err := o.tx.Exec(o.ctx, "UPDATE persons SET password = ? WHERE person_id = ?", h, p.id); err != nil {
			return err
		}
		if err := o.touchPerson(p.id); err != nil {
			return err
		}
		body := fmt.Sprintf("Dear %s,\n\nthe password of the PlanetLab account %s has been reset to:\n\n  %s\n\nLog in and change it on the portal's account page.\n",
			oneLine(p.first+" "+p.last), p.email, pw)
		return o.mailTo(MailResetPassword, []string{p.email}, "PlanetLab: your new password", body)
	})
}

// NotifyPersons is PLCAPI's NotifyPersons (admin, node): it mails subject
// and body to the persons f selects (ids, e-mails or a field filter).
func (s *Service) NotifyPersons(ctx context.Context, c *core.Caller, f *core.Filter, subject, body string) error {
	if err := authorize(c, opNotifyPersons); err != nil {
		return err
	}
	recs, err := s.Get(ctx, c, core.Person, f, []string{"person_id", "email"})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return core.Errorf(core.NotFound, "no such user(s)")
	}
	rcpt := make([]string, 0, len(recs))
	for _, r := range recs {
		if e, ok := r["email"].(string); ok && e != "" {
			rcpt = append(rcpt, e)
		}
	}
	return s.write(ctx, c, func(o *op) error { return o.mailTo(MailNotifyPersons, rcpt, subject, body) })
}

// NotifySupport is PLCAPI's NotifySupport (admin): it mails subject and
// body to the support address (Options.SupportEmail).
func (s *Service) NotifySupport(ctx context.Context, c *core.Caller, subject, body string) error {
	if err := authorize(c, opNotifySupport); err != nil {
		return err
	}
	if s.opts.SupportEmail == "" {
		return core.Errorf(core.Unimplemented, "no support address configured (pl plc --support-email)")
	}
	return s.write(ctx, c, func(o *op) error {
		return o.mailTo(MailNotifySupport, []string{s.opts.SupportEmail}, subject, body)
	})
}
