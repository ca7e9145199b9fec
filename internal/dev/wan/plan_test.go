package wan

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

var testSites = []Site{
	{"princeton", Location{40.3487, -74.6593}},
	{"ethz", Location{47.3763, 8.5480}},
	{"tokyo", Location{35.7126, 139.7620}},
}

func TestNewPlan(t *testing.T) {
	p, err := NewPlan(Config{ID: "t1", Nodes: 4, Sites: testSites, Host: testSites[0].Location, Overhead: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("host " + p.HostLink + " " + p.HostAddr.String() + " core " + p.CoreNS + " " + p.CoreAddr.String() + "\n")
	for _, s := range p.SitePlans {
		b.WriteString(s.NS + " " + s.Site.Name + " " + s.Subnet.String() + " gw " + s.Gateway.String() + " up " + s.SiteSide.String() + "-" + s.CoreSide.String() + " " + s.CoreTun + "\n")
	}
	for _, n := range p.NodePlans {
		b.WriteString(n.NS + " " + n.Addr.String() + " via " + n.Gateway.String() + " site " + p.SiteOf(n).Site.Name + "\n")
	}
	want := `host pldevt1-wan 10.99.0.1 core pldevt1-core 10.99.0.2
pldevt1-s1 princeton 10.99.1.0/24 gw 10.99.1.1 up 10.99.254.6-10.99.254.5 s1
pldevt1-s2 ethz 10.99.2.0/24 gw 10.99.2.1 up 10.99.254.10-10.99.254.9 s2
pldevt1-s3 tokyo 10.99.3.0/24 gw 10.99.3.1 up 10.99.254.14-10.99.254.13 s3
pldevt1-n1 10.99.1.11 via 10.99.1.1 site princeton
pldevt1-n2 10.99.2.11 via 10.99.2.1 site ethz
pldevt1-n3 10.99.3.11 via 10.99.3.1 site tokyo
pldevt1-n4 10.99.1.12 via 10.99.1.1 site princeton
`
	if b.String() != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", b.String(), want)
	}
	for _, tc := range []struct {
		addr string
		want Place
	}{
		{"10.99.0.1", PlaceHost}, {"10.99.0.2", PlaceCore}, {"10.99.2.11", 2}, {"10.99.254.14", 3},
		{"10.99.254.13", PlaceCore}, {"10.99.9.1", PlaceCore}, {"192.0.2.1", PlaceCore},
	} {
		if got := p.Locate(netip.MustParseAddr(tc.addr).As4()); got != tc.want {
			t.Errorf("Locate(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}
	if d := p.Delay(1, 3); d < 50*time.Millisecond || d > 60*time.Millisecond {
		t.Errorf("princeton-tokyo one-way %v, want 50-60ms", d)
	}
	if p.Delay(1, 1) != 0 || p.Delay(PlaceCore, 2) != 0 {
		t.Errorf("delay within a site or to the core not zero")
	}
	if p.Delay(PlaceHost, 1) != time.Millisecond {
		t.Errorf("host (at princeton) to princeton: %v, want the overhead", p.Delay(PlaceHost, 1))
	}
}

func TestNewPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{ID: "TOOLONG", Nodes: 1, Sites: testSites}, "id"},
		{Config{Nodes: 0, Sites: testSites}, "nodes 0"},
		{Config{Nodes: 1}, "no sites"},
		{Config{Nodes: 1, Sites: testSites, Prefix: netip.MustParsePrefix("10.99.0.0/24")}, "prefix"},
		{Config{Nodes: 1, Sites: testSites, Loss: 1}, "loss"},
		{Config{Nodes: 1000, Sites: testSites[:1]}, "240"},
	} {
		if _, err := NewPlan(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPlan(%+v) = %v, want error containing %q", tc.c, err, tc.want)
		}
	}
}

func TestDelayFuncs(t *testing.T) {
	p, err := NewPlan(Config{Nodes: 3, Sites: testSites, Host: testSites[0].Location})
	if err != nil {
		t.Fatal(err)
	}
	pkt := func(src, dst string) []byte {
		b := make([]byte, 20)
		b[0] = 0x45
		s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		return b
	}
	up := p.uplinkDelay(1)
	if d, _ := up(pkt("10.99.1.11", "10.99.3.11")); d != p.Delay(1, 3) {
		t.Errorf("uplink princeton->tokyo %v, want %v", d, p.Delay(1, 3))
	}
	down := p.downlinkDelay(3)
	if d, _ := down(pkt("10.99.1.11", "10.99.3.11")); d != 0 {
		t.Errorf("downlink of a site packet delayed %v (already delayed at its uplink)", d)
	}
	if d, _ := down(pkt("10.99.0.1", "10.99.3.11")); d != p.Delay(PlaceHost, 3) || d == 0 {
		t.Errorf("downlink host->tokyo %v, want %v", d, p.Delay(PlaceHost, 3))
	}
	if d, drop := up([]byte{0x60, 0, 0}); d != 0 || drop {
		t.Errorf("non-IPv4 packet: delay %v drop %v, want passed at once", d, drop)
	}
}

func FuzzDelayFuncs(f *testing.F) {
	p, err := NewPlan(Config{Nodes: 3, Sites: testSites})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 99, 0, 1, 10, 99, 2, 11})
	f.Add([]byte{})
	up, down := p.uplinkDelay(1), p.downlinkDelay(2)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if d, _ := up(pkt); d < 0 {
			t.Fatal("negative delay")
		}
		if d, _ := down(pkt); d < 0 {
			t.Fatal("negative delay")
		}
	})
}

