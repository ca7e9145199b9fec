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
	"sync/atomic"
	"time"

	"github.com/google/nftables"
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
//	chain from-X              anti-spoofing (IPv6 drop without Prefix6; RA, redirect, foreign NA dropped with it), mark/ct mark = X, priority = 1:(0x1000|X)
//	chain ports-X             DNAT of N's reserved ports on the node address
//	chain to-X                IPv6 only: N's reserved ports and echo on its own address
//	5 jump rules              forward/input -> from-X (by iifname), forward -> to-X (by oifname),
//	                          prerouting/output -> ports-X
//	route Addr6/128 via the veth, fe80::1 on it, proxy NDP entry for Addr6 on the uplink
//	                          (IPv6 only; see Config.Prefix6)
//	HTB class 1:(0x1000|X)    on the uplink, rate = min, ceil = max <= node cap
//
// Node-wide (Setup): net.ipv4.ip_forward=1 (and with Prefix6
// net.ipv6.conf.all.forwarding=1, accept_ra=2 on the uplink if it was 1), the inet table with its five
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

	prefix6 atomic.Pointer[netip.Prefix] // cfg.Prefix6, for readers without mu

	mu        sync.Mutex
	uplinkIdx int
	setupDone bool
	jumps     map[string]bool   // jump rules in the base chains, by jumpKey
	slivers   map[string]record // last successful Ensure per sliver (persisted)
	ceilings  map[int]int64     // xid -> ceiling override (bwmon), kbit/s
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
	m := &Linux{cfg: cfg, log: cfg.Logger.With("subsystem", "netcfg"), jumps: map[string]bool{}, slivers: map[string]record{}, ceilings: map[int]int64{}}
	m.prefix6.Store(&cfg.Prefix6)
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
func (m *Linux) Config() Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

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
	if !m.cfg.NodeAddr6.IsValid() {
		addrs, err := m.nl.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("IPv6 addresses of %s: %w", m.cfg.Uplink, err)
		}
		const unusable = unix.IFA_F_TEMPORARY | unix.IFA_F_DEPRECATED | unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED
		for _, a := range addrs {
			if a.Scope == unix.RT_SCOPE_UNIVERSE && a.Flags&unusable == 0 {
				if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Is6() && !ip.Is4In6() {
					m.cfg.NodeAddr6 = ip
					break
				}
			}
		}
	}
	return nil
}

