package service

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// recordingNotifier keeps what it was asked to send.
type recordingNotifier struct {
	mu   sync.Mutex
	sent []core.Notice
}

func (r *recordingNotifier) Notify(_ context.Context, n core.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, n)
	return nil
}

func (r *recordingNotifier) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.sent {
		out = append(out, n.Kind+" "+strings.Join(n.Recipients, ","))
	}
	return out
}

func TestRegisterPersonAndApproval(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		mail := &recordingNotifier{}
		e.s.opts.Notifier = mail
		site := e.site("princeton", 10)
		other := e.site("mit", 10)
		pi := e.person("pi@princeton.edu", site, core.RolePI)
		otherPI := e.person("pi@mit.edu", other, core.RolePI)
		user := e.person("user@princeton.edu", site, core.RoleUser)
		anon, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "anonymous"}, nil)
		e.must(err)
		mail.sent = nil // enabling the test's persons sent approvals

		const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl new@host"
		good := core.Registration{FirstName: "Ada\r\nBcc: x@evil", LastName: "Lovelace", Email: "Ada@Princeton.edu", Site: "princeton", Password: "long-enough", Key: key}
		for _, tc := range []struct {
			name  string
			edit  func(r *core.Registration)
			field string
		}{
			{"short password", func(r *core.Registration) { r.Password = "short" }, "password"},
			{"no site", func(r *core.Registration) { r.Site = " " }, "site"},
			{"unknown site", func(r *core.Registration) { r.Site = "nowhere" }, "site"},
			{"bad email", func(r *core.Registration) { r.Email = "ada" }, "email"},
			{"empty name", func(r *core.Registration) { r.LastName = " " }, "last_name"},
			{"bad key", func(r *core.Registration) { r.Key = "ssh-ed25519 not-base64!" }, "key"},
			{"taken email", func(r *core.Registration) { r.Email = "pi@princeton.edu" }, "email"},
		} {
			r := good
			tc.edit(&r)
			_, err := e.s.RegisterPerson(e.ctx, anon, r)
			if core.ErrorCode(err) != core.Invalid && core.ErrorCode(err) != core.Conflict || core.ErrorField(err) != tc.field {
				t.Errorf("%s: %v (field %q), want an error on %s", tc.name, err, core.ErrorField(err), tc.field)
			}
		}
		if _, err := e.s.RegisterPerson(e.ctx, user, good); core.ErrorCode(err) != core.Forbidden {
			t.Errorf("a logged-in person signs up: %v, want forbidden", err)
		}
		if n := len(mail.kinds()); n != 0 {
			t.Fatalf("refused sign-ups sent notices: %v", mail.kinds())
		}

		id, err := e.s.RegisterPerson(e.ctx, anon, good)
		e.must(err)
		if got := mail.kinds(); len(got) != 1 || got[0] != "signup_pending pi@princeton.edu" {
			t.Fatalf("notices after sign-up: %v, want one to the site's PI", got)
		}
		if subj := mail.sent[0].Subject; strings.ContainsAny(subj, "\r\n") || !strings.Contains(subj, "Ada  Bcc: x@evil Lovelace asks to join site princeton") {
			t.Fatalf("subject %q", subj)
		}
		// Disabled: no login until approved.
		if _, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "ada@princeton.edu", Password: "long-enough"}, nil); err == nil {
			t.Fatal("a pending account logs in")
		}
		// The PI's queue: disabled persons of the PI's site.
		pend, err := e.s.Get(e.ctx, pi, core.Person, &core.Filter{Terms: []core.Term{{Field: "enabled", Op: core.Eq, Value: false}}}, []string{"person_id", "email", "site_ids", "role_ids", "key_ids"})
		e.must(err)
		if len(pend) != 1 || pend[0]["email"] != "ada@princeton.edu" || len(pend[0]["key_ids"].([]int64)) != 1 {
			t.Fatalf("PI's pending queue: %v", pend)
		}
		// Only a PI of the site (or an admin) approves.
		for who, c := range map[string]*core.Caller{"a user of the site": user, "a PI of another site": otherPI} {
			if err := e.s.Update(e.ctx, c, core.Person, id, core.Record{"enabled": true}); core.ErrorCode(err) != core.Forbidden {
				t.Errorf("%s approves: %v, want forbidden", who, err)
			}
		}
		e.must(e.s.Update(e.ctx, pi, core.Person, id, core.Record{"enabled": true}))
		if got := mail.kinds(); len(got) != 2 || got[1] != "account_approved ada@princeton.edu" {
			t.Fatalf("notices after approval: %v", got)
		}
		ada := e.login("ada@princeton.edu", "long-enough")
		if !ada.HasRole(core.RoleUser) || len(ada.SiteIDs) != 1 || ada.SiteIDs[0] != site {
			t.Fatalf("approved person: %+v", ada)
		}
		// Enabling again sends nothing.
		e.must(e.s.Update(e.ctx, pi, core.Person, id, core.Record{"enabled": true}))
		if n := len(mail.kinds()); n != 2 {
			t.Fatalf("a second enable sent a notice: %v", mail.kinds())
		}
		// Both are recorded for the PI to see.
		ns, err := e.s.Notices(e.ctx, pi, 0, 0)
		e.must(err)
		if len(ns) != 2 || ns[0].Kind != NoticeSignupPending || ns[1].Kind != NoticeAccountApproved {
			t.Fatalf("recorded notices: %+v", ns)
		}

		// Rejection deletes the account.
		r := good
		r.Email, r.Key = "eve@princeton.edu", ""
		id2, err := e.s.RegisterPerson(e.ctx, anon, r)
		e.must(err)
		e.must(e.s.Delete(e.ctx, pi, core.Person, id2))
		if _, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "eve@princeton.edu", Password: "long-enough"}, nil); err == nil {
			t.Fatal("a rejected account logs in")
		}
	})
}

