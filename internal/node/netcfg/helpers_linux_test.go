package netcfg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths, nftables tables and qdiscs")
	}
}

// testNet is a throwaway "node" namespace with an uplink to a fake
// "internet" peer namespace; nothing touches the host's own network.
//
//	peer ns (eth0 192.0.2.2/24)  <--veth-->  node ns (up0 192.0.2.1/24, default via .2)
type testNet struct {
	dir      string
	node     string // path of the node netns
	peer     string // path of the peer netns
	nodeAddr net.IP
	peerAddr net.IP
}

const (
	testNodeAddr = "192.0.2.1"
	testPeerAddr = "192.0.2.2"
	testUplink   = "up0"
)

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	tn := &testNet{dir: dir, node: filepath.Join(dir, "ns-node"), peer: filepath.Join(dir, "ns-peer"),
		nodeAddr: net.ParseIP(testNodeAddr).To4(), peerAddr: net.ParseIP(testPeerAddr).To4()}
	for _, p := range []string{tn.node, tn.peer} {
		if err := createNetNS(p, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = removeNetNS(p) })
	}
	nodeNS, peerNS := tn.handle(t, tn.node), tn.handle(t, tn.peer)
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
	must(nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: testUplink}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(peerNS))}))
	up, err := nh.LinkByName(testUplink)
	must(err)
	must(nh.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: tn.nodeAddr, Mask: net.CIDRMask(24, 32)}}))
	must(nh.LinkSetUp(up))
	pe, err := ph.LinkByName("eth0")
	must(err)
	must(ph.AddrAdd(pe, &netlink.Addr{IPNet: &net.IPNet{IP: tn.peerAddr, Mask: net.CIDRMask(24, 32)}}))
	must(ph.LinkSetUp(pe))
	for _, h := range []*netlink.Handle{nh, ph} {
		lo, err := h.LinkByName("lo")
		must(err)
		must(h.LinkSetUp(lo))
	}
	must(nh.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: tn.peerAddr}))
	return tn
}

func (tn *testNet) handle(t testing.TB, path string) netns.NsHandle {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// in runs fn with the calling thread inside the namespace at path: sockets
// created in fn belong to that namespace and keep working elsewhere.
func in(t testing.TB, path string, fn func() error) {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := InNetNS(h, fn); err != nil {
		t.Fatal(err)
	}
}

func listen(t testing.TB, ns, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	in(t, ns, func() (err error) { l, err = net.Listen(network, addr); return err })
	t.Cleanup(func() { l.Close() })
	return l
}

func listenUDP(t testing.TB, ns, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	in(t, ns, func() (err error) { c, err = net.ListenPacket("udp4", addr); return err })
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// dial connects from namespace ns; the error is returned, not fatal.
func dial(t testing.TB, ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	var derr error
	in(t, ns, func() error { c, derr = net.DialTimeout(network, addr, timeout); return nil })
	if derr == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, derr
}

// serveEcho accepts connections on l and answers each with its remote
// address followed by a newline.
func serveEcho(l net.Listener) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	}()
}

// roundTrip dials addr from ns and returns what the echo server saw as
// our address ("" and the error on failure).
func roundTrip(t testing.TB, ns, addr string) (string, error) {
	t.Helper()
	c, err := dial(t, ns, "tcp4", addr, 400*time.Millisecond)
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

// sh runs a command inside a namespace (for inspection only) and returns
// its output.
func sh(t testing.TB, ns string, args ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// snapshot is what the manager can leave on a host, counted from outside.
type snapshot struct {
	NetNSFiles []string
	Mounts     int
	Links      []string
	Rules      []string // nft -a output minus handles, "" = no table
	Qdiscs     string
	Classes    []string
	Records    []string
}

var handleRE = regexp.MustCompile(` # handle \d+`)
var counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

func takeSnapshot(t testing.TB, tn *testNet, m *Linux) snapshot {
	t.Helper()
	var s snapshot
	ents, _ := os.ReadDir(filepath.Join(m.cfg.StateDir, "netns"))
	for _, e := range ents {
		s.NetNSFiles = append(s.NetNSFiles, e.Name())
	}
	recs, _ := os.ReadDir(filepath.Join(m.cfg.StateDir, "slivers"))
	for _, e := range recs {
		s.Records = append(s.Records, e.Name())
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	s.Mounts = strings.Count(string(mi), m.cfg.StateDir)
	for _, l := range strings.Split(strings.TrimSpace(sh(t, tn.node, "ip", "-o", "link", "show")), "\n") {
		f := strings.Fields(l)
		s.Links = append(s.Links, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
	}
	if strings.Contains(sh(t, tn.node, "nft", "list", "tables"), "inet "+m.cfg.Table) {
		out := sh(t, tn.node, "nft", "-a", "list", "table", "inet", m.cfg.Table)
		out = counterRE.ReplaceAllString(handleRE.ReplaceAllString(out, ""), "counter")
		for _, l := range strings.Split(out, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				s.Rules = append(s.Rules, l)
			}
		}
	}
	s.Qdiscs = sh(t, tn.node, "tc", "qdisc", "show", "dev", testUplink)
	for _, l := range strings.Split(strings.TrimSpace(sh(t, tn.node, "tc", "class", "show", "dev", testUplink)), "\n") {
		if l != "" {
			s.Classes = append(s.Classes, l)
		}
	}
	return s
}

func (s snapshot) diff(o snapshot) string {
	var d []string
	cmp := func(name string, a, b []string) {
		if !slices.Equal(a, b) {
			d = append(d, fmt.Sprintf("%s:\n  %q\n  %q", name, a, b))
		}
	}
	cmp("netns files", s.NetNSFiles, o.NetNSFiles)
	cmp("records", s.Records, o.Records)
	cmp("links", s.Links, o.Links)
	cmp("nft", s.Rules, o.Rules)
	cmp("tc classes", s.Classes, o.Classes)
	if s.Mounts != o.Mounts {
		d = append(d, fmt.Sprintf("mounts under state dir: %d vs %d", s.Mounts, o.Mounts))
	}
	if s.Qdiscs != o.Qdiscs {
		d = append(d, fmt.Sprintf("qdiscs:\n%s\nvs\n%s", s.Qdiscs, o.Qdiscs))
	}
	return strings.Join(d, "\n")
}

func newTestManager(t testing.TB, tn *testNet, mod func(*Config)) *Linux {
	t.Helper()
	cfg := Config{StateDir: filepath.Join(tn.dir, "state"), NetNS: tn.node, Table: "pltest-netcfg",
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Teardown(context.Background())
		m.Close()
	})
	return m
}

func nsFromPath(p string) (netns.NsHandle, error) { return netns.GetFromPath(p) }

// testLogWriter sends the manager's warnings to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
