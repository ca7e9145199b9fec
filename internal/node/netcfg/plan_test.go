package netcfg

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
)

func TestSliverSubnet(t *testing.T) {
	p := netip.MustParsePrefix(DefaultPrefix)
	tests := []struct {
		xid               int
		sub, gw, addr, ee string
	}{
		{xid: 1, sub: "10.42.0.4/30", gw: "10.42.0.5", addr: "10.42.0.6"},
		{xid: 5, sub: "10.42.0.20/30", gw: "10.42.0.21", addr: "10.42.0.22"},
		{xid: 64, sub: "10.42.1.0/30", gw: "10.42.1.1", addr: "10.42.1.2"},
		{xid: 4094, sub: "10.42.63.248/30", gw: "10.42.63.249", addr: "10.42.63.250"},
		{xid: 0, ee: "xid 0 is outside 1..4094"},
		{xid: 4095, ee: "xid 4095 is outside"},
	}
	for _, tt := range tests {
		sub, gw, addr, err := SliverSubnet(p, tt.xid)
		if tt.ee != "" {
			if err == nil || !strings.Contains(err.Error(), tt.ee) || core.ErrorCode(err) != core.Invalid {
				t.Errorf("xid %d: err %v, want %q", tt.xid, err, tt.ee)
			}
			continue
		}
		if err != nil || sub.String() != tt.sub || gw.String() != tt.gw || addr.String() != tt.addr {
			t.Errorf("xid %d: %v %v %v %v, want %s %s %s", tt.xid, sub, gw, addr, err, tt.sub, tt.gw, tt.addr)
		}
	}
	// Unaligned prefixes are masked; too small prefixes are refused.
	if sub, _, _, _ := SliverSubnet(netip.MustParsePrefix("192.168.7.9/16"), 2); sub.String() != "192.168.0.8/30" {
		t.Errorf("masked: %v", sub)
	}
	if _, _, _, err := SliverSubnet(netip.MustParsePrefix("10.0.0.0/24"), 64); err == nil || !strings.Contains(err.Error(), "needs a /23 or shorter") {
		t.Errorf("small prefix: %v", err)
	}
	if _, _, _, err := SliverSubnet(netip.MustParsePrefix("fd00::/64"), 1); err == nil {
		t.Error("IPv6 prefix accepted")
	}
	// All xids get distinct, non-overlapping subnets inside the prefix.
	seen := map[netip.Prefix]bool{}
	for xid := 1; xid <= MaxXID; xid++ {
		sub, _, _, err := SliverSubnet(p, xid)
		if err != nil || !p.Contains(sub.Addr()) || seen[sub] {
			t.Fatalf("xid %d: %v %v dup=%v", xid, sub, err, seen[sub])
		}
		seen[sub] = true
	}
}

func TestRates(t *testing.T) {
	const capK = 100_000
	tests := []struct {
		min, max, rate, ceil int64
		field                string
	}{
		{0, 0, MinRateFloorKbit, capK, ""},
		{500, 2000, 500, 2000, ""},
		{5000, 2000, 2000, 2000, ""},
		{10, 1 << 40, 10, capK, ""},
		{-1, 0, 0, 0, "net_min_rate"},
		{0, -5, 0, 0, "net_max_rate"},
	}
	for _, tt := range tests {
		r, c, err := rates(Sliver{MinRateKbit: tt.min, MaxRateKbit: tt.max}, capK)
		if tt.field != "" {
			if core.ErrorField(err) != tt.field {
				t.Errorf("%d/%d: err %v, want field %s", tt.min, tt.max, err, tt.field)
			}
			continue
		}
		if err != nil || r != tt.rate || c != tt.ceil {
			t.Errorf("%d/%d: got %d/%d %v, want %d/%d", tt.min, tt.max, r, c, err, tt.rate, tt.ceil)
		}
	}
}

