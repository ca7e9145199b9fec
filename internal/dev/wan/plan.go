package wan

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// NamePrefix starts the name of every kernel object this package creates in
// the root namespace (network namespaces, the host veth), so leftovers of a
// killed run can be found: "pldev-" for the default instance and
// "pldev<id>-" for instance id.
const NamePrefix = "pldev"

// Site is a place with routers and nodes.
type Site struct {
	Name string // short name, e.g. "princeton"
	Location
}

// Config describes an emulated WAN.
type Config struct {
	// ID distinguishes concurrent instances (tests): 0-4 characters [a-z0-9].
	ID string
	// Prefix is the /16 the WAN's addresses come from (default 10.99.0.0/16).
	Prefix netip.Prefix
	// Host is where the host (the root namespace, where PLC runs) is.
	Host Location
	// Sites lists the available sites; node i (1-based) is placed at site
	// (i-1) mod len(Sites). Only sites with nodes are built.
	Sites []Site
	// Nodes is the number of emulated nodes.
	Nodes int
	// Overhead is added to every one-way delay between different places.
	Overhead time.Duration
	// Loss is the probability (0..1) that a packet crossing an uplink is
	// dropped.
	Loss float64
	// RateKbit limits each site's uplink and downlink (0 = unlimited).
	RateKbit uint64
}

// DefaultPrefix is the WAN address block. It is disjoint from the
// 10.42.0.0/16 block slivers use inside each node.
var DefaultPrefix = netip.MustParsePrefix("10.99.0.0/16")

// Plan is the resolved layout of a WAN: names and addresses of everything.
type Plan struct {
	Config
	Prefix   string     // namespace/interface name prefix, e.g. "pldev-"
	HostLink string     // host side of the host-core veth (root namespace)
	HostAddr netip.Addr // the host's address on the WAN (x.y.0.1)
	CoreAddr netip.Addr // the core router's address on the host link (x.y.0.2)
	CoreNS   string
	// Prefix6 is the WAN's unique-local IPv6 block, a /32 derived from
	// the IPv4 /16 (10.99.0.0/16 gives fd0a:6300::/32), so concurrent
	// instances differ. Site i holds <Prefix6>:i::/48.
	Prefix6   netip.Prefix
	HostAddr6 netip.Addr // <Prefix6>::1 on the host link
	CoreAddr6 netip.Addr // <Prefix6>::2
	SitePlans []SitePlan
	NodePlans []NodePlan
}

// SitePlan is one instantiated site.
type SitePlan struct {
	Index    int // 1-based; the third octet of its subnet
	Site     Site
	NS       string       // router namespace
	Subnet   netip.Prefix // x.y.<index>.0/24
	Gateway  netip.Addr   // x.y.<index>.1, the router's bridge address
	CoreSide netip.Addr   // core end of the uplink, x.y.254.4i+1
	SiteSide netip.Addr   // site end of the uplink, x.y.254.4i+2
	CoreTun  string       // uplink device name in the core namespace
	// Prefix6 is the site's unique-local /48 (<WAN Prefix6>:<index>::/48):
	// its LAN is the first /64 (Subnet6, router Gateway6 = ::1 of it), and
	// node n's slivers get the /64 number n.
	Prefix6  netip.Prefix
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
}

// NodePlan is one emulated node.
type NodePlan struct {
	Index   int    // 1-based
	Name    string // "n<index>"
	Site    int    // index into SitePlans
	NS      string // the node's namespace
	Addr    netip.Addr
	Gateway netip.Addr
	Veth    string // the node's port on the site bridge (in the site namespace)
	// Addr6 is the node's IPv6 address on its site's LAN (::<10+k> as
	// the IPv4 address), Gateway6 the site router's.
	Addr6    netip.Addr
	Gateway6 netip.Addr
	// SliverPrefix6 is the /64 of the site's /48 that the site routes to
	// the node for its slivers (pl node --ipv6-prefix).
	SliverPrefix6 netip.Prefix
}

// Interface names inside namespaces (namespaced, so fixed).
const (
	CoreHostIf = "wan"  // core side of the host veth
	SiteUpIf   = "up"   // site side of the uplink TUN
	SiteBridge = "br0"  // site LAN bridge
	NodeIf     = "eth0" // the node's uplink
)

var idRE = regexp.MustCompile(`^[a-z0-9]{0,4}$`)

// MaxSites is the number of sites a /16 can hold in this layout.
const MaxSites = 63

