package service

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

func TestLimiterBoundedAndForgetting(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	l := newLimiter(LoginPolicy{PairFree: 1, SourceFree: 1, MaxEntries: 100}, clk.Now)
	// 10,000 sources each failing on 3 accounts: the state stays bounded.
	for i := 0; i < 10_000; i++ {
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		for a := 0; a < 3; a++ {
			l.fail(context.Background(), fmt.Sprintf("u%d@x.org", a), src)
		}
	}
	if n := l.entries(); n > 100 {
		t.Fatalf("limiter remembers %d entries, bound 100", n)
	}
	// The most recent source is still refused; after Forget (1 h) nothing is.
	if waitOf(l, "u0@x.org", "10.0.39.15") <= 0 {
		t.Fatal("most recent failing pair not refused")
	}
	clk.Add(time.Hour)
	if w := waitOf(l, "u0@x.org", "10.0.39.15"); w > 0 {
		t.Fatalf("pair still refused after Forget: %v", w)
	}
	// The wait never exceeds Max, however many failures.
	l2 := newLimiter(LoginPolicy{PairFree: 1, Max: time.Minute}, clk.Now)
	for i := 0; i < 200; i++ {
		l2.fail(context.Background(), "a", "s")
	}
	if w := waitOf(l2, "a", "s"); w != time.Minute {
		t.Fatalf("wait after 200 failures %v, want Max 1m", w)
	}
}

func TestLimiterSourceKeys(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"not-an-address":       "not-an-address",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
	// All of a /64 is one source.
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	l := newLimiter(LoginPolicy{PairFree: 100, SourceFree: 2}, clk.Now)
	check := func(bad bool) func() (bool, error) {
		return func() (bool, error) {
			if bad {
				return true, errAuth
			}
			return false, nil
		}
	}
	for i := 0; i < 3; i++ {
		ctx := WithRemoteAddr(context.Background(), fmt.Sprintf("2001:db8::%x", i+1))
		l.guard(ctx, fmt.Sprintf("u%d", i), check(true))
	}
	err := l.guard(WithRemoteAddr(context.Background(), "2001:db8::ffff"), "v", check(false))
	if core.ErrorCode(err) != core.RateLimited {
		t.Fatalf("another address of the spraying /64: %v", err)
	}
	if err := l.guard(WithRemoteAddr(context.Background(), "2001:db8:0:1::1"), "v", check(false)); err != nil {
		t.Fatalf("the next /64: %v", err)
	}
}

// TestPasswordCache: repeated password logins verify bcrypt once; a
// changed password, a disabled or a deleted account never pass from the
// cache.
func TestPasswordCache(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		var checks atomic.Int64
		e.s.checkPassword = func(hash, pw string) bool { checks.Add(1); return checkPassword(hash, pw) }
		site := e.site("pc", 1)
		u := e.person("u@pc.org", site, "user")
		login := func(pw string) error {
			_, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: "U@pc.org ", Password: pw}, nil)
			return err
		}
		e.s.pwCache.forget(u.PersonID) // e.person logged in once
		checks.Store(0)
		for i := 0; i < 20; i++ {
			e.must(login("pw-u@pc.org"))
		}
		if n := checks.Load(); n != 1 {
			t.Fatalf("20 logins ran bcrypt %d times, want 1", n)
		}
		wantCode(t, login("wrong"), core.Unauthenticated, "wrong password while cached")
		// A new password: the old one fails, the new one passes.
		e.must(e.s.Update(e.ctx, e.admin, core.Person, u.PersonID, core.Record{"password": "second"}))
		wantCode(t, login("pw-u@pc.org"), core.Unauthenticated, "old password after a change")
		e.must(login("second"))
		e.must(login("second"))
		// TTL: an entry older than the TTL is verified again.
		checks.Store(0)
		e.clock.Add(DefaultPasswordCacheTTL + time.Second)
		e.must(login("second"))
		if n := checks.Load(); n != 1 {
			t.Fatalf("login after the TTL ran bcrypt %d times, want 1", n)
		}
		// Disabled, then deleted.
		e.must(e.s.Update(e.ctx, e.admin, core.Person, u.PersonID, core.Record{"enabled": false}))
		wantCode(t, login("second"), core.Unauthenticated, "disabled account")
		e.must(e.s.Update(e.ctx, e.admin, core.Person, u.PersonID, core.Record{"enabled": true}))
		e.must(login("second"))
		e.must(e.s.Delete(e.ctx, e.admin, core.Person, u.PersonID))
		wantCode(t, login("second"), core.Unauthenticated, "deleted account")
		for _, v := range e.s.pwCache.seen.Values() {
			if v.personID == u.PersonID {
				t.Fatal("the cache keeps an entry of a deleted person")
			}
		}
	})
}

func TestPasswordCacheBounded(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	c := newPasswordCache(time.Minute, 50, clk.Now)
	for i := 0; i < 1000; i++ {
		c.remember(int64(i), fmt.Sprintf("u%d@x.org", i), "pw", "$2a$hash")
	}
	if n := c.len(); n != 50 {
		t.Fatalf("cache holds %d entries, bound 50", n)
	}
	if !c.verified(999, "u999@x.org", "pw", "$2a$hash") {
		t.Fatal("most recent entry missing")
	}
	for _, m := range []struct {
		pid             int64
		email, pw, hash string
	}{{998, "u999@x.org", "pw", "$2a$hash"}, {999, "u999@x.org", "pw2", "$2a$hash"}, {999, "u999@x.org", "pw", "$2a$other"}, {999, "u99@x.org", "9pw", "$2a$hash"}} {
		if c.verified(m.pid, m.email, m.pw, m.hash) {
			t.Errorf("verified(%+v) hit an entry of another login", m)
		}
	}
}

func waitOf(l *limiter, account, source string) time.Duration {
	w, _ := l.wait(context.Background(), account, source)
	return w
}
