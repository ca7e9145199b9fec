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
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// twoSlivers sets up a node with slivers a (xid 10: tcp/8080, udp/5000-5010)
// and b (xid 11: tcp/9090), and returns their attachments.
func twoSlivers(t *testing.T, mod func(*Config)) (*testNet, *Linux, Attachment, Attachment) {
	t.Helper()
	tn := newTestNet(t)
	m := newTestManager(t, tn, mod)
	ctx := context.Background()
	a, err := m.Ensure(ctx, Sliver{Name: "pltest_a", XID: 10, Ports: []Port{{Proto: "tcp", From: 8080, To: 8080}, {Proto: "udp", From: 5000, To: 5010}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Ensure(ctx, Sliver{Name: "pltest_b", XID: 11, Ports: []Port{{Proto: "tcp", From: 9090, To: 9090}}})
	if err != nil {
		t.Fatal(err)
	}
	return tn, m, a, b
}

func TestReachability(t *testing.T) {
	tn, _, a, b := twoSlivers(t, func(c *Config) { c.NodeServices = []Port{{Proto: "tcp", From: 2223, To: 2223}} })
	node := testNodeAddr

	// Outbound: both slivers reach the "internet" and appear as the node.
	serveEcho(listen(t, tn.peer, "tcp4", testPeerAddr+":7000"))
	for _, s := range []Attachment{a, b} {
		seen, err := roundTrip(t, s.NetNS, testPeerAddr+":7000")
		if err != nil {
			t.Fatalf("sliver %s -> peer: %v", s.Addr, err)
		}
		if host, _, _ := net.SplitHostPort(seen); host != node {
			t.Errorf("sliver %s reached the peer as %s, want the node address %s", s.Addr, seen, node)
		}
	}

	// Attribution: the node's conntrack entries of those flows carry the
	// sliver's xid as their mark.
	h, err := netlinkAt(tn.node)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	marks := map[string]uint32{}
	for _, f := range flows {
		if f.Forward.DstPort == 7000 {
			marks[f.Forward.SrcIP.String()] = f.Mark
		}
	}
	if marks[a.Addr.String()] != 10 || marks[b.Addr.String()] != 11 {
		t.Errorf("conntrack marks by sliver address = %v, want %s:10 %s:11", marks, a.Addr, b.Addr)
	}

	// Reserved ports: b's tcp/9090 from the peer, from the node itself,
	// and from sliver a through the node address (hairpin); a's own port
	// from a itself.
	serveEcho(listen(t, b.NetNS, "tcp4", ":9090"))
	serveEcho(listen(t, a.NetNS, "tcp4", ":8080"))
	for _, c := range []struct{ from, name, to string }{
		{tn.peer, "peer", node + ":9090"},
		{tn.node, "node", node + ":9090"},
		{a.NetNS, "sliver a (hairpin)", node + ":9090"},
		{a.NetNS, "sliver a (own port)", node + ":8080"},
		{tn.peer, "peer", node + ":8080"},
	} {
		seen, err := roundTrip(t, c.from, c.to)
		if err != nil {
			t.Errorf("%s -> %s: %v", c.name, c.to, err)
			continue
		}
		t.Logf("%s -> %s: server saw %s", c.name, c.to, seen)
	}
	// UDP range: the peer reaches a's udp/5005 and gets the answer from the
	// node address.
	ua := listenUDP(t, a.NetNS, ":5005")
	go func() {
		buf := make([]byte, 100)
		n, from, err := ua.ReadFrom(buf)
		if err == nil {
			ua.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	up := listenUDP(t, tn.peer, testPeerAddr+":0")
	if _, err := up.WriteTo([]byte("hello"), &net.UDPAddr{IP: net.ParseIP(node), Port: 5005}); err != nil {
		t.Fatal(err)
	}
	up.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 100)
	n, from, err := up.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "re:hello" || from.String() != node+":5005" {
		t.Errorf("udp reserved port: %q from %v, %v", buf[:n], from, err)
	}

	// Isolation: a cannot reach b's private address (not even b's reserved
	// port), the peer cannot reach a private address even with a route to
	// it, and a reaches only the allowed services of the node.
	if err := addPeerRoute(tn); err != nil {
		t.Fatal(err)
	}
	blocked := []struct{ from, name, to string }{
		{a.NetNS, "sliver a -> b private", b.Addr.String() + ":9090"},
		{b.NetNS, "sliver b -> a private", a.Addr.String() + ":8080"},
		{tn.peer, "peer -> a private", a.Addr.String() + ":8080"},
		{a.NetNS, "sliver a -> node service not allowed", a.Gateway.String() + ":2222"},
		{a.NetNS, "sliver a -> node address, unreserved port", node + ":2222"},
		{a.NetNS, "sliver a -> b's gateway", b.Gateway.String() + ":2222"},
	}
	serveEcho(listen(t, tn.node, "tcp4", ":2222"))
	serveEcho(listen(t, tn.node, "tcp4", ":2223"))
	for _, c := range blocked {
		if seen, err := roundTrip(t, c.from, c.to); err == nil {
			t.Errorf("%s (%s) was reachable: server saw %s", c.name, c.to, seen)
		}
	}
	if _, err := roundTrip(t, a.NetNS, a.Gateway.String()+":2223"); err != nil {
		t.Errorf("sliver a -> allowed node service: %v", err)
	}
	// ICMP echo: to the gateway and, NATed, to the peer.
	for _, dst := range []string{a.Gateway.String(), testPeerAddr} {
		if out, err := exec.Command("nsenter", "--net="+a.NetNS, "busybox", "ping", "-c", "1", "-W", "2", dst).CombinedOutput(); err != nil {
			t.Errorf("ping %s from sliver a: %v\n%s", dst, err, out)
		}
	}
	// The node itself (output path, not filtered) reaches slivers directly.
	if _, err := roundTrip(t, tn.node, a.Addr.String()+":8080"); err != nil {
		t.Errorf("node -> sliver a private address: %v", err)
	}
}

func addPeerRoute(tn *testNet) error {
	var err error
	h, herr := netlinkAt(tn.peer)
	if herr != nil {
		return herr
	}
	defer h.Close()
	err = h.RouteAdd(&netlink.Route{LinkIndex: mustLinkIndex(h, "eth0"), Dst: &net.IPNet{IP: net.IPv4(10, 42, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}, Gw: net.ParseIP(testNodeAddr).To4()})
	return err
}

// ipv4UDP builds an IPv4/UDP datagram (checksums filled by the kernel for
// the IP header; UDP checksum 0 = none).
func ipv4UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = unix.IPPROTO_UDP
	copy(b[12:16], src.AsSlice())
	copy(b[16:20], dst.AsSlice())
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// rawSocket opens a raw IPv4 socket (IP_HDRINCL) inside ns.
func rawSocket(t *testing.T, ns string) int {
	t.Helper()
	var fd int
	in(t, ns, func() (err error) { fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW); return err })
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func sendRaw(t *testing.T, fd int, pkt []byte, dst netip.Addr) {
	t.Helper()
	sa := &unix.SockaddrInet4{Addr: dst.As4()}
	if err := unix.Sendto(fd, pkt, 0, sa); err != nil {
		t.Fatalf("sendto: %v", err)
	}
}

func TestAntiSpoofing(t *testing.T) {
	tn, m, a, b := twoSlivers(t, nil)
	peer := netip.MustParseAddr(testPeerAddr)
	sink := listenUDP(t, tn.peer, testPeerAddr+":6000")
	fd := rawSocket(t, a.NetNS)
	forged := []netip.Addr{b.Addr, netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("10.42.0.99"), netip.MustParseAddr(testNodeAddr)}
	for i := range 3 {
		for j, src := range forged {
			sendRaw(t, fd, ipv4UDP(src, peer, 4000, 6000, fmt.Appendf(nil, "forged-%d-%d", j, i)), peer)
		}
		sendRaw(t, fd, ipv4UDP(a.Addr, peer, 4000, 6000, fmt.Appendf(nil, "genuine-%d", i)), peer)
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
		if from, ok := got[fmt.Sprintf("genuine-%d", i)]; !ok || from != testNodeAddr+":4000" {
			t.Errorf("genuine packet %d: from %q, seen %v (all: %v)", i, from, ok, got)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "forged") {
			t.Errorf("forged packet %q reached the peer from %s", k, got[k])
		}
	}
	// The drop counter of a's anti-spoofing rule saw them.
	out := sh(t, tn.node, "nft", "list", "chain", "inet", m.cfg.Table, fromChain(10))
	mm := regexp.MustCompile(`ip saddr != \S+ counter packets (\d+)`).FindStringSubmatch(out)
	if mm == nil {
		t.Fatalf("no anti-spoof counter in:\n%s", out)
	}
	// The forgery of the node's own address never reaches the forward hook:
	// the kernel drops it as a martian source when routing it.
	if n, _ := strconv.Atoi(mm[1]); n < 3*(len(forged)-1) {
		t.Errorf("anti-spoof counter %d, want >= %d:\n%s", n, 3*(len(forged)-1), out)
	}
	t.Logf("anti-spoof drops counted: %s", mm[1])
}

// TestSniffingSeesOnlyOwnTraffic opens a packet socket on every interface
// of sliver a (what tcpdump does) while both slivers talk to the peer.
func TestSniffingSeesOnlyOwnTraffic(t *testing.T) {
	tn, _, a, b := twoSlivers(t, nil)
	var fd int
	in(t, a.NetNS, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		return err
	})
	defer unix.Close(fd)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000}); err != nil {
		t.Fatal(err)
	}
	peer := &net.UDPAddr{IP: net.ParseIP(testPeerAddr), Port: 6001}
	listenUDP(t, tn.peer, testPeerAddr+":6001")
	send := func(ns string, payload string) {
		in(t, ns, func() error {
			c, err := net.DialUDP("udp4", nil, peer)
			if err != nil {
				return err
			}
			defer c.Close()
			for range 5 {
				if _, err := c.Write([]byte(payload)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	send(b.NetNS, "secret-of-b")
	send(a.NetNS, "visible-to-a")
	send(b.NetNS, "secret-of-b")
	var sawA, sawB, frames int
	deadline := time.Now().Add(time.Second)
	buf := make([]byte, 65536)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			continue
		}
		frames++
		if bytes.Contains(buf[:n], []byte("visible-to-a")) {
			sawA++
		}
		if bytes.Contains(buf[:n], []byte("secret-of-b")) || bytes.Contains(buf[:n], b.Addr.AsSlice()) {
			sawB++
		}
	}
	if sawA == 0 {
		t.Fatalf("sniffer in a did not see a's own traffic (%d frames)", frames)
	}
	if sawB != 0 {
		t.Fatalf("sniffer in a saw %d frames of b's traffic", sawB)
	}
	t.Logf("sniffer in sliver a: %d frames, %d of a's, 0 of b's", frames, sawA)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestShaping checks the per-sliver HTB class and its live change, and
// measures (prints, does not assert) the throughput under each ceiling.
func TestShaping(t *testing.T) {
	const capKbit = 100_000
	tn := newTestNet(t)
	m := newTestManager(t, tn, func(c *Config) { c.CapKbit = capKbit })
	ctx := context.Background()
	s := Sliver{Name: "pltest_shaped", XID: 20, MinRateKbit: 500, MaxRateKbit: 4000}
	att, err := m.Ensure(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	sink := listen(t, tn.peer, "tcp4", testPeerAddr+":7001")
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
	class := func() *netlink.HtbClass {
		t.Helper()
		cs, err := h.ClassList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: mustLinkIndex(h, testUplink)}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if hc, ok := c.(*netlink.HtbClass); ok && hc.Handle == netlink.MakeHandle(1, 0x1000|20) {
				return hc
			}
		}
		t.Fatal("sliver class 1:1014 not found")
		return nil
	}
	check := func(rate, ceil int64) *netlink.HtbClass {
		t.Helper()
		c := class()
		if c.Parent != netlink.MakeHandle(1, 1) || c.Rate != uint64(rate)*1000/8 || c.Ceil != uint64(ceil)*1000/8 {
			t.Fatalf("class %x parent %x rate %d B/s ceil %d B/s, want rate %d kbit ceil %d kbit", c.Handle, c.Parent, c.Rate, c.Ceil, rate, ceil)
		}
		return c
	}
	check(500, 4000)
	slow := measure(t, att.NetNS, testPeerAddr+":7001", 1500*time.Millisecond)
	bytesBefore := class().Statistics.Basic.Bytes

	// Live change: same class, counters continue (no rebuild).
	s.MaxRateKbit = 16000
	if _, err := m.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	c := check(500, 16000)
	if c.Statistics.Basic.Bytes < bytesBefore || bytesBefore == 0 {
		t.Fatalf("class byte counter went from %d to %d: the class was rebuilt or unused", bytesBefore, c.Statistics.Basic.Bytes)
	}
	fast := measure(t, att.NetNS, testPeerAddr+":7001", 1500*time.Millisecond)
	// Above the node cap, the ceiling is clamped to it.
	s.MaxRateKbit = 10 * capKbit
	if _, err := m.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	check(500, capKbit)
	t.Logf("throughput under ceil 4000 kbit/s: %d kbit/s; under ceil 16000 kbit/s: %d kbit/s", slow, fast)
	t.Logf("tc classes:\n%s", sh(t, tn.node, "tc", "-s", "class", "show", "dev", testUplink))
}

// measure sends as fast as possible from ns to addr for d and returns the
// achieved rate in kbit/s (bytes accepted by the kernel after the first
// 200 ms, to skip the initial burst).
func measure(t *testing.T, ns, addr string, d time.Duration) int64 {
	t.Helper()
	c, err := dial(t, ns, "tcp4", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetWriteBuffer(16 << 10)
	buf := make([]byte, 16<<10)
	start := time.Now()
	warm := start.Add(200 * time.Millisecond)
	end := start.Add(d)
	var sent int64
	var t0 time.Time
	for time.Now().Before(end) {
		c.SetWriteDeadline(end)
		n, err := c.Write(buf)
		if time.Now().After(warm) {
			if t0.IsZero() {
				t0 = time.Now()
			} else {
				sent += int64(n)
			}
		}
		if err != nil {
			break
		}
	}
	el := time.Since(t0).Seconds()
	return int64(float64(sent) * 8 / 1000 / el)
}

func netlinkAt(path string) (*netlink.Handle, error) {
	ns, err := nsFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

func mustLinkIndex(h *netlink.Handle, name string) int {
	l, err := h.LinkByName(name)
	if err != nil {
		panic(err)
	}
	return l.Attrs().Index
}
