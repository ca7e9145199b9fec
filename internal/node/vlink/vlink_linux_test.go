package vlink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/netcfg"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths, VXLAN devices, nftables tables and qdiscs")
	}
}

// testNode is an emulated node: a network namespace with an uplink to the
// other node, the real sliver network manager (netcfg: slivers' namespaces,
// NAT, anti-spoofing) and a link manager.
type testNode struct {
	ns   string // path of the node's netns
	addr netip.Addr
	net  *netcfg.Linux
	vl   *Manager
	xids map[string]int // of the slivers made by sliver
}

// newPair builds two nodes joined by a "WAN" (see newNodes).
func newPair(t testing.TB) (*testNode, *testNode) {
	ns := newNodes(t, 2)
	return ns[0], ns[1]
}

// newNodes builds n nodes on one "WAN", a bridge in a switch namespace:
//
//	node i (u0 192.0.2.i/24) <--veth--> switch (bridge)
func newNodes(t testing.TB, n int) []*testNode {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	sw := filepath.Join(dir, "switch")
	mkNetNS(t, sw)
	swh, err := netns.GetFromPath(sw)
	must(t, err)
	t.Cleanup(func() { swh.Close() })
	sh, err := netlink.NewHandleAt(swh)
	must(t, err)
	t.Cleanup(sh.Close)
	must(t, sh.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}))
	br, err := sh.LinkByName("br0")
	must(t, err)
	must(t, sh.LinkSetUp(br))
	var nodes []*testNode
	for i := range n {
		node := &testNode{addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), ns: filepath.Join(dir, fmt.Sprintf("node%d", i+1))}
		mkNetNS(t, node.ns)
		h, err := netns.GetFromPath(node.ns)
		must(t, err)
		t.Cleanup(func() { h.Close() })
		nh, err := netlink.NewHandleAt(h)
		must(t, err)
		t.Cleanup(nh.Close)
		port := fmt.Sprintf("p%d", i+1)
		must(t, sh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index}, PeerName: "u0", PeerNamespace: netlink.NsFd(int(h))}))
		p, err := sh.LinkByName(port)
		must(t, err)
		must(t, sh.LinkSetUp(p))
		up, err := nh.LinkByName("u0")
		must(t, err)
		must(t, nh.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: node.addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
		must(t, nh.LinkSetUp(up))
		lo, err := nh.LinkByName("lo")
		must(t, err)
		must(t, nh.LinkSetUp(lo))
		must(t, nh.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: net.IPv4(192, 0, 2, 254)}))
		state := filepath.Join(dir, fmt.Sprintf("state%d", i+1))
		node.net, err = netcfg.New(netcfg.Config{StateDir: state, NetNS: node.ns, Uplink: "u0", NodeAddr: node.addr, Table: "hvpl", VethPrefix: "hvv"})
		must(t, err)
		t.Cleanup(func() { _ = node.net.Teardown(context.Background()); node.net.Close() })
		node.vl, err = New(Config{NetNS: node.ns, StateDir: state, LocalAddr: node.addr, Table: "hvvl", Reserved: []netip.Prefix{node.net.Config().Prefix}},
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		must(t, err)
		t.Cleanup(func() { _ = node.vl.Teardown(); node.vl.Close() })
		nodes = append(nodes, node)
	}
	return nodes
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mkNetNS persists a new network namespace at path (a bind mount).
func mkNetNS(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	f.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
	}()
	must(t, <-done)
	t.Cleanup(func() { _ = unix.Unmount(path, unix.MNT_DETACH); _ = os.Remove(path) })
}

// in runs fn on a thread inside the namespace at path; sockets made there
// stay in it.
func in(t testing.TB, path string, fn func() error) {
	t.Helper()
	h, err := netns.GetFromPath(path)
	must(t, err)
	defer h.Close()
	must(t, netcfg.InNetNS(h, fn))
}

// sliver gives the node a real sliver namespace (netcfg) and returns its path.
func (n *testNode) sliver(t testing.TB, name string, xid int) string {
	t.Helper()
	att, err := n.net.Ensure(context.Background(), netcfg.Sliver{Name: name, XID: xid})
	must(t, err)
	if n.xids == nil {
		n.xids = map[string]int{}
	}
	n.xids[name] = xid
	return att.NetNS
}

