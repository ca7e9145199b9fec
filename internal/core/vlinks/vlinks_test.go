package vlinks

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

func TestParse(t *testing.T) {
	v := "prefix 10.200.0.0/24; ab N1.example.org n2.example.org rate=20mbit delay=10ms\n bc n2.example.org n3.example.org loss=0.5% ;;"
	top, err := Parse(v)
	if err != nil {
		t.Fatal(err)
	}
	if top.Prefix != netip.MustParsePrefix("10.200.0.0/24") || len(top.Links) != 2 {
		t.Fatalf("got %+v", top)
	}
	want0 := Link{Name: "ab", A: "n1.example.org", B: "n2.example.org", RateKbit: 20_000, Delay: 10 * time.Millisecond}
	want1 := Link{Name: "bc", A: "n2.example.org", B: "n3.example.org", RateKbit: DefaultRateKbit, LossPPM: 5000}
	if top.Links[0] != want0 || top.Links[1] != want1 {
		t.Fatalf("links %+v", top.Links)
	}
	// The canonical form parses back to the same topology.
	again, err := Parse(top.String())
	if err != nil || again.String() != top.String() {
		t.Fatalf("round trip: %q -> %v %q", top.String(), err, again.String())
	}
	if empty, err := Parse("  \n; "); err != nil || len(empty.Links) != 0 {
		t.Fatalf("empty value: %+v %v", empty, err)
	}
}

func TestParseValues(t *testing.T) {
	for _, c := range []struct {
		in   string
		rate int64
		loss int64
	}{
		{"rate=8", 8, 0}, {"rate=1gbit", 1_000_000, 0}, {"rate=300Kbit", 300, 0},
		{"loss=100%", DefaultRateKbit, 1_000_000}, {"loss=.0001%", DefaultRateKbit, 1}, {"loss=3.25%", DefaultRateKbit, 32_500},
	} {
		top, err := Parse("prefix 10.0.0.0/30; l a.org b.org " + c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if l := top.Links[0]; l.RateKbit != c.rate || l.LossPPM != c.loss {
			t.Errorf("%s: rate %d loss %d", c.in, l.RateKbit, l.LossPPM)
		}
	}
}

// Every bad value is refused with an Invalid error on the vlinks field
// whose message names the problem.
func TestParseErrors(t *testing.T) {
	const p = "prefix 10.200.0.0/24; "
	for _, c := range []struct{ in, want string }{
		{"ab a.org b.org", "links need a private range"},
		{"prefix 10.200.0.1/24", "host bits set (did you mean 10.200.0.0/24?)"},
		{"prefix 8.8.8.0/24", "not a private range"},
		{"prefix 10.0.0.0/31", "length must be /8 to /30"},
		{"prefix fd00::/64", "not an IPv4 prefix"},
		{"prefix 10.0.0.0/24; prefix 10.1.0.0/24", "a second prefix"},
		{"prefix", `want "prefix <IPv4 prefix>"`},
		{"prefix 10.0.0.0/30; a x.org y.org; b y.org z.org", "holds 1 links (one /30 each), not 2"},
		{p + "ab a.org", "want \"<name> <host-a> <host-b>"},
		{p + "eth0 a.org b.org", `link name "eth0"`},
		{p + "Ab a.org b.org", `link name "Ab"`},
		{p + "averyveryverylongname a.org b.org", "link name"},
		{p + "ab a.org a.org", "both ends are on a.org"},
		{p + "ab a..org b.org", `"a..org" is not a host name`},
		{p + "ab a.org b.org rate=0", "rate 0 is impossible"},
		{p + "ab a.org b.org rate=2gbit", "rate 2gbit is impossible"},
		{p + "ab a.org b.org rate=-5mbit", "want a whole number"},
		{p + "ab a.org b.org rate=99999999999999999gbit", "impossible"},
		{p + "ab a.org b.org rate=fast", "want a whole number"},
		{p + "ab a.org b.org delay=11s", "out of range"},
		{p + "ab a.org b.org delay=-1ms", "out of range"},
		{p + "ab a.org b.org delay=1.5ns", "finer than a microsecond"},
		{p + "ab a.org b.org delay=soon", "not a duration"},
		{p + "ab a.org b.org loss=101%", "above 100%"},
		{p + "ab a.org b.org loss=0.5", "want a percentage"},
		{p + "ab a.org b.org loss=0.00001%", "at most four decimals"},
		{p + "ab a.org b.org loss=1e3%", "want a percentage"},
		{p + "ab a.org b.org jitter=1ms", `unknown property "jitter"`},
		{p + "ab a.org b.org rate", `"rate" is not key=value`},
		{p + "ab a.org b.org rate=1mbit rate=2mbit", "rate given twice"},
		{p + "ab a.org b.org; ab b.org c.org", `link "ab" is declared twice`},
		{p + "ab a.org b.org; ba B.org a.org", `link "ba" duplicates link "ab" between b.org and a.org`},
		{strings.Repeat(" ", MaxValue+1), "more than the limit"},
	} {
		_, err := Parse(c.in)
		if err == nil {
			t.Errorf("%q: accepted", c.in)
			continue
		}
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != Tag || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v (code %s), want it to say %q", c.in, err, core.ErrorCode(err), c.want)
		}
	}
	var b strings.Builder
	b.WriteString("prefix 10.0.0.0/16")
	for i := range MaxLinks + 1 {
		b.WriteString("; k" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + " h" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + ".org x.org")
	}
	if _, err := Parse(b.String()); err == nil || !strings.Contains(err.Error(), "more than 63 links") {
		t.Errorf("64 links: %v", err)
	}
}

