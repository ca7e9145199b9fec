package netcfg

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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
)

// Linux is the Manager of a Linux node: netlink for links, addresses,
// routes and HTB; nftables for filtering, NAT and marking. Everything it
// creates lives in the node's network namespace (Config.NetNS) and in
// per-sliver namespaces persisted under Config.StateDir, so several
// emulated nodes can share one host.
//
// What one sliver (name N, xid X) owns on the host:
//
//	StateDir/netns/N          bind mount of the sliver's netns (eth0 = .2 of its /30, lo)
//	StateDir/slivers/N.json   record: xid, ports, rates (port/xid conflict checks after restart)
//	veth <VethPrefix>X        node side, .1 of the /30, alias N
//	chain from-X              anti-spoofing, IPv6 drop, mark/ct mark = X, priority = 1:(0x1000|X)
//	chain ports-X             DNAT of N's reserved ports on the node address
//	4 jump rules              forward/input -> from-X (by iifname), prerouting/output -> ports-X
//	HTB class 1:(0x1000|X)    on the uplink, rate = min, ceil = max <= node cap
//
// Node-wide (Setup): net.ipv4.ip_forward=1, the inet table with its five
// base chains and node rules (see nodeRules for the isolation policy),
// and the HTB root with the node and default classes (see tc_linux.go).
// Remove deletes exactly a sliver's list; Teardown deletes everything.
//
// Methods are safe for concurrent use; operations are serialized (Ensure
// of a new sliver takes about 5 ms, see BenchmarkEnsure).
type Linux struct {
	cfg    Config
	log    *slog.Logger
	nodeNS netns.NsHandle
	nl     *netlink.Handle
	nft    *nftables.Conn
	table  *nftables.Table

	mu        sync.Mutex
	uplinkIdx int
	setupDone bool
	jumps     map[int]bool      // xids whose jump rules are in the base chains
	slivers   map[string]record // last successful Ensure per sliver (persisted)
}

var _ Manager = (*Linux)(nil)

// record is what the manager persists about a sliver: enough to check
// port/xid conflicts and clean up after a restart.
type record struct {
	Name        string     `json:"name"`
	XID         int        `json:"xid"`
	Ports       ports.List `json:"ports"` // canonical text in the file
	MinRateKbit int64      `json:"min_rate_kbit"`
	MaxRateKbit int64      `json:"max_rate_kbit"`
}

// New opens the node's namespace, fills the configuration defaults
// (uplink, node address) and loads the sliver records. It changes nothing
// on the host; Setup (or the first Ensure) does.
func New(cfg Config) (*Linux, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("netcfg config: %w", err)
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	m := &Linux{cfg: cfg, log: cfg.Logger.With("subsystem", "netcfg"), jumps: map[int]bool{}, slivers: map[string]record{}}
	if cfg.NetNS != "" {
		m.nodeNS, err = netns.GetFromPath(cfg.NetNS)
	} else {
		runtime.LockOSThread()
		m.nodeNS, err = netns.Get()
		runtime.UnlockOSThread()
	}
	if err != nil {
		return nil, fmt.Errorf("open node netns %q: %w", cfg.NetNS, err)
	}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	if m.nl, err = netlink.NewHandleAt(m.nodeNS); err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	if m.nft, err = nftables.New(nftables.WithNetNSFd(int(m.nodeNS)), nftables.AsLasting()); err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	m.table = &nftables.Table{Name: cfg.Table, Family: nftables.TableFamilyINet}
	if err := m.detect(); err != nil {
		return nil, err
	}
	if err := m.loadRecords(); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

// Config returns the effective configuration (defaults filled in).
func (m *Linux) Config() Config { return m.cfg }

// Close releases the manager's handles. It does not change the host.
func (m *Linux) Close() error {
	if m.nft != nil {
		_ = m.nft.CloseLasting()
	}
	if m.nl != nil {
		m.nl.Close()
	}
	if m.nodeNS.IsOpen() {
		return m.nodeNS.Close()
	}
	return nil
}

// detect fills Uplink and NodeAddr from the node namespace.
func (m *Linux) detect() error {
	if m.cfg.Uplink == "" {
		routes, err := m.nl.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if (r.Dst == nil || (r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask))) && r.LinkIndex > 0 {
				l, err := m.nl.LinkByIndex(r.LinkIndex)
				if err != nil {
					return fmt.Errorf("default route interface: %w", err)
				}
				m.cfg.Uplink = l.Attrs().Name
				break
			}
		}
		if m.cfg.Uplink == "" {
			return core.FieldErrorf("uplink", "not configured and the node has no IPv4 default route")
		}
	}
	l, err := m.nl.LinkByName(m.cfg.Uplink)
	if err != nil {
		return core.FieldErrorf("uplink", "interface %q: %v", m.cfg.Uplink, err)
	}
	if strings.HasPrefix(m.cfg.Uplink, m.cfg.VethPrefix) {
		return core.FieldErrorf("veth_prefix", "%q is a prefix of the uplink %q", m.cfg.VethPrefix, m.cfg.Uplink)
	}
	m.uplinkIdx = l.Attrs().Index
	if !m.cfg.NodeAddr.IsValid() {
		addrs, err := m.nl.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", m.cfg.Uplink, err)
		}
		for _, a := range addrs {
			if a.Scope == unix.RT_SCOPE_UNIVERSE && a.Flags&unix.IFA_F_SECONDARY == 0 {
				if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
					m.cfg.NodeAddr = ip
					break
				}
			}
		}
		if !m.cfg.NodeAddr.IsValid() {
			return core.FieldErrorf("node_addr", "not configured and uplink %s has no global IPv4 address", m.cfg.Uplink)
		}
	}
	if m.cfg.Prefix.Contains(m.cfg.NodeAddr) {
		return core.FieldErrorf("prefix", "sliver prefix %s contains the node address %s", m.cfg.Prefix, m.cfg.NodeAddr)
	}
	return nil
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

