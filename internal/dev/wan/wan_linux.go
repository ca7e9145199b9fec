package wan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// maxQueueBytes bounds the packets one direction of one uplink holds
// (a bandwidth-delay product of 1 Gbit/s over 130 ms).
const maxQueueBytes = 16 << 20

// WAN is a running emulated network. Close removes it.
type WAN struct {
	Plan *Plan
	log  *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup
	tuns   []*os.File
	Stats  map[string]*PumpStats // per uplink direction, "s1 up", "s1 down"
}

// CheckFree fails when the host already routes any of prefix (so the WAN
// would shadow or be shadowed by an existing network), ignoring routes on
// links whose name starts with ours (a leftover of an earlier run is
// reported separately by Leftovers).
func CheckFree(prefix netip.Prefix) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil { // default route: does not "cover" our block in a way that matters
			continue
		}
		rp, ok := netipPrefix(r.Dst)
		if !ok || rp.Bits() == 0 || !rp.Overlaps(prefix) {
			continue
		}
		name := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			name = l.Attrs().Name
		}
		return fmt.Errorf("wan: address block %v overlaps the host route %v dev %s; choose another block (--wan)", prefix, rp, name)
	}
	return nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

// Up builds the WAN described by p and starts its pumps. On error it removes
// whatever it created.
func Up(ctx context.Context, p *Plan, log *slog.Logger) (w *WAN, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckFree(p.Config.Prefix); err != nil {
		return nil, err
	}
	w = &WAN{Plan: p, log: log, Stats: map[string]*PumpStats{}}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if err := w.build(); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for i, s := range p.SitePlans {
		coreTun, siteTun := w.tuns[2*i], w.tuns[2*i+1]
		place := Place(s.Index)
		up, down := new(PumpStats), new(PumpStats)
		w.Stats[s.CoreTun+" up"], w.Stats[s.CoreTun+" down"] = up, down
		w.pump(pctx, s.NS+" up", siteTun, coreTun, p.uplinkDelay(place), up)
		w.pump(pctx, s.NS+" down", coreTun, siteTun, p.downlinkDelay(place), down)
	}
	return w, nil
}

func (w *WAN) pump(ctx context.Context, name string, src, dst *os.File, d DelayFunc, st *PumpStats) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if err := Pump(ctx, src, dst, d, maxQueueBytes, st); err != nil && !errors.Is(err, os.ErrClosed) {
			w.log.Warn("wan pump stopped", "link", name, "err", err)
		}
	}()
}