func TestEnds(t *testing.T) {
	top, err := Parse("prefix 10.200.0.0/24; ab a.org b.org rate=20mbit delay=10ms loss=1%; bc b.org c.org; ca c.org a.org")
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]netip.Addr{"a.org": netip.MustParseAddr("192.0.2.1"), "b.org": netip.MustParseAddr("192.0.2.2")}
	lookup := func(h string) (netip.Addr, bool) { a, ok := addrs[h]; return a, ok }
	ends, missing, err := top.Ends(7, "B.org", lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := []core.VLink{
		{Name: "ab", VNI: 7*64 + 1, Local: "10.200.0.2/30", Remote: "10.200.0.1", PeerNode: "a.org", PeerAddr: "192.0.2.1", RateKbit: 20_000, DelayUS: 10_000, LossPPM: 10_000},
	}
	if len(ends) != 1 || !reflect.DeepEqual(ends[0], want[0]) {
		t.Fatalf("ends %+v", ends)
	}
	if len(missing) != 1 || missing[0] != "bc" {
		t.Fatalf("missing %v (c.org has no address)", missing)
	}
	for _, e := range ends {
		if _, err := CheckEnd(e); err != nil {
			t.Errorf("CheckEnd(%+v): %v", e, err)
		}
	}
	a, b := top.Addrs(2)
	if a.String() != "10.200.0.9/30" || b.String() != "10.200.0.10/30" {
		t.Errorf("link 2: %s %s", a, b)
	}
	if _, err := VNI(MaxSliceID+1, 0); err == nil {
		t.Error("VNI beyond 24 bits accepted")
	}
	if v, _ := VNI(MaxSliceID, MaxLinks-1); v >= 1<<24 {
		t.Errorf("largest VNI %d overflows 24 bits", v)
	}
}

func TestCheckEnd(t *testing.T) {
	good := core.VLink{Name: "ab", VNI: 65, Local: "10.200.0.1/30", Remote: "10.200.0.2", PeerAddr: "192.0.2.2", RateKbit: 1000}
	if _, err := CheckEnd(good); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*core.VLink){
		"name":        func(v *core.VLink) { v.Name = "eth0" },
		"vni 0":       func(v *core.VLink) { v.VNI = 0 },
		"vni 2^24":    func(v *core.VLink) { v.VNI = 1 << 24 },
		"local /24":   func(v *core.VLink) { v.Local = "10.200.0.1/24" },
		"remote self": func(v *core.VLink) { v.Remote = "10.200.0.1" },
		"remote far":  func(v *core.VLink) { v.Remote = "10.200.1.2" },
		"peer v6":     func(v *core.VLink) { v.PeerAddr = "2001:db8::1" },
		"peer lo":     func(v *core.VLink) { v.PeerAddr = "127.0.0.1" },
		"rate":        func(v *core.VLink) { v.RateKbit = 0 },
		"delay":       func(v *core.VLink) { v.DelayUS = -1 },
		"loss":        func(v *core.VLink) { v.LossPPM = 1_000_001 },
	} {
		v := good
		mod(&v)
		if _, err := CheckEnd(v); err == nil {
			t.Errorf("%s: accepted %+v", name, v)
		}
	}
}