func end(name string, vni uint32, local, remote string, peer netip.Addr, rateKbit int64) core.VLink {
	return core.VLink{Name: name, VNI: vni, Local: local, Remote: remote, PeerNode: "peer", PeerAddr: peer.String(), RateKbit: rateKbit}
}

// link builds the same link on both nodes for one sliver name (the slice
// name is the same on every node): node 1 gets .1, node 2 gets .2.
func link(t testing.TB, n1, n2 *testNode, ns1, ns2, sliver string, ls ...core.VLink) {
	t.Helper()
	var l1, l2 []core.VLink
	for _, l := range ls {
		p := netip.MustParsePrefix(l.Local)
		a := p.Addr()
		b := a.Next()
		a1 := l
		a1.Local, a1.Remote, a1.PeerAddr = netip.PrefixFrom(a, 30).String(), b.String(), n2.addr.String()
		a2 := l
		a2.Local, a2.Remote, a2.PeerAddr = netip.PrefixFrom(b, 30).String(), a.String(), n1.addr.String()
		l1, l2 = append(l1, a1), append(l2, a2)
	}
	ctx := context.Background()
	must(t, n1.vl.Ensure(ctx, sliver, n1.xids[sliver], ns1, l1))
	must(t, n2.vl.Ensure(ctx, sliver, n2.xids[sliver], ns2, l2))
}

func udpListen(t testing.TB, ns, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	in(t, ns, func() (err error) { c, err = net.ListenPacket("udp4", addr); return err })
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// rtt measures one UDP round trip from ns to an echo server at addr.
func rtt(t testing.TB, ns, addr string) (time.Duration, error) { return rttTries(t, ns, addr, 20) }

func rttTries(t testing.TB, ns, addr string, tries int) (time.Duration, error) {
	t.Helper()
	var c net.Conn
	var derr error
	in(t, ns, func() error { c, derr = net.Dial("udp4", addr); return nil })
	if derr != nil {
		return 0, derr
	}
	defer c.Close()
	buf := make([]byte, 64)
	for range tries { // the first packets may wait for ARP
		_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			return 0, err
		}
		if _, err := c.Read(buf); err == nil {
			return time.Since(start), nil
		}
	}
	return 0, errors.New("no answer")
}

func echo(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, a, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteToUDP(buf[:n], a)
	}
}

func linkMAC(t testing.TB, ns, name string) net.HardwareAddr {
	t.Helper()
	h, err := netns.GetFromPath(ns)
	must(t, err)
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	must(t, err)
	defer nh.Close()
	l, err := nh.LinkByName(name)
	must(t, err)
	return l.Attrs().HardwareAddr
}

func rxBytes(t testing.TB, ns, name string) uint64 {
	t.Helper()
	h, err := netns.GetFromPath(ns)
	must(t, err)
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	must(t, err)
	defer nh.Close()
	l, err := nh.LinkByName(name)
	must(t, err)
	return l.Attrs().Statistics.RxBytes
}

// forged is a VXLAN packet (VNI vni) carrying an Ethernet frame to dstMAC
// with an IPv4/UDP packet src -> dst:port holding payload.
func forged(vni uint32, dstMAC net.HardwareAddr, src, dst netip.Addr, port uint16, payload string) []byte {
	b := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	b = append(b, dstMAC...)
	b = append(b, 0x02, 0, 0, 0, 0, 0x99, 0x08, 0x00)
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	copy(ip[12:], src.AsSlice())
	copy(ip[16:], dst.AsSlice())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], 5555)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	b = append(b, ip...)
	b = append(b, udp...)
	return append(b, payload...)
}

// sendFrom sends one UDP datagram from namespace ns (bound to src, if valid).
func sendFrom(t testing.TB, ns string, src netip.Addr, dst string, data []byte) {
	t.Helper()
	in(t, ns, func() error {
		var laddr *net.UDPAddr
		if src.IsValid() {
			laddr = &net.UDPAddr{IP: src.AsSlice()}
		}
		raddr, err := net.ResolveUDPAddr("udp4", dst)
		if err != nil {
			return err
		}
		c, err := net.DialUDP("udp4", laddr, raddr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(data)
		return err
	})
}

func received(c *net.UDPConn, within time.Duration) []string {
	var got []string
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		n, err := c.Read(buf)
		if err != nil {
			return got
		}
		got = append(got, string(buf[:n]))
	}
}