func (m *Linux) netnsDir() string              { return filepath.Join(m.cfg.StateDir, "netns") }
func (m *Linux) recordDir() string             { return filepath.Join(m.cfg.StateDir, "slivers") }
func (m *Linux) netnsPath(name string) string  { return filepath.Join(m.netnsDir(), name) }
func (m *Linux) recordPath(name string) string { return filepath.Join(m.recordDir(), name+".json") }

// NetNSPath returns where the namespace of a sliver is (or would be)
// persisted.
func (m *Linux) NetNSPath(name string) string { return m.netnsPath(name) }

func (m *Linux) loadRecords() error {
	ents, err := os.ReadDir(m.recordDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || validName(name) != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.recordDir(), e.Name()))
		var r record
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err == nil && (r.Name != name || validXID(r.XID) != nil) {
			err = fmt.Errorf("record names %q xid %d", r.Name, r.XID)
		}
		if err != nil {
			m.log.Warn("ignoring unreadable sliver network record", "file", e.Name(), "err", err)
			continue
		}
		m.slivers[name] = r
	}
	return nil
}

func (m *Linux) saveRecord(r record) error {
	if err := os.MkdirAll(m.recordDir(), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(m.recordPath(r.Name), b, 0o600)
}

// Setup prepares the node: IPv4 forwarding, the nftables table with its
// base chains and node-wide rules, and the HTB tree on the uplink. It is
// idempotent, keeps existing slivers' rules and classes, and is called by
// the first Ensure if the caller did not.
func (m *Linux) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setupLocked()
}

