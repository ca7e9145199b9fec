package service

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/mail/mailtest"
	"github.com/planetlab/pl/internal/plc/store"
	"golang.org/x/crypto/bcrypt"
)

func smtpTo(t *testing.T, addr string) mail.Sender {
	t.Helper()
	s, err := mail.NewSMTP(mail.Config{Relay: addr, From: "plc@example.org", TLS: mail.TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOutboxDeliveryAndRetry: notices' mail goes out through a real SMTP
// server; while it is down the message waits and is retried after the
// backoff.
func TestOutboxDeliveryAndRetry(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		srv := mailtest.Start(t, "")
		sender := smtpTo(t, srv.Addr)
		site := e.site("princeton", 10)
		e.person("pi@princeton.edu", site, core.RolePI)
		anon, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "anonymous"}, nil)
		e.must(err)
		sent, err := e.s.DeliverMail(e.ctx, sender) // the test persons' approvals
		e.must(err)
		srv.Wait(sent, 5*time.Second)
		before := len(srv.Messages())

		_, err = e.s.RegisterPerson(e.ctx, anon, core.Registration{FirstName: "Ada", LastName: "L", Email: "ada@princeton.edu", Site: "princeton", Password: "long-enough"})
		e.must(err)
		// Two messages: the verification link to Ada, the notice to the PI.
		if n, err := e.s.DeliverMail(e.ctx, sender); err != nil || n != 2 {
			t.Fatalf("deliver: %d %v", n, err)
		}
		msgs := srv.Wait(before+2, 5*time.Second)
		v, m := msgs[len(msgs)-2], msgs[len(msgs)-1]
		if strings.Join(v.To, ",") != "ada@princeton.edu" || !strings.Contains(v.Subject, "confirm your e-mail") || !strings.Contains(v.Body, "/verify?token=") {
			t.Fatalf("verification mail: to %v subject %q body %q", v.To, v.Subject, v.Body)
		}
		if strings.Join(m.To, ",") != "pi@princeton.edu" || !strings.Contains(m.Subject, "Ada L asks to join site princeton") {
			t.Fatalf("sign-up mail: to %v subject %q", m.To, m.Subject)
		}
		if n, _ := e.s.DeliverMail(e.ctx, sender); n != 0 {
			t.Fatalf("a delivered message went again (%d)", n)
		}

		// The relay is down: the message stays, with the error, for later.
		addr := srv.Addr
		srv.Close()
		_, err = e.s.RegisterPerson(e.ctx, anon, core.Registration{FirstName: "Bob", LastName: "L", Email: "bob@princeton.edu", Site: "princeton", Password: "long-enough"})
		e.must(err)
		if n, err := e.s.DeliverMail(e.ctx, sender); err != nil || n != 0 {
			t.Fatalf("deliver with the relay down: %d %v", n, err)
		}
		var pending []store.Mail
		e.must(e.s.db.Read(e.ctx, func(tx *store.Tx) error {
			var err error
			pending, err = tx.DueMail(e.ctx, e.s.now()+3600, 10)
			return err
		}))
		if len(pending) != 2 {
			t.Fatalf("after a failed attempt: %+v", pending)
		}
		for _, p := range pending {
			if p.Attempts != 1 || p.LastError == "" || p.NextTry != e.s.now()+int64(MailRetryBase/time.Second) {
				t.Fatalf("after a failed attempt: %+v", pending)
			}
		}
		srv2 := mailtest.Start(t, addr)
		if n, _ := e.s.DeliverMail(e.ctx, sender); n != 0 {
			t.Fatal("a failed message was retried before its backoff")
		}
		e.clock.Add(MailRetryBase)
		if n, err := e.s.DeliverMail(e.ctx, sender); err != nil || n != 2 {
			t.Fatalf("retry: %d %v", n, err)
		}
		if got := srv2.Wait(2, 5*time.Second); len(got) != 2 || !strings.Contains(got[1].Subject, "Bob L asks to join") {
			t.Fatalf("retried mail: %+v", got)
		}
	})
}