// build creates namespaces, links, addresses and routes.
func (w *WAN) build() error {
	p := w.Plan
	if err := createNS(p.CoreNS); err != nil {
		return err
	}
	core, err := handle(p.CoreNS)
	if err != nil {
		return err
	}
	defer core.Close()
	if err := setupLo(core); err != nil {
		return err
	}
	if err := setForwarding(p.CoreNS); err != nil {
		return err
	}
	// Host <-> core veth.
	coreFd, err := netns.GetFromName(p.CoreNS)
	if err != nil {
		return err
	}
	defer coreFd.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.HostLink}, PeerName: CoreHostIf, PeerNamespace: netlink.NsFd(coreFd)}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", p.HostLink, err)
	}
	// No duplicate address detection on the new host link: until it ends,
	// the link-local address the host needs for neighbour discovery is
	// not usable.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p.HostLink+"/accept_dad", []byte("0"), 0o644); err != nil {
		return fmt.Errorf("host link: %w", err)
	}
	if err := addrUp(nil, p.HostLink, netip.PrefixFrom(p.HostAddr, 30), netip.Addr{}); err != nil {
		return err
	}
	if err := addrUp(core, CoreHostIf, netip.PrefixFrom(p.CoreAddr, 30), netip.Addr{}); err != nil {
		return err
	}
	if err := addrUp(nil, p.HostLink, netip.PrefixFrom(p.HostAddr6, 64), netip.Addr{}); err != nil {
		return err
	}
	if err := addrUp(core, CoreHostIf, netip.PrefixFrom(p.CoreAddr6, 64), netip.Addr{}); err != nil {
		return err
	}
	hostLink, err := netlink.LinkByName(p.HostLink)
	if err != nil {
		return err
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: ipnet(p.Config.Prefix), Gw: p.CoreAddr.AsSlice()}); err != nil {
		return fmt.Errorf("host route %v via %v: %w", p.Config.Prefix, p.CoreAddr, err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: hostLink.Attrs().Index, Dst: ipnet(p.Prefix6), Gw: p.CoreAddr6.AsSlice()}); err != nil {
		return fmt.Errorf("host route %v via %v: %w", p.Prefix6, p.CoreAddr6, err)
	}
	for _, s := range p.SitePlans {
		if err := w.buildSite(core, s); err != nil {
			return fmt.Errorf("site %s: %w", s.Site.Name, err)
		}
	}
	for _, n := range p.NodePlans {
		if err := w.buildNode(n); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

func (w *WAN) buildSite(core *netlink.Handle, s SitePlan) error {
	p := w.Plan
	if err := createNS(s.NS); err != nil {
		return err
	}
	h, err := handle(s.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := setupLo(h); err != nil {
		return err
	}
	if err := setForwarding(s.NS); err != nil {
		return err
	}
	coreTun, err := openTun(p.CoreNS, s.CoreTun)
	if err != nil {
		return err
	}
	w.tuns = append(w.tuns, coreTun)
	siteTun, err := openTun(s.NS, SiteUpIf)
	if err != nil {
		return err
	}
	w.tuns = append(w.tuns, siteTun)
	if err := addrUp(core, s.CoreTun, netip.PrefixFrom(s.CoreSide, 32), s.SiteSide); err != nil {
		return err
	}
	if err := addrUp(h, SiteUpIf, netip.PrefixFrom(s.SiteSide, 32), s.CoreSide); err != nil {
		return err
	}
	ct, err := core.LinkByName(s.CoreTun)
	if err != nil {
		return err
	}
	if err := core.RouteAdd(&netlink.Route{LinkIndex: ct.Attrs().Index, Dst: ipnet(s.Subnet), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("core route %v: %w", s.Subnet, err)
	}
	if err := core.RouteAdd(&netlink.Route{LinkIndex: ct.Attrs().Index, Dst: ipnet(s.Prefix6)}); err != nil {
		return fmt.Errorf("core route %v: %w", s.Prefix6, err)
	}
	st, err := h.LinkByName(SiteUpIf)
	if err != nil {
		return err
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: st.Attrs().Index, Dst: ipnet(netip.MustParsePrefix("0.0.0.0/0")), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("site default route: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: st.Attrs().Index, Dst: ipnet(netip.MustParsePrefix("::/0"))}); err != nil {
		return fmt.Errorf("site IPv6 default route: %w", err)
	}
	if p.RateKbit > 0 {
		if err := addTBF(core, s.CoreTun, p.RateKbit); err != nil {
			return err
		}
		if err := addTBF(h, SiteUpIf, p.RateKbit); err != nil {
			return err
		}
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: SiteBridge}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge: %w", err)
	}
	if err := addrUp(h, SiteBridge, netip.PrefixFrom(s.Gateway, 24), netip.Addr{}); err != nil {
		return err
	}
	return addrUp(h, SiteBridge, netip.PrefixFrom(s.Gateway6, 64), netip.Addr{})
}

func (w *WAN) buildNode(n NodePlan) error {
	p := w.Plan
	s := p.SiteOf(n)
	if err := createNS(n.NS); err != nil {
		return err
	}
	h, err := handle(n.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := setupLo(h); err != nil {
		return err
	}
	site, err := handle(s.NS)
	if err != nil {
		return err
	}
	defer site.Close()
	nodeFd, err := netns.GetFromName(n.NS)
	if err != nil {
		return err
	}
	defer nodeFd.Close()
	br, err := site.LinkByName(SiteBridge)
	if err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: n.Veth, MasterIndex: br.Attrs().Index},
		PeerName:      NodeIf,
		PeerNamespace: netlink.NsFd(nodeFd),
	}
	if err := site.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth: %w", err)
	}
	sv, err := site.LinkByName(n.Veth)
	if err != nil {
		return err
	}
	if err := site.LinkSetUp(sv); err != nil {
		return err
	}
	if err := addrUp(h, NodeIf, netip.PrefixFrom(n.Addr, 24), netip.Addr{}); err != nil {
		return err
	}
	eth, err := h.LinkByName(NodeIf)
	if err != nil {
		return err
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.Gateway.AsSlice()}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	if err := addrUp(h, NodeIf, netip.PrefixFrom(n.Addr6, 64), netip.Addr{}); err != nil {
		return err
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: ipnet(netip.MustParsePrefix("::/0")), Gw: n.Gateway6.AsSlice()}); err != nil {
		return fmt.Errorf("IPv6 default route: %w", err)
	}
	// The site routes the node's sliver prefix to it.
	if err := site.RouteAdd(&netlink.Route{LinkIndex: br.Attrs().Index, Dst: ipnet(n.SliverPrefix6), Gw: n.Addr6.AsSlice()}); err != nil {
		return fmt.Errorf("site route %v: %w", n.SliverPrefix6, err)
	}
	return nil
}

