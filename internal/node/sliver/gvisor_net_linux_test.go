package sliver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/node/netcfg"
)

// netNode is a throwaway node for network tests of slivers: a node
// namespace whose uplink (up0, 192.0.2.1/24) leads to a peer namespace
// (192.0.2.2, "the internet"), with netcfg's manager working in the node
// namespace exactly as on a real node. Nothing touches the host's network.
type netNode struct {
	node, peer string
	net        *netcfg.Linux
}

const (
	netNodeAddr = "192.0.2.1"
	netPeerAddr = "192.0.2.2"
	// With IPv6: the uplink carries 2001:db8:ff::/64 and the peer routes
	// the slivers' prefix to the node, as an upstream router would.
	netPrefix6   = "2001:db8:7::/64"
	netNodeAddr6 = "2001:db8:ff::1"
	netPeerAddr6 = "2001:db8:ff::2"
)

func newNetNode(t *testing.T, v6 bool) *netNode {
	t.Helper()
	dir := t.TempDir()
	n := &netNode{node: filepath.Join(dir, "node"), peer: filepath.Join(dir, "peer")}
	for _, p := range []string{n.node, n.peer} {
		if err := plainNetNS(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH); os.Remove(p) })
	}
	nodeNS, err := netns.GetFromPath(n.node)
	if err != nil {
		t.Fatal(err)
	}
	defer nodeNS.Close()
	peerNS, err := netns.GetFromPath(n.peer)
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
	must(nh.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(netNodeAddr).To4(), Mask: net.CIDRMask(24, 32)}}))
	must(nh.LinkSetUp(up))
	pe, err := ph.LinkByName("eth0")
	must(err)
	must(ph.AddrAdd(pe, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(netPeerAddr).To4(), Mask: net.CIDRMask(24, 32)}}))
	must(ph.LinkSetUp(pe))
	for _, h := range []*netlink.Handle{nh, ph} {
		lo, err := h.LinkByName("lo")
		must(err)
		must(h.LinkSetUp(lo))
	}
	must(nh.RouteAdd(&netlink.Route{LinkIndex: up.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: net.ParseIP(netPeerAddr).To4()}))
	cfg := netcfg.Config{StateDir: filepath.Join(dir, "net"), NetNS: n.node, Uplink: "up0",
		Table: "plsliver-nettest", VethPrefix: "psn", NewNetNS: NewNetNS, NodePorts: []netcfg.Port{},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if v6 {
		cfg.Prefix6, cfg.NodeAddr6 = netip.MustParsePrefix(netPrefix6), netip.MustParseAddr(netNodeAddr6)
		v6net := func(a string) *net.IPNet { return &net.IPNet{IP: net.ParseIP(a), Mask: net.CIDRMask(64, 128)} }
		must(nh.AddrAdd(up, &netlink.Addr{IPNet: v6net(netNodeAddr6), Flags: unix.IFA_F_NODAD}))
		must(ph.AddrAdd(pe, &netlink.Addr{IPNet: v6net(netPeerAddr6), Flags: unix.IFA_F_NODAD}))
		must(ph.RouteAdd(&netlink.Route{LinkIndex: pe.Attrs().Index, Dst: v6net("2001:db8:7::"), Gw: net.ParseIP(netNodeAddr6)}))
		// New link-local addresses: until their duplicate address
		// detection ends the node sends no neighbour solicitation.
		for _, h := range []*netlink.Handle{nh, ph} {
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				addrs, _ := h.AddrList(nil, netlink.FAMILY_V6)
				if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.Flags&unix.IFA_F_TENTATIVE != 0 }) {
					break
				}
			}
		}
	}
	n.net, err = netcfg.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.net.Teardown(context.Background()); n.net.Close() })
	return n
}

// plainNetNS creates a network namespace owned by the host's user
// namespace and bind-mounts it at path.
func plainNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread ends with the goroutine (never unlocked): it is
		// in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
	}()
	return <-errc
}

// inNS runs fn on a thread in the namespace at path: sockets made there
// belong to it.
func inNS(t *testing.T, path string, fn func() error) {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netcfg.InNetNS(h, fn); err != nil {
		t.Fatal(err)
	}
}

