package vlink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// Manager builds and removes slivers' link ends on one node. Its methods
// are idempotent and safe for concurrent use (they are serialized).
type Manager struct {
	cfg    Config
	log    *slog.Logger
	nodeNS netns.NsHandle
	nl     *netlink.Handle
	nft    *nftables.Conn

	mu     sync.Mutex
	ends   map[string][]vlinks.End // sliver -> its link ends (persisted)
	xids   map[string]int          // sliver -> its xid (persisted): its packets' mark and HTB class
	netem  *bool                   // whether the kernel has netem, once known
	relays map[uint32]*relay       // VNI -> the delay relay of a link (no netem)
	ports  map[uint32]uint16       // VNI -> the end's tunnel source port (persisted)
}

// New opens the node's namespace and loads the recorded link ends. It
// changes nothing on the host.
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	cfg = cfg.withDefaults()
	if cfg.StateDir == "" {
		return nil, core.FieldErrorf("state_dir", "is required")
	}
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{cfg: cfg, log: log.With("subsystem", "vlink"), ends: map[string][]vlinks.End{}, xids: map[string]int{}, relays: map[uint32]*relay{},
		ports: map[uint32]uint16{}}
	var err error
	if cfg.NetNS != "" {
		m.nodeNS, err = netns.GetFromPath(cfg.NetNS)
	} else {
		runtime.LockOSThread()
		m.nodeNS, err = netns.Get()
		runtime.UnlockOSThread()
	}
	if err != nil {
		return nil, fmt.Errorf("vlink: open node netns %q: %w", cfg.NetNS, err)
	}
	if m.nl, err = netlink.NewHandleAt(m.nodeNS); err != nil {
		m.nodeNS.Close()
		return nil, fmt.Errorf("vlink: netlink: %w", err)
	}
	if m.nft, err = nftables.New(nftables.WithNetNSFd(int(m.nodeNS)), nftables.AsLasting()); err != nil {
		m.Close()
		return nil, fmt.Errorf("vlink: nftables: %w", err)
	}
	b, err := os.ReadFile(m.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		m.Close()
		return nil, fmt.Errorf("vlink: %w", err)
	default:
		var rec map[string]record
		if err := json.Unmarshal(b, &rec); err != nil {
			m.Close()
			return nil, fmt.Errorf("vlink: %s: %w", m.statePath(), err)
		}
		for s, r := range rec {
			for _, v := range r.Links {
				if e, err := vlinks.CheckEnd(v); err == nil {
					m.ends[s] = append(m.ends[s], e)
					m.xids[s] = r.XID
					if p := r.SrcPorts[e.VNI]; p >= cfg.SrcPortMin && p < cfg.SrcPortMax && !m.portUsed(p) {
						m.ports[e.VNI] = p
					}
				}
			}
		}
		// Ends recorded without a port (an older version, or a port
		// outside today's range) get one now; their devices are re-created
		// with it by the next Ensure.
		for _, es := range m.ends {
			for _, e := range es {
				if _, err := m.port(e.VNI); err != nil {
					m.log.Warn("no tunnel source port for a recorded link end", "vni", e.VNI, "err", err)
				}
			}
		}
	}
	m.adoptRelays()
	return m, nil
}

// adoptRelays restarts the delay relays of the recorded links (they lived
// in the previous process) and points their tunnels at them.
func (m *Manager) adoptRelays() {
	for s, es := range m.ends {
		for _, e := range es {
			if e.DelayUS == 0 || m.hasNetem() {
				continue
			}
			br, err := m.nl.LinkByName(m.cfg.devName('b', e.VNI))
			if err != nil {
				continue // built by the sliver's next Ensure
			}
			if err := m.ensureRelay(br, e); err != nil {
				m.log.Warn("cannot restart a link's delay relay", "sliver", s, "link", e.Name, "err", err)
			}
		}
	}
}

// portUsed reports whether a tunnel source port is taken.
func (m *Manager) portUsed(p uint16) bool {
	for _, q := range m.ports {
		if q == p {
			return true
		}
	}
	return false
}