func (m *Linux) setupLocked() error {
	start := time.Now()
	up, err := m.nl.LinkByName(m.cfg.Uplink)
	if err != nil {
		return fmt.Errorf("node setup: uplink %s: %w", m.cfg.Uplink, err)
	}
	m.uplinkIdx = up.Attrs().Index
	if err := inNetNS(m.nodeNS, func() error { return writeSysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return fmt.Errorf("node setup: %w", err)
	}
	// Table and base chains (create is a no-op when they exist).
	m.nft.AddTable(m.table)
	accept := nftables.ChainPolicyAccept
	for _, bc := range baseChains {
		m.nft.AddChain(&nftables.Chain{Name: bc.name, Table: m.table, Type: bc.typ, Hooknum: bc.hook, Priority: bc.priority, Policy: &accept})
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("node setup: nftables table %s: %w", m.cfg.Table, err)
	}
	// Replace the node-wide rules, keep the per-sliver jumps.
	m.jumps = map[int]bool{}
	for _, bc := range baseChains {
		rs, err := m.nft.GetRules(m.table, &nftables.Chain{Name: bc.name, Table: m.table})
		if err != nil {
			return fmt.Errorf("node setup: list chain %s: %w", bc.name, err)
		}
		for _, r := range rs {
			if xid, ok := jumpXID(r); ok {
				m.jumps[xid] = true
				continue
			}
			if err := m.nft.DelRule(r); err != nil {
				return fmt.Errorf("node setup: %w", err)
			}
		}
	}
	for _, r := range nodeRules(&m.cfg) {
		m.nft.AddRule(m.nftRule(r))
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("node setup: nftables rules: %w", err)
	}
	if err := setupHTB(m.nl, m.uplinkIdx, m.cfg.CapKbit); err != nil {
		return fmt.Errorf("node setup: uplink %s: %w", m.cfg.Uplink, err)
	}
	m.setupDone = true
	m.log.Info("node network set up", "uplink", m.cfg.Uplink, "node_addr", m.cfg.NodeAddr, "prefix", m.cfg.Prefix,
		"cap_kbit", m.cfg.CapKbit, "table", m.cfg.Table, "slivers", len(m.jumps), "took", time.Since(start))
	return nil
}

// jumpXID reports the xid a base-chain rule jumps for (from-N or ports-N).
func jumpXID(r *nftables.Rule) (int, bool) {
	for _, e := range r.Exprs {
		v, ok := e.(*expr.Verdict)
		if !ok || v.Kind != expr.VerdictJump {
			continue
		}
		for _, p := range []string{"from-", "ports-"} {
			if s, ok := strings.CutPrefix(v.Chain, p); ok {
				if n, err := strconv.Atoi(s); err == nil {
					return n, true
				}
			}
		}
	}
	return 0, false
}

func (m *Linux) nftRule(r *rule) *nftables.Rule {
	return &nftables.Rule{Table: m.table, Chain: &nftables.Chain{Name: r.chain, Table: m.table}, Exprs: r.exprs, UserData: r.userData()}
}

// Ensure creates or updates a sliver's network (see the package doc).
// It refuses (core.Conflict) a reserved port or xid held by another sliver.
func (m *Linux) Ensure(ctx context.Context, s Sliver) (Attachment, error) {
	if err := ctx.Err(); err != nil {
		return Attachment{}, err
	}
	start := time.Now()
	if err := validName(s.Name); err != nil {
		return Attachment{}, err
	}
	wrap := func(err error) error { return fmt.Errorf("network of sliver %q: %w", s.Name, err) }
	if err := validXID(s.XID); err != nil {
		return Attachment{}, wrap(err)
	}
	if err := ports.List(s.Ports).Validate(); err != nil {
		return Attachment{}, wrap(core.FieldErrorf("ports", "%v", err))
	}
	rateKbit, ceilKbit, err := rates(s, m.cfg.CapKbit)
	if err != nil {
		return Attachment{}, wrap(err)
	}
	_, gw, addr, err := SliverSubnet(m.cfg.Prefix, s.XID)
	if err != nil {
		return Attachment{}, wrap(err)
	}

	if a, b, found := ports.Conflict(s.Ports, m.cfg.NodePorts); found {
		return Attachment{}, wrap(core.Errorf(core.Conflict, "port %s requested by slice %q is used by the node itself (%s)", a, s.Name, b))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.slivers {
		if o.Name == s.Name {
			continue
		}
		if o.XID == s.XID {
			return Attachment{}, wrap(core.Errorf(core.Conflict, "xid %d of slice %q is already used by slice %q", s.XID, s.Name, o.Name))
		}
		if a, b, found := ports.Conflict(s.Ports, o.Ports); found {
			return Attachment{}, wrap(core.Errorf(core.Conflict, "port %s requested by slice %q is reserved by slice %q (%s)", a, s.Name, o.Name, b))
		}
	}
	if !m.setupDone {
		if err := m.setupLocked(); err != nil {
			return Attachment{}, wrap(err)
		}
	}
	if old, ok := m.slivers[s.Name]; ok && old.XID != s.XID {
		if err := m.removeLocked(s.Name, old.XID); err != nil {
			return Attachment{}, wrap(fmt.Errorf("xid changed from %d: %w", old.XID, err))
		}
	}
	// Record first: a crash after this point leaves a record that Remove or
	// the next Ensure cleans up, and the ports stay reserved meanwhile.
	rec := record{Name: s.Name, XID: s.XID, Ports: ports.Sorted(s.Ports), MinRateKbit: s.MinRateKbit, MaxRateKbit: s.MaxRateKbit}
	if err := m.saveRecord(rec); err != nil {
		return Attachment{}, wrap(err)
	}
	m.slivers[s.Name] = rec

	nsPath := m.netnsPath(s.Name)
	if err := m.ensureNetNS(nsPath, s.UIDBase); err != nil {
		return Attachment{}, wrap(err)
	}
	if err := m.ensureLinks(s, nsPath, gw, addr); err != nil {
		return Attachment{}, wrap(err)
	}
	if err := m.ensureRules(s, addr); err != nil {
		return Attachment{}, wrap(err)
	}
	if err := ensureSliverClass(m.nl, m.uplinkIdx, s.XID, rateKbit, ceilKbit); err != nil {
		return Attachment{}, wrap(err)
	}
	m.log.Debug("sliver network ensured", "sliver", s.Name, "xid", s.XID, "addr", addr, "ports", rec.Ports.String(),
		"rate_kbit", rateKbit, "ceil_kbit", ceilKbit, "took", time.Since(start))
	return Attachment{NetNS: nsPath, Addr: addr, Gateway: gw}, nil
}

// ensureNetNS makes path a persisted network namespace. Inside a new one it
// disables IPv6 (slivers are IPv4-only) and lets every group use ICMP echo
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
	if err := inNetNS(ns, sysctls); err != nil {
		_ = removeNetNS(path)
		return err
	}
	return nil
}

func (m *Linux) ensureLinks(s Sliver, nsPath string, gw, addr netip.Addr) error {
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
	return nil
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

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, 32)}
}

