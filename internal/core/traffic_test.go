package core

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestParseTrafficQuery(t *testing.T) {
	q, err := ParseTrafficQuery(url.Values{"slice": {"aa_exp"}}, flowNow)
	if err != nil || q.Slice != "aa_exp" || q.Top != TrafficTopDefault || q.Until != flowNow || flowNow.Sub(q.Since).Hours() != 24 {
		t.Fatalf("defaults: %+v %v", q, err)
	}
	back, err := ParseTrafficQuery(q.Values(), flowNow)
	if err != nil || back != q {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for raw, field := range map[string]string{
		"":                                  "slice",
		"slice=aa":                          "slice",
		"slice=aa_x;drop":                   "slice",
		"slice=" + strings.Repeat("a_", 40): "slice",
		"slice=aa_x&since=1000d":            "since",
		"slice=aa_x&since=yesterday":        "since",
		"slice=aa_x&until=3h&since=2h":      "since",
		"slice=aa_x&top=0":                  "top",
		"slice=aa_x&top=101":                "top",
		"slice=aa_x&addr=1.2.3.4":           "addr",
	} {
		v, _ := url.ParseQuery(raw)
		_, err := ParseTrafficQuery(v, flowNow)
		if err == nil || !strings.HasPrefix(err.Error(), field+":") {
			t.Errorf("%q: error %v, want one naming %s", raw, err, field)
		}
	}
}

func FuzzParseTrafficQuery(f *testing.F) {
	f.Add("slice=aa_exp&since=7d&top=20")
	f.Add("slice=aa_exp&since=2026-12-01T00:00:00Z&until=1796000000")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseTrafficQuery(v, flowNow)
		if err != nil {
			return
		}
		if q.Slice == "" || len(q.Slice) > MaxSliceName || !q.Since.Before(q.Until) || q.Until.Sub(q.Since) > FlowWindowMax || q.Top < 1 || q.Top > TrafficTopMax {
			t.Fatalf("accepted an invalid query %q: %+v", raw, q)
		}
	})
}

func TestTrafficMerge(t *testing.T) {
	a := netip.MustParseAddr("203.0.113.7")
	b := netip.MustParseAddr("198.51.100.1")
	c := netip.MustParseAddr("192.0.2.9")
	tr := func(sent uint64) Traffic { return Traffic{BytesSent: sent, BytesReceived: 1, Flows: 1} }
	var s TrafficSummary
	s.Merge(TrafficSummary{Total: tr(30), Days: []TrafficDay{{"2026-12-02", tr(30)}}, Top: []TrafficDest{{a, tr(20)}, {b, tr(10)}}}, 2)
	s.Merge(TrafficSummary{Total: tr(25), Days: []TrafficDay{{"2026-12-01", tr(5)}, {"2026-12-02", tr(20)}}, Top: []TrafficDest{{b, tr(15)}, {c, tr(10)}}, Partial: true}, 2)
	if s.Total != (Traffic{55, 2, 2}) || !s.Partial {
		t.Errorf("total %+v partial %v", s.Total, s.Partial)
	}
	if got := fmt.Sprint(s.Days); got != "[{2026-12-01 {5 1 1}} {2026-12-02 {50 2 2}}]" {
		t.Errorf("days %s", got)
	}
	if got := fmt.Sprint(s.Top); got != "[{198.51.100.1 {25 2 2}} {203.0.113.7 {20 1 1}}]" {
		t.Errorf("top %s", got)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("a merged summary: %v", err)
	}
	for name, bad := range map[string]TrafficSummary{
		"days": {Days: []TrafficDay{{Day: "yesterday"}}},
		"top":  {Top: make([]TrafficDest, TrafficTopMax+1)},
		"top ": {Top: []TrafficDest{{}}},
	} {
		if err := bad.Validate(); err == nil || !strings.HasPrefix(err.Error(), strings.TrimSpace(name)+":") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzTrafficSummary: whatever a node answers, decoding and validating it
// does not panic, and an accepted summary merges within the bounds.
func FuzzTrafficSummary(f *testing.F) {
	f.Add(`{"total":{"bytes_sent":1,"bytes_received":2,"flows":1},"days":[{"day":"2026-12-02","bytes_sent":1,"flows":1}],"top":[{"remote":"203.0.113.7","bytes_sent":1,"flows":1}]}`)
	f.Add(`{"days":[{"day":"yesterday"}],"top":[{}]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var s TrafficSummary
		if json.Unmarshal([]byte(raw), &s) != nil || s.Validate() != nil {
			return
		}
		var m TrafficSummary
		m.Merge(s, 3)
		m.Merge(s, 3)
		if len(m.Top) > 3 || len(m.Days) > len(s.Days) {
			t.Fatalf("merged %+v from %+v", m, s)
		}
	})
}

func FuzzValidateBwmonEvents(f *testing.F) {
	f.Add(`[{"at":"2026-12-02T10:00:00Z","slice":"aa_exp","slice_id":5,"kind":"throttled","used_bytes":2048,"limit_bytes":1024,"ceil_kbit":64,"until":"2026-12-03T00:00:00Z"}]`)
	f.Add(`[{"kind":"burst"}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		var evs []BwmonEvent
		if json.Unmarshal([]byte(raw), &evs) != nil || ValidateBwmonEvents(evs) != nil {
			return
		}
		for _, e := range evs {
			if e.Slice == "" || e.SliceID <= 0 || len(e.Slice) > MaxSliceName || e.CeilKbit < 0 {
				t.Fatalf("accepted %+v", e)
			}
		}
	})
}