// SetPrefix6 changes the node's IPv6 prefix for slivers (Config.Prefix6;
// the zero Prefix: none) while the manager runs. The node-wide rules
// follow at the next Ensure; each sliver gets its new address (or loses
// IPv6) at its next Ensure, which removes its former address, route and
// proxy entry: the node manager re-ensures every sliver, since the
// prefix is part of Sliver.
func (m *Linux) SetPrefix6(p netip.Prefix) error {
	if p.IsValid() {
		if err := validPrefix6(p); err != nil {
			return err
		}
		p = p.Masked()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p == m.cfg.Prefix6 {
		return nil
	}
	m.log.Info("sliver IPv6 prefix changed", "from", m.cfg.Prefix6, "to", p)
	m.cfg.Prefix6 = p
	m.prefix6.Store(&p)
	m.setupDone = false
	return nil
}

// Prefix6 returns the node's IPv6 prefix for slivers now (the zero
// Prefix: none). Unlike Config it never waits for a running Ensure.
func (m *Linux) Prefix6() netip.Prefix { return *m.prefix6.Load() }

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
	if s.Prefix6.IsValid() && s.Prefix6.Masked() != m.cfg.Prefix6 {
		return Attachment{}, wrap(core.Errorf(core.Conflict, "configuration made for IPv6 prefix %s, but the node's is %s (SetPrefix6 first)", s.Prefix6, m.cfg.Prefix6))
	}
	var addr6 netip.Addr
	if m.cfg.Prefix6.IsValid() {
		if addr6, err = SliverAddr6(m.cfg.Prefix6, s.XID); err != nil {
			return Attachment{}, wrap(err)
		}
	}
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
	if err := m.ensureLinks(s, nsPath, gw, addr, addr6); err != nil {
		return Attachment{}, wrap(err)
	}
	if err := m.ensureRules(s, addr, addr6); err != nil {
		return Attachment{}, wrap(err)
	}
	if ov, ok := m.ceilings[s.XID]; ok && ov < ceilKbit {
		ceilKbit = ov
		rateKbit = min(rateKbit, ceilKbit)
	}
	if err := ensureSliverClass(m.nl, m.uplinkIdx, s.XID, rateKbit, ceilKbit); err != nil {
		return Attachment{}, wrap(err)
	}
	m.log.Debug("sliver network ensured", "sliver", s.Name, "xid", s.XID, "addr", addr, "addr6", addr6, "ports", rec.Ports.String(),
		"rate_kbit", rateKbit, "ceil_kbit", ceilKbit, "took", time.Since(start))
	return Attachment{NetNS: nsPath, Addr: addr, Gateway: gw, Addr6: addr6}, nil
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
	if err := m.removeProxies(xid); err != nil {
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
	errs = append(errs, m.removeProxies(0))
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
	m.jumps = map[string]bool{}
	m.setupDone = false
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network teardown: %w", err)
	}
	m.log.Info("node network torn down", "table", m.cfg.Table, "uplink", m.cfg.Uplink)
	return nil
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

// SetCeiling lowers the HTB ceiling of the sliver with xid to kbit (bwmon's
// daily budget); 0 restores its configured ceiling. The override holds
// across Ensure until lifted; it is not persisted (bwmon sets it again
// after a restart). A sliver without networking is an error.
func (m *Linux) SetCeiling(xid int, kbit int64) error {
	if kbit < 0 {
		return core.FieldErrorf("ceiling", "%d kbit/s is negative", kbit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var rec *record
	for _, r := range m.slivers {
		if r.XID == xid {
			rec = &r
			break
		}
	}
	if rec == nil {
		delete(m.ceilings, xid)
		return core.Errorf(core.NotFound, "no sliver network with xid %d", xid)
	}
	rateKbit, ceilKbit, err := rates(Sliver{MinRateKbit: rec.MinRateKbit, MaxRateKbit: rec.MaxRateKbit}, m.cfg.CapKbit)
	if err != nil {
		return err
	}
	if kbit == 0 {
		delete(m.ceilings, xid)
	} else {
		kbit = max(kbit, MinRateFloorKbit)
		m.ceilings[xid] = kbit
		ceilKbit = min(ceilKbit, kbit)
		rateKbit = min(rateKbit, ceilKbit)
	}
	return ensureSliverClass(m.nl, m.uplinkIdx, xid, rateKbit, ceilKbit)
}

// ClassBytes returns the bytes sent through each sliver's HTB class, by
// xid (bwmon's counters, as the original's). They restart from zero when
// a class is created again.
func (m *Linux) ClassBytes() (map[int]uint64, error) {
	m.mu.Lock()
	uplink := m.uplinkIdx // the first Ensure's setup may be writing it
	m.mu.Unlock()
	classes, err := m.nl.ClassList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: uplink}}, htbHandle(htbNodeMinor))
	if err != nil {
		return nil, fmt.Errorf("list htb classes: %w", err)
	}
	out := map[int]uint64{}
	for _, c := range classes {
		a := c.Attrs()
		_, minor := netlink.MajorMinor(a.Handle)
		if minor&0xf000 != 0x1000 || a.Parent != htbHandle(htbNodeMinor) || a.Statistics == nil || a.Statistics.Basic == nil {
			continue
		}
		out[int(minor&0x0fff)] = a.Statistics.Basic.Bytes
	}
	return out, nil
}

// ClassCeilings returns the live HTB rate and ceiling (kbit/s) of each
// sliver's class, by xid: what the kernel enforces, for tests and
// diagnostics.
func (m *Linux) ClassCeilings() (map[int][2]int64, error) {
	m.mu.Lock()
	uplink := m.uplinkIdx
	m.mu.Unlock()
	classes, err := m.nl.ClassList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: uplink}}, htbHandle(htbNodeMinor))
	if err != nil {
		return nil, fmt.Errorf("list htb classes: %w", err)
	}
	out := map[int][2]int64{}
	for _, c := range classes {
		h, ok := c.(*netlink.HtbClass)
		if !ok {
			continue
		}
		a := h.Attrs()
		_, minor := netlink.MajorMinor(a.Handle)
		if minor&0xf000 != 0x1000 || a.Parent != htbHandle(htbNodeMinor) {
			continue
		}
		out[int(minor&0x0fff)] = [2]int64{int64(h.Rate * 8 / 1000), int64(h.Ceil * 8 / 1000)}
	}
	return out, nil
}
