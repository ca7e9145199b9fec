package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/store"
)

// The mail outbox: every message PLC sends is a row of table outbox,
// written in the transaction that decides to send it (a notice, an expiry
// warning), so nothing is lost when the relay or PLC is down. RunMail
// delivers due rows through a mail.Sender, retrying a failed one with a
// doubling wait (MailRetryBase up to MailRetryMax); a delivered row stays
// as the record of what was sent.
//
//	enqueued (next_try = now) ──send ok──> sent (sent_at)
//	    ^                         │
//	    └── failed: attempts+1, next_try = now + min(base·2^(attempts), max)

// Mail delivery defaults.
const (
	MailRetryBase = 30 * time.Second
	MailRetryMax  = time.Hour
	mailBatch     = 50
)

// DefaultExpiryWarnings are the lead times of slice expiry warnings.
var DefaultExpiryWarnings = []time.Duration{7 * 24 * time.Hour, 24 * time.Hour}

// Notice kinds of slice expiry.
const (
	NoticeSliceExpiring = "slice_expiring"
	NoticeSliceExpired  = "slice_expired"
)

// ExpiredMailWindow bounds how long after its expiry a slice still gets
// its "slice expired" mail: a PLC that was down longer (or is upgraded
// over long-dead slices) does not mail about them.
const ExpiredMailWindow = 7 * 24 * time.Hour

// recordNotice records a notice (table notices), puts its mail in the
// outbox and keeps it for the Notifier, all with the transaction.
func (o *op) recordNotice(n core.Notice) (core.Notice, error) {
	id, err := o.tx.InsertNotice(o.ctx, n)
	if err != nil {
		return n, err
	}
	n.NoticeID = id
	if err := o.mailNotice(n); err != nil {
		return n, err
	}
	o.notices = append(o.notices, n)
	return n, nil
}

// mailNotice puts a recorded notice's mail in the outbox.
func (o *op) mailNotice(n core.Notice) error {
	if len(n.Recipients) == 0 {
		return nil
	}
	if _, _, err := o.tx.EnqueueMail(o.ctx, store.Mail{Created: o.now, Kind: n.Kind, Recipients: n.Recipients,
		Subject: mail.OneLine(n.Subject), Body: n.Body}); err != nil {
		return err
	}
	o.s.pokeMail()
	return nil
}

// pokeMail wakes RunMail.
func (s *Service) pokeMail() {
	select {
	case s.mailPoke <- struct{}{}:
	default:
	}
}

// RunMail delivers the outbox through sender and queues the slice expiry
// warnings until ctx ends: at once when a message is queued, and every
// interval (0: 15 s) for retries and warnings.
//
// Of several replicas on one PostgreSQL database only the one holding the
// mail job's lock runs it (store.DB.RunExclusive); mail queued through
// another replica is delivered at the holder's next pass (within
// interval).
func (s *Service) RunMail(ctx context.Context, sender mail.Sender, interval time.Duration) {
	if interval <= 0 {
		interval = 15 * time.Second
	}
	s.db.RunExclusive(ctx, "mail", func(ctx context.Context) { s.runMail(ctx, sender, interval) }, nil)
}

func (s *Service) runMail(ctx context.Context, sender mail.Sender, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.jobs.mail.Add(1)
		if err := s.QueueExpiryWarnings(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("expiry warnings", "err", err)
		}
		if _, err := s.DeliverMail(ctx, sender); err != nil && ctx.Err() == nil {
			s.log.Warn("mail delivery", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.mailPoke:
		}
	}
}

// DeliverMail makes one pass over the due messages of the outbox and
// returns how many were delivered.
func (s *Service) DeliverMail(ctx context.Context, sender mail.Sender) (int, error) {
	var due []store.Mail
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		due, err = tx.DueMail(ctx, s.now(), mailBatch)
		return err
	})
	if err != nil {
		return 0, s.mapErr(err)
	}
	sent := 0
	for _, m := range due {
		if ctx.Err() != nil {
			return sent, ctx.Err()
		}
		serr := sender.Send(ctx, mail.Message{To: m.Recipients, Subject: m.Subject, Body: m.Body})
		now := s.now()
		err := s.db.Write(ctx, func(tx *store.Tx) error {
			if serr == nil {
				return tx.MailSent(ctx, m.ID, now)
			}
			wait := MailRetryBase << min(m.Attempts, 20)
			if wait > MailRetryMax || wait <= 0 {
				wait = MailRetryMax
			}
			return tx.MailFailed(ctx, m.ID, now+int64(wait/time.Second), serr.Error())
		})
		if err != nil {
			return sent, s.mapErr(err)
		}
		if serr != nil {
			s.log.Warn("mail not delivered; will retry", "mail", m.ID, "kind", m.Kind, "attempt", m.Attempts+1, "err", serr)
			continue
		}
		sent++
		s.log.Info("mail delivered", "mail", m.ID, "kind", m.Kind, "to", strings.Join(m.Recipients, ","))
	}
	return sent, nil
}