// port returns the tunnel source port of the end with VNI vni, allocating
// the lowest free one of the range the first time.
func (m *Manager) port(vni uint32) (uint16, error) {
	if p, ok := m.ports[vni]; ok {
		return p, nil
	}
	for p := m.cfg.SrcPortMin; p < m.cfg.SrcPortMax; p++ {
		if !m.portUsed(p) {
			m.ports[vni] = p
			return p, nil
		}
	}
	return 0, core.Errorf(core.Unavailable, "vlink: every tunnel source port of %d..%d is taken (one per link end on this node)", m.cfg.SrcPortMin, m.cfg.SrcPortMax-1)
}

// SrcPort returns the UDP source port of the tunnel of the end with VNI
// vni on this node (0: no such end): its packets, and so its conntrack
// entries, are that end's alone.
func (m *Manager) SrcPort(vni uint32) uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, es := range m.ends {
		for _, e := range es {
			if e.VNI == vni {
				return m.ports[vni]
			}
		}
	}
	return 0
}

// ensureRelay gives a delayed link a relay (see delay_linux.go) with its
// peers, source port and delay, its TAP in the link's bridge br.
func (m *Manager) ensureRelay(br netlink.Link, e vlinks.End) error {
	delay := time.Duration(e.DelayUS) * time.Microsecond
	r := m.relays[e.VNI]
	if r != nil {
		tap, err := m.nl.LinkByName(m.cfg.devName('t', e.VNI))
		if r.delay != delay || !r.sendsTo(e.Peers, m.ports[e.VNI]) || err != nil || tap.Attrs().MasterIndex != br.Attrs().Index {
			m.stopRelay(e.VNI)
			r = nil
		}
	}
	if r == nil {
		var err error
		if r, err = m.startRelay(e, br); err != nil {
			return err
		}
		m.relays[e.VNI] = r
	}
	return nil
}

func (m *Manager) stopRelay(vni uint32) {
	if r := m.relays[vni]; r != nil {
		r.close()
		delete(m.relays, vni)
	}
}

// Close releases the manager's handles and stops its delay relays (a
// delayed link carries nothing until the next New); links stay.
func (m *Manager) Close() {
	m.mu.Lock()
	for vni := range m.relays {
		m.stopRelay(vni)
	}
	m.mu.Unlock()
	if m.nft != nil {
		_ = m.nft.CloseLasting()
	}
	if m.nl != nil {
		m.nl.Close()
	}
	m.nodeNS.Close()
}

func (m *Manager) statePath() string { return filepath.Join(m.cfg.StateDir, "vlinks.json") }

// record is what vlinks.json keeps per sliver.
type record struct {
	XID   int          `json:"xid"`
	Links []core.VLink `json:"links"`
	// SrcPorts are the tunnels' source ports by VNI.
	SrcPorts map[uint32]uint16 `json:"src_ports,omitempty"`
}

