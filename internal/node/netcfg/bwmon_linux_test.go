package netcfg

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/planetlab/pl/internal/node/bwmon"
)

// TestDailyBudgetThrottles runs bwmon over a real sliver network with a
// day of a few seconds: a sliver past its budget is throttled to the floor
// (its HTB ceiling and its measured throughput), and the day's end lifts it.
func TestDailyBudgetThrottles(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, func(c *Config) { c.CapKbit = 100_000 })
	ctx := context.Background()
	s := Sliver{Name: "pltest_budget", XID: 21, MinRateKbit: 1, MaxRateKbit: 8000}
	att, err := m.Ensure(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	sink := listen(t, tn.peer, "tcp4", testPeerAddr+":7002")
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	h, err := netlinkAt(tn.node)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ceil := func() int64 {
		t.Helper()
		cs, err := h.ClassList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: mustLinkIndex(h, testUplink)}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if hc, ok := c.(*netlink.HtbClass); ok && hc.Handle == netlink.MakeHandle(1, 0x1000|21) {
				return int64(hc.Ceil * 8 / 1000)
			}
		}
		t.Fatal("class 1:1015 not found")
		return 0
	}
	const day = 4 * time.Second
	mon, err := bwmon.New(bwmon.Config{Shaper: m, StatePath: filepath.Join(t.TempDir(), "bwmon.json"),
		Slivers: func() []bwmon.Sliver {
			return []bwmon.Sliver{{Name: s.Name, XID: s.XID, MaxKByte: 256, MinRateKbit: 1}}
		},
		Policy: bwmon.Policy{FloorKbit: 200, Period: day}})
	if err != nil {
		t.Fatal(err)
	}
	// The first connection waits for the links to settle (as in TestReachability).
	if c, err := dial(t, att.NetNS, "tcp4", testPeerAddr+":7002", 5*time.Second); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	start := time.Now()
	if err := mon.Tick(); err != nil {
		t.Fatal(err)
	}
	full := measure(t, att.NetNS, testPeerAddr+":7002", time.Second)
	if err := mon.Tick(); err != nil {
		t.Fatal(err)
	}
	st := mon.Snapshot().Slices[s.Name]
	if !st.Throttled || ceil() != 200 {
		t.Fatalf("after %d bytes (budget 256 KiB): state %+v, class ceil %d kbit", st.Used, st, ceil())
	}
	// What the first connection still had queued now leaves at the
	// throttled rate: measure the class's output.
	b0, _ := m.ClassBytes()
	time.Sleep(1500 * time.Millisecond)
	b1, _ := m.ClassBytes()
	slow := int64(b1[21]-b0[21]) * 8 / 1000 * 2 / 3
	if slow > 400 {
		t.Errorf("throttled to 200 kbit/s, the class sent %d kbit/s", slow)
	}
	time.Sleep(time.Until(start.Add(day + 100*time.Millisecond)))
	if err := mon.Tick(); err != nil {
		t.Fatal(err)
	}
	if c := ceil(); c != 8000 {
		t.Fatalf("after the day's end: ceil %d kbit, want the configured 8000", c)
	}
	t.Logf("before: %d kbit/s; throttled: %d kbit/s; events %+v", full, slow, mon.Snapshot().Events)
	if full < 2000 {
		t.Errorf("unthrottled sliver sent only %d kbit/s", full)
	}
}