// QueueExpiryWarnings puts in the outbox the "slice expired" message of
// each slice that expired in the last ExpiredMailWindow (queueExpired) and
// a warning for each live slice
// that expires within a lead time of Options.ExpiryWarnings (default 7
// days and 1 day), to its members and its site's PIs. Each slice gets one
// warning per lead time and expiry (renewing it arms them again), the
// shortest lead that applies: a slice found 12 hours before its expiry
// gets the 1-day warning only. The outbox's key makes this hold across
// restarts.
func (s *Service) QueueExpiryWarnings(ctx context.Context) error {
	leads := s.opts.ExpiryWarnings
	if leads == nil {
		leads = DefaultExpiryWarnings
	}
	if len(leads) == 0 {
		return nil
	}
	longest := leads[0]
	for _, l := range leads {
		longest = max(longest, l)
	}
	now := time.Unix(s.now(), 0)
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := s.queueExpired(ctx, tx, now.Unix()); err != nil {
			return err
		}
		slices, err := tx.ExpiringSlices(ctx, now.Unix(), now.Add(longest).Unix())
		if err != nil {
			return err
		}
		for _, sl := range slices {
			left := time.Unix(sl.Expires, 0).Sub(now)
			lead := longest
			for _, l := range leads {
				if l >= left && l < lead {
					lead = l
				}
			}
			rcpt, err := tx.SliceMailRecipients(ctx, sl.ID, sl.SiteID)
			if err != nil {
				return err
			}
			if len(rcpt) == 0 {
				continue
			}
			at := time.Unix(sl.Expires, 0).UTC().Format("2006-01-02 15:04 UTC")
			m := store.Mail{
				Key:        fmt.Sprintf("expiry:%d:%d:%d", sl.ID, sl.Expires, int64(lead/time.Second)),
				Created:    now.Unix(),
				Kind:       NoticeSliceExpiring,
				Recipients: rcpt,
				Subject:    fmt.Sprintf("PlanetLab slice %s expires %s", sl.Name, at),
				Body: fmt.Sprintf("Your slice %s expires %s (in %s). When it expires its slivers are deleted from every node.\n\n"+
					"Renew it on the portal (/slices/%s) or with: pl slice renew %s\n", sl.Name, at, roundLeft(left), sl.Name, sl.Name),
			}
			if _, added, err := tx.EnqueueMail(ctx, m); err != nil {
				return err
			} else if added {
				s.pokeMail()
			}
		}
		return nil
	})
	return s.mapErr(err)
}

// roundLeft writes a time left in days or hours.
func roundLeft(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Round(time.Hour)/(24*time.Hour)))
	}
	if d >= 2*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Round(time.Hour)/time.Hour))
	}
	return fmt.Sprintf("%d minutes", max(1, int(d.Round(time.Minute)/time.Minute)))
}

// queueExpired puts in the outbox one "slice expired" message for each
// slice not yet deleted that expired within ExpiredMailWindow before now,
// to its members and its site's PIs. The outbox's key
// (expired:<slice>:<expires>) makes it go once, across restarts and
// whether PLC sees the slice here or when the next AddSlice deletes it
// (deleteExpiredSlices, which calls this before dropping the members).
func (s *Service) queueExpired(ctx context.Context, tx *store.Tx, now int64) error {
	expired, err := tx.ExpiringSlices(ctx, now-int64(ExpiredMailWindow/time.Second), now)
	if err != nil {
		return err
	}
	for _, sl := range expired {
		rcpt, err := tx.SliceMailRecipients(ctx, sl.ID, sl.SiteID)
		if err != nil {
			return err
		}
		if len(rcpt) == 0 {
			continue
		}
		at := time.Unix(sl.Expires, 0).UTC().Format("2006-01-02 15:04 UTC")
		m := store.Mail{
			Key:        fmt.Sprintf("expired:%d:%d", sl.ID, sl.Expires),
			Created:    now,
			Kind:       NoticeSliceExpired,
			Recipients: rcpt,
			Subject:    fmt.Sprintf("PlanetLab slice %s expired %s", sl.Name, at),
			Body: fmt.Sprintf("Your slice %s expired %s. Its slivers are being deleted from every node and it can no longer be renewed.\n\n"+
				"A PI of your site can create it again (the name is free) on the portal (/slices/new) or with: pl slice create %s\n", sl.Name, at, sl.Name),
		}
		if _, added, err := tx.EnqueueMail(ctx, m); err != nil {
			return err
		} else if added {
			s.pokeMail()
		}
	}
	return nil
}

var _ core.Outbox = (*Service)(nil)

// openOutboxRoles may read the outbox under Options.OpenOutbox.
const openOutboxRoles = rA | rP | rU | rT | rAn

// Outbox implements core.Outbox: the outbox's messages, newest first, for
// admins, and for anyone when Options.OpenOutbox is set (`pl dev`'s
// mailbox, where no mail leaves the host).
func (s *Service) Outbox(ctx context.Context, c *core.Caller, q core.OutboxQuery) ([]core.OutboxMail, error) {
	if !s.opts.OpenOutbox || c == nil {
		if err := authorize(c, opGetOutbox); err != nil {
			return nil, err
		}
	}
	switch q.State {
	case "", core.OutboxQueued, core.OutboxSent, core.OutboxFailed:
	default:
		return nil, core.FieldErrorf("state", "want queued, failed or sent, got %q", q.State)
	}
	if q.Before < 0 {
		return nil, core.FieldErrorf("before", "want a non-negative id, got %d", q.Before)
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	var rows []store.Mail
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		rows, err = tx.OutboxPage(ctx, q.State, q.Before, q.Limit)
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	out := make([]core.OutboxMail, 0, len(rows))
	for _, m := range rows {
		om := core.OutboxMail{MailID: m.ID, Created: m.Created, Kind: m.Kind, Recipients: m.Recipients, Subject: m.Subject, Body: m.Body,
			Attempts: m.Attempts, SentAt: m.SentAt, LastError: m.LastError}
		switch {
		case m.SentAt > 0:
			om.State = core.OutboxSent
		case m.Attempts > 0:
			om.State, om.NextTry = core.OutboxFailed, m.NextTry
		default:
			om.State, om.NextTry = core.OutboxQueued, m.NextTry
		}
		if om.Recipients == nil {
			om.Recipients = []string{}
		}
		out = append(out, om)
	}
	return out, nil
}