// Ensure makes the sliver's link ends exactly links: it creates or
// repairs each (devices, addresses, shaping), deletes the sliver's links
// that are no longer wanted and rebuilds the isolation rules. sliverNS is
// the path of the sliver's network namespace; xid its number (the link
// traffic is marked and classified as the sliver's, netcfg.ClassID).
func (m *Manager) Ensure(ctx context.Context, sliver string, xid int, sliverNS string, links []core.VLink) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, had := m.ends[sliver]; !had && len(links) == 0 {
		return nil // the common case: a sliver without links stays so
	}
	ends := make([]vlinks.End, 0, len(links))
	names := map[string]bool{}
	for _, l := range links {
		e, err := vlinks.CheckEnd(l)
		if err != nil {
			return fmt.Errorf("sliver %q: %w", sliver, err)
		}
		for _, r := range m.cfg.Reserved {
			if r.Overlaps(e.LocalPrefix) {
				return fmt.Errorf("sliver %q: %w", sliver, core.FieldErrorf(vlinks.Tag, "link %s: %s overlaps this node's sliver range %s", e.Name, e.LocalPrefix, r))
			}
		}
		if names[e.Name] {
			return fmt.Errorf("sliver %q: %w", sliver, core.FieldErrorf(vlinks.Tag, "two links are named %s", e.Name))
		}
		names[e.Name] = true
		for other, es := range m.ends {
			for _, o := range es {
				if other != sliver && o.VNI == e.VNI {
					return fmt.Errorf("sliver %q: %w", sliver, core.Errorf(core.Conflict, "link %s: VNI %d belongs to sliver %s", e.Name, e.VNI, other))
				}
			}
		}
		ends = append(ends, e)
	}
	for _, e := range ends {
		if _, err := m.port(e.VNI); err != nil {
			return fmt.Errorf("sliver %q: link %s: %w", sliver, e.Name, err)
		}
	}
	if len(ends) > 0 {
		ns, err := netns.GetFromPath(sliverNS)
		if err != nil {
			return fmt.Errorf("sliver %q: open netns: %w", sliver, err)
		}
		defer ns.Close()
		sh, err := netlink.NewHandleAt(ns)
		if err != nil {
			return fmt.Errorf("sliver %q: netlink in sliver netns: %w", sliver, err)
		}
		defer sh.Close()
		for _, e := range ends {
			if err := m.ensureLink(e, ns, sh); err != nil {
				return fmt.Errorf("sliver %q: link %s: %w", sliver, e.Name, err)
			}
		}
		// A sliver with links may route between them (a virtual ISP): the
		// packets it forwards out of eth0 stay subject to netcfg's
		// anti-spoofing there.
		if err := netcfg.InNetNS(ns, func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("sliver %q: forwarding: %w", sliver, err)
		}
	}
	want := map[uint32]bool{}
	for _, e := range ends {
		want[e.VNI] = true
	}
	for _, old := range m.ends[sliver] {
		if !want[old.VNI] {
			if err := m.deleteLink(old.VNI); err != nil {
				return fmt.Errorf("sliver %q: delete link %s: %w", sliver, old.Name, err)
			}
		}
	}
	if len(ends) == 0 {
		delete(m.ends, sliver)
		delete(m.xids, sliver)
	} else {
		m.ends[sliver], m.xids[sliver] = ends, xid
	}
	if err := m.commit(); err != nil {
		return fmt.Errorf("sliver %q: %w", sliver, err)
	}
	return nil
}

// Remove deletes every link end of the sliver.
func (m *Manager) Remove(ctx context.Context, sliver string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.ends[sliver] {
		if err := m.deleteLink(e.VNI); err != nil {
			return fmt.Errorf("sliver %q: delete link %s: %w", sliver, e.Name, err)
		}
	}
	if _, ok := m.ends[sliver]; !ok {
		return nil
	}
	delete(m.ends, sliver)
	delete(m.xids, sliver)
	return m.commit()
}

// Teardown deletes every link and the table (tests, pl dev down).
func (m *Manager) Teardown() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, es := range m.ends {
		for _, e := range es {
			errs = append(errs, m.deleteLink(e.VNI))
		}
	}
	m.ends, m.xids = map[string][]vlinks.End{}, map[string]int{}
	m.nft.DelTable(&nftables.Table{Name: m.cfg.Table, Family: nftables.TableFamilyINet})
	if err := m.nft.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, err)
	}
	errs = append(errs, os.Remove(m.statePath()))
	if errors.Is(errs[len(errs)-1], os.ErrNotExist) {
		errs = errs[:len(errs)-1]
	}
	return errors.Join(errs...)
}

// Ends returns the recorded link ends of a sliver.
func (m *Manager) Ends(sliver string) []core.VLink {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []core.VLink
	for _, e := range m.ends[sliver] {
		out = append(out, e.VLink)
	}
	return out
}

