package flows

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/node/netcfg"
)

// flowNet is a throwaway node namespace with a sliver made by netcfg (its
// own namespace, veth, NAT, marks) and an uplink to a peer namespace
// playing the outside world:
//
//	sliver ns (10.42.0.30) -> node ns (up0 192.0.2.1, NAT) -> peer ns (eth0 192.0.2.2)
type flowNet struct {
	node, peer, sliver string // namespace paths
	net                *netcfg.Linux
	addr6              netip.Addr // the sliver's IPv6 address (newFlowNetOpts with a prefix)
}

const (
	nodeAddr = "192.0.2.1"
	peerAddr = "192.0.2.2"
	testXID  = 7

	nodeAddr6 = "2001:db8:ff::1"
	peerAddr6 = "2001:db8:ff::2"
)

func newNamedNS(t testing.TB, name string) string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	return filepath.Join("/run/netns", name)
}

func newFlowNet(t *testing.T) *flowNet { return newFlowNetB(t) }

func newFlowNetB(t testing.TB) *flowNet { return newFlowNetOpts(t, netip.Prefix{}) }

// newFlowNetOpts builds the flow network; with prefix6 the uplink also
// carries IPv6 (node 2001:db8:ff::1, peer ::2, the peer routing prefix6 to
// the node) and the sliver has its own IPv6 address and reserves tcp/8080.
func newFlowNetOpts(t testing.TB, prefix6 netip.Prefix) *flowNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths, nftables tables and reads conntrack")
	}
	tag := fmt.Sprintf("plft%d", os.Getpid()%100000)
	fn := &flowNet{node: newNamedNS(t, tag+"n"), peer: newNamedNS(t, tag+"p")}
	nodeNS, err := netns.GetFromPath(fn.node)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeNS.Close()
	peerNS, err := netns.GetFromPath(fn.peer)
	if err != nil {
		t.Fatal(err)
	}
	defer peerNS.Close()
	nh, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	ph, err := netlink.NewHandleAt(peerNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(peerNS))}))
	up, err := nh.LinkByName("up0")
	must(err)
	must(nh.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(nodeAddr).To4(), Mask: net.CIDRMask(24, 32)}}))
	must(nh.LinkSetUp(up))
	pe, err := ph.LinkByName("eth0")
	must(err)
	must(ph.AddrAdd(pe, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(peerAddr).To4(), Mask: net.CIDRMask(24, 32)}}))
	must(ph.LinkSetUp(pe))
	for _, h := range []*netlink.Handle{nh, ph} {
		lo, err := h.LinkByName("lo")
		must(err)
		must(h.LinkSetUp(lo))
	}
	must(nh.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: net.ParseIP(peerAddr).To4()}))

	var sliverPorts []netcfg.Port
	if prefix6.IsValid() {
		nodad := func(a string) *netlink.Addr {
			return &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(a), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		}
		must(nh.AddrAdd(up, nodad(nodeAddr6)))
		must(ph.AddrAdd(pe, nodad(peerAddr6)))
		must(ph.RouteAdd(&netlink.Route{LinkIndex: pe.Attrs().Index, Dst: &net.IPNet{IP: prefix6.Addr().AsSlice(), Mask: net.CIDRMask(prefix6.Bits(), 128)}, Gw: net.ParseIP(nodeAddr6)}))
		sliverPorts = []netcfg.Port{{Proto: "tcp", From: 8080, To: 8080}}
		// The new link-local addresses are usable for neighbour discovery
		// once their duplicate address detection ends.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			tentative := false
			for _, h := range []*netlink.Handle{nh, ph} {
				as, _ := h.AddrList(nil, netlink.FAMILY_V6)
				for _, a := range as {
					tentative = tentative || a.Flags&unix.IFA_F_TENTATIVE != 0
				}
			}
			if !tentative {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fn.net, err = netcfg.New(netcfg.Config{StateDir: t.TempDir(), NetNS: fn.node, Uplink: "up0", Table: "plflowtest", VethPrefix: "pft", Prefix6: prefix6})
	must(err)
	t.Cleanup(func() {
		_ = fn.net.Teardown(context.Background())
		fn.net.Close()
	})
	att, err := fn.net.Ensure(context.Background(), netcfg.Sliver{Name: "pl_flowtest", XID: testXID, Ports: sliverPorts})
	must(err)
	fn.sliver, fn.addr6 = att.NetNS, att.Addr6
	return fn
}

// in runs fn on a thread inside the namespace: sockets made there stay in it.
func in(t *testing.T, path string, fn func() error) {
	t.Helper()
	if err := inNetNS(path, fn); err != nil {
		t.Fatal(err)
	}
}

// ipCounters returns the IPv4 bytes and packets the peer namespace
// received (IpExt InOctets and Ip InReceives: other frames on the link,
// ARP or IPv6, are not counted).
func ipCounters(t *testing.T, peer string) (bytes, packets uint64) {
	t.Helper()
	field := func(text, section, name string) uint64 {
		var header []string
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != section+":" {
				continue
			}
			if header == nil {
				header = f
				continue
			}
			for i, h := range header {
				if h == name && i < len(f) {
					n, _ := strconv.ParseUint(f[i], 10, 64)
					return n
				}
			}
		}
		t.Fatalf("no %s %s in /proc/net", section, name)
		return 0
	}
	in(t, peer, func() error {
		ns, err := os.ReadFile("/proc/thread-self/net/netstat")
		if err != nil {
			return err
		}
		snmp, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		bytes, packets = field(string(ns), "IpExt", "InOctets"), field(string(snmp), "Ip", "InReceives")
		return nil
	})
	return bytes, packets
}