// TestLinks: two slices, each with a link between the same two nodes:
// addresses and a route on each end, traffic across, shaping to the rate,
// and isolation: neither a sliver (through its node's NAT) nor a host
// other than the peer node can put a packet on a slice's link, while the
// peer node can (the control that shows the forged packet is well formed).
func TestLinks(t *testing.T) {
	n1, n2 := newPair(t)
	a1, a2 := n1.sliver(t, "hva", 11), n2.sliver(t, "hva", 11)
	b1, b2 := n1.sliver(t, "hvb", 12), n2.sliver(t, "hvb", 12)
	const rateKbit = 20_000
	link(t, n1, n2, a1, a2, "hva", end("ab", 65, "10.200.0.1/30", "", n2.addr, rateKbit))
	link(t, n1, n2, b1, b2, "hvb", end("ab", 129, "10.201.0.1/30", "", n2.addr, 1_000_000))

	// Addresses and the connected route, as the sliver sees them.
	in(t, a2, func() error {
		ifc, err := net.InterfaceByName("ab")
		if err != nil {
			return err
		}
		addrs, _ := ifc.Addrs()
		if len(addrs) != 1 || addrs[0].String() != "10.200.0.2/30" {
			return fmt.Errorf("addresses of ab: %v", addrs)
		}
		if ifc.MTU > 1450 {
			return fmt.Errorf("mtu %d above the tunnel's", ifc.MTU)
		}
		return nil
	})
	// Across each link.
	ea := udpListen(t, a2, "10.200.0.2:7000")
	go echo(ea)
	eb := udpListen(t, b2, "10.201.0.2:7000")
	go echo(eb)
	if d, err := rtt(t, a1, "10.200.0.2:7000"); err != nil {
		t.Fatalf("slice a across its link: %v", err)
	} else {
		t.Logf("slice a round trip %v", d)
	}
	if _, err := rtt(t, b1, "10.201.0.2:7000"); err != nil {
		t.Fatalf("slice b across its link: %v", err)
	}
	// Slice b's sliver has no way onto a's link: no route to a's range...
	if _, err := rttTries(t, b1, "10.200.0.2:7000", 2); err == nil {
		t.Fatal("slice b reached slice a's link address")
	}

	// ... and forged tunnel packets do not get through.
	sink := udpListen(t, a2, "10.200.0.2:7777")
	mac := linkMAC(t, a2, "ab")
	pkt := func(tag string) []byte {
		return forged(65, mac, netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("10.200.0.2"), 7777, tag)
	}
	peer := n2.addr.String() + ":4789"
	sendFrom(t, b1, netip.Addr{}, peer, pkt("from slice b's sliver"))
	sendFrom(t, a1, netip.Addr{}, peer, pkt("from slice a's own sliver"))
	// Another host on the WAN (a second address of node 1 stands for it).
	third := netip.MustParseAddr("192.0.2.3")
	addAddr(t, n1.ns, "u0", third)
	sendFrom(t, n1.ns, third, peer, pkt("from a third host"))
	if got := received(sink, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("forged tunnel packets delivered: %q", got)
	}
	sendFrom(t, n1.ns, n1.addr, peer, pkt("from the peer node"))
	if got := received(sink, 2*time.Second); len(got) != 1 || got[0] != "from the peer node" {
		t.Fatalf("control: the peer node's packet: got %q", got)
	}

	// Rate: a TCP stream across a's link, measured where it arrives.
	// The link's traffic counts as the sliver's: its HTB class on the
	// uplink (rates, daily budget) carried at least what arrived.
	before, err := n1.net.ClassBytes()
	must(t, err)
	rx0 := rxBytes(t, a2, "ab")
	checkRate(t, a1, a2, "ab", "10.200.0.2", rateKbit)
	after, err := n1.net.ClassBytes()
	must(t, err)
	got, arrived := after[11]-before[11], rxBytes(t, a2, "ab")-rx0
	t.Logf("sliver hva's class on node 1 carried %d bytes; %d arrived over its link", got, arrived)
	if got < arrived || after[12] > before[12]+got/100 {
		t.Errorf("class bytes: hva +%d (arrived %d), hvb +%d", got, arrived, after[12]-before[12])
	}
}