// commit persists the ends and rebuilds the nftables table in one
// transaction (delete and re-create: chains and rules exactly as wanted).
func (m *Manager) commit() error {
	rec := map[string]record{}
	keep := map[uint32]bool{}
	for s, es := range m.ends {
		r := record{XID: m.xids[s], SrcPorts: map[uint32]uint16{}}
		for _, e := range es {
			r.Links = append(r.Links, e.VLink)
			r.SrcPorts[e.VNI] = m.ports[e.VNI]
			keep[e.VNI] = true
		}
		rec[s] = r
	}
	for vni := range m.ports { // ends that failed to build, or are gone
		if !keep[vni] {
			delete(m.ports, vni)
		}
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.statePath(), b, 0o600); err != nil {
		return err
	}
	t := &nftables.Table{Name: m.cfg.Table, Family: nftables.TableFamilyINet}
	m.nft.AddTable(t)
	m.nft.DelTable(t)
	m.nft.AddTable(t)
	accept := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{}
	for _, bc := range baseChains {
		chains[bc.name] = m.nft.AddChain(&nftables.Chain{Name: bc.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: bc.hook, Priority: nftables.ChainPriorityRef(prioFirst), Policy: &accept})
	}
	for _, n := range []string{chainIn, chainOut} {
		chains[n] = m.nft.AddChain(&nftables.Chain{Name: n, Table: t})
	}
	for _, r := range rules(m.cfg.Port, m.ends, m.xids) {
		m.nft.AddRule(&nftables.Rule{Table: t, Chain: chains[r.chain], Exprs: r.exprs})
	}
	if err := m.nft.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", m.cfg.Table, err)
	}
	return nil
}

