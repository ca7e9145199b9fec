package netcfg

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/planetlab/pl/internal/core"
	"golang.org/x/sys/unix"
)

// The IPv6 side of the test network: the uplink carries 2001:db8:ff::/64
// (node ::1, peer ::2) and the peer routes the node's sliver prefix to the
// node, as an upstream router would.
const (
	testPrefix6   = "2001:db8:7::/64"
	testNodeAddr6 = "2001:db8:ff::1"
	testPeerAddr6 = "2001:db8:ff::2"
)

// twoSlivers6 is twoSlivers on a node with an IPv6 prefix.
func twoSlivers6(t *testing.T) (*testNet, *Linux, Attachment, Attachment) {
	t.Helper()
	// The node's address is added to the uplink below, after New, so it is
	// configured rather than detected.
	tn, m, a, b := twoSlivers(t, func(c *Config) {
		c.Prefix6 = netip.MustParsePrefix(testPrefix6)
		c.NodeAddr6 = netip.MustParseAddr(testNodeAddr6)
	})
	add := func(ns, ifname, addr string) {
		h, err := netlinkAt(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.MustParseAddr(addr), 64), Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatal(err)
		}
		if ns == tn.peer {
			if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(netip.MustParseAddr("2001:db8:7::"), 64), Gw: net.ParseIP(testNodeAddr6)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(tn.node, testUplink, testNodeAddr6)
	add(tn.peer, "eth0", testPeerAddr6)
	// The uplink's link-local addresses are new: until their duplicate
	// address detection ends (about a second) the node sends no neighbour
	// solicitation on it. (A real node's uplink has long been up.)
	for _, ns := range []string{tn.node, tn.peer} {
		deadline := time.Now().Add(5 * time.Second)
		for strings.Contains(sh(t, ns, "ip", "-6", "addr"), "tentative") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, s := range []Attachment{a, b} {
		want, err := SliverAddr6(netip.MustParsePrefix(testPrefix6), map[string]int{a.NetNS: 10, b.NetNS: 11}[s.NetNS])
		if err != nil || s.Addr6 != want {
			t.Fatalf("attachment address %v, want %v (%v)", s.Addr6, want, err)
		}
		if out := sh(t, s.NetNS, "ip", "-6", "addr", "show", "dev", SliverIfName); !strings.Contains(out, s.Addr6.String()+"/128") {
			t.Fatalf("sliver %s lacks its address:\n%s", s.Addr6, out)
		}
	}
	return tn, m, a, b
}

func tcp6(a netip.Addr, port int) string { return net.JoinHostPort(a.String(), strconv.Itoa(port)) }

// roundTrip6 is roundTrip over TCP/IPv6.
func roundTrip6(t *testing.T, ns, addr string) (string, error) {
	t.Helper()
	c, err := dial(t, ns, "tcp6", addr, 400*time.Millisecond)
	if err != nil {
		return "", err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 128)
	n, err := c.Read(b)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b[:n])), nil
}

