package service

import (
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestBwmonNotices: a node's report of a throttle becomes one notice (and
// one mail in the outbox) to the slice's members, which they (and the site's PI) read with Notices and a
// user of another slice does not; the same event reported again records
// nothing new; resets and caps record nothing; an event of an unknown
// slice is skipped; malformed events refuse the report, naming the field.
func TestBwmonNotices(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		ctx := e.ctx
		aa := e.site("aa", 10)
		pi := e.person("pi@aa.test", aa, core.RolePI)
		user := e.person("user@aa.test", aa, core.RoleUser)
		stranger := e.person("other@aa.test", aa, core.RoleUser)
		n1 := e.node(aa, "n1.aa.test")
		sl := e.slice(pi, "aa_exp")
		e.must(e.s.Link(ctx, pi, core.SlicePerson, sl, mustPersonID(t, e, "user@aa.test"), nil))
		e.slice(pi, "aa_other")

		now := e.clock.Now().Truncate(time.Second)
		throttle := core.BwmonEvent{At: now, Slice: "aa_exp", SliceID: sl, Kind: core.BwmonThrottled,
			UsedBytes: 11 << 30, LimitBytes: 10 << 30, CeilKbit: 64, Until: now.Add(5 * time.Hour)}
		report := func(evs ...core.BwmonEvent) error {
			return e.s.ReportNode(ctx, e.nodeCaller(n1), n1, core.NodeReport{BootState: "boot", BwmonEvents: evs})
		}
		capped := throttle
		capped.Kind, capped.CeilKbit = core.BwmonCapped, 5000
		reset := throttle
		reset.Kind, reset.At = core.BwmonReset, now.Add(time.Hour)
		unknown := throttle
		unknown.Slice = "aa_gone"
		e.must(report(capped, throttle, unknown, reset))
		e.must(report(throttle)) // again, e.g. after a node manager restart

		want := "slice aa_exp throttled on node n1.aa.test: daily budget 10485760 KiB (10.0 GiB) exceeded"
		for _, c := range []*core.Caller{user, pi, e.admin} {
			ns, err := e.s.Notices(ctx, c, 0, 0)
			e.must(err)
			if len(ns) != 1 {
				t.Fatalf("%s: %d notices, want 1: %+v", c.Email, len(ns), ns)
			}
			n := ns[0]
			if n.Kind != NoticeBwmonThrottled || n.Subject != want || n.NodeID != n1 || n.SiteID != aa || n.At != now.Unix() ||
				strings.Join(n.Recipients, ",") != "user@aa.test" || !strings.Contains(n.Body, "held at 64 kbit/s") {
				t.Errorf("%s: notice %+v", c.Email, n)
			}
		}
		// Its mail is in the outbox, once.
		var due []store.Mail
		e.must(e.s.db.Read(ctx, func(tx *store.Tx) error {
			var err error
			due, err = tx.DueMail(ctx, e.s.now()+3600, 1000)
			return err
		}))
		var mails []store.Mail
		for _, m := range due {
			if m.Kind == NoticeBwmonThrottled {
				mails = append(mails, m)
			}
		}
		if len(mails) != 1 || strings.Join(mails[0].Recipients, ",") != "user@aa.test" || mails[0].Subject != want {
			t.Errorf("outbox: %+v", mails)
		}
		if ns, err := e.s.Notices(ctx, stranger, 0, 0); err != nil || len(ns) != 0 {
			t.Errorf("a user of another slice reads %+v (%v)", ns, err)
		}

		for _, c := range []struct {
			field string
			bad   func(*core.BwmonEvent)
		}{
			{"bwmon_events[0].kind", func(ev *core.BwmonEvent) { ev.Kind = "burst" }},
			{"bwmon_events[0].slice", func(ev *core.BwmonEvent) { ev.Slice = strings.Repeat("x", core.MaxSliceName+1) }},
			{"bwmon_events[0].slice_id", func(ev *core.BwmonEvent) { ev.SliceID = 0 }},
			{"bwmon_events[0].at", func(ev *core.BwmonEvent) { ev.At = time.Time{} }},
			{"bwmon_events[0].ceil_kbit", func(ev *core.BwmonEvent) { ev.CeilKbit = -1 }},
		} {
			ev := throttle
			c.bad(&ev)
			err := report(ev)
			wantCode(t, err, core.Invalid, c.field)
			if err != nil && !strings.Contains(err.Error(), c.field) {
				t.Errorf("%s: error %q does not name it", c.field, err)
			}
		}
		many := make([]core.BwmonEvent, core.MaxBwmonEvents+1)
		for i := range many {
			many[i] = throttle
		}
		wantCode(t, report(many...), core.Invalid, "too many events")
	})
}