// TestSignupRateLimit: sign-ups count per source address, each one, with
// their own count: beyond the free ones the address waits (RateLimited
// with the time left) while another address signs up, and logins from
// the limited address are not delayed.
func TestSignupRateLimit(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "plc.db"))
	site := e.site("princeton", 10)
	e.person("user@princeton.edu", site, core.RoleUser)
	anon, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "anonymous"}, nil)
	e.must(err)
	from := func(addr string) context.Context { return WithRemoteAddr(e.ctx, addr) }
	reg := func(ctx context.Context, i int, pw string) error {
		_, err := e.s.RegisterPerson(ctx, anon, core.Registration{FirstName: "A", LastName: "L", Email: "a" + itoa(int64(i)) + "@princeton.edu", Site: "princeton", Password: pw})
		return err
	}
	for i := range DefaultSignupsFree {
		pw := "long-enough"
		if i%2 == 1 {
			pw = "short" // refused sign-ups count too
		}
		if err := reg(from("192.0.2.9"), i, pw); err != nil && core.ErrorField(err) != "password" {
			t.Fatalf("sign-up %d: %v", i, err)
		}
	}
	err = reg(from("192.0.2.9"), 100, "long-enough")
	if core.ErrorCode(err) != core.RateLimited || core.PublicMessage(err) != "too many sign-ups from 192.0.2.9; try again in 1 s" || core.RetryAfter(err) != time.Second {
		t.Fatalf("sign-up %d from one address: %v", DefaultSignupsFree+1, err)
	}
	if err := reg(from("192.0.2.10"), 101, "long-enough"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if _, err := e.s.Authenticate(from("192.0.2.9"), core.Credentials{Method: "password", Username: "user@princeton.edu", Password: "pw-user@princeton.edu"}, nil); err != nil {
		t.Fatalf("a login from the limited address: %v", err)
	}
	e.clock.Add(time.Second)
	if err := reg(from("192.0.2.9"), 102, "long-enough"); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	if err := reg(from("192.0.2.9"), 103, "long-enough"); core.ErrorCode(err) != core.RateLimited || core.RetryAfter(err) != 2*time.Second {
		t.Fatalf("the next waits twice as long: %v", err)
	}
	// In-process callers without an address (pl plc init, tests) are not limited.
	for i := range DefaultSignupsFree + 2 {
		if err := reg(e.ctx, 200+i, "long-enough"); err != nil {
			t.Fatalf("in-process sign-up %d: %v", i, err)
		}
	}
}