// TestParseLAN: a LAN statement, its canonical form, its addresses (from
// the top of the prefix, the links' from the bottom) and its VNIs (from
// the top of the slice's 64).
func TestParseLAN(t *testing.T) {
	top, err := Parse("prefix 10.200.0.0/24; ab a.org b.org; lan core A.org b.org c.org rate=5mbit delay=2ms loss=1%; lan two b.org d.org")
	if err != nil {
		t.Fatal(err)
	}
	want := LAN{Name: "core", Members: []string{"a.org", "b.org", "c.org"}, RateKbit: 5000, Delay: 2 * time.Millisecond, LossPPM: 10_000}
	if len(top.LANs) != 2 || !reflect.DeepEqual(top.LANs[0], want) || len(top.Links) != 1 {
		t.Fatalf("got %+v", top)
	}
	if s := top.String(); s != "prefix 10.200.0.0/24; ab a.org b.org rate=10000kbit; lan core a.org b.org c.org rate=5000kbit delay=2ms loss=1.0000%; lan two b.org d.org rate=10000kbit" {
		t.Errorf("canonical: %s", s)
	}
	for _, c := range []struct {
		j, m int
		want string
	}{{0, 0, "10.200.0.249/29"}, {0, 2, "10.200.0.251/29"}, {1, 0, "10.200.0.245/30"}, {1, 1, "10.200.0.246/30"}} {
		if got := top.LANAddr(c.j, c.m).String(); got != c.want {
			t.Errorf("LAN %d member %d: %s, want %s", c.j, c.m, got, c.want)
		}
	}
	addrs := map[string]netip.Addr{"a.org": netip.MustParseAddr("192.0.2.1"), "b.org": netip.MustParseAddr("192.0.2.2"), "c.org": netip.MustParseAddr("192.0.2.3")}
	ends, missing, err := top.Ends(7, "b.org", func(h string) (netip.Addr, bool) { a, ok := addrs[h]; return a, ok })
	if err != nil {
		t.Fatal(err)
	}
	wantCore := core.VLink{Name: "core", VNI: 7*64 + 63, Local: "10.200.0.250/29", RateKbit: 5000, DelayUS: 2000, LossPPM: 10_000,
		Peers: []core.VLinkPeer{{Node: "a.org", Addr: "192.0.2.1", Private: "10.200.0.249"}, {Node: "c.org", Addr: "192.0.2.3", Private: "10.200.0.251"}}}
	if len(ends) != 2 || ends[0].Name != "ab" || !reflect.DeepEqual(ends[1], wantCore) {
		t.Fatalf("ends of b.org: %+v", ends)
	}
	if !reflect.DeepEqual(missing, []string{"two"}) {
		t.Errorf("missing %v (d.org has no address: LAN two has no peer)", missing)
	}
	e, err := CheckEnd(ends[1])
	if err != nil || !e.IsLAN() || len(e.Peers) != 2 || e.Peers[1] != netip.MustParseAddr("192.0.2.3") {
		t.Fatalf("CheckEnd: %+v %v", e, err)
	}
	if e, _ := CheckEnd(ends[0]); e.IsLAN() || len(e.Peers) != 1 || e.Peers[0] != e.Peer {
		t.Errorf("a link's end: %+v", e)
	}
	if v, _ := LANVNI(7, 1); v != 7*64+62 {
		t.Errorf("LAN 1's VNI %d", v)
	}
	// Appending a link or a LAN moves nothing.
	more, err := Parse(top.String() + "; bc b.org c.org; lan three a.org c.org")
	if err != nil {
		t.Fatal(err)
	}
	if more.LANAddr(0, 1) != top.LANAddr(0, 1) || more.LANAddr(1, 0) != top.LANAddr(1, 0) {
		t.Error("appending moved a LAN's addresses")
	}
}