// dialFromPeer connects from the peer to addr, retrying while the
// sliver's listener is not up yet (refused) for at most a minute.
func (n *netNode) dialFromPeer(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var c net.Conn
		var err error
		inNS(t, n.peer, func() error {
			c, err = net.DialTimeout("tcp", addr, 5*time.Second)
			return nil
		})
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("from the peer, dial %s: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startIn starts a long-running command in the sliver; it is killed at
// the end of the test.
func startIn(t *testing.T, r *Runc, name string, root bool, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd, err := r.Command(ctx, name, Process{Args: args, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
}

// TestSliverNetwork runs a sliver under each runtime in the namespace
// netcfg prepared for it, as the node manager does (netcfg's Ensure, then
// Apply with its NetNS), and checks what goes through the namespace's
// interface: the sliver has its address (under gVisor: the sentry's
// network stack took the veth over), reaches the internet through the
// node's NAT with ping (raw sockets: setuid busybox for the slice
// account), receives connections on its reserved port forwarded from the
// node's address, and its packets are classified into its HTB class on
// the node's uplink by the same nft rule that marks them for auditing
// (the time to send 1 MiB under the class's ceiling is logged).
// Then it repeats what every later update of the sliver does (Ensure
// again, Apply again) and checks that an established connection and new
// ones still work: netcfg then puts the address back on the namespace's
// interface, which under gVisor must not make the namespace's own kernel
// answer (and reset) the sentry's connections.
func TestSliverNetwork(t *testing.T) {
	for _, rt := range []string{RuntimeRunc, RuntimeGVisor} {
		label := map[string]string{RuntimeRunc: "runc", RuntimeGVisor: "runsc"}[rt]
		t.Run(label, func(t *testing.T) {
			if rt == RuntimeGVisor {
				needGVisor(t)
			}
			needRoot(t)
			n := newNetNode(t, false)
			r := newTestRuntime(t)
			s := testSpec(t, "net")
			s.Runtime = rt
			ns := netcfg.Sliver{Name: s.Name, XID: s.XID, UIDBase: s.UIDBase,
				Ports: []netcfg.Port{{Proto: "tcp", From: 5000, To: 5001}}, MaxRateKbit: 8000}
			att, err := n.net.Ensure(context.Background(), ns)
			if err != nil {
				t.Fatal(err)
			}
			s.NetNS = att.NetNS
			apply(t, r, s)
			destroyAtEnd(t, r, s.Name)

			if got := mustRun(t, r, s.Name, false, "ip", "-4", "addr"); !strings.Contains(got, att.Addr.String()+"/30") {
				t.Errorf("the sliver does not have its address %s: %s", att.Addr, got)
			}
			for _, root := range []bool{false, true} {
				if out, err := run(t, r, s.Name, root, "ping", "-c", "1", "-W", "5", netPeerAddr); err != nil {
					t.Errorf("ping %s from the sliver (root %v): %v: %s", netPeerAddr, root, err, out)
				}
			}

			// A reserved port, forwarded from the node's address.
			startIn(t, r, s.Name, false, "sh", "-c", "echo hello-from-"+s.Name+" | nc -l -p 5000")
			c := n.dialFromPeer(t, netNodeAddr+":5000")
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if b, err := io.ReadAll(c); !strings.Contains(string(b), "hello-from-"+s.Name) {
				t.Errorf("from the peer through the node's reserved port 5000: %q %v", b, err)
			}
			c.Close()

			// Bulk data out: counted in the sliver's HTB class.
			const size = 1 << 20
			var l net.Listener
			inNS(t, n.peer, func() (err error) { l, err = net.Listen("tcp", netPeerAddr+":7000"); return err })
			defer l.Close()
			got := make(chan int64, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					got <- -1
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				k, _ := io.CopyN(io.Discard, c, size)
				got <- k
			}()
			before, err := n.net.ClassBytes()
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			run(t, r, s.Name, false, "sh", "-c", fmt.Sprintf("head -c %d /dev/zero | nc %s 7000", size, netPeerAddr))
			if k := <-got; k != size {
				t.Errorf("the peer received %d bytes from the sliver, want %d", k, size)
			}
			// A measurement, not an assertion: with the class's ceiling of
			// 8 Mbit/s, 1 MiB takes about 1 s when shaping applies.
			load, _ := os.ReadFile("/proc/loadavg")
			t.Logf("BENCH %s: 1 MiB out under an 8 Mbit/s ceiling in %v (%.1f Mbit/s, command start included); load %s",
				label, time.Since(t0).Round(time.Millisecond), float64(size*8)/time.Since(t0).Seconds()/1e6, strings.Join(strings.Fields(string(load))[:3], " "))
			after, err := n.net.ClassBytes()
			if err != nil {
				t.Fatal(err)
			}
			if d := after[s.XID] - before[s.XID]; d < size {
				t.Errorf("the sliver's HTB class (xid %d) counted %d bytes of its %d: its packets are not marked and classified", s.XID, d, size)
			}

			// An update: Ensure and Apply again, with a connection open.
			startIn(t, r, s.Name, false, "nc", "-ll", "-p", "5001", "-e", "/bin/cat")
			c = n.dialFromPeer(t, netNodeAddr+":5001")
			defer c.Close()
			echo := func(what string) {
				t.Helper()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if _, err := fmt.Fprintln(c, what); err != nil {
					t.Errorf("%s: write: %v", what, err)
					return
				}
				line, err := bufio.NewReader(c).ReadString('\n')
				if strings.TrimSpace(line) != what {
					t.Errorf("%s: echo from the sliver = %q, %v", what, line, err)
				}
			}
			echo("before-update")
			if _, err := n.net.Ensure(context.Background(), ns); err != nil {
				t.Fatal(err)
			}
			s.Keys = append(s.Keys, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondKeyForTests second@pl")
			apply(t, r, s)
			echo("after-update")
			c2 := n.dialFromPeer(t, netNodeAddr+":5001")
			defer c2.Close()
			c2.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintln(c2, "new")
			if line, err := bufio.NewReader(c2).ReadString('\n'); line != "new\n" {
				t.Errorf("a new connection after the update: %q %v", line, err)
			}
			if out, err := run(t, r, s.Name, false, "ping", "-c", "1", "-W", "5", netPeerAddr); err != nil {
				t.Errorf("ping after the update: %v: %s", err, out)
			}
			if rt != RuntimeGVisor {
				return
			}
			// Back to runc in the same namespace: Ensure puts back the
			// address runsc took, and the kernel is the sliver's stack
			// again.
			if _, err := n.net.Ensure(context.Background(), ns); err != nil {
				t.Fatal(err)
			}
			s.Runtime = RuntimeRunc
			apply(t, r, s)
			if out, err := run(t, r, s.Name, false, "ping", "-c", "1", "-W", "5", netPeerAddr); err != nil {
				t.Errorf("ping after switching to runc: %v: %s", err, out)
			}
		})
	}
}

// TestGVisorIPv6: on a node with an IPv6 prefix, a gVisor sliver has its
// routable address (runsc copies it into the sentry's stack with the
// IPv4 one), pings the peer over IPv6 and takes a connection from it.
func TestGVisorIPv6(t *testing.T) {
	needGVisor(t)
	n := newNetNode(t, true)
	r := newTestRuntime(t)
	s := testSpec(t, "gv6")
	s.Runtime = RuntimeGVisor
	ns := netcfg.Sliver{Name: s.Name, XID: s.XID, UIDBase: s.UIDBase, Ports: []netcfg.Port{{Proto: "tcp", From: 5000, To: 5000}}}
	att, err := n.net.Ensure(context.Background(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if !att.Addr6.IsValid() {
		t.Fatal("netcfg gave the sliver no IPv6 address")
	}
	s.NetNS = att.NetNS
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	if got := mustRun(t, r, s.Name, false, "ip", "-6", "addr"); !strings.Contains(got, att.Addr6.String()) {
		t.Errorf("the sliver does not have its address %s: %s", att.Addr6, got)
	}
	for _, root := range []bool{false, true} {
		if out, err := run(t, r, s.Name, root, "ping", "-6", "-c", "1", "-W", "5", netPeerAddr6); err != nil {
			t.Errorf("ping -6 %s from the sliver (root %v): %v: %s", netPeerAddr6, root, err, out)
		}
	}
	startIn(t, r, s.Name, false, "sh", "-c", "echo hello6 | nc -l -p 5000")
	c := n.dialFromPeer(t, net.JoinHostPort(att.Addr6.String(), "5000"))
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if b, err := io.ReadAll(c); !strings.Contains(string(b), "hello6") {
		t.Errorf("from the peer to [%s]:5000: %q %v", att.Addr6, b, err)
	}
}
