package netcfg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The link side of the network manager: each sliver's network namespace, veth pair and addresses.

// ensureNetNS makes path a persisted network namespace. Inside a new one it
// disables IPv6 by default (ensureLinks enables it on the sliver's
// interfaces when the node has an IPv6 prefix) and lets every group use ICMP echo
// sockets, so ping works even without CAP_NET_RAW over the namespace.
func (m *Linux) ensureNetNS(path string, uidBase uint32) error {
	if isNetNSMount(path) {
		return nil
	}
	if err := removeNetNS(path); err != nil { // a stale mount point (e.g. after reboot)
		return err
	}
	sysctls := func() error {
		return errors.Join(
			writeSysctl("net/ipv6/conf/all/disable_ipv6", "1"),
			writeSysctl("net/ipv6/conf/default/disable_ipv6", "1"),
			writeSysctl("net/ipv4/ping_group_range", "0 2147483647"),
		)
	}
	if m.cfg.NewNetNS == nil || uidBase == 0 {
		return createNetNS(path, sysctls)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := m.cfg.NewNetNS(path, uidBase); err != nil {
		_ = removeNetNS(path)
		return fmt.Errorf("create netns owned by uid %d: %w", uidBase, err)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		_ = removeNetNS(path)
		return fmt.Errorf("open new netns: %w", err)
	}
	defer ns.Close()
	if err := InNetNS(ns, sysctls); err != nil {
		_ = removeNetNS(path)
		return err
	}
	return nil
}

func (m *Linux) ensureLinks(s Sliver, nsPath string, gw, addr, addr6 netip.Addr) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer ns.Close()
	sh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in sliver netns: %w", err)
	}
	defer sh.Close()

	hostName := vethName(m.cfg.VethPrefix, s.XID)
	host, err := m.nl.LinkByName(hostName)
	if err == nil {
		peer, perr := sh.LinkByName(SliverIfName)
		if perr != nil || peer.Type() != "veth" || peer.Attrs().ParentIndex != host.Attrs().Index {
			// A veth that does not lead into this sliver's namespace.
			// (It may vanish by itself meanwhile: the kernel deletes it when
			// it destroys an old namespace holding the other end.)
			if err := m.nl.LinkDel(host); err != nil && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("delete stale %s: %w", hostName, err)
			}
			host = nil
		}
	} else {
		host = nil
	}
	if host == nil {
		if old, err := sh.LinkByName(SliverIfName); err == nil {
			if err := sh.LinkDel(old); err != nil {
				return fmt.Errorf("delete stale %s in sliver: %w", SliverIfName, err)
			}
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: SliverIfName, PeerNamespace: netlink.NsFd(int(ns))}
		if err := m.nl.LinkAdd(v); err != nil {
			return fmt.Errorf("create veth %s: %w", hostName, err)
		}
		if host, err = m.nl.LinkByName(hostName); err != nil {
			return err
		}
	}
	if host.Attrs().Alias != s.Name {
		if err := m.nl.LinkSetAlias(host, s.Name); err != nil {
			return fmt.Errorf("alias %s: %w", hostName, err)
		}
	}
	if err := m.nl.AddrReplace(host, &netlink.Addr{IPNet: ipNet(gw, 30)}); err != nil {
		return fmt.Errorf("address of %s: %w", hostName, err)
	}
	if err := m.nl.LinkSetUp(host); err != nil {
		return fmt.Errorf("up %s: %w", hostName, err)
	}

	lo, err := sh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("sliver lo: %w", err)
	}
	if err := sh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("sliver lo up: %w", err)
	}
	eth, err := sh.LinkByName(SliverIfName)
	if err != nil {
		return fmt.Errorf("sliver %s: %w", SliverIfName, err)
	}
	if err := sh.AddrReplace(eth, &netlink.Addr{IPNet: ipNet(addr, 30)}); err != nil {
		return fmt.Errorf("sliver address: %w", err)
	}
	if err := sh.LinkSetUp(eth); err != nil {
		return fmt.Errorf("sliver %s up: %w", SliverIfName, err)
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: gw.AsSlice()}
	if err := sh.RouteReplace(def); err != nil {
		return fmt.Errorf("sliver default route: %w", err)
	}
	m.waitOperUp(s.Name, sh, host.Attrs().Index, eth.Attrs().Index)
	if err := m.ensureIPv6(ns, sh, host, eth, addr6); err != nil {
		return fmt.Errorf("ipv6: %w", err)
	}
	return nil
}

