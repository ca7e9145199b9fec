package core

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

var flowNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestParseFlowQuery(t *testing.T) {
	q, err := ParseFlowQuery(url.Values{"addr": {"203.0.113.7"}, "port": {"22"}, "proto": {"tcp"}, "since": {"2h"}}, flowNow)
	if err != nil {
		t.Fatal(err)
	}
	if q.Addr.String() != "203.0.113.7" || q.Port != 22 || q.Proto != 6 || !q.Since.Equal(flowNow.Add(-2*time.Hour)) || !q.Until.Equal(flowNow) || q.Limit != FlowLimitDefault {
		t.Fatalf("%+v", q)
	}
	// Round trip through Values.
	q2, err := ParseFlowQuery(q.Values(), flowNow)
	if err != nil || q2 != q {
		t.Fatalf("round trip: %+v %v", q2, err)
	}
	q, err = ParseFlowQuery(url.Values{"addr": {"::ffff:192.0.2.1"}, "since": {"3d"}, "proto": {"17"}}, flowNow)
	if err != nil || q.Addr.String() != "192.0.2.1" || !q.Since.Equal(flowNow.Add(-72*time.Hour)) || q.Proto != 17 {
		t.Fatalf("%+v %v", q, err)
	}
	for _, tc := range []struct {
		v    url.Values
		want string
	}{
		{url.Values{}, "addr: is required"},
		{url.Values{"addr": {"203.0.113"}}, `addr: "203.0.113" is not an IPv4 or IPv6 address`},
		{url.Values{"addr": {"example.org"}}, "is not an IPv4 or IPv6 address"},
		{url.Values{"addr": {"1.2.3.4"}, "port": {"70000"}}, `port: "70000" is not a port 1..65535`},
		{url.Values{"addr": {"1.2.3.4"}, "proto": {"tcpp"}}, `proto: "tcpp" is not tcp`},
		{url.Values{"addr": {"1.2.3.4"}, "since": {"5y"}}, `since: "5y" is not a time`},
		{url.Values{"addr": {"1.2.3.4"}, "since": {"1000d"}}, "a window of 1000 days is longer than 92 days"},
		{url.Values{"addr": {"1.2.3.4"}, "since": {"2026-12-03T00:00:00Z"}}, "is not before until"},
		{url.Values{"addr": {"1.2.3.4"}, "limit": {"100000"}}, `limit: "100000" is not a number 1..1000`},
		{url.Values{"addr": {"1.2.3.4"}, "after": {"zz"}}, "is not a cursor"},
		{url.Values{"addr": {"1.2.3.4"}, "host": {"x"}}, "host: unknown parameter"},
	} {
		if _, err := ParseFlowQuery(tc.v, flowNow); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.v, err, tc.want)
		}
	}
}

func FuzzParseFlowQuery(f *testing.F) {
	f.Add("addr=203.0.113.7&port=22&proto=tcp&since=2h")
	f.Add("addr=2001:db8::1&since=2026-12-01T00:00:00Z&until=1796000000&limit=5&after=00000000000000000000000a")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseFlowQuery(v, flowNow)
		if err != nil {
			return
		}
		if !q.Addr.IsValid() || !q.Since.Before(q.Until) || q.Until.Sub(q.Since) > FlowWindowMax || q.Limit < 1 || q.Limit > FlowLimitMax {
			t.Fatalf("accepted an invalid query %q: %+v", raw, q)
		}
	})
}
