package agent

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

func TestEffectivePrefix6(t *testing.T) {
	own := netip.MustParsePrefix("2001:db8:1::/64")
	for _, c := range []struct {
		own        netip.Prefix
		plc, want  string
		errContain string
	}{
		{plc: "", want: "invalid Prefix"},
		{plc: "2001:db8:7::/64", want: "2001:db8:7::/64"},
		{plc: " fd00:1::/48 ", want: "fd00:1::/48"},
		{own: own, plc: "2001:db8:7::/64", want: "2001:db8:1::/64"},
		{own: own, plc: "junk", want: "2001:db8:1::/64"}, // the node's own wins; PLC's is not even read
		{plc: "2001:db8:7::1/64", errContain: "did you mean 2001:db8:7::/64"},
		{plc: "2001:db8:7::/96", errContain: "longer than a /64"},
		{plc: "fe80::/64", errContain: "not inside the global unicast range"},
	} {
		got, err := EffectivePrefix6(c.own, &core.NodeState{IPv6Prefix: c.plc})
		if c.errContain != "" {
			if err == nil || !strings.Contains(err.Error(), c.errContain) || core.ErrorField(err) != tags.SliversIPv6Prefix {
				t.Errorf("own %v plc %q: %v, %v; want an error naming the tag with %q", c.own, c.plc, got, err, c.errContain)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("own %v plc %q: %v, %v; want %s", c.own, c.plc, got, err, c.want)
		}
	}
}

// TestMainFollowsPLCPrefix6: PLC's prefix reaches the network manager and
// every sliver's network configuration (so each is re-ensured) when it
// changes; a bad one keeps the last good prefix; none removes it; the
// node's own prefix wins over PLC's.
func TestMainFollowsPLCPrefix6(t *testing.T) {
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1, Slivers: []core.Sliver{sliverOf("pl_a", 1), sliverOf("pl_b", 2)}})
	h.start()
	h.eventually("slivers created", func() bool { return h.hasNet("pl_a") && h.hasNet("pl_b") })
	prefixes := func() (mgr netip.Prefix, a, b netip.Prefix) {
		h.net.mu.Lock()
		defer h.net.mu.Unlock()
		return h.net.prefix6, h.net.nets["pl_a"].Prefix6, h.net.nets["pl_b"].Prefix6
	}
	if m, a, b := prefixes(); m.IsValid() || a.IsValid() || b.IsValid() {
		t.Fatalf("prefix without one at PLC: manager %v, slivers %v %v", m, a, b)
	}
	p1 := netip.MustParsePrefix("2001:db8:7::/64")
	h.plc.set(func(st *core.NodeState) { st.IPv6Prefix = p1.String() })
	h.eventually("PLC's prefix on the manager and both slivers", func() bool { m, a, b := prefixes(); return m == p1 && a == p1 && b == p1 })

	h.plc.set(func(st *core.NodeState) { st.IPv6Prefix = "2001:db8:8::1/64" })
	passes := h.m.Status().Passes
	h.eventually("two passes with the bad prefix", func() bool { return h.m.Status().Passes >= passes+2 })
	if m, a, b := prefixes(); m != p1 || a != p1 || b != p1 {
		t.Errorf("a bad prefix changed the slivers': manager %v, slivers %v %v", m, a, b)
	}

	p2 := netip.MustParsePrefix("fd00:1:2:3::/64")
	h.plc.set(func(st *core.NodeState) { st.IPv6Prefix = p2.String() })
	h.eventually("the new prefix", func() bool { m, a, b := prefixes(); return m == p2 && a == p2 && b == p2 })
	h.plc.set(func(st *core.NodeState) { st.IPv6Prefix = "" })
	h.eventually("no prefix", func() bool { m, a, b := prefixes(); return !m.IsValid() && !a.IsValid() && !b.IsValid() })
	if !h.exists("pl_a") || h.starts("pl_a") != 1 {
		t.Errorf("a change of prefix restarted or destroyed pl_a (starts %d)", h.starts("pl_a"))
	}
	h.stop()

	// The node's own prefix wins.
	h2 := newHarness(t, &core.NodeState{Version: "v0", NodeID: 1, IPv6Prefix: p1.String(), Slivers: []core.Sliver{sliverOf("pl_a", 1)}})
	h2.prefix6 = p2
	h2.start()
	h2.eventually("the node's own prefix", func() bool {
		h2.net.mu.Lock()
		defer h2.net.mu.Unlock()
		return h2.net.prefix6 == p2 && h2.net.nets["pl_a"].Prefix6 == p2
	})
}