// ensureLink creates or repairs one link end.
func (m *Manager) ensureLink(e vlinks.End, ns netns.NsHandle, sh *netlink.Handle) error {
	vxName, brName, hName := m.cfg.devName('x', e.VNI), m.cfg.devName('b', e.VNI), m.cfg.devName('h', e.VNI)
	// The bridge.
	br, err := m.nl.LinkByName(brName)
	if err != nil {
		if err := m.nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: brName}}); err != nil {
			return fmt.Errorf("create bridge %s: %w", brName, err)
		}
		if br, err = m.nl.LinkByName(brName); err != nil {
			return err
		}
	}
	// The tunnel: re-created when its VNI, peer, source address or port
	// differ. A delayed link without netem has no remote of its own: its
	// frames leave through its delay relay. A LAN's tunnel has no single
	// remote either: one forwarding entry per member (syncFDB), and it
	// learns which member holds which address. Its source port is the
	// end's own (PortLow..PortHigh is half-open: exactly PortLow).
	relayed := e.DelayUS > 0 && !m.hasNetem()
	port := m.ports[e.VNI]
	want := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: vxName, MTU: m.cfg.MTU, MasterIndex: br.Attrs().Index, Alias: e.Name},
		VxlanId: int(e.VNI), Port: int(m.cfg.Port), PortLow: int(port), PortHigh: int(port) + 1, Learning: e.IsLAN() && !relayed}
	if !relayed && !e.IsLAN() {
		want.Group = net.IP(e.Peer.AsSlice())
	}
	if m.cfg.LocalAddr.IsValid() {
		want.SrcAddr = net.IP(m.cfg.LocalAddr.AsSlice())
	}
	vx, err := m.nl.LinkByName(vxName)
	if err == nil {
		got, ok := vx.(*netlink.Vxlan)
		if !ok || got.VxlanId != want.VxlanId || !got.Group.Equal(want.Group) || got.Port != want.Port ||
			got.PortLow != want.PortLow || got.PortHigh != want.PortHigh || got.Learning != want.Learning ||
			(want.SrcAddr != nil && !got.SrcAddr.Equal(want.SrcAddr)) {
			if err := m.nl.LinkDel(vx); err != nil {
				return fmt.Errorf("delete stale %s: %w", vxName, err)
			}
			vx = nil
		}
	} else {
		vx = nil
	}
	if vx == nil {
		if err := m.nl.LinkAdd(want); err != nil {
			return fmt.Errorf("create vxlan %s (VNI %d to %v): %w", vxName, e.VNI, e.Peers, err)
		}
		if vx, err = m.nl.LinkByName(vxName); err != nil {
			return err
		}
	}
	var members []netip.Addr
	if e.IsLAN() && !relayed {
		members = e.Peers
	}
	if err := m.syncFDB(vx, members); err != nil {
		return fmt.Errorf("forwarding entries of %s: %w", vxName, err)
	}
	mtu := m.cfg.MTU
	if vx.Attrs().MTU != mtu {
		if err := m.nl.LinkSetMTU(vx, mtu); err != nil {
			return fmt.Errorf("mtu of %s: %w", vxName, err)
		}
	}
	// The veth: the node's end in the bridge, the sliver's named e.Name.
	h, err := m.nl.LinkByName(hName)
	if err == nil {
		in, ierr := sh.LinkByName(e.Name)
		if ierr != nil || in.Type() != "veth" || in.Attrs().ParentIndex != h.Attrs().Index || h.Attrs().ParentIndex != in.Attrs().Index {
			if err := m.nl.LinkDel(h); err != nil && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("delete stale %s: %w", hName, err)
			}
			h = nil
		}
	} else {
		h = nil
	}
	if h == nil {
		if old, err := sh.LinkByName(e.Name); err == nil {
			if err := sh.LinkDel(old); err != nil {
				return fmt.Errorf("delete stale %s in the sliver: %w", e.Name, err)
			}
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hName, MTU: mtu}, PeerName: e.Name, PeerNamespace: netlink.NsFd(int(ns)),
			PeerHardwareAddr: sliverMAC(e)}
		if err := m.nl.LinkAdd(v); err != nil {
			return fmt.Errorf("create veth %s/%s: %w", hName, e.Name, err)
		}
		if h, err = m.nl.LinkByName(hName); err != nil {
			return err
		}
	}
	for _, l := range []netlink.Link{vx, h} {
		if l.Attrs().MasterIndex != br.Attrs().Index {
			if err := m.nl.LinkSetMaster(l, br); err != nil {
				return fmt.Errorf("%s into %s: %w", l.Attrs().Name, brName, err)
			}
		}
	}
	for _, l := range []netlink.Link{br, vx, h} {
		if err := m.nl.LinkSetUp(l); err != nil {
			return fmt.Errorf("up %s: %w", l.Attrs().Name, err)
		}
	}
	in, err := sh.LinkByName(e.Name)
	if err != nil {
		return fmt.Errorf("sliver side %s: %w", e.Name, err)
	}
	if in.Attrs().MTU != mtu {
		if err := sh.LinkSetMTU(in, mtu); err != nil {
			return fmt.Errorf("mtu of %s: %w", e.Name, err)
		}
	}
	if err := sh.AddrReplace(in, &netlink.Addr{IPNet: &net.IPNet{IP: e.LocalPrefix.Addr().AsSlice(), Mask: net.CIDRMask(e.LocalPrefix.Bits(), 32)}}); err != nil {
		return fmt.Errorf("address of %s: %w", e.Name, err)
	}
	if err := sh.LinkSetUp(in); err != nil {
		return fmt.Errorf("up %s: %w", e.Name, err)
	}
	// A relayed link's tunnel only receives: the bridge must not learn the
	// peer's addresses on it, so that frames toward them reach the relay.
	if err := m.nl.LinkSetLearning(vx, !relayed); err != nil {
		return fmt.Errorf("learning on %s: %w", vxName, err)
	}
	// The tunnel's and the relay's ports are isolated from each other: a
	// frame that arrived from the peers must not go back out to them (a
	// broadcast would circle between the nodes for ever, and multiply on
	// a LAN, whose relay sends to every member).
	if err := m.nl.LinkSetIsolated(vx, true); err != nil {
		return fmt.Errorf("isolate %s: %w", vxName, err)
	}
	if !relayed {
		m.stopRelay(e.VNI)
		return m.shape(vx, e)
	}
	if err := m.ensureRelay(br, e); err != nil {
		return err
	}
	tap, err := m.nl.LinkByName(m.cfg.devName('t', e.VNI))
	if err != nil {
		return err
	}
	return m.shape(tap, e)
}

