package dev

import (
	"strings"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	ev, ok := parseLogLine(`time=2026-12-02T12:38:13.554Z level=INFO msg="sliver operation done" subsystem=agent op=create sliver=s_1 reason="new \"x\"" took=12ms`)
	if !ok || ev.msg != "sliver operation done" || ev.attrs["sliver"] != "s_1" || ev.attrs["reason"] != `new "x"` || ev.attrs["took"] != "12ms" {
		t.Fatalf("%+v %v", ev, ok)
	}
	if ev.at.Nanosecond() != 554e6 {
		t.Errorf("time %v", ev.at)
	}
	for _, bad := range []string{"", "plain text", `time=x msg=y`, `time=2026-12-02T12:38:13.554Z msg="unterminated`} {
		if _, ok := parseLogLine(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTraceNode(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	log := `time=2026-12-02T11:59:59.000Z level=INFO msg="new desired state from PLC" version=old slivers=0
time=2026-12-02T12:00:00.120Z level=INFO msg="new desired state from PLC" version=v2 slivers=1
time=2026-12-02T12:00:00.130Z level=INFO msg=plan op=create sliver=other reason=new
time=2026-12-02T12:00:00.140Z level=INFO msg=plan op=create sliver=pl_b1 reason=new
time=2026-12-02T12:00:00.300Z level=DEBUG msg="sliver create" sliver=pl_b1 disk=1ms mount=5ms files=6ms runc-create=90ms runc-start=120ms
time=2026-12-02T12:00:00.310Z level=INFO msg="sliver operation done" op=create sliver=pl_b1 reason=new took=170ms
`
	tr := nodeTrace{Node: "n1", Linked: 50 * time.Millisecond, Answered: 400 * time.Millisecond}
	traceNode(strings.NewReader(log), "pl_b1", start, &tr)
	ms := time.Millisecond
	if tr.Fetched != 120*ms || tr.Planned != 140*ms || tr.Created != 310*ms || !strings.Contains(tr.Steps, "runc-create 90ms") {
		t.Fatalf("%+v", tr)
	}
	rows := phases([]nodeTrace{tr})
	want := []time.Duration{50 * ms, 120 * ms, 20 * ms, 170 * ms, 90 * ms, 400 * ms}
	for i, r := range rows {
		if r.ds[0] != want[i] {
			t.Errorf("%s: %v, want %v", r.name, r.ds[0], want[i])
		}
	}
}