func TestParseLANErrors(t *testing.T) {
	const p = "prefix 10.200.0.0/24; "
	for _, c := range []struct{ in, want string }{
		{"lan x a.org b.org", "need a private range"},
		{p + "lan", `want "lan <name> <host> <host>`},
		{p + "lan x a.org", "1 members, want at least 2"},
		{p + "lan eth0 a.org b.org", `LAN name "eth0"`},
		{p + "lan lan a.org b.org", `LAN name "lan"`},
		{p + "lan x a.org b.org A.org", "a.org is a member twice"},
		{p + "lan x a.org b..org", `"b..org" is not a host name`},
		{p + "lan x a.org b.org rate=0", "LAN x: rate 0 is impossible"},
		{p + "lan x a.org b.org jitter=1", `LAN x: unknown property "jitter"`},
		{p + "lan x a.org b.org delay=1s loss=2", "want a percentage"},
		{p + "x a.org b.org; lan x b.org c.org", `LAN "x": the name is declared twice`},
		{p + "lan x b.org c.org; x a.org b.org", `link "x": the name is declared twice`},
		{p + "lan x b.org c.org; lan x a.org b.org", `LAN "x": the name is declared twice`},
		{p + "lan a.org b.org c.org", `LAN name "a.org"`},
		{"prefix 10.0.0.0/29; a h1 h2; lan x h1 h2 h3", "prefix 10.0.0.0/29 is too small for 1 links (one /30 each, from the bottom) and LANs x (3 members: /29) (from the top)"},
		{"prefix 10.0.0.0/30; lan x h1 h2; lan y h1 h2", "too small"},
		{"prefix 10.0.0.0/24; lan x " + strings.Repeat("h ", 1)[:0] + hostsN(255), "more than 254 members"},
	} {
		_, err := Parse(c.in)
		if err == nil {
			t.Errorf("%q: accepted", c.in)
			continue
		}
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != Tag || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want it to say %q", c.in, err, c.want)
		}
	}
	// 254 members fill a /24 exactly; links and LANs count together.
	if _, err := Parse("prefix 10.0.0.0/24; lan x " + hostsN(254)); err != nil {
		t.Errorf("254 members in a /24: %v", err)
	}
	var b strings.Builder
	b.WriteString("prefix 10.0.0.0/16")
	for i := range MaxLinks + 1 {
		b.WriteString(fmt.Sprintf("; lan l%d a.org b.org", i))
	}
	if _, err := Parse(b.String()); err == nil || !strings.Contains(err.Error(), "more than 63 links and LANs") {
		t.Errorf("64 LANs: %v", err)
	}
}

func hostsN(n int) string {
	var h []string
	for i := range n {
		h = append(h, fmt.Sprintf("h%d.org", i))
	}
	return strings.Join(h, " ")
}

func TestCheckLANEnd(t *testing.T) {
	good := core.VLink{Name: "lan0", VNI: 127, Local: "10.200.0.250/29", RateKbit: 1000,
		Peers: []core.VLinkPeer{{Node: "a", Addr: "192.0.2.1", Private: "10.200.0.249"}, {Node: "c", Addr: "192.0.2.3", Private: "10.200.0.251"}}}
	if _, err := CheckEnd(good); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*core.VLink){
		"remote":            func(v *core.VLink) { v.Remote = "10.200.0.249" },
		"peer_addr":         func(v *core.VLink) { v.PeerAddr = "192.0.2.1" },
		"local network":     func(v *core.VLink) { v.Local = "10.200.0.248/29" },
		"local broadcast":   func(v *core.VLink) { v.Local = "10.200.0.255/29" },
		"local /31":         func(v *core.VLink) { v.Local = "10.200.0.250/31" },
		"peer v6":           func(v *core.VLink) { v.Peers[0].Addr = "2001:db8::1" },
		"peer loopback":     func(v *core.VLink) { v.Peers[0].Addr = "127.0.0.1" },
		"peers same node":   func(v *core.VLink) { v.Peers[1].Addr = "192.0.2.1" },
		"private outside":   func(v *core.VLink) { v.Peers[0].Private = "10.200.1.249" },
		"private is local":  func(v *core.VLink) { v.Peers[0].Private = "10.200.0.250" },
		"private twice":     func(v *core.VLink) { v.Peers[1].Private = "10.200.0.249" },
		"private broadcast": func(v *core.VLink) { v.Peers[1].Private = "10.200.0.255" },
	} {
		v := good
		v.Peers = append([]core.VLinkPeer(nil), good.Peers...)
		mod(&v)
		if _, err := CheckEnd(v); err == nil {
			t.Errorf("%s: accepted %+v", name, v)
		}
	}
}

