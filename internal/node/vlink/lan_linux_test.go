package vlink

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/node/flows"
)

// resolve parses a vlinks value and builds every node's ends of it for
// sliver name (slice id sliceID), as PLC resolves a topology: nodes are
// named n1, n2, ... after their index in nodes. Nodes without ends get
// none (their links are removed).
func resolve(t testing.TB, nodes []*testNode, nss []string, name string, sliceID int64, value string) {
	t.Helper()
	top, err := vlinks.Parse(value)
	must(t, err)
	addr := func(h string) (netip.Addr, bool) {
		var i int
		if _, err := fmt.Sscanf(h, "n%d", &i); err != nil || i < 1 || i > len(nodes) {
			return netip.Addr{}, false
		}
		return nodes[i-1].addr, true
	}
	for i, n := range nodes {
		if nss[i] == "" {
			continue
		}
		ends, _, err := top.Ends(sliceID, fmt.Sprintf("n%d", i+1), addr)
		must(t, err)
		must(t, n.vl.Ensure(context.Background(), name, n.xids[name], nss[i], ends))
	}
}

// fdbRemotes lists the all-zero forwarding entries of a node's device (a
// LAN tunnel's members).
func fdbRemotes(t testing.TB, ns, dev string) []string {
	t.Helper()
	h, err := netns.GetFromPath(ns)
	must(t, err)
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	must(t, err)
	defer nh.Close()
	l, err := nh.LinkByName(dev)
	must(t, err)
	ns_, err := nh.NeighList(l.Attrs().Index, unix.AF_BRIDGE)
	must(t, err)
	var out []string
	for _, n := range ns_ {
		if n.HardwareAddr.String() == "00:00:00:00:00:00" && n.IP != nil {
			out = append(out, n.IP.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestLAN: a LAN of three slivers on three nodes: each member reaches the
// others over one interface with its address from the slice's range (ARP
// and the echo's replies cross the tunnel's head-end replication and
// learning), each member's sending is shaped to the LAN's rate, and no
// one but the members' nodes can put a packet on it: not a fourth node,
// not another slice's sliver on a member node, not the LAN's own sliver
// through its node's NAT. A member that leaves loses its forwarding
// entries at the others and its packets are refused. A delayed LAN
// (through the relay, which sends each frame to every member) delays
// every pair.
func TestLAN(t *testing.T) {
	nodes := newNodes(t, 4)
	const slice, sliceID = "hvl", 3
	nss := make([]string, 4)
	for i := range 3 {
		nss[i] = nodes[i].sliver(t, slice, 21)
	}
	other := nodes[0].sliver(t, "hvo", 22)
	const rateKbit = 20_000
	value := fmt.Sprintf("prefix 10.210.0.0/24; lan core n1 n2 n3 rate=%dkbit", rateKbit)
	resolve(t, nodes, nss, slice, sliceID, value)
	vni, _ := vlinks.LANVNI(sliceID, 0)
	addrs := []string{"10.210.0.249", "10.210.0.250", "10.210.0.251"}

	// Each member's interface and address, its tunnel's forwarding
	// entries: one per other member.
	for i := range 3 {
		in(t, nss[i], func() error {
			h, err := netlink.LinkByName("core")
			if err != nil {
				return err
			}
			as, err := netlink.AddrList(h, unix.AF_INET)
			if err != nil || len(as) != 1 || as[0].IPNet.String() != addrs[i]+"/29" {
				return fmt.Errorf("member %d: addresses %v %v", i+1, as, err)
			}
			return nil
		})
		var want []string
		for j := range 3 {
			if j != i {
				want = append(want, nodes[j].addr.String())
			}
		}
		if got := fdbRemotes(t, nodes[i].ns, fmt.Sprintf("vlx%d", vni)); !slices.Equal(got, want) {
			t.Errorf("node %d's forwarding entries %v, want %v", i+1, got, want)
		}
	}
	// Every member reaches every other.
	for i := range 3 {
		go echo(udpListen(t, nss[i], addrs[i]+":7000"))
	}
	for i := range 3 {
		for j := range 3 {
			if i == j {
				continue
			}
			d, err := rtt(t, nss[i], addrs[j]+":7000")
			if err != nil {
				t.Fatalf("member %d to member %d: %v", i+1, j+1, err)
			}
			t.Logf("member %d to %d: round trip %v", i+1, j+1, d)
		}
	}
	// The other slice's sliver on a member node has no way onto the LAN.
	if _, err := rttTries(t, other, addrs[1]+":7000", 2); err == nil {
		t.Fatal("another slice's sliver reached the LAN")
	}

	// Forged tunnel packets: only a member node's get through.
	sink := udpListen(t, nss[1], addrs[1]+":7777")
	mac := linkMAC(t, nss[1], "core")
	pkt := func(tag string) []byte {
		return forged(vni, mac, netip.MustParseAddr(addrs[0]), netip.MustParseAddr(addrs[1]), 7777, tag)
	}
	target := nodes[1].addr.String() + ":4789"
	sendFrom(t, nodes[3].ns, nodes[3].addr, target, pkt("from a node that is not a member"))
	sendFrom(t, other, netip.Addr{}, target, pkt("from another slice's sliver on a member node"))
	sendFrom(t, nss[0], netip.Addr{}, target, pkt("from the LAN's own sliver through NAT"))
	if got := received(sink, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("forged tunnel packets delivered: %q", got)
	}
	sendFrom(t, nodes[2].ns, nodes[2].addr, target, pkt("from a member node"))
	if got := received(sink, 2*time.Second); len(got) != 1 || got[0] != "from a member node" {
		t.Fatalf("control: a member node's packet: got %q", got)
	}

	// Each member's sending is shaped to the LAN's rate.
	checkRate(t, nss[0], nss[2], "core", addrs[2], rateKbit)

	// n3 leaves the LAN: the others forget it, and its node's packets are
	// refused.
	resolve(t, nodes, nss, slice, sliceID, "prefix 10.210.0.0/24; lan core n1 n2 rate=20mbit")
	if got := fdbRemotes(t, nodes[0].ns, fmt.Sprintf("vlx%d", vni)); !slices.Equal(got, []string{nodes[1].addr.String()}) {
		t.Errorf("node 1's forwarding entries after n3 left: %v", got)
	}
	if hasLink(t, nss[2], "core") {
		t.Error("n3's sliver still has the LAN's interface")
	}
	// (n3's own output rules now refuse to send it; without them, as from
	// a node that ignores them, n2's input refuses it.)
	must(t, nodes[2].vl.Teardown())
	sendFrom(t, nodes[2].ns, nodes[2].addr, target, pkt("from a node that left"))
	if got := received(sink, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("a former member's packet delivered: %q", got)
	}
	if _, err := rtt(t, nss[0], addrs[1]+":7000"); err != nil {
		t.Fatalf("the remaining members: %v", err)
	}

	// A delayed LAN of the three: every pair's round trip is at least twice
	// the delay (each sender's relay holds its frames once).
	const delay = 5 * time.Millisecond
	resolve(t, nodes, nss, slice, sliceID, "prefix 10.210.0.0/24; lan core n1 n2 n3 rate=20mbit delay=5ms")
	for i := range 3 {
		if _, ok := nodes[i].vl.relays[vni]; !ok && !nodes[i].vl.hasNetem() {
			t.Fatalf("node %d: the delayed LAN has no relay", i+1)
		}
	}
	for i := range 3 {
		go echo(udpListen(t, nss[i], addrs[i]+":7001"))
	}
	for i := range 3 {
		for j := range 3 {
			if i == j {
				continue
			}
			best := time.Hour
			for range 5 {
				d, err := rtt(t, nss[i], addrs[j]+":7001")
				if err != nil {
					t.Fatalf("delayed LAN, member %d to %d: %v", i+1, j+1, err)
				}
				best = min(best, d)
			}
			t.Logf("delayed LAN (%v each way), member %d to %d: fastest of 5 round trips %v", delay, i+1, j+1, best)
			if best < 2*delay {
				t.Errorf("member %d to %d: %v, faster than twice the delay %v", i+1, j+1, best, delay)
			}
		}
	}
	// Removing the sliver removes the LAN's devices and relay.
	must(t, nodes[0].vl.Remove(context.Background(), slice))
	if hasLink(t, nodes[0].ns, fmt.Sprintf("vlx%d", vni)) || hasLink(t, nodes[0].ns, fmt.Sprintf("vlt%d", vni)) || len(nodes[0].vl.relays) != 0 {
		t.Error("the LAN's devices or relay left after Remove")
	}
}

// TestTunnelFlows: two slices' links between the same two nodes; the flow
// log of node 1 (the recorder on its namespace's conntrack) names the
// slice of every tunnel flow, in both directions: each link's tunnel sends
// from a source port of its own and its conntrack entries carry the
// sliver's xid.
func TestTunnelFlows(t *testing.T) {
	n1, n2 := newPair(t)
	a1, a2 := n1.sliver(t, "hva", 11), n2.sliver(t, "hva", 11)
	b1, b2 := n1.sliver(t, "hvb", 12), n2.sliver(t, "hvb", 12)
	store, err := flows.OpenStore(flows.StoreConfig{Path: filepath.Join(t.TempDir(), "flows.db")})
	must(t, err)
	defer store.Close()
	rec, err := flows.NewRecorder(flows.RecorderConfig{Store: store, NetNS: n1.ns, DumpInterval: time.Hour})
	must(t, err)
	rec.SetSlices(map[int]flows.SliceRef{11: {Name: "hva", SliceID: 1}, 12: {Name: "hvb", SliceID: 2}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("recorder: %v", err)
		}
	}()
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	must(t, rec.Sync(sctx))

	link(t, n1, n2, a1, a2, "hva", end("ab", 65, "10.200.0.1/30", "", n2.addr, 100_000))
	link(t, n1, n2, b1, b2, "hvb", end("ab", 129, "10.201.0.1/30", "", n2.addr, 100_000))
	go echo(udpListen(t, a2, "10.200.0.2:7000"))
	go echo(udpListen(t, b2, "10.201.0.2:7000"))
	for _, c := range []struct{ ns, addr string }{{a1, "10.200.0.2:7000"}, {b1, "10.201.0.2:7000"}} {
		if _, err := rtt(t, c.ns, c.addr); err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
	}
	must(t, rec.Sync(sctx))

	page, err := store.Query(flows.Query{Remote: n2.addr, Proto: unix.IPPROTO_UDP, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute)})
	must(t, err)
	type dirSlice struct {
		dir   string
		slice string
		local uint16 // the node's port
		peer  uint16 // the peer's port
	}
	var got []dirSlice
	for _, r := range page.Records {
		t.Logf("flow %+v", r)
		d := "out"
		if r.Dir == flows.In {
			d = "in"
		}
		got = append(got, dirSlice{d, r.Slice, r.Public.Port(), r.Remote.Port()})
	}
	p1a, p1b, p2a, p2b := n1.vl.SrcPort(65), n1.vl.SrcPort(129), n2.vl.SrcPort(65), n2.vl.SrcPort(129)
	if p1a == 0 || p1a == p1b || p2a == 0 || p2a == p2b {
		t.Fatalf("source ports: node 1 %d %d, node 2 %d %d", p1a, p1b, p2a, p2b)
	}
	for _, want := range []dirSlice{
		{"out", "hva", p1a, DefaultPort}, {"out", "hvb", p1b, DefaultPort},
		{"in", "hva", DefaultPort, p2a}, {"in", "hvb", DefaultPort, p2b},
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no flow %+v in the log: %+v", want, got)
		}
	}
	for _, g := range got {
		if g.slice == "" {
			t.Errorf("a tunnel flow without a slice: %+v", g)
		}
	}
}