// ensureRules replaces the sliver's two chains atomically and adds its
// jumps to the base chains if missing. Nothing else in the table changes.
func (m *Linux) ensureRules(s Sliver, addr netip.Addr) error {
	chains, rs := sliverRules(&m.cfg, s, addr)
	for _, c := range chains {
		ch := m.nft.AddChain(&nftables.Chain{Name: c, Table: m.table})
		m.nft.FlushChain(ch)
	}
	for _, r := range rs {
		if slices.Contains(chains, r.chain) {
			m.nft.AddRule(m.nftRule(r))
		} else if !m.jumps[s.XID] {
			m.nft.InsertRule(m.nftRule(r))
		}
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("nftables rules: %w", err)
	}
	m.jumps[s.XID] = true
	return nil
}

// Remove deletes everything Ensure created for the sliver: its jumps and
// chains, HTB class, veth, namespace mount and record. Idempotent.
func (m *Linux) Remove(ctx context.Context, name string, xid int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validName(name); err != nil {
		return err
	}
	if err := validXID(xid); err != nil {
		return fmt.Errorf("remove network of sliver %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.slivers[name]; ok && old.XID != xid {
		if err := m.removeLocked(name, old.XID); err != nil {
			return err
		}
	}
	return m.removeLocked(name, xid)
}

func (m *Linux) removeLocked(name string, xid int) error {
	wrap := func(err error) error { return fmt.Errorf("remove network of sliver %q (xid %d): %w", name, xid, err) }
	if err := m.removeRules(xid); err != nil {
		return wrap(err)
	}
	if err := removeSliverClass(m.nl, m.uplinkIdx, xid); err != nil {
		return wrap(err)
	}
	if l, err := m.nl.LinkByName(vethName(m.cfg.VethPrefix, xid)); err == nil {
		if err := m.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			return wrap(fmt.Errorf("delete veth: %w", err))
		}
	}
	if err := removeNetNS(m.netnsPath(name)); err != nil {
		return wrap(err)
	}
	if err := os.Remove(m.recordPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return wrap(err)
	}
	delete(m.slivers, name)
	return nil
}