// sliverMAC is the Ethernet address of the sliver's interface on a link
// or LAN: locally administered, from the VNI and the end's private
// address (unique on the segment), so a re-created interface keeps it and
// the other ends' neighbour caches stay right (a member that leaves a LAN
// and comes back is reachable at once).
func sliverMAC(e vlinks.End) net.HardwareAddr {
	a := e.LocalPrefix.Addr().As4()
	return net.HardwareAddr{0x02, byte(e.VNI >> 16), byte(e.VNI >> 8), byte(e.VNI), a[2], a[3]}
}

// syncFDB makes the tunnel's all-zero forwarding entries (where
// broadcast, multicast and unknown frames go) exactly one per address of
// members: a LAN's head-end replication. A link's tunnel has its remote
// instead (members is empty).
func (m *Manager) syncFDB(vx netlink.Link, members []netip.Addr) error {
	have, err := m.nl.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return err
	}
	want := map[netip.Addr]bool{}
	for _, a := range members {
		want[a] = true
	}
	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	entry := func(ip net.IP) *netlink.Neigh {
		return &netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT | netlink.NUD_NOARP,
			Flags: netlink.NTF_SELF, IP: ip, HardwareAddr: zero}
	}
	for _, n := range have {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || n.HardwareAddr.String() != zero.String() {
			continue
		}
		a = a.Unmap()
		if want[a] {
			delete(want, a)
			continue
		}
		if len(members) == 0 && n.State&netlink.NUD_PERMANENT != 0 && n.Flags&netlink.NTF_SELF != 0 && n.IP.Equal(vxGroup(vx)) {
			continue // a link's remote, the kernel's own entry
		}
		if err := m.nl.NeighDel(entry(n.IP)); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	for a := range want {
		if err := m.nl.NeighAppend(entry(a.AsSlice())); err != nil {
			return fmt.Errorf("add %s: %w", a, err)
		}
	}
	return nil
}

func vxGroup(l netlink.Link) net.IP {
	if v, ok := l.(*netlink.Vxlan); ok {
		return v.Group
	}
	return nil
}

// shape puts the link's rate on the device that sends toward the peer (the
// tunnel, or a relayed link's TAP) as tbf, handle 1:, and, when the link
// has a delay and the kernel has netem, a netem child for it.
func (m *Manager) shape(vx netlink.Link, e vlinks.End) error {
	rate := uint64(e.RateKbit) * 1000 / 8 // bytes/s
	burst := uint32(max(rate/250, 3*uint64(vx.Attrs().MTU+14)))
	tbf := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: vx.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate,
		Buffer:     netlink.Xmittime(rate, burst),
		Limit:      uint32(min(rate/20+uint64(burst), 1<<30)), // 50 ms of queue
	}
	if err := m.nl.QdiscReplace(tbf); err != nil {
		return fmt.Errorf("tbf on %s: %w", vx.Attrs().Name, err)
	}
	if e.DelayUS == 0 || !m.hasNetem() {
		return nil // no delay, or the relay applies it
	}
	ne := netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: vx.Attrs().Index, Handle: netlink.MakeHandle(10, 0), Parent: netlink.MakeHandle(1, 1)},
		netlink.NetemQdiscAttrs{Latency: uint32(e.DelayUS), Limit: 10000})
	if err := m.nl.QdiscReplace(ne); err != nil {
		return fmt.Errorf("netem on %s: %w", vx.Attrs().Name, err)
	}
	return nil
}

// deleteLink deletes a link end's node-side devices (deleting the veth
// also deletes the sliver's end).
func (m *Manager) deleteLink(vni uint32) error {
	m.stopRelay(vni)
	delete(m.ports, vni)
	var errs []error
	for _, role := range []byte{'h', 'x', 'b'} {
		name := m.cfg.devName(role, vni)
		l, err := m.nl.LinkByName(name)
		if err != nil {
			continue
		}
		if err := m.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Slivers returns the names of the slivers with recorded links, sorted.
func (m *Manager) Slivers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.ends))
	for s := range m.ends {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