func TestIPv6Reachability(t *testing.T) {
	tn, _, a, b := twoSlivers6(t)
	peer, node := netip.MustParseAddr(testPeerAddr6), netip.MustParseAddr(testNodeAddr6)

	// Outbound: each sliver reaches the peer from its own address (no NAT).
	serveEcho(listen(t, tn.peer, "tcp6", tcp6(peer, 7000)))
	for _, s := range []Attachment{a, b} {
		seen, err := roundTrip6(t, s.NetNS, tcp6(peer, 7000))
		if err != nil {
			t.Fatalf("sliver %s -> peer: %v", s.Addr6, err)
		}
		if host, _, _ := net.SplitHostPort(seen); host != s.Addr6.String() {
			t.Errorf("sliver %s reached the peer as %s", s.Addr6, seen)
		}
	}
	// Auditing: the conntrack entries carry the xid as their mark.
	h, err := netlinkAt(tn.node)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]uint32{}
	for _, f := range flows {
		if f.Forward.DstPort == 7000 {
			marks[f.Forward.SrcIP.String()] = f.Mark
		}
	}
	if marks[a.Addr6.String()] != 10 || marks[b.Addr6.String()] != 11 {
		t.Errorf("IPv6 conntrack marks by sliver address = %v, want %s:10 %s:11", marks, a.Addr6, b.Addr6)
	}

	// Inbound: reserved ports on the sliver's own address, from the peer,
	// from the node and from the other sliver; ping from the peer.
	serveEcho(listen(t, a.NetNS, "tcp6", "[::]:8080"))
	serveEcho(listen(t, b.NetNS, "tcp6", "[::]:9090"))
	serveEcho(listen(t, a.NetNS, "tcp6", "[::]:2222"))
	serveEcho(listen(t, b.NetNS, "tcp6", "[::]:2222"))
	for _, c := range []struct{ from, name, to string }{
		{tn.peer, "peer -> a's reserved port", tcp6(a.Addr6, 8080)},
		{tn.peer, "peer -> b's reserved port", tcp6(b.Addr6, 9090)},
		{tn.node, "node -> a's reserved port", tcp6(a.Addr6, 8080)},
		{tn.node, "node -> a, any port", tcp6(a.Addr6, 2222)},
		{a.NetNS, "sliver a -> b's reserved port", tcp6(b.Addr6, 9090)},
		{b.NetNS, "sliver b -> a's reserved port", tcp6(a.Addr6, 8080)},
	} {
		seen, err := roundTrip6(t, c.from, c.to)
		if err != nil {
			t.Errorf("%s (%s): %v", c.name, c.to, err)
			continue
		}
		t.Logf("%s: server saw %s", c.name, seen)
	}
	if out, err := exec.Command("nsenter", "--net="+tn.peer, "ping", "-6", "-c", "1", "-W", "2", a.Addr6.String()).CombinedOutput(); err != nil {
		t.Errorf("ping sliver a from the peer: %v\n%s", err, out)
	}
	// From the sliver: ping the node's uplink address (its gateway) and the peer.
	for _, dst := range []netip.Addr{node, peer} {
		if out, err := exec.Command("nsenter", "--net="+a.NetNS, "ping", "-6", "-c", "1", "-W", "2", dst.String()).CombinedOutput(); err != nil {
			t.Errorf("ping %s from sliver a: %v\n%s", dst, err, out)
		}
	}

	// Isolation: no other port of a sliver's address, from outside or from
	// the other sliver; nothing of the node but the allowed services.
	serveEcho(listen(t, tn.node, "tcp6", "[::]:2223"))
	for _, c := range []struct{ from, name, to string }{
		{tn.peer, "peer -> a, unreserved port", tcp6(a.Addr6, 2222)},
		{a.NetNS, "sliver a -> b, unreserved port", tcp6(b.Addr6, 2222)},
		{b.NetNS, "sliver b -> a, unreserved port", tcp6(a.Addr6, 2222)},
		{a.NetNS, "sliver a -> node service", tcp6(node, 2223)},
	} {
		if seen, err := roundTrip6(t, c.from, c.to); err == nil {
			t.Errorf("%s (%s) was reachable: server saw %s", c.name, c.to, seen)
		}
	}
}

// checksum6 is the Internet checksum of an upper-layer message with the
// IPv6 pseudo-header.
func checksum6(src, dst netip.Addr, proto byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[:4], uint32(len(msg)))
	l[7] = proto
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipv6Packet builds an IPv6 packet around an upper-layer message whose
// checksum field is at csumOff (filled in here).
func ipv6Packet(src, dst netip.Addr, proto, hops byte, msg []byte, csumOff int) []byte {
	binary.BigEndian.PutUint16(msg[csumOff:], 0)
	binary.BigEndian.PutUint16(msg[csumOff:], checksum6(src, dst, proto, msg))
	b := make([]byte, 40, 40+len(msg))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(msg)))
	b[6], b[7] = proto, hops
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return append(b, msg...)
}

func udp6(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	m := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(m[0:], sport)
	binary.BigEndian.PutUint16(m[2:], dport)
	binary.BigEndian.PutUint16(m[4:], uint16(len(m)))
	copy(m[8:], payload)
	return ipv6Packet(src, dst, unix.IPPROTO_UDP, 64, m, 6)
}

// rawSocket6 opens a raw IPv6 socket that sends whole packets (IPPROTO_RAW
// implies the header is included) inside ns.
func rawSocket6(t *testing.T, ns string) int {
	t.Helper()
	var fd int
	in(t, ns, func() (err error) { fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW); return err })
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func sendRaw6(t *testing.T, fd int, pkt []byte, dst netip.Addr, ifindex int) {
	t.Helper()
	if err := unix.Sendto(fd, pkt, 0, &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(ifindex)}); err != nil {
		t.Fatalf("sendto %s: %v", dst, err)
	}
}