// ensureIPv6 gives the sliver its IPv6 address (a /128 on eth0, default
// route via Gateway6) and the node a route to it through the veth, whose
// node side holds Gateway6. Without addr6 it disables IPv6 on the sliver's
// interfaces, which removes any address and route a former prefix left.
// Neither side takes router advertisements or redirects from the other,
// and neither runs duplicate address detection (the addresses are the
// node's to give, and a point-to-point veth has no one else on it).
func (m *Linux) ensureIPv6(ns netns.NsHandle, sh *netlink.Handle, host, eth netlink.Link, addr6 netip.Addr) error {
	hostName := host.Attrs().Name
	if !addr6.IsValid() {
		// IPv6 is off in a namespace this manager made without a prefix;
		// only one set up under a former prefix has a global address left.
		former, err := m.forgetFormer6(sh, host, eth, netip.Addr{})
		if err != nil {
			return err
		}
		if !former {
			return nil
		}
		return InNetNS(ns, func() error {
			return errors.Join(
				writeSysctl("net/ipv6/conf/"+SliverIfName+"/disable_ipv6", "1"),
				writeSysctl("net/ipv6/conf/lo/disable_ipv6", "1"))
		})
	}
	ifSysctls := func(ifname string) func() error {
		return func() error {
			c := "net/ipv6/conf/" + ifname + "/"
			return errors.Join(
				writeSysctl(c+"accept_dad", "0"),
				writeSysctl(c+"accept_ra", "0"),
				writeSysctl(c+"accept_redirects", "0"),
				writeSysctl(c+"disable_ipv6", "0"))
		}
	}
	// The sysctls come before the address: a sliver that has its address
	// has them (both namespaces' switches cost about half a millisecond,
	// on every reconcile pass otherwise).
	has := false
	if addrs, err := sh.AddrList(eth, netlink.FAMILY_V6); err == nil {
		for _, a := range addrs {
			if x, ok := netip.AddrFromSlice(a.IP); ok && x == addr6 {
				has = true
			}
		}
	}
	if !has {
		// A former prefix's address goes, with the node's route and
		// proxy entry for it (a live change of prefix).
		if _, err := m.forgetFormer6(sh, host, eth, addr6); err != nil {
			return err
		}
		if err := InNetNS(m.nodeNS, ifSysctls(hostName)); err != nil {
			return err
		}
		if err := InNetNS(ns, func() error {
			return errors.Join(ifSysctls(SliverIfName)(), writeSysctl("net/ipv6/conf/lo/disable_ipv6", "0"))
		}); err != nil {
			return err
		}
	}
	if err := m.nl.AddrReplace(host, &netlink.Addr{IPNet: ipNet(Gateway6, 64), Flags: unix.IFA_F_NODAD}); err != nil {
		return fmt.Errorf("address of %s: %w", hostName, err)
	}
	if err := m.nl.RouteReplace(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: ipNet(addr6, 128)}); err != nil {
		return fmt.Errorf("route to %s: %w", addr6, err)
	}
	// Proxy NDP on the uplink: the node answers neighbour solicitations
	// for the sliver's address there, so a prefix that is on-link on the
	// uplink's LAN works as well as one routed to the node.
	if err := m.nl.NeighSet(proxyNeigh(m.uplinkIdx, addr6)); err != nil {
		return fmt.Errorf("proxy neighbour %s on %s: %w", addr6, m.cfg.Uplink, err)
	}
	if err := sh.AddrReplace(eth, &netlink.Addr{IPNet: ipNet(addr6, 128), Flags: unix.IFA_F_NODAD}); err != nil {
		return fmt.Errorf("sliver address: %w", err)
	}
	def := &netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: Gateway6.AsSlice()}
	if err := sh.RouteReplace(def); err != nil {
		return fmt.Errorf("sliver default route: %w", err)
	}
	return nil
}