func TestPlanIPv6(t *testing.T) {
	p, err := NewPlan(Config{ID: "t1", Nodes: 4, Sites: testSites, Host: testSites[0].Location, Overhead: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("wan " + p.Prefix6.String() + " host " + p.HostAddr6.String() + " core " + p.CoreAddr6.String() + "\n")
	for _, s := range p.SitePlans {
		b.WriteString(s.Site.Name + " " + s.Prefix6.String() + " lan " + s.Subnet6.String() + " gw " + s.Gateway6.String() + "\n")
	}
	for _, n := range p.NodePlans {
		b.WriteString(n.Name + " " + n.Addr6.String() + " via " + n.Gateway6.String() + " slivers " + n.SliverPrefix6.String() + "\n")
	}
	want := `wan fd0a:6300::/32 host fd0a:6300::1 core fd0a:6300::2
princeton fd0a:6300:1::/48 lan fd0a:6300:1::/64 gw fd0a:6300:1::1
ethz fd0a:6300:2::/48 lan fd0a:6300:2::/64 gw fd0a:6300:2::1
tokyo fd0a:6300:3::/48 lan fd0a:6300:3::/64 gw fd0a:6300:3::1
n1 fd0a:6300:1::b via fd0a:6300:1::1 slivers fd0a:6300:1:1::/64
n2 fd0a:6300:2::b via fd0a:6300:2::1 slivers fd0a:6300:2:2::/64
n3 fd0a:6300:3::b via fd0a:6300:3::1 slivers fd0a:6300:3:3::/64
n4 fd0a:6300:1::c via fd0a:6300:1::1 slivers fd0a:6300:1:4::/64
`
	if b.String() != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", b.String(), want)
	}
	// Each node's sliver /64 is inside its site's /48, distinct from the LAN.
	for _, n := range p.NodePlans {
		s := p.SiteOf(n)
		if !s.Prefix6.Contains(n.SliverPrefix6.Addr()) || n.SliverPrefix6.Overlaps(s.Subnet6) {
			t.Errorf("%s: sliver prefix %v vs site %v lan %v", n.Name, n.SliverPrefix6, s.Prefix6, s.Subnet6)
		}
	}
	for _, tc := range []struct {
		addr string
		want Place
	}{
		{"fd0a:6300::1", PlaceHost}, {"fd0a:6300::2", PlaceCore}, {"fd0a:6300:2::b", 2},
		{"fd0a:6300:3:3::1:7", 3}, {"fd0a:6300:9::1", PlaceCore}, {"fd0a:6301:1::1", PlaceCore}, {"2001:db8::1", PlaceCore},
	} {
		if got := p.Locate6(netip.MustParseAddr(tc.addr).As16()); got != tc.want {
			t.Errorf("Locate6(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}
	// The pumps find the place of IPv6 packets: source at 8, destination at 24.
	pkt := make([]byte, 48)
	pkt[0] = 0x60
	src, dst := netip.MustParseAddr("fd0a:6300::1").As16(), netip.MustParseAddr("fd0a:6300:3:3::1:7").As16()
	copy(pkt[8:], src[:])
	copy(pkt[24:], dst[:])
	if pl, ok := p.locatePacket(pkt, true); !ok || pl != PlaceHost {
		t.Errorf("IPv6 packet source at %d %v, want the host", pl, ok)
	}
	if pl, ok := p.locatePacket(pkt, false); !ok || pl != 3 {
		t.Errorf("IPv6 packet destination at %d %v, want site 3", pl, ok)
	}
	if d, _ := p.uplinkDelay(1)(pkt); d != p.Delay(1, 3) {
		t.Errorf("uplink delay of an IPv6 packet to tokyo %v, want %v", d, p.Delay(1, 3))
	}
}
