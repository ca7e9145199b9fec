package bwmon

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// fakeShaper records the ceilings set, one line each.
type fakeShaper struct {
	bytes map[int]uint64
	log   []string
	ceil  map[int]int64
}

func (f *fakeShaper) ClassBytes() (map[int]uint64, error) {
	out := map[int]uint64{}
	for k, v := range f.bytes {
		out[k] = v
	}
	return out, nil
}

func (f *fakeShaper) SetCeiling(xid int, kbit int64) error {
	f.log = append(f.log, fmt.Sprintf("xid %d ceil %d", xid, kbit))
	f.ceil[xid] = kbit
	return nil
}

func TestDailyBudget(t *testing.T) {
	now := t0
	sh := &fakeShaper{bytes: map[int]uint64{5: 0, 6: 0}, ceil: map[int]int64{}}
	slivers := []Sliver{
		{Name: "pl_a", XID: 5, SliceID: 50, MaxKByte: 1000, MinRateKbit: 1},
		{Name: "pl_b", XID: 6, SliceID: 60, MaxKByte: -1},
	}
	path := filepath.Join(t.TempDir(), "bwmon.json")
	newMon := func() *Monitor {
		m, err := New(Config{Shaper: sh, Slivers: func() []Sliver { return slivers }, StatePath: path, Now: func() time.Time { return now },
			Policy: Policy{DefaultMaxKByte: 5000, FloorKbit: 64, Period: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := newMon()
	tick := func(d time.Duration) {
		t.Helper()
		now = now.Add(d)
		if err := m.Tick(); err != nil {
			t.Fatal(err)
		}
	}
	tick(0)
	// 700 KiB: under the threshold (800 KiB).
	sh.bytes[5] = 700 * 1024
	tick(time.Minute)
	if len(sh.log) != 0 {
		t.Fatalf("under the threshold: %v", sh.log)
	}
	// 900 KiB at minute 2: capped to spread 100 KiB over the 58 minutes left.
	sh.bytes[5] = 900 * 1024
	tick(time.Minute)
	want := int64(100 * 1024 * 8 / 1000 / (58 * 60))
	if got := sh.ceil[5]; got != max(want, 64) {
		t.Fatalf("capped ceiling %d, want %d (%v)", got, max(want, 64), sh.log)
	}
	// Past the budget: throttled to the floor.
	sh.bytes[5] = 1001 * 1024
	tick(time.Minute)
	s := m.Snapshot().Slices["pl_a"]
	if !s.Throttled || sh.ceil[5] != 64 || s.Used != 1001*1024 {
		t.Fatalf("throttled: %+v, %v", s, sh.log)
	}
	// pl_b follows the node default (5000 KiB): 1000 KiB is fine.
	sh.bytes[6] = 1000 * 1024
	tick(time.Minute)
	if _, ok := sh.ceil[6]; ok {
		t.Fatalf("pl_b under its default budget was capped: %v", sh.log)
	}
	// The node manager restarts: the throttle is set again, not forgotten.
	sh.ceil = map[int]int64{}
	m = newMon()
	tick(time.Minute)
	if sh.ceil[5] != 64 {
		t.Fatalf("after a restart: %v", sh.log)
	}
	// The sliver is destroyed and re-created (counters from zero): the
	// day's usage is carried and the throttle stays.
	sh.bytes[5] = 10 * 1024
	tick(time.Minute)
	if s := m.Snapshot().Slices["pl_a"]; !s.Throttled || s.Used != 1011*1024 {
		t.Fatalf("re-created sliver: %+v", s)
	}
	// The day ends: the configured ceiling comes back.
	tick(time.Hour)
	if sh.ceil[5] != 0 {
		t.Fatalf("after the reset: %v", sh.log)
	}
	evs := m.Snapshot().Events
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Slice+" "+e.Kind)
	}
	if got := strings.Join(kinds, ", "); got != "pl_a capped, pl_a throttled, pl_a reset" {
		t.Fatalf("events: %s", got)
	}
	if evs[1].Until != t0.Add(time.Hour) {
		t.Errorf("throttled until %v, want the end of the day %v", evs[1].Until, t0.Add(time.Hour))
	}
	// What the reports carry to PLC: after the last accepted one, at
	// most max, oldest first; nothing older than a day.
	after := func(at time.Time, max int) string {
		var k []string
		for _, e := range m.EventsAfter(at, max) {
			k = append(k, e.Kind)
			if e.SliceID != 50 || e.Slice != "pl_a" {
				t.Errorf("event %+v", e)
			}
		}
		return strings.Join(k, " ")
	}
	if got := after(time.Time{}, 2); got != "capped throttled" {
		t.Errorf("first report: %q", got)
	}
	if got := after(evs[1].At, 64); got != "reset" {
		t.Errorf("after the throttle: %q", got)
	}
	if got := after(evs[2].At, 64); got != "" {
		t.Errorf("after the last: %q", got)
	}
	now = now.Add(25 * time.Hour)
	if got := after(time.Time{}, 64); got != "" {
		t.Errorf("a day later: %q", got)
	}
}

func TestNoBudget(t *testing.T) {
	var st State
	p := Policy{DefaultMaxKByte: -1, Period: time.Hour}
	acts, evs := st.Step(p, t0, map[int]uint64{5: 0}, []Sliver{{Name: "pl_a", XID: 5, MaxKByte: -1}})
	acts2, evs2 := st.Step(p, t0.Add(time.Minute), map[int]uint64{5: 1 << 40}, []Sliver{{Name: "pl_a", XID: 5, MaxKByte: -1}})
	if len(acts)+len(evs)+len(acts2)+len(evs2) != 0 {
		t.Fatalf("no budget, yet %v %v", acts2, evs2)
	}
}