// TestExpiryWarningsOnce: each lead time warns once per expiry, across a
// PLC restart; renewing arms the warnings again.
func TestExpiryWarningsOnce(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "plc.db")
	e := newEnv(t, dsn)
	srv := mailtest.Start(t, "")
	sender := smtpTo(t, srv.Addr)
	site := e.site("princeton", 10)
	pi := e.person("pi@princeton.edu", site, core.RolePI)
	user := e.person("user@princeton.edu", site, core.RoleUser)
	e.person("other@princeton.edu", site, core.RoleUser)
	id := e.add(pi, core.Slice, core.Record{"name": "princeton_x", "description": "d", "url": "http://x.org"})
	e.must(e.s.Link(e.ctx, pi, core.SlicePerson, id, user.PersonID, nil))
	_, err := e.s.RenewSlice(e.ctx, pi, id, e.s.now()+3*86400)
	e.must(err)
	_, err = e.s.DeliverMail(e.ctx, sender) // approvals of the test persons
	e.must(err)
	base := len(srv.Messages())

	warnings := func(s *Service) []mailtest.Message {
		t.Helper()
		e.must(s.QueueExpiryWarnings(e.ctx))
		e.must(s.QueueExpiryWarnings(e.ctx))
		_, err := s.DeliverMail(e.ctx, sender)
		e.must(err)
		time.Sleep(50 * time.Millisecond)
		return srv.Messages()[base:]
	}
	got := warnings(e.s)
	if len(got) != 1 || strings.Join(got[0].To, ",") != "pi@princeton.edu,user@princeton.edu" ||
		!strings.Contains(got[0].Subject, "PlanetLab slice princeton_x expires") || !strings.Contains(got[0].Body, "(in 3 days)") {
		t.Fatalf("7-day warning: %+v", got)
	}

	// A restarted PLC over the same store sends nothing again.
	db, err := store.Open(e.ctx, dsn)
	e.must(err)
	defer db.Close()
	s2 := New(db, Options{Now: e.clock.Now, PasswordCost: bcrypt.MinCost})
	defer s2.Close()
	if got := warnings(s2); len(got) != 1 {
		t.Fatalf("after a restart: %d warnings, want the one", len(got))
	}
	// A day before: the 1-day warning, once.
	e.clock.Add(2*24*time.Hour + time.Hour)
	got = warnings(s2)
	if len(got) != 2 || !strings.Contains(got[1].Body, "(in 23 hours)") {
		t.Fatalf("1-day warning: %+v", got)
	}
	// Renewed to 5 days: the 7-day warning is armed again for the new expiry.
	_, err = s2.RenewSlice(e.ctx, e.admin, id, s2.now()+5*86400)
	e.must(err)
	if got = warnings(s2); len(got) != 3 || !strings.Contains(got[2].Body, "(in 5 days)") {
		t.Fatalf("after renewal: %+v", got)
	}
}

// TestSliceExpiredMailOnce: an expired slice's members and PIs get one
// "slice expired" mail through a real SMTP server, not again after a PLC
// restart, and also when the next AddSlice deletes the expired slice
// before the mail pass saw it; a slice long dead gets none.
func TestSliceExpiredMailOnce(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "plc.db")
	e := newEnv(t, dsn)
	srv := mailtest.Start(t, "")
	sender := smtpTo(t, srv.Addr)
	site := e.site("princeton", 10)
	pi := e.person("pi@princeton.edu", site, core.RolePI)
	user := e.person("user@princeton.edu", site, core.RoleUser)
	mk := func(name string, life time.Duration) int64 {
		id := e.add(pi, core.Slice, core.Record{"name": name, "description": "d", "url": "http://x.org"})
		e.must(e.s.Link(e.ctx, pi, core.SlicePerson, id, user.PersonID, nil))
		_, err := e.s.RenewSlice(e.ctx, e.admin, id, e.s.now()+int64(life/time.Second))
		e.must(err)
		return id
	}
	mk("princeton_old", time.Hour)
	e.clock.Add(ExpiredMailWindow + 2*time.Hour) // princeton_old expired long ago
	mk("princeton_x", time.Hour)
	mk("princeton_y", 2*time.Hour)
	_, err := e.s.DeliverMail(e.ctx, sender) // the approvals of the test persons
	e.must(err)
	base := len(srv.Messages())
	pass := func(s *Service) []mailtest.Message {
		t.Helper()
		e.must(s.QueueExpiryWarnings(e.ctx))
		e.must(s.QueueExpiryWarnings(e.ctx))
		_, err := s.DeliverMail(e.ctx, sender)
		e.must(err)
		time.Sleep(50 * time.Millisecond)
		var out []mailtest.Message
		for _, m := range srv.Messages()[base:] {
			if strings.Contains(m.Subject, "expired") {
				out = append(out, m)
			}
		}
		return out
	}
	if got := pass(e.s); len(got) != 0 {
		t.Fatalf("before any expiry: %+v", got)
	}
	e.clock.Add(90 * time.Minute) // princeton_x has expired, princeton_y not yet
	got := pass(e.s)
	if len(got) != 1 || strings.Join(got[0].To, ",") != "pi@princeton.edu,user@princeton.edu" ||
		!strings.HasPrefix(got[0].Subject, "PlanetLab slice princeton_x expired ") || !strings.Contains(got[0].Body, "can no longer be renewed") {
		t.Fatalf("expired mail: %+v", got)
	}

	// A restarted PLC over the same store sends it not again.
	db, err := store.Open(e.ctx, dsn)
	e.must(err)
	defer db.Close()
	s2 := New(db, Options{Now: e.clock.Now, PasswordCost: bcrypt.MinCost})
	defer s2.Close()
	if got := pass(s2); len(got) != 1 {
		t.Fatalf("after a restart: %d expired mails, want the one: %+v", len(got), got)
	}

	// princeton_y expires and a new slice's AddSlice deletes it (and its
	// members) before a mail pass: the mail is queued then, once.
	e.clock.Add(time.Hour)
	e.add(pi, core.Slice, core.Record{"name": "princeton_z"})
	if got := pass(s2); len(got) != 2 || !strings.HasPrefix(got[1].Subject, "PlanetLab slice princeton_y expired ") ||
		strings.Join(got[1].To, ",") != "pi@princeton.edu,user@princeton.edu" {
		t.Fatalf("expired and deleted by AddSlice: %+v", got)
	}
}
