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