func TestOverlaps(t *testing.T) {
	a, _ := Parse("prefix 10.200.0.0/16")
	b, _ := Parse("prefix 10.200.5.0/24")
	c, _ := Parse("prefix 10.201.0.0/24")
	var none Topology
	if !Overlaps(a, b) || Overlaps(a, c) || Overlaps(a, none) {
		t.Error("Overlaps")
	}
}

// FuzzParse: no input panics; an accepted value's canonical form parses to
// the same topology, whose ends all pass the node's CheckEnd.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"prefix 10.200.0.0/24; ab a.org b.org rate=20mbit delay=10ms loss=0.5%",
		"prefix 192.168.0.0/30\nx h1 h2", "prefix 100.64.0.0/10", "", ";;", "ab a b rate=1gbit",
		"prefix 10.0.0.0/8; a a.b c.d loss=.5%; b c.d e.f delay=1s",
		"prefix 10.200.0.0/24; lan core a.org b.org c.org rate=5mbit delay=2ms; ab a.org b.org",
		"prefix 10.0.0.0/28; lan x h1 h2 h3 h4 h5 h6; lan y h1 h2; a h1 h2", "lan", "lan q", "prefix 10.0.0.0/30; lan z a b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		top, err := Parse(s)
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("error code %s: %v", core.ErrorCode(err), err)
			}
			return
		}
		again, err := Parse(top.String())
		if err != nil || again.String() != top.String() {
			t.Fatalf("canonical %q: %v / %q", top.String(), err, again.String())
		}
		// Each host its own address (LAN ends refuse two peers on one).
		nodeAddrs := map[string]netip.Addr{}
		addr := func(h string) (netip.Addr, bool) {
			if a, ok := nodeAddrs[h]; ok {
				return a, true
			}
			n := len(nodeAddrs) + 1
			nodeAddrs[h] = netip.AddrFrom4([4]byte{100, 64, byte(n >> 8), byte(n)})
			return nodeAddrs[h], true
		}
		var hosts []string
		for _, l := range top.Links {
			hosts = append(hosts, l.A, l.B)
		}
		for _, n := range top.LANs {
			hosts = append(hosts, n.Members...)
		}
		vnis := map[uint32]bool{}
		for _, l := range top.Links {
			for _, h := range []string{l.A, l.B} {
				ends, _, err := top.Ends(1, h, addr)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ends {
					if _, err := CheckEnd(e); err != nil {
						t.Fatalf("end %+v: %v", e, err)
					}
				}
			}
		}
		// Every end of every host passes CheckEnd, LAN addresses never
		// overlap link addresses, and VNIs are distinct.
		used := map[netip.Addr]string{}
		for i := range top.Links {
			a, b := top.Addrs(i)
			used[a.Addr()], used[b.Addr()] = "link", "link"
		}
		for _, h := range hosts {
			ends, _, err := top.Ends(1, h, addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ends {
				if _, err := CheckEnd(e); err != nil {
					t.Fatalf("end %+v: %v", e, err)
				}
			}
		}
		for j, n := range top.LANs {
			v, err := LANVNI(1, j)
			if err != nil || vnis[v] {
				t.Fatalf("LAN %d: VNI %d %v", j, v, err)
			}
			vnis[v] = true
			for m := range n.Members {
				a := top.LANAddr(j, m)
				if !top.Prefix.Contains(a.Addr()) || used[a.Addr()] != "" {
					t.Fatalf("LAN %s member %d: %s outside %s or already %s", n.Name, m, a, top.Prefix, used[a.Addr()])
				}
				used[a.Addr()] = "lan"
			}
		}
		for i := range top.Links {
			v, _ := VNI(1, i)
			if vnis[v] {
				t.Fatalf("link %d: VNI %d is a LAN's", i, v)
			}
		}
	})
}