func TestNamesAndValidation(t *testing.T) {
	if got := vethName("plv", 4094); got != "plv4094" || len(vethName("abcdefghijk", 4094)) > 15 {
		t.Errorf("veth name %q", got)
	}
	if htbClassMinor(5) != 0x1005 || htbClassMinor(MaxXID) >= htbDefaultMinor {
		t.Error("class minor")
	}
	for _, n := range []string{"", ".", "..", "../x", "a/b", "-x", ".hidden", strings.Repeat("a", 65), "a b"} {
		if validName(n) == nil {
			t.Errorf("name %q accepted", n)
		}
	}
	for _, n := range []string{"pl_test", "princeton_codeen", "a", "x.y-z"} {
		if err := validName(n); err != nil {
			t.Errorf("name %q: %v", n, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{StateDir: "/x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix.String() != DefaultPrefix || c.CapKbit != DefaultCapKbit || c.Table != "pl" || c.VethPrefix != "plv" || ports.Format(c.NodePorts) != "tcp/22" {
		t.Errorf("defaults: %+v", c)
	}
	bad := []struct {
		c     Config
		field string
	}{
		{Config{}, "state_dir"},
		{Config{StateDir: "/x", Prefix: netip.MustParsePrefix("10.0.0.0/20")}, "prefix"},
		{Config{StateDir: "/x", VethPrefix: "waytoolongprefix"}, "veth_prefix"},
		{Config{StateDir: "/x", VethPrefix: "PL"}, "veth_prefix"},
		{Config{StateDir: "/x", Table: "a b"}, "table"},
		{Config{StateDir: "/x", CapKbit: 1}, "cap_kbit"},
		{Config{StateDir: "/x", NodeServices: []Port{{Proto: "tcp"}}}, "node_services"},
		{Config{StateDir: "/x", NodeAddr: netip.MustParseAddr("::1")}, "node_addr"},
		{Config{StateDir: "/x", NodePorts: []Port{{Proto: "udp", From: 5, To: 1}}}, "node_ports"},
	}
	for _, b := range bad {
		if _, err := b.c.withDefaults(); core.ErrorField(err) != b.field {
			t.Errorf("%+v: err %v, want field %s", b.c, err, b.field)
		}
	}
}

func TestSliverAddr6(t *testing.T) {
	p := netip.MustParsePrefix("2001:db8:7::/64")
	for _, tt := range []struct {
		prefix string
		xid    int
		addr   string
		ee     string
	}{
		{prefix: "2001:db8:7::/64", xid: 1, addr: "2001:db8:7::1:1"},
		{prefix: "2001:db8:7::/64", xid: 5, addr: "2001:db8:7::1:5"},
		{prefix: "2001:db8:7::/64", xid: 4094, addr: "2001:db8:7::1:ffe"},
		{prefix: "fd00:1:2:3::/64", xid: 10, addr: "fd00:1:2:3::1:a"},
		{prefix: "2001:db8:7:1::5/64", xid: 2, addr: "2001:db8:7:1::1:2"}, // masked
		{prefix: "2001:db8::ffff:0:0/111", xid: 4094, addr: "2001:db8::ffff:1:ffe"},
		{prefix: "2001:db8::/112", xid: 1, ee: "needs a /111 or shorter prefix"},
		{prefix: "10.0.0.0/8", xid: 1, ee: "is not an IPv6 prefix"},
		{prefix: "::ffff:10.0.0.0/104", xid: 1, ee: "is not an IPv6 prefix"},
		{prefix: "fe80::/64", xid: 1, ee: "not global unicast"},
		{prefix: "ff02::/64", xid: 1, ee: "not global unicast"},
		{prefix: "2001:db8::/64", xid: 0, ee: "xid 0 is outside 1..4094"},
		{prefix: "2001:db8::/64", xid: 4095, ee: "xid 4095 is outside"},
	} {
		a, err := SliverAddr6(netip.MustParsePrefix(tt.prefix), tt.xid)
		if tt.ee != "" {
			if err == nil || !strings.Contains(err.Error(), tt.ee) || core.ErrorCode(err) != core.Invalid {
				t.Errorf("%s xid %d: %v, %v; want error %q", tt.prefix, tt.xid, a, err, tt.ee)
			}
			continue
		}
		if err != nil || a.String() != tt.addr {
			t.Errorf("%s xid %d: %v, %v; want %s", tt.prefix, tt.xid, a, err, tt.addr)
		}
	}
	// Every xid gets a distinct address inside the prefix, none of the
	// low ones (::1 ...) an admin gives the node.
	seen := map[netip.Addr]bool{}
	for xid := 1; xid <= MaxXID; xid++ {
		a, err := SliverAddr6(p, xid)
		if err != nil || !p.Contains(a) || seen[a] || a.As16()[13] == 0 {
			t.Fatalf("xid %d: %v %v dup=%v", xid, a, err, seen[a])
		}
		seen[a] = true
	}
	// A node configuration with a bad prefix is refused.
	if _, err := (Config{StateDir: "/x", Prefix6: netip.MustParsePrefix("2001:db8::/120")}).withDefaults(); err == nil || !strings.Contains(err.Error(), "prefix6") {
		t.Errorf("config with a /120: %v", err)
	}
}
