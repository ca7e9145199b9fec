package vlink

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/vlinks"
)

// TestRules: the whole table for two slivers' ends, in VNI order (a LAN's
// one rule per peer), with the loss rule before its link's accept, the
// conntrack mark in both directions and a final drop in each chain.
func TestRules(t *testing.T) {
	e := func(vni uint32, peer string, loss int64) vlinks.End {
		return vlinks.End{VLink: core.VLink{VNI: vni, LossPPM: loss}, Peer: netip.MustParseAddr(peer), Peers: []netip.Addr{netip.MustParseAddr(peer)}}
	}
	lan := vlinks.End{VLink: core.VLink{VNI: 191, LossPPM: 1000, Peers: []core.VLinkPeer{{}, {}}},
		Peers: []netip.Addr{netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4")}}
	got := rules(4789, map[string][]vlinks.End{
		"b": {e(130, "192.0.2.3", 0), lan},
		"a": {e(66, "192.0.2.2", 5000), e(65, "192.0.2.2", 0)},
	}, map[string]int{"a": 7, "b": 300})
	var lines []string
	for _, r := range got {
		lines = append(lines, r.String())
	}
	want := `input: ip udp dport 4789 jump vx-in
output: ip udp dport 4789 jump vx-out
forward: ip udp dport 4789 counter drop
vx-in: ip saddr 192.0.2.2 vxlan vni 65 ct mark set 0x7 accept
vx-in: ip saddr 192.0.2.2 vxlan vni 66 ct mark set 0x7 accept
vx-in: ip saddr 192.0.2.3 vxlan vni 130 ct mark set 0x12c accept
vx-in: ip saddr 192.0.2.3 vxlan vni 191 ct mark set 0x12c accept
vx-in: ip saddr 192.0.2.4 vxlan vni 191 ct mark set 0x12c accept
vx-in: counter drop
vx-out: ip daddr 192.0.2.2 vxlan vni 65 meta mark set 0x7 ct mark set 0x7 meta priority set 1:1007 accept
vx-out: ip daddr 192.0.2.2 vxlan vni 66 numgen random mod 1000000 < 5000 counter drop
vx-out: ip daddr 192.0.2.2 vxlan vni 66 meta mark set 0x7 ct mark set 0x7 meta priority set 1:1007 accept
vx-out: ip daddr 192.0.2.3 vxlan vni 130 meta mark set 0x12c ct mark set 0x12c meta priority set 1:112c accept
vx-out: ip daddr 192.0.2.3 vxlan vni 191 numgen random mod 1000000 < 1000 counter drop
vx-out: ip daddr 192.0.2.3 vxlan vni 191 meta mark set 0x12c ct mark set 0x12c meta priority set 1:112c accept
vx-out: ip daddr 192.0.2.4 vxlan vni 191 numgen random mod 1000000 < 1000 counter drop
vx-out: ip daddr 192.0.2.4 vxlan vni 191 meta mark set 0x12c ct mark set 0x12c meta priority set 1:112c accept
vx-out: counter drop`
	if g := strings.Join(lines, "\n"); g != want {
		t.Errorf("rules:\n%s\nwant:\n%s", g, want)
	}
	if n := len(rules(4789, nil, nil)); n != 5 {
		t.Errorf("empty node: %d rules, want the 3 hooks and 2 final drops", n)
	}
}