func within1pct(got, want uint64) bool {
	d := float64(got) - float64(want)
	return d <= 0.01*float64(want) && -d <= 0.01*float64(want)
}

func startRecorder(t *testing.T, fn *flowNet, store *Store) (*Recorder, func()) {
	t.Helper()
	var sp []netip.Prefix
	if p := fn.net.Config().Prefix6; p.IsValid() {
		sp = []netip.Prefix{p}
	}
	rec, err := NewRecorder(RecorderConfig{Store: store, NetNS: fn.node, DumpInterval: time.Hour, SliverPrefixes: sp})
	if err != nil {
		t.Fatal(err)
	}
	rec.SetSlices(map[int]SliceRef{testXID: {Name: "pl_flowtest", SliceID: 77}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := rec.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	return rec, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("recorder: %v", err)
		}
	}
}

func query(t *testing.T, s *Store, proto uint8, port uint16) []Record {
	t.Helper()
	p, err := s.Query(Query{Remote: netip.MustParseAddr(peerAddr), Proto: proto, Port: port, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return p.Records
}

func TestRecorderAttributesSliverTraffic(t *testing.T) {
	fn := newFlowNet(t)
	store, err := OpenStore(StoreConfig{Path: filepath.Join(t.TempDir(), "flows.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rec, stop := startRecorder(t, fn, store)
	defer func() { stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// TCP: 1 MiB from the sliver to the peer.
	var tl net.Listener
	in(t, fn.peer, func() (err error) { tl, err = net.Listen("tcp4", peerAddr+":9000"); return err })
	defer tl.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := tl.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	b0, _ := ipCounters(t, fn.peer)
	var c net.Conn
	in(t, fn.sliver, func() (err error) { c, err = net.DialTimeout("tcp4", peerAddr+":9000", 5*time.Second); return err })
	const tcpBytes = 1 << 20
	if _, err := c.Write(make([]byte, tcpBytes)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-got; n != tcpBytes {
		t.Fatalf("peer received %d bytes", n)
	}
	time.Sleep(200 * time.Millisecond) // the last ACK and FIN
	b1, _ := ipCounters(t, fn.peer)

	// UDP: 200 datagrams of 1000 bytes.
	var uc net.PacketConn
	in(t, fn.peer, func() (err error) { uc, err = net.ListenPacket("udp4", peerAddr+":9001"); return err })
	defer uc.Close()
	var u net.Conn
	in(t, fn.sliver, func() (err error) { u, err = net.Dial("udp4", peerAddr+":9001"); return err })
	for i := 0; i < 200; i++ {
		if _, err := u.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	u.Close()
	time.Sleep(200 * time.Millisecond)
	b2, _ := ipCounters(t, fn.peer)

	// ICMP from a raw socket: 20 echo requests of 56 bytes.
	in(t, fn.sliver, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for i := 0; i < 20; i++ {
			msg := make([]byte, 8+56)
			msg[0] = 8 // echo request
			msg[4], msg[5] = 0x12, 0x34
			msg[7] = byte(i)
			var sum uint32
			for j := 0; j < len(msg); j += 2 {
				sum += uint32(msg[j])<<8 | uint32(msg[j+1])
			}
			for sum > 0xffff {
				sum = sum>>16 + sum&0xffff
			}
			cs := ^uint16(sum)
			msg[2], msg[3] = byte(cs>>8), byte(cs)
			if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet4{Addr: [4]byte{192, 0, 2, 2}}); err != nil {
				return err
			}
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	b3, _ := ipCounters(t, fn.peer)

	if err := rec.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(name string, recs []Record, want uint64) Record {
		t.Helper()
		if len(recs) != 1 {
			t.Fatalf("%s: %d records, want 1: %+v", name, len(recs), recs)
		}
		r := recs[0]
		if r.XID != testXID || r.Slice != "pl_flowtest" || r.SliceID != 77 || r.Dir != Out || r.Public.Addr().String() != nodeAddr {
			t.Errorf("%s: attribution %+v", name, r)
		}
		if !within1pct(r.BytesSent, want) {
			t.Errorf("%s: %d bytes sent in the record, the peer received %d IP bytes", name, r.BytesSent, want)
		}
		t.Logf("%s: record %d bytes / %d packets sent, peer saw %d IP bytes", name, r.BytesSent, r.PacketsSent, want)
		return r
	}
	check("tcp", query(t, store, 6, 9000), b1-b0)
	check("udp", query(t, store, 17, 9001), b2-b1)
	if want := uint64(200 * (1000 + 28)); !within1pct(b2-b1, want) {
		t.Errorf("udp: peer saw %d IP bytes, sent %d", b2-b1, want)
	}
	icmp := check("icmp", query(t, store, 1, 0), b3-b2)
	if icmp.PacketsSent != 20 {
		t.Errorf("icmp: %d packets, want 20", icmp.PacketsSent)
	}

	// The sliver is destroyed: its flows stay attributed, also after the
	// recorder restarts and finds them gone from the kernel's table.
	if err := fn.net.Remove(ctx, "pl_flowtest", testXID); err != nil {
		t.Fatal(err)
	}
	stop()
	stop = func() {}
	flushConntrack(t, fn.node)
	_, stop2 := startRecorder(t, fn, store)
	defer stop2()
	for _, proto := range []uint8{6, 17, 1} {
		recs := query(t, store, proto, 0)
		if len(recs) != 1 || recs[0].Slice != "pl_flowtest" || recs[0].Open() {
			t.Errorf("proto %d after the sliver's destruction and a restart: %+v", proto, recs)
		}
	}
}

// flushConntrack empties the node namespace's conntrack table (the flows
// end while no recorder runs).
func flushConntrack(t *testing.T, node string) {
	t.Helper()
	r := &Recorder{cfg: RecorderConfig{NetNS: node}}
	c, err := r.dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestRecorderIPv6 records a sliver's IPv6 flows, which are not
// translated: one it starts toward the peer (outbound, its own address
// public) and one the peer opens to its reserved port on its address
// (inbound), both attributed to the sliver by the conntrack mark.
func TestRecorderIPv6(t *testing.T) {
	fn := newFlowNetOpts(t, netip.MustParsePrefix("2001:db8:7::/64"))
	store, err := OpenStore(StoreConfig{Path: filepath.Join(t.TempDir(), "flows.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rec, stop := startRecorder(t, fn, store)
	defer stop()

	serve := func(l net.Listener) {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				io.Copy(io.Discard, c)
				c.Close()
			}
		}()
	}
	send := func(from, addr string, n int) {
		t.Helper()
		var c net.Conn
		in(t, from, func() (err error) { c, err = net.DialTimeout("tcp6", addr, 5*time.Second); return err })
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	var pl, sl net.Listener
	in(t, fn.peer, func() (err error) { pl, err = net.Listen("tcp6", "["+peerAddr6+"]:9000"); return err })
	defer pl.Close()
	in(t, fn.sliver, func() (err error) { sl, err = net.Listen("tcp6", "[::]:8080"); return err })
	defer sl.Close()
	serve(pl)
	serve(sl)
	send(fn.sliver, "["+peerAddr6+"]:9000", 100_000)
	send(fn.peer, net.JoinHostPort(fn.addr6.String(), "8080"), 50_000)
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rec.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := store.Query(Query{Remote: netip.MustParseAddr(peerAddr6), Proto: 6, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	byPort := map[uint16]Record{}
	for _, r := range p.Records {
		byPort[r.Inside.Port()] = r
		t.Logf("%s %s inside %s public %s remote %s sent %d received %d xid %d", r.Slice, r.Dir, r.Inside, r.Public, r.Remote, r.BytesSent, r.BytesReceived, r.XID)
	}
	if len(p.Records) != 2 {
		t.Fatalf("%d IPv6 records, want 2", len(p.Records))
	}
	in8080, ok := byPort[8080]
	if !ok || in8080.Dir != In || in8080.XID != testXID || in8080.Slice != "pl_flowtest" || in8080.Public.Addr() != fn.addr6 || in8080.BytesReceived < 50_000 {
		t.Errorf("inbound flow to the reserved port: %+v", in8080)
	}
	for port, r := range byPort {
		if port == 8080 {
			continue
		}
		if r.Dir != Out || r.XID != testXID || r.Public.Addr() != fn.addr6 || r.Remote.Port() != 9000 || r.BytesSent < 100_000 {
			t.Errorf("outbound flow: %+v", r)
		}
	}
}