// NewPlan validates c and lays out the WAN.
func NewPlan(c Config) (*Plan, error) {
	if !idRE.MatchString(c.ID) {
		return nil, fmt.Errorf("wan: id %q: want 0-4 characters a-z0-9", c.ID)
	}
	if !c.Prefix.IsValid() {
		c.Prefix = DefaultPrefix
	}
	if !c.Prefix.Addr().Is4() || c.Prefix.Bits() != 16 || c.Prefix.Masked() != c.Prefix {
		return nil, fmt.Errorf("wan: prefix %v: want an IPv4 /16 such as 10.99.0.0/16", c.Prefix)
	}
	if c.Nodes < 1 || c.Nodes > 240*MaxSites {
		return nil, fmt.Errorf("wan: nodes %d: want 1..%d", c.Nodes, 240*MaxSites)
	}
	if len(c.Sites) == 0 {
		return nil, fmt.Errorf("wan: no sites")
	}
	if c.Loss < 0 || c.Loss >= 1 {
		return nil, fmt.Errorf("wan: loss %v: want 0 <= loss < 1", c.Loss)
	}
	nsites := min(len(c.Sites), c.Nodes, MaxSites)
	if (c.Nodes+nsites-1)/nsites > 240 {
		return nil, fmt.Errorf("wan: %d nodes over %d sites: more than 240 nodes per site", c.Nodes, nsites)
	}
	b := c.Prefix.Addr().As4()
	addr := func(x, y byte) netip.Addr { return netip.AddrFrom4([4]byte{b[0], b[1], x, y}) }
	p := &Plan{Config: c}
	p.Prefix = NamePrefix + c.ID + "-"
	p.HostLink = p.Prefix + "wan"
	p.HostAddr = addr(0, 1)
	p.CoreAddr = addr(0, 2)
	p.CoreNS = p.Prefix + "core"
	p.Prefix6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 1: b[0], 2: b[1]}), 32)
	p.HostAddr6, p.CoreAddr6 = addr6(p.Prefix6, 0, 0, 1), addr6(p.Prefix6, 0, 0, 2)
	for i := 1; i <= nsites; i++ {
		p.SitePlans = append(p.SitePlans, SitePlan{
			Index:    i,
			Site:     c.Sites[i-1],
			NS:       fmt.Sprintf("%ss%d", p.Prefix, i),
			Subnet:   netip.PrefixFrom(addr(byte(i), 0), 24),
			Gateway:  addr(byte(i), 1),
			CoreSide: addr(254, byte(4*i+1)),
			SiteSide: addr(254, byte(4*i+2)),
			CoreTun:  fmt.Sprintf("s%d", i),
			Prefix6:  netip.PrefixFrom(addr6(p.Prefix6, i, 0, 0), 48),
			Subnet6:  netip.PrefixFrom(addr6(p.Prefix6, i, 0, 0), 64),
			Gateway6: addr6(p.Prefix6, i, 0, 1),
		})
	}
	perSite := make([]int, nsites)
	for n := 1; n <= c.Nodes; n++ {
		s := (n - 1) % nsites
		perSite[s]++
		sp := p.SitePlans[s]
		p.NodePlans = append(p.NodePlans, NodePlan{
			Index:         n,
			Name:          fmt.Sprintf("n%d", n),
			Site:          s,
			NS:            fmt.Sprintf("%sn%d", p.Prefix, n),
			Addr:          addr(byte(sp.Index), byte(10+perSite[s])),
			Gateway:       sp.Gateway,
			Veth:          fmt.Sprintf("n%d", n),
			Addr6:         addr6(p.Prefix6, sp.Index, 0, uint16(10+perSite[s])),
			Gateway6:      sp.Gateway6,
			SliverPrefix6: netip.PrefixFrom(addr6(p.Prefix6, sp.Index, n, 0), 64),
		})
	}
	return p, nil
}

// addr6 is <prefix6>:site:subnet::host.
func addr6(prefix6 netip.Prefix, site, subnet int, host uint16) netip.Addr {
	a := prefix6.Addr().As16()
	a[4], a[5] = byte(site>>8), byte(site)
	a[6], a[7] = byte(subnet>>8), byte(subnet)
	a[14], a[15] = byte(host>>8), byte(host)
	return netip.AddrFrom16(a)
}

// Locate6 returns the place of an IPv6 address: a site by the second
// group after the WAN's /32, the host by its address.
func (p *Plan) Locate6(a [16]byte) Place {
	b := p.Prefix6.Addr().As16()
	if [4]byte(a[:4]) != [4]byte(b[:4]) {
		return PlaceCore
	}
	site := int(a[4])<<8 | int(a[5])
	switch {
	case netip.AddrFrom16(a) == p.HostAddr6:
		return PlaceHost
	case site >= 1 && site <= len(p.SitePlans):
		return Place(site)
	}
	return PlaceCore
}

// Place identifies where an address is: PlaceCore (the core router, which
// adds no delay), PlaceHost, or a site index >= 1.
type Place int

// Special places.
const (
	PlaceCore Place = -1
	PlaceHost Place = 0
)

// Locate returns the place of an IPv4 address given as 4 bytes.
func (p *Plan) Locate(a [4]byte) Place {
	b := p.Config.Prefix.Addr().As4()
	if a[0] != b[0] || a[1] != b[1] {
		return PlaceCore
	}
	switch {
	case a[2] == 0 && a[3] == 1:
		return PlaceHost
	case a[2] >= 1 && int(a[2]) <= len(p.SitePlans):
		return Place(a[2])
	case a[2] == 254 && a[3]%4 == 2 && int(a[3]/4) >= 1 && int(a[3]/4) <= len(p.SitePlans):
		return Place(a[3] / 4)
	}
	return PlaceCore
}

func (p *Plan) location(pl Place) (Location, bool) {
	switch {
	case pl == PlaceHost:
		return p.Host, true
	case pl >= 1 && int(pl) <= len(p.SitePlans):
		return p.SitePlans[pl-1].Site.Location, true
	}
	return Location{}, false
}

// Delay is the one-way delay between two places: zero within a place and
// to or from the core router.
func (p *Plan) Delay(a, b Place) time.Duration {
	if a == b {
		return 0
	}
	la, ok1 := p.location(a)
	lb, ok2 := p.location(b)
	if !ok1 || !ok2 {
		return 0
	}
	return OneWayDelay(la, lb, p.Overhead)
}

// Node returns the node with the given 1-based index.
func (p *Plan) Node(i int) NodePlan { return p.NodePlans[i-1] }

// SiteOf returns the site of a node.
func (p *Plan) SiteOf(n NodePlan) SitePlan { return p.SitePlans[n.Site] }