// setForwarding makes a router namespace forward IPv4 and IPv6.
func setForwarding(ns string) error {
	return errors.Join(setSysctl(ns, "net/ipv4/ip_forward", "1"), setSysctl(ns, "net/ipv6/conf/all/forwarding", "1"))
}

func handle(ns string) (*netlink.Handle, error) {
	fd, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", ns, err)
	}
	return h, nil
}

func setupLo(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// addrUp assigns addr (with an optional point-to-point peer) to link and
// sets it up. h nil means the root namespace.
func addrUp(h *netlink.Handle, link string, addr netip.Prefix, peer netip.Addr) error {
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(); err != nil {
			return err
		}
		defer h.Close()
	}
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("link %s: %w", link, err)
	}
	a := &netlink.Addr{IPNet: ipnet(addr)}
	if addr.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // the plan's addresses are unique
	}
	if peer.IsValid() {
		a.Peer = ipnet(netip.PrefixFrom(peer, 32))
	}
	if err := h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address %v on %s: %w", addr, link, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("up %s: %w", link, err)
	}
	return nil
}

func addTBF(h *netlink.Handle, link string, kbit uint64) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return err
	}
	rate := kbit * 1000 / 8                 // bytes per second
	burst := uint32(max(rate/100, 16*1024)) // 10 ms worth, at least 16 KiB
	q := &netlink.Tbf{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate:       rate,
		Limit:      uint32(rate / 10), // 100 ms of queue
		// The kernel takes the bucket size as the time to send it, in
		// psched ticks.
		Buffer: netlink.Xmittime(rate, burst),
	}
	if q.Limit < 64*1024 {
		q.Limit = 64 * 1024
	}
	if err := h.QdiscReplace(q); err != nil {
		return fmt.Errorf("tbf %d kbit on %s: %w", kbit, link, err)
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Close stops the pumps and removes every namespace and link of the WAN.
// It is safe to call more than once.
func (w *WAN) Close() error {
	if w.cancel != nil {
		w.cancel()
	}
	for _, f := range w.tuns {
		f.Close() // unblocks the readers; the devices vanish
	}
	w.wg.Wait()
	w.tuns = nil
	return Remove(w.Plan.Prefix)
}

// Remove deletes every network namespace and root-namespace link whose name
// starts with namePrefix (e.g. "pldev-"), the markers this package puts on
// what it creates. It is how `pl dev down` cleans up after a killed run.
func Remove(namePrefix string) error {
	if !strings.HasPrefix(namePrefix, NamePrefix) {
		return fmt.Errorf("wan: refusing to remove objects named %q*: not ours", namePrefix)
	}
	var errs []error
	links, err := netlink.LinkList()
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, namePrefix) {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete link %s: %w", l.Attrs().Name, err))
			}
		}
	}
	names, err := Leftovers(namePrefix)
	errs = append(errs, err)
	for _, n := range names {
		errs = append(errs, deleteNS(n))
	}
	return errors.Join(errs...)
}

// Leftovers lists the named network namespaces starting with namePrefix.
func Leftovers(namePrefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), namePrefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
