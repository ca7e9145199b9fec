package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/planetlab/pl/internal/core"
)

// Sign-up (core.Accounts): a person registers, disabled, at a site; a PI
// of the site or an admin enables or deletes the account.
//
//	RegisterPerson ──> disabled, role user, at the site ── notice signup_pending to the site's PIs
//	                     │                                 └─ verification link mailed to the person (tokens.go)
//	                     ├── Update enabled=true (PI of the site, admin) ──> enabled ── notice account_approved
//	                     └── Delete (PI of the site, admin) ──> deleted

var _ core.Accounts = (*Service)(nil)

// Notice kinds of sign-up.
const (
	NoticeSignupPending   = "signup_pending"
	NoticeAccountApproved = "account_approved"
)

// RegisterPerson implements core.Accounts.
func (s *Service) RegisterPerson(ctx context.Context, c *core.Caller, r core.Registration) (int64, error) {
	if err := authorize(c, opRegisterPerson); err != nil {
		return 0, err
	}
	var id int64
	if src := RemoteAddr(ctx); src != "" {
		// Every sign-up from an address counts (a mail goes to the PIs and
		// the person): beyond the free ones the address waits, as after
		// failed logins, with its own count.
		err := s.signups.guard(ctx, signupAccount, func() (bool, error) {
			var err error
			id, err = s.registerPerson(ctx, c, r)
			return true, err
		})
		return id, err
	}
	return s.registerPerson(ctx, c, r)
}

// signupAccount is the limiter's account of sign-ups: they count per
// source address only.
const signupAccount = "sign-up"

// DefaultSignupsFree is how many sign-ups an address may make in an hour
// before it must wait.
const DefaultSignupsFree = 10

func (p LoginPolicy) signupDefaults() LoginPolicy {
	if p.PairFree <= 0 {
		// The limiter lets PairFree+1 through before the first wait.
		p.PairFree = DefaultSignupsFree - 1
	}
	if p.SourceFree <= 0 {
		p.SourceFree = 1 << 30 // the pair is the source: one count
	}
	return p
}

func (s *Service) registerPerson(ctx context.Context, c *core.Caller, r core.Registration) (int64, error) {
	if len(r.Password) < core.MinPasswordLength {
		return 0, core.FieldErrorf("password", "must have at least %d characters", core.MinPasswordLength)
	}
	if strings.TrimSpace(r.Site) == "" {
		return 0, core.FieldErrorf("site", "choose the site you belong to")
	}
	pt, _ := table(core.Person)
	kt, _ := table(core.Key)
	var id int64
	err := s.write(ctx, c, func(o *op) error {
		var site int64
		var enabled bool
		found, err := o.tx.QueryRow(ctx, "SELECT site_id, enabled FROM sites WHERE login_base = ? AND deleted = 0", []any{strings.TrimSpace(r.Site)}, &site, &enabled)
		if err != nil {
			return err
		}
		if !found {
			return core.FieldErrorf("site", "no site %q", r.Site)
		}
		if !enabled {
			return core.FieldErrorf("site", "site %q is disabled", r.Site)
		}
		id, err = o.add(pt, core.Record{"first_name": r.FirstName, "last_name": r.LastName, "email": r.Email, "password": r.Password})
		if err != nil {
			var ce *core.Error
			if errors.As(err, &ce) && ce.Code == core.Conflict && ce.Field == "" {
				named := *ce // the form shows it beside the e-mail field
				named.Field = "email"
				return &named
			}
			return err
		}
		if _, err := o.tx.Exec(ctx, "INSERT INTO person_site (person_id, site_id, is_primary) VALUES (?, ?, 1)", id, site); err != nil {
			return err
		}
		rid, _ := RoleID(core.RoleUser)
		if _, err := o.tx.Exec(ctx, "INSERT INTO person_role (person_id, role_id) VALUES (?, ?)", id, rid); err != nil {
			return err
		}
		if strings.TrimSpace(r.Key) != "" {
			rec, err := kt.Check(core.Record{"person_id": id, "key_type": "ssh", "key": r.Key}, true)
			if err != nil {
				return err
			}
			if err := o.checkKeyMaterial(rec); err != nil {
				return err
			}
			if _, err := o.tx.InsertRecord(ctx, kt, rec); err != nil {
				return err
			}
		}
		if err := o.touchPerson(id); err != nil {
			return err
		}
		p, _, err := o.findPerson(id)
		if err != nil {
			return err
		}
		if err := o.mailVerifyLink(p, 0); err != nil { // tokens.go
			return err
		}
		pis, err := o.tx.SiteRoleHolders(ctx, site, core.RolePI)
		if err != nil {
			return err
		}
		lb, err := o.tx.SiteLoginBase(ctx, site)
		if err != nil {
			return err
		}
		name := oneLine(r.FirstName + " " + r.LastName)
		notice := core.Notice{At: o.now, SiteID: site, Kind: NoticeSignupPending, Recipients: pis,
			Subject: fmt.Sprintf("PlanetLab: %s asks to join site %s", name, lb)}
		if notice.Recipients == nil {
			notice.Recipients = []string{}
		}
		notice.Body = fmt.Sprintf("%s <%s> signed up for an account at site %s.\n\nApprove or reject it on the portal's page of pending accounts (/pending).\n", name, strings.ToLower(strings.TrimSpace(r.Email)), lb)
		_, err = o.recordNotice(notice) // outbox.go
		return err
	})
	return id, err
}

// approvedNotice records the notice telling a person that the account
// was enabled; it is sent when the transaction commits.
func (o *op) approvedNotice(id int64) error {
	var email, first, last string
	if _, err := o.tx.QueryRow(o.ctx, "SELECT email, first_name, last_name FROM persons WHERE person_id = ?", []any{id}, &email, &first, &last); err != nil {
		return err
	}
	var site int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id FROM person_site WHERE person_id = ? ORDER BY is_primary DESC, site_id LIMIT 1", []any{id}, &site)
	if err != nil || !found {
		return err // notices belong to a site: none for a person of no site
	}
	n := core.Notice{At: o.now, SiteID: site, Kind: NoticeAccountApproved, Recipients: []string{email},
		Subject: "PlanetLab: your account is approved"}
	n.Body = fmt.Sprintf("Dear %s,\n\nyour PlanetLab account %s is approved: you can log in now.\n", oneLine(first+" "+last), email)
	_, err = o.recordNotice(n)
	return err
}

// sendNotice logs a recorded notice and hands it to the Notifier (its mail
// is in the outbox already: outbox.go).
func (s *Service) sendNotice(ctx context.Context, n core.Notice) {
	s.log.Info("notice", "kind", n.Kind, "site", n.SiteID, "to", strings.Join(n.Recipients, ","), "subject", n.Subject)
	if s.opts.Notifier != nil {
		if err := s.opts.Notifier.Notify(ctx, n); err != nil {
			s.log.Warn("notice not sent", "notice", n.NoticeID, "err", err)
		}
	}
}

// oneLine turns control characters (line breaks) into spaces: names go
// into mail subjects, where a line break would inject headers.
func oneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}