// forgetFormer6 deletes the sliver's global IPv6 addresses other than
// keep (all when keep is invalid), the node's routes to them through the
// veth and their proxy entries on the uplink. It reports whether there
// were any.
func (m *Linux) forgetFormer6(sh *netlink.Handle, host, eth netlink.Link, keep netip.Addr) (bool, error) {
	addrs, err := sh.AddrList(eth, netlink.FAMILY_V6)
	if err != nil {
		return false, fmt.Errorf("sliver addresses: %w", err)
	}
	found := false
	for _, a := range addrs {
		old, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.Scope != unix.RT_SCOPE_UNIVERSE || old == keep {
			continue
		}
		found = true
		m.log.Info("sliver IPv6 address of a former prefix removed", "veth", host.Attrs().Name, "addr6", old)
		if err := sh.AddrDel(eth, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return found, fmt.Errorf("delete sliver address %s: %w", old, err)
		}
		if err := m.nl.RouteDel(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: ipNet(old, 128)}); err != nil && !errors.Is(err, unix.ESRCH) {
			return found, fmt.Errorf("delete route to %s: %w", old, err)
		}
		if err := m.nl.NeighDel(proxyNeigh(m.uplinkIdx, old)); err != nil && !errors.Is(err, unix.ENOENT) {
			return found, fmt.Errorf("delete proxy neighbour %s: %w", old, err)
		}
	}
	return found, nil
}

// waitOperUp waits until both ends of the veth are operationally up. The
// kernel attaches a device's queueing discipline in its link-watch work,
// which can lag up to a second behind "ip link set up" (it is shared by
// the whole host and rate limited); until then, packets on the link are
// dropped and the sliver's first connection stalls for an ARP retry. The
// wait is normally well under a millisecond; after 2 s it gives up with a
// warning rather than failing.
func (m *Linux) waitOperUp(name string, sh *netlink.Handle, hostIdx, ethIdx int) {
	up := func(h *netlink.Handle, idx int) bool {
		l, err := h.LinkByIndex(idx)
		return err == nil && l.Attrs().OperState == netlink.OperUp
	}
	start := time.Now()
	for !up(m.nl, hostIdx) || !up(sh, ethIdx) {
		if time.Since(start) > 2*time.Second {
			m.log.Warn("sliver veth not operationally up yet", "sliver", name, "waited", time.Since(start))
			return
		}
		time.Sleep(500 * time.Microsecond)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		m.log.Info("slow veth link-up", "sliver", name, "waited", d)
	}
}

// proxyNeigh is the proxy neighbour entry of a sliver address on the uplink.
func proxyNeigh(uplink int, a netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{LinkIndex: uplink, Family: netlink.FAMILY_V6, Flags: netlink.NTF_PROXY, IP: a.AsSlice()}
}

// removeProxies deletes the uplink's proxy neighbour entries of sliver
// addresses: of one xid, or all in the prefix when xid is 0.
func (m *Linux) removeProxies(xid int) error {
	if !m.cfg.Prefix6.IsValid() {
		return nil
	}
	ns, err := m.nl.NeighProxyList(m.uplinkIdx, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("list proxy neighbours: %w", err)
	}
	var want netip.Addr
	if xid != 0 {
		if want, err = SliverAddr6(m.cfg.Prefix6, xid); err != nil {
			return err
		}
	}
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || !m.cfg.Prefix6.Contains(a) || (xid != 0 && a != want) {
			continue
		}
		if err := m.nl.NeighDel(proxyNeigh(m.uplinkIdx, a)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete proxy neighbour %s: %w", a, err)
		}
	}
	return nil
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}