// counterOf returns the packet counter of the rule of chain matching re.
func counterOf(t *testing.T, tn *testNet, m *Linux, chain, re string) int {
	t.Helper()
	out := sh(t, tn.node, "nft", "list", "chain", "inet", m.cfg.Table, chain)
	mm := regexp.MustCompile(re + `.*counter packets (\d+)`).FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("no rule %q in:\n%s", re, out)
	}
	n, _ := strconv.Atoi(mm[1])
	return n
}

func TestIPv6AntiSpoofing(t *testing.T) {
	tn, m, a, b := twoSlivers6(t)
	peer := netip.MustParseAddr(testPeerAddr6)
	var sink *net.UDPConn
	in(t, tn.peer, func() error {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP(testPeerAddr6), Port: 6000})
		sink = c
		return err
	})
	t.Cleanup(func() { sink.Close() })
	fd := rawSocket6(t, a.NetNS)
	forged := []netip.Addr{b.Addr6, netip.MustParseAddr("2001:db8:ff::77"), netip.MustParseAddr("2001:db8:7::1:63"), netip.MustParseAddr(testNodeAddr6)}
	before := counterOf(t, tn, m, fromChain(10), `ip6 saddr != `)
	for i := range 3 {
		for j, src := range forged {
			sendRaw6(t, fd, udp6(src, peer, 4000, 6000, fmt.Appendf(nil, "forged-%d-%d", j, i)), peer, 0)
		}
		sendRaw6(t, fd, udp6(a.Addr6, peer, 4000, 6000, fmt.Appendf(nil, "genuine-%d", i)), peer, 0)
	}
	got := map[string]string{}
	sink.SetReadDeadline(time.Now().Add(time.Second))
	for {
		buf := make([]byte, 200)
		n, from, err := sink.ReadFrom(buf)
		if err != nil {
			break
		}
		got[string(buf[:n])] = from.String()
	}
	for i := range 3 {
		if from := got[fmt.Sprintf("genuine-%d", i)]; from != tcp6(a.Addr6, 4000) {
			t.Errorf("genuine packet %d: from %q (all: %v)", i, from, got)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "forged") {
			t.Errorf("forged packet %q reached the peer from %s", k, got[k])
		}
	}
	if n := counterOf(t, tn, m, fromChain(10), `ip6 saddr != `) - before; n < 3*len(forged) {
		t.Errorf("IPv6 anti-spoof counter rose by %d, want >= %d", n, 3*len(forged))
	}
}