func addAddr(t testing.TB, ns, dev string, a netip.Addr) {
	t.Helper()
	h, err := netns.GetFromPath(ns)
	must(t, err)
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	must(t, err)
	defer nh.Close()
	l, err := nh.LinkByName(dev)
	must(t, err)
	must(t, nh.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
}

// checkRate measures a TCP stream from namespace from to to over link
// ifname (to's address addr) and wants the link's rate ± 5%. Above the rate
// fails at once (the shaping is wrong); below it, the measurement is
// repeated up to three times, as on a loaded machine the sender or the
// delay relay may not get the CPU to fill the link.
func checkRate(t *testing.T, from, to, ifname, addr string, rateKbit int64) {
	t.Helper()
	want := float64(rateKbit) * 1000
	for try := 1; ; try++ {
		got := throughput(t, from, to, ifname, fmt.Sprintf("%s:%d", addr, 7100+try), 3*time.Second)
		t.Logf("link %s at %d kbit/s: measured %.0f kbit/s (%+.1f%%)", ifname, rateKbit, got/1000, 100*(got-want)/want)
		switch {
		case got > want*1.05:
			t.Fatalf("link %s: %.0f bit/s, above its rate %.0f + 5%%", ifname, got, want)
		case got >= want*0.95:
			return
		case try == 3:
			t.Fatalf("link %s: %.0f bit/s, below its rate %.0f - 5%%, three times", ifname, got, want)
		}
	}
}

// throughput sends a TCP stream from namespace from to a server at addr in
// namespace to for d and returns the rate, in bit/s, at which frames
// arrived on the receiving sliver's link interface ifname after the first
// half second (the interface counts Ethernet frames, as the shaper does).
func throughput(t testing.TB, from, to, ifname, addr string, d time.Duration) float64 {
	t.Helper()
	var l net.Listener
	in(t, to, func() (err error) { l, err = net.Listen("tcp4", addr); return err })
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	var c net.Conn
	in(t, from, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 5*time.Second); return err })
	defer c.Close()
	stop := time.Now().Add(d)
	go func() {
		buf := make([]byte, 64<<10)
		for time.Now().Before(stop) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		c.Close()
	}()
	time.Sleep(500 * time.Millisecond)
	b0, t0 := rxBytes(t, to, ifname), time.Now()
	time.Sleep(time.Until(stop) - 100*time.Millisecond)
	b1, t1 := rxBytes(t, to, ifname), time.Now()
	return float64(b1-b0) * 8 / t1.Sub(t0).Seconds()
}

