package flows

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestStoreSummary: one slice's flows summed by day of their start and by
// destination, other slices' and the node's own left out, the window
// respected, the top cut.
func TestStoreSummary(t *testing.T) {
	c := &clock{t: t0.Add(72 * time.Hour)}
	s := openTest(t, filepath.Join(t.TempDir(), "flows.db"), c, 0)
	defer s.Close()
	var recs []Record
	id := uint32(0)
	add := func(start time.Time, remote, slice string, xid int) {
		id++
		recs = append(recs, rec(start, id, remote, slice, xid))
	}
	day1, day2 := t0, t0.Add(24*time.Hour) // 2026-11-02, -03
	for i := range 3 {
		add(day1.Add(time.Duration(i)*time.Minute), "203.0.113.7:80", "aa_exp", 5)
	}
	add(day1.Add(time.Hour), "198.51.100.1:53", "aa_exp", 5)
	for i := range 2 {
		add(day2.Add(time.Duration(i)*time.Minute), "198.51.100.1:53", "aa_exp", 5)
	}
	add(day2, "192.0.2.9:22", "aa_exp", 5)
	add(day2, "203.0.113.7:80", "bb_other", 6) // another slice
	add(day2, "203.0.113.7:80", "", 0)         // the node itself
	add(t0.Add(-48*time.Hour), "203.0.113.7:80", "aa_exp", 5)
	if err := s.Put(recs); err != nil {
		t.Fatal(err)
	}

	sum, err := s.Summary("aa_exp", t0.Add(-time.Hour), c.t, 2)
	if err != nil {
		t.Fatal(err)
	}
	// rec(): 1000 bytes sent, 500 received each.
	if sum.Total.Flows != 7 || sum.Total.BytesSent != 7000 || sum.Total.BytesReceived != 3500 || sum.Partial {
		t.Errorf("total %+v partial %v", sum.Total, sum.Partial)
	}
	if got := fmt.Sprint(sum.Days); got != "[{2026-11-02 {4000 2000 4}} {2026-11-03 {3000 1500 3}}]" {
		t.Errorf("days %s", got)
	}
	if got := fmt.Sprint(sum.Top); got != "[{198.51.100.1 {3000 1500 3}} {203.0.113.7 {3000 1500 3}}]" {
		t.Errorf("top %s", got)
	}
	// A window of the second day only.
	sum, err = s.Summary("aa_exp", day2, c.t, 10)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total.Flows != 3 || len(sum.Days) != 1 || len(sum.Top) != 2 {
		t.Errorf("second day: %+v", sum)
	}
	if sum, err := s.Summary("cc_none", t0, c.t, 10); err != nil || sum.Total.Flows != 0 || len(sum.Days) != 0 || len(sum.Top) != 0 {
		t.Errorf("a slice without flows: %+v %v", sum, err)
	}
}