// TestIPv6NeighbourDiscoveryTricks sends, from inside sliver a, a router
// advertisement announcing a prefix and itself as default router, a
// redirect, and neighbour advertisements for b's address; the node side
// of a's veth is set to accept router advertisements, so that only the
// rules stand between the sliver and the node's routing table.
func TestIPv6NeighbourDiscoveryTricks(t *testing.T) {
	tn, m, a, b := twoSlivers6(t)
	veth := vethName(m.cfg.VethPrefix, 10)
	in(t, tn.node, func() error { return writeSysctl("net/ipv6/conf/"+veth+"/accept_ra", "2") })
	sl, err := netlinkAt(a.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	eth, err := sl.LinkByName(SliverIfName)
	if err != nil {
		t.Fatal(err)
	}
	var ll netip.Addr
	addrs, err := sl.AddrList(eth, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range addrs {
		if x, ok := netip.AddrFromSlice(ad.IP); ok && x.IsLinkLocalUnicast() {
			ll = x
		}
	}
	if !ll.IsValid() {
		t.Fatalf("sliver a has no link-local address: %v", addrs)
	}
	allNodes := netip.MustParseAddr("ff02::1")
	// RA: lifetime 1800 s, prefix information 2001:db8:bad::/64 (on-link,
	// autonomous) and a source link-layer address option.
	ra := make([]byte, 16+8+32)
	ra[0] = icmp6RouterAdv
	ra[4] = 64
	binary.BigEndian.PutUint16(ra[6:], 1800)
	opt := ra[16:]
	opt[0], opt[1] = 1, 1
	copy(opt[2:8], eth.Attrs().HardwareAddr)
	pi := ra[24:]
	pi[0], pi[1], pi[2], pi[3] = 3, 4, 64, 0xc0
	binary.BigEndian.PutUint32(pi[4:], 86400)
	binary.BigEndian.PutUint32(pi[8:], 14400)
	bad := netip.MustParseAddr("2001:db8:bad::").As16()
	copy(pi[16:], bad[:])
	// NA (override, unsolicited) claiming b's address and the gateway.
	na := func(target netip.Addr) []byte {
		m := make([]byte, 24+8)
		m[0] = icmp6NeighAdv
		m[4] = 0x20 // override
		t16 := target.As16()
		copy(m[8:24], t16[:])
		m[24], m[25] = 2, 1
		copy(m[26:32], eth.Attrs().HardwareAddr)
		return m
	}
	// Redirect: "reach the peer through me".
	rd := make([]byte, 40)
	rd[0] = icmp6Redirect
	self, dst := ll.As16(), netip.MustParseAddr(testPeerAddr6).As16()
	copy(rd[8:24], self[:])
	copy(rd[24:40], dst[:])

	fd := rawSocket6(t, a.NetNS)
	idx := eth.Attrs().Index
	counts := func() [3]int {
		return [3]int{
			counterOf(t, tn, m, fromChain(10), `nd-router-advert`),
			counterOf(t, tn, m, fromChain(10), `nd-redirect`),
			counterOf(t, tn, m, fromChain(10), `nd-neighbor-advert`),
		}
	}
	before := counts()
	for range 3 {
		sendRaw6(t, fd, ipv6Packet(ll, allNodes, unix.IPPROTO_ICMPV6, 255, bytes.Clone(ra), 2), allNodes, idx)
		sendRaw6(t, fd, ipv6Packet(ll, Gateway6, unix.IPPROTO_ICMPV6, 255, bytes.Clone(rd), 2), Gateway6, idx)
		sendRaw6(t, fd, ipv6Packet(ll, allNodes, unix.IPPROTO_ICMPV6, 255, na(b.Addr6), 2), allNodes, idx)
		// A's own address may be advertised: not counted.
		sendRaw6(t, fd, ipv6Packet(ll, allNodes, unix.IPPROTO_ICMPV6, 255, na(a.Addr6), 2), allNodes, idx)
	}
	after := counts()
	for i, what := range []string{"router advertisements", "redirects", "foreign neighbour advertisements"} {
		if d := after[i] - before[i]; d != 3 {
			t.Errorf("%s dropped: %d, want 3", what, d)
		}
	}
	time.Sleep(200 * time.Millisecond)
	// The node learned nothing: no route or address from the RA, no default
	// route through the sliver, and b's address still leads to b's veth.
	routes := sh(t, tn.node, "ip", "-6", "route", "show")
	if strings.Contains(routes, "2001:db8:bad") || strings.Contains(routes, "dev "+veth+" proto ra") || strings.Contains(routes, "default via "+ll.String()) {
		t.Errorf("the node took the sliver's router advertisement:\n%s", routes)
	}
	if out := sh(t, tn.node, "ip", "-6", "addr", "show"); strings.Contains(out, "2001:db8:bad") {
		t.Errorf("the node configured an address from the sliver's RA:\n%s", out)
	}
	if out := sh(t, tn.node, "ip", "-6", "route", "get", b.Addr6.String()); !strings.Contains(out, "dev "+vethName(m.cfg.VethPrefix, 11)) {
		t.Errorf("b's address is no longer routed to b: %s", out)
	}
	// b is still reachable from the peer.
	serveEcho(listen(t, b.NetNS, "tcp6", "[::]:9090"))
	if _, err := roundTrip6(t, tn.peer, tcp6(b.Addr6, 9090)); err != nil {
		t.Errorf("peer -> b after a's tricks: %v", err)
	}
}

// TestIPv6OnLinkPrefix: the node's prefix is on-link on its uplink's LAN
// (the peer has an address in it and no route through the node), so the
// peer reaches a sliver only because the node answers neighbour
// solicitations for the sliver's address (proxy NDP); removing the sliver
// removes the proxy entry.
func TestIPv6OnLinkPrefix(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, func(c *Config) { c.Prefix6 = netip.MustParsePrefix(testPrefix6) })
	for _, c := range []struct{ ns, ifname, addr string }{{tn.node, testUplink, "2001:db8:7::1"}, {tn.peer, "eth0", "2001:db8:7::2"}} {
		h, err := netlinkAt(c.ns)
		if err != nil {
			t.Fatal(err)
		}
		l, err := h.LinkByName(c.ifname)
		if err == nil {
			err = h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.MustParseAddr(c.addr), 64), Flags: unix.IFA_F_NODAD})
		}
		h.Close()
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Contains(sh(t, c.ns, "ip", "-6", "addr"), "tentative") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	a, err := m.Ensure(context.Background(), Sliver{Name: "pltest_a", XID: 10, Ports: []Port{{Proto: "tcp", From: 8080, To: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	if out := sh(t, tn.node, "ip", "-6", "neigh", "show", "proxy"); !strings.Contains(out, a.Addr6.String()+" dev "+testUplink) {
		t.Fatalf("no proxy entry for %s on %s:\n%s", a.Addr6, testUplink, out)
	}
	serveEcho(listen(t, a.NetNS, "tcp6", "[::]:8080"))
	// The kernel answers multicast solicitations for proxied addresses
	// after a random delay of up to proxy_delay (0.8 s by default).
	start := time.Now()
	c, err := dial(t, tn.peer, "tcp6", tcp6(a.Addr6, 8080), 5*time.Second)
	if err != nil {
		t.Fatalf("peer on the same LAN -> sliver %s: %v", a.Addr6, err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || !strings.Contains(string(b), "2001:db8:7::2") {
		t.Fatalf("peer -> sliver: %q, %v", b, err)
	}
	t.Logf("peer -> sliver: server saw %s, after %v", strings.TrimSpace(string(b)), time.Since(start))
	if out := sh(t, tn.peer, "ip", "-6", "neigh", "show", a.Addr6.String()); !strings.Contains(out, "lladdr") {
		t.Errorf("the peer did not resolve the sliver's address on its LAN: %q", out)
	}
	if err := m.Remove(context.Background(), "pltest_a", 10); err != nil {
		t.Fatal(err)
	}
	if out := sh(t, tn.node, "ip", "-6", "neigh", "show", "proxy"); strings.Contains(out, a.Addr6.String()) {
		t.Errorf("proxy entry left after Remove:\n%s", out)
	}
}

// TestIPv6PrefixRemoved: a node restarted without its IPv6 prefix takes
// the address and route away from a sliver that had them, and drops its
// IPv6 again.
func TestIPv6PrefixRemoved(t *testing.T) {
	tn := newTestNet(t)
	state := filepath.Join(tn.dir, "state")
	m := newTestManager(t, tn, func(c *Config) { c.StateDir = state; c.Prefix6 = netip.MustParsePrefix(testPrefix6) })
	s := Sliver{Name: "pltest_a", XID: 10}
	a, err := m.Ensure(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if out := sh(t, a.NetNS, "ip", "-6", "addr", "show", "dev", SliverIfName); !strings.Contains(out, a.Addr6.String()) {
		t.Fatalf("no IPv6 address with the prefix:\n%s", out)
	}
	m.Close()
	m2 := newTestManager(t, tn, func(c *Config) { c.StateDir = state })
	a2, err := m2.Ensure(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Addr6.IsValid() {
		t.Errorf("attachment without a prefix has IPv6 address %v", a2.Addr6)
	}
	if out := sh(t, a2.NetNS, "ip", "-6", "addr", "show", "dev", SliverIfName); strings.Contains(out, "inet6") {
		t.Errorf("the sliver kept IPv6 addresses:\n%s", out)
	}
	if out := sh(t, a2.NetNS, "ip", "-6", "route", "show"); strings.Contains(out, "default") {
		t.Errorf("the sliver kept an IPv6 default route:\n%s", out)
	}
	if out := sh(t, tn.node, "nft", "list", "chain", "inet", m2.cfg.Table, fromChain(10)); !strings.Contains(out, "meta nfproto ipv6 counter") {
		t.Errorf("IPv6 not dropped again:\n%s", out)
	}
}

// TestIPv6NodePorts: reserved ports on the node's own IPv6 address are
// forwarded to the sliver's address as the IPv4 ports on the node's IPv4
// address: from outside, from the node, from another sliver and from the
// sliver itself (hairpin); the server sees the client's own address (no
// source NAT, as IPv4's DNAT), except for slivers, masqueraded to the
// node's address as on IPv4. Unreserved ports are not forwarded, and a sliver cannot answer as
// the node's address without the connection (anti-spoofing).
func TestIPv6NodePorts(t *testing.T) {
	tn, m, a, b := twoSlivers6(t)
	node, peer := netip.MustParseAddr(testNodeAddr6), netip.MustParseAddr(testPeerAddr6)
	serveEcho(listen(t, a.NetNS, "tcp6", "[::]:8080"))
	serveEcho(listen(t, b.NetNS, "tcp6", "[::]:9090"))
	serveEcho(listen(t, a.NetNS, "tcp6", "[::]:2222"))
	for _, c := range []struct {
		from, name, to string
		seen           netip.Addr // the client address the sliver sees; invalid = not checked
	}{
		{tn.peer, "peer -> node:8080 (a)", tcp6(node, 8080), peer},
		{tn.peer, "peer -> node:9090 (b)", tcp6(node, 9090), peer},
		{tn.node, "node -> node:8080 (a)", tcp6(node, 8080), node},
		// Slivers through the node's address are masqueraded, as on IPv4
		// (the reply must return through the node): the node's address.
		{b.NetNS, "sliver b -> node:8080 (a)", tcp6(node, 8080), node},
		{a.NetNS, "sliver a -> node:8080 (its own, hairpin)", tcp6(node, 8080), node},
	} {
		seen, err := roundTrip6(t, c.from, c.to)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		host, _, _ := net.SplitHostPort(seen)
		if c.seen.IsValid() && host != c.seen.String() {
			t.Errorf("%s: the sliver saw %s, want %s", c.name, seen, c.seen)
		}
		t.Logf("%s: server saw %s", c.name, seen)
	}
	for _, c := range []struct{ from, name, to string }{
		{tn.peer, "peer -> node:2222 (unreserved)", tcp6(node, 2222)},
		{b.NetNS, "sliver b -> node:2222 (unreserved)", tcp6(node, 2222)},
	} {
		if seen, err := roundTrip6(t, c.from, c.to); err == nil {
			t.Errorf("%s was forwarded: server saw %s", c.name, seen)
		}
	}
	// UDP, a reserved range of a.
	u := listenUDP6(t, a.NetNS, "[::]:5005")
	var cl *net.UDPConn
	in(t, tn.peer, func() (err error) {
		cl, err = net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(node, 5005)))
		return err
	})
	defer cl.Close()
	if _, err := cl.Write([]byte("udp over the node's address")); err != nil {
		t.Fatal(err)
	}
	u.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	if n, from, err := u.ReadFromUDP(buf); err != nil || string(buf[:n]) != "udp over the node's address" || from.AddrPort().Addr().Unmap() != peer {
		t.Errorf("UDP to node:5005: %q from %v, %v", buf[:n], from, err)
	}

	// Anti-spoofing: a sliver "replying" from the node's address and a
	// reserved port, outside any connection, does not reach the peer.
	var sink *net.UDPConn
	in(t, tn.peer, func() error {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP(testPeerAddr6), Port: 6001})
		sink = c
		return err
	})
	defer sink.Close()
	before := counterOf(t, tn, m, fromChain(10), `ip6 saddr != `)
	fd := rawSocket6(t, a.NetNS)
	for i := range 3 {
		sendRaw6(t, fd, udp6(node, peer, 5005, 6001, fmt.Appendf(nil, "forged-%d", i)), peer, 0)
	}
	sink.SetReadDeadline(time.Now().Add(time.Second))
	if n, from, err := sink.ReadFrom(buf); err == nil {
		t.Errorf("a packet forged from the node's address reached the peer: %q from %v", buf[:n], from)
	}
	if n := counterOf(t, tn, m, fromChain(10), `ip6 saddr != `) - before; n < 3 {
		t.Errorf("anti-spoof counter rose by %d, want >= 3", n)
	}
}

func listenUDP6(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	in(t, ns, func() error {
		a, err := net.ResolveUDPAddr("udp6", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp6", a)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestIPv6PrefixChangedLive: SetPrefix6 while slivers run; the next Ensure
// of a sliver (the node manager re-ensures every one, the prefix being
// part of Sliver) moves it to its address in the new prefix: the former
// address, the node's route to it and its proxy entry go; the peer
// reaches the sliver's reserved port at its new address and through the
// node's address. A configuration made for another prefix and a bad
// prefix are refused, changing nothing; removing the prefix leaves the
// sliver IPv4-only.
func TestIPv6PrefixChangedLive(t *testing.T) {
	tn, m, a, _ := twoSlivers6(t)
	ctx := context.Background()
	p2 := netip.MustParsePrefix("2001:db8:8::/64")
	h, err := netlinkAt(tn.peer)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	pl, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Dst: ipNet(p2.Addr(), 64), Gw: net.ParseIP(testNodeAddr6)}); err != nil {
		t.Fatal(err)
	}
	old := a.Addr6
	sa := Sliver{Name: "pltest_a", XID: 10, Ports: []Port{{Proto: "tcp", From: 8080, To: 8080}, {Proto: "udp", From: 5000, To: 5010}}}

	if err := m.SetPrefix6(netip.MustParsePrefix("2001:db8:9::/120")); err == nil {
		t.Fatal("SetPrefix6 accepted a /120")
	}
	if m.Prefix6().String() != testPrefix6 {
		t.Fatalf("a refused prefix changed it to %s", m.Prefix6())
	}
	if err := m.SetPrefix6(p2); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ensure(ctx, Sliver{Name: sa.Name, XID: sa.XID, Ports: sa.Ports, Prefix6: netip.MustParsePrefix(testPrefix6)}); core.ErrorCode(err) != core.Conflict {
		t.Errorf("Ensure of a configuration made for the former prefix: %v, want a conflict", err)
	}
	sa.Prefix6 = p2
	a2, err := m.Ensure(ctx, sa)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := SliverAddr6(p2, 10)
	if a2.Addr6 != want {
		t.Fatalf("address after the change %v, want %v", a2.Addr6, want)
	}
	addrs := sh(t, a.NetNS, "ip", "-6", "addr", "show", "dev", SliverIfName, "scope", "global")
	if !strings.Contains(addrs, want.String()+"/128") || strings.Contains(addrs, old.String()) {
		t.Errorf("sliver addresses after the change (want only %s):\n%s", want, addrs)
	}
	routes := sh(t, tn.node, "ip", "-6", "route", "show")
	if !strings.Contains(routes, want.String()+" dev") || strings.Contains(routes, old.String()+" dev") {
		t.Errorf("node routes after the change (want %s, not %s):\n%s", want, old, routes)
	}
	proxies := sh(t, tn.node, "ip", "-6", "neigh", "show", "proxy")
	if !strings.Contains(proxies, want.String()) || strings.Contains(proxies, old.String()) {
		t.Errorf("proxy entries after the change (want %s, not %s):\n%s", want, old, proxies)
	}
	serveEcho(listen(t, a.NetNS, "tcp6", "[::]:8080"))
	for _, to := range []string{tcp6(want, 8080), tcp6(netip.MustParseAddr(testNodeAddr6), 8080)} {
		if seen, err := roundTrip6(t, tn.peer, to); err != nil {
			t.Errorf("peer -> %s after the change: %v", to, err)
		} else {
			t.Logf("peer -> %s: server saw %s", to, seen)
		}
	}
	if seen, err := roundTrip6(t, tn.peer, tcp6(old, 8080)); err == nil {
		t.Errorf("the former address still reaches the sliver (server saw %s)", seen)
	}

	// No prefix: IPv4-only again.
	if err := m.SetPrefix6(netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	sa.Prefix6 = netip.Prefix{}
	a3, err := m.Ensure(ctx, sa)
	if err != nil {
		t.Fatal(err)
	}
	if a3.Addr6.IsValid() {
		t.Errorf("attachment without a prefix has %v", a3.Addr6)
	}
	if out := sh(t, a.NetNS, "ip", "-6", "addr", "show", "dev", SliverIfName); strings.Contains(out, "inet6") {
		t.Errorf("the sliver kept IPv6 addresses:\n%s", out)
	}
	if out := sh(t, tn.node, "ip", "-6", "neigh", "show", "proxy"); strings.Contains(out, want.String()) {
		t.Errorf("proxy entry of %s kept:\n%s", want, out)
	}
	if out := sh(t, tn.node, "nft", "list", "chain", "inet", m.cfg.Table, fromChain(10)); !strings.Contains(out, "meta nfproto ipv6 counter") {
		t.Errorf("IPv6 not dropped again:\n%s", out)
	}
}