// TestLinkChanges: loss and delay are applied, links removed from the
// desired state and removed slivers leave no device, and a restarted
// manager keeps every sliver's ends.
func TestLinkChanges(t *testing.T) {
	n1, n2 := newPair(t)
	a1, a2 := n1.sliver(t, "hva", 11), n2.sliver(t, "hva", 11)
	ctx := context.Background()
	lossy := end("lossy", 66, "10.200.0.5/30", "", n2.addr, 100_000)
	lossy.LossPPM = 200_000 // 20%
	link(t, n1, n2, a1, a2, "hva", end("ab", 65, "10.200.0.1/30", "", n2.addr, 100_000), lossy)
	sink := udpListen(t, a2, "10.200.0.6:7000")
	// Warm ARP on the lossy link, then count what 2000 datagrams become.
	ew := udpListen(t, a2, "10.200.0.6:7001")
	go echo(ew)
	if _, err := rtt(t, a1, "10.200.0.6:7001"); err != nil {
		t.Fatalf("lossy link: %v", err)
	}
	var c net.Conn
	in(t, a1, func() (err error) { c, err = net.Dial("udp4", "10.200.0.6:7000"); return err })
	count := make(chan int)
	go func() { count <- len(received(sink, 2*time.Second)) }()
	const sent = 2000
	for i := range sent {
		_, _ = c.Write([]byte("x"))
		if i%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	c.Close()
	n := <-count
	t.Logf("loss 20%%: %d of %d datagrams arrived", n, sent)
	if n < 1500 || n > 1700 { // 1600 expected, sd 18
		t.Errorf("%d of %d arrived through a 20%% loss link", n, sent)
	}

	// A delay, on both ends: each node delays what it sends (netem where
	// the kernel has it, else the relay), so a round trip takes twice the
	// delay; the fastest of 20 is within 2 ms of that.
	const delay = 10 * time.Millisecond
	slow := end("slow", 67, "10.200.0.9/30", "", n2.addr, 100_000)
	slow.DelayUS = delay.Microseconds()
	link(t, n1, n2, a1, a2, "hva", end("ab", 65, "10.200.0.1/30", "", n2.addr, 100_000), lossy, slow)
	es := udpListen(t, a2, "10.200.0.10:7002")
	go echo(es)
	best := time.Hour
	for range 20 {
		d, err := rtt(t, a1, "10.200.0.10:7002")
		if err != nil {
			t.Fatalf("delayed link: %v", err)
		}
		best = min(best, d)
	}
	t.Logf("delay %v each way: fastest round trip %v", delay, best)
	if r := n1.vl.relays[67]; r == nil || !r.rt.Load() {
		t.Errorf("the relay of the delayed link does not run with real-time priority")
	}
	if best < 2*delay || best > 2*delay+2*time.Millisecond {
		t.Errorf("round trip %v over a link delayed %v each way, want %v..%v", best, delay, 2*delay, 2*delay+2*time.Millisecond)
	}
	// A restarted node manager restarts the relays (they die with it).
	n2.vl.Close()
	var err error
	n2.vl, err = New(Config{NetNS: n2.ns, StateDir: n2.vl.cfg.StateDir, LocalAddr: n2.addr, Table: "hvvl"}, nil)
	must(t, err)
	if d, err := rtt(t, a1, "10.200.0.10:7002"); err != nil || d < 2*delay {
		t.Fatalf("delayed link after a restart: %v %v", d, err)
	}
	// The rate applies on a delayed link too.
	slow.RateKbit = 5000
	link(t, n1, n2, a1, a2, "hva", end("ab", 65, "10.200.0.1/30", "", n2.addr, 100_000), lossy, slow)
	checkRate(t, a1, a2, "slow", "10.200.0.10", 5000)

	// Dropping links from the desired state deletes them.
	must(t, n1.vl.Ensure(ctx, "hva", 11, a1, n1.vl.Ends("hva")[:1]))
	if hasLink(t, a1, "lossy") || hasLink(t, a1, "slow") || hasLink(t, n1.ns, "vlx66") || hasLink(t, n1.ns, "vlb67") {
		t.Fatal("removed links still have devices")
	}
	if len(n1.vl.relays) != 0 {
		t.Fatalf("relays left: %v", n1.vl.relays)
	}
	// A restarted manager knows the ends; Remove deletes them all.
	again, err := New(Config{NetNS: n1.ns, StateDir: n1.vl.cfg.StateDir, Table: "hvvl"}, nil)
	must(t, err)
	defer again.Close()
	if e := again.Ends("hva"); len(e) != 1 || e[0].Name != "ab" {
		t.Fatalf("after restart: %+v", e)
	}
	must(t, again.Remove(ctx, "hva"))
	must(t, n1.vl.Remove(ctx, "hva")) // the first manager's memory; nothing left to delete
	for _, d := range []string{"vlx65", "vlb65", "vlh65"} {
		if hasLink(t, n1.ns, d) {
			t.Errorf("%s left after Remove", d)
		}
	}
	if hasLink(t, a1, "ab") {
		t.Error("the sliver's ab left after Remove")
	}
	// Bad ends are refused before anything changes.
	bad := end("eth0", 70, "10.200.0.1/30", "10.200.0.2", n2.addr, 1000)
	if err := n1.vl.Ensure(ctx, "hva", 11, a1, []core.VLink{bad}); core.ErrorCode(err) != core.Invalid {
		t.Errorf("link named eth0: %v", err)
	}
	inSliverRange := end("ab", 70, "10.42.9.1/30", "10.42.9.2", n2.addr, 1000)
	if err := n1.vl.Ensure(ctx, "hva", 11, a1, []core.VLink{inSliverRange}); core.ErrorCode(err) != core.Invalid || !strings.Contains(err.Error(), "overlaps this node's sliver range 10.42.0.0/16") {
		t.Errorf("link in the node's sliver range: %v", err)
	}
	other := end("ab", 65, "10.200.0.1/30", "10.200.0.2", n2.addr, 1000)
	must(t, n1.vl.Ensure(ctx, "hvb", 12, n1.sliver(t, "hvb", 12), []core.VLink{other}))
	if err := n1.vl.Ensure(ctx, "hva", 11, a1, []core.VLink{other}); core.ErrorCode(err) != core.Conflict {
		t.Errorf("a VNI of another sliver: %v", err)
	}
}

func hasLink(t testing.TB, ns, name string) bool {
	t.Helper()
	h, err := netns.GetFromPath(ns)
	must(t, err)
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	must(t, err)
	defer nh.Close()
	_, err = nh.LinkByName(name)
	return err == nil
}