func (m *Linux) removeRules(xid int) error {
	chains, err := m.tableChains()
	if err != nil || chains == nil {
		return err
	}
	for _, bc := range baseChains {
		if !chains[bc.name] {
			continue
		}
		rs, err := m.nft.GetRules(m.table, &nftables.Chain{Name: bc.name, Table: m.table})
		if err != nil {
			return fmt.Errorf("list chain %s: %w", bc.name, err)
		}
		for _, r := range rs {
			if x, ok := jumpXID(r); ok && x == xid {
				if err := m.nft.DelRule(r); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range []string{fromChain(xid), portsChain(xid)} {
		if chains[c] {
			ch := &nftables.Chain{Name: c, Table: m.table}
			m.nft.FlushChain(ch)
			m.nft.DelChain(ch)
		}
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("delete nftables rules: %w", err)
	}
	delete(m.jumps, xid)
	return nil
}

// tableChains returns the chain names of the table, nil if it does not
// exist.
func (m *Linux) tableChains() (map[string]bool, error) {
	cs, err := m.nft.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var out map[string]bool
	for _, c := range cs {
		if c.Table.Name == m.cfg.Table {
			if out == nil {
				out = map[string]bool{}
			}
			out[c.Name] = true
		}
	}
	return out, nil
}

// List returns the names of slivers with any networking on the host:
// persisted namespaces, veths (named by their alias) and records.
func (m *Linux) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for n := range m.slivers {
		seen[n] = true
	}
	ents, err := os.ReadDir(m.netnsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if validName(e.Name()) == nil {
			seen[e.Name()] = true
		}
	}
	links, err := m.ourVeths()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if a := l.Attrs().Alias; validName(a) == nil {
			seen[a] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// ourVeths lists the node's veths named prefix+number.
func (m *Linux) ourVeths() ([]netlink.Link, error) {
	links, err := m.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []netlink.Link
	for _, l := range links {
		rest, ok := strings.CutPrefix(l.Attrs().Name, m.cfg.VethPrefix)
		if _, err := strconv.Atoi(rest); ok && err == nil && l.Type() == "veth" {
			out = append(out, l)
		}
	}
	return out, nil
}

// Teardown removes everything the manager created on the node: the
// nftables table, the HTB root qdisc, every sliver veth, namespace mount
// and record. Slivers still running lose their network. IPv4 forwarding
// is left on.
func (m *Linux) Teardown(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	if chains, err := m.tableChains(); err != nil {
		errs = append(errs, err)
	} else if chains != nil {
		m.nft.DelTable(m.table)
		if err := m.flush(); err != nil {
			errs = append(errs, fmt.Errorf("delete table %s: %w", m.cfg.Table, err))
		}
	}
	if err := removeHTB(m.nl, m.uplinkIdx); err != nil {
		errs = append(errs, err)
	}
	links, err := m.ourVeths()
	errs = append(errs, err)
	for _, l := range links {
		if err := m.nl.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
		}
	}
	ents, err := os.ReadDir(m.netnsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		errs = append(errs, removeNetNS(filepath.Join(m.netnsDir(), e.Name())))
	}
	errs = append(errs, os.RemoveAll(m.recordDir()))
	if err := os.Remove(m.netnsDir()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	m.slivers = map[string]record{}
	m.jumps = map[int]bool{}
	m.setupDone = false
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network teardown: %w", err)
	}
	m.log.Info("node network torn down", "table", m.cfg.Table, "uplink", m.cfg.Uplink)
	return nil
}

// flush sends the queued nftables batch. After a failure the connection
// is replaced, because the library keeps serialization errors and a
// failed batch may leave unread acknowledgements on the socket.
func (m *Linux) flush() error {
	err := m.nft.Flush()
	if err != nil {
		_ = m.nft.CloseLasting()
		if c, nerr := nftables.New(nftables.WithNetNSFd(int(m.nodeNS)), nftables.AsLasting()); nerr == nil {
			m.nft = c
		} else {
			m.log.Error("reopen nftables connection", "err", nerr)
		}
	}
	return err
}

// LinkCounters are one link's traffic counters in the node's namespace.
type LinkCounters struct {
	Name      string
	Alias     string // the sliver name on sliver veths
	RxBytes   uint64
	TxBytes   uint64
	RxPackets uint64
	TxPackets uint64
	RxDrops   uint64
	TxDrops   uint64
}

// Counters returns the counters of every link in the node's namespace
// (netlink; sliver veths carry their sliver's name as Alias). The sensors
// read them: a sliver's traffic is its veth's, seen from the node side.
// Safe to call concurrently with other operations (the netlink socket is
// locked per request).
func (m *Linux) Counters() ([]LinkCounters, error) {
	links, err := m.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]LinkCounters, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		c := LinkCounters{Name: a.Name, Alias: a.Alias}
		if s := a.Statistics; s != nil {
			c.RxBytes, c.TxBytes, c.RxPackets, c.TxPackets, c.RxDrops, c.TxDrops = s.RxBytes, s.TxBytes, s.RxPackets, s.TxPackets, s.RxDropped, s.TxDropped
		}
		out = append(out, c)
	}
	return out, nil
}
