// Package vlinks is the one grammar of a slice's virtual topology: the
// value of the slice tag "vlinks" (VINI: point-to-point links between the
// slice's slivers on different nodes, and LANs of two or more of them,
// each with a capacity, a delay and a loss rate). PLC checks values with it when the tag is written (through
// core/tags) and resolves the topology into each node's link ends
// (Topology.Ends, core.VLink); the node manager checks the ends it is
// given with CheckEnd. It depends on package core only.
//
// Syntax: statements separated by ';' or new lines; empty statements are
// ignored. Inside a statement, fields are separated by white space.
//
//	prefix 10.200.0.0/24
//	<name> <host-a> <host-b> [rate=<rate>] [delay=<duration>] [loss=<percent>]
//	lan <name> <host> <host> [<host>...] [rate=<rate>] [delay=<duration>] [loss=<percent>]
//
// For example:
//
//	prefix 10.200.0.0/24; ab n1.example.org n2.example.org rate=20mbit delay=10ms; bc n2.example.org n3.example.org loss=0.5%
//
// The prefix (an RFC 1918 or RFC 6598 IPv4 prefix, /8 to /30) is the
// slice's private range: link i (0-based, in the order written) gets the
// i-th /30 of it, host-a's end .1 and host-b's end .2. LANs take blocks
// from the top of the range down (LAN j, 0-based in the order written,
// below LAN j-1): each the smallest power of two holding its members plus
// the network and broadcast addresses (at least 4), aligned to its size;
// member m (0-based, in the order written) gets the block's address
// m+1. So appending a link or a LAN never moves another's addresses. The
// name is the interface's name inside the slivers (links and LANs share
// the names; "lan" and "prefix" are keywords). rate is an integer with unit kbit,
// mbit or gbit (a bare integer is kbit/s), MinRateKbit to MaxRateKbit,
// default DefaultRateKbit; delay is a Go duration up to MaxDelay (one way);
// loss is a percentage with at most four decimals. On a LAN, rate is what
// each member may send into it (a switch port's capacity; a frame to
// several members counts once), delay and loss apply to every frame a
// member sends. Host names are the
// nodes' names at PLC (case-insensitive).
package vlinks

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Tag is the name of the slice tag holding a topology.
const Tag = "vlinks"

// Limits of a topology.
const (
	MaxLinks        = 63        // links and LANs per slice (the VNI layout gives each slice 64 numbers)
	MinLANMembers   = 2         // hosts of one LAN
	MaxLANMembers   = 254       // hosts of one LAN (a /24 block)
	MaxValue        = 16 << 10  // bytes of one tag value
	MinRateKbit     = 8         // kbit/s
	MaxRateKbit     = 1_000_000 // 1 Gbit/s
	DefaultRateKbit = 10_000    // 10 Mbit/s
	MaxDelay        = 10 * time.Second
	// MaxSliceID is the largest slice id that can have links: VNIs are
	// 24-bit and each slice owns 64 of them.
	MaxSliceID = (1<<24)/64 - 1
)

// Link is one declared link.
type Link struct {
	Name     string
	A, B     string // host names, lower case
	RateKbit int64
	Delay    time.Duration
	LossPPM  int64 // parts per million
}

// LAN is one declared LAN: one interface in each member's sliver, all on
// one Ethernet segment.
type LAN struct {
	Name     string
	Members  []string // host names, lower case, in the order written
	RateKbit int64    // what each member may send into the LAN
	Delay    time.Duration
	LossPPM  int64 // parts per million
}

// Topology is a parsed vlinks value.
type Topology struct {
	Prefix netip.Prefix // invalid when there are no links and no LANs
	Links  []Link
	LANs   []LAN
}

var (
	linkName = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)
	hostName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	private  = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
	}
)

// reserved link names: the sliver's own interfaces.
// reserved names: the sliver's own interfaces, and the grammar's keywords.
var reserved = map[string]bool{"lo": true, "eth0": true, lanWord: true, "prefix": true}

const lanWord = "lan"

func errf(format string, args ...any) error { return core.FieldErrorf(Tag, format, args...) }

// Parse parses and checks one vlinks value. The error, an Invalid
// *core.Error on field "vlinks", names the statement and what is wrong.
func Parse(value string) (Topology, error) {
	var t Topology
	if len(value) > MaxValue {
		return t, errf("value is %d bytes, more than the limit of %d", len(value), MaxValue)
	}
	stmts := strings.FieldsFunc(value, func(r rune) bool { return r == ';' || r == '\n' })
	byName := map[string]int{}
	byPair := map[[2]string]int{}
	for _, stmt := range stmts {
		f := strings.Fields(stmt)
		if len(f) == 0 {
			continue
		}
		if f[0] == "prefix" {
			if t.Prefix.IsValid() {
				return t, errf("%q: a second prefix (the first is %s)", stmt, t.Prefix)
			}
			if len(f) != 2 {
				return t, errf("%q: want \"prefix <IPv4 prefix>\"", stmt)
			}
			p, err := parsePrefix(f[1])
			if err != nil {
				return t, err
			}
			t.Prefix = p
			continue
		}
		if f[0] == lanWord {
			n, err := parseLAN(stmt, f)
			if err != nil {
				return t, err
			}
			if _, ok := byName[n.Name]; ok {
				return t, errf("LAN %q: the name is declared twice", n.Name)
			}
			byName[n.Name] = -1
			t.LANs = append(t.LANs, n)
			if len(t.Links)+len(t.LANs) > MaxLinks {
				return t, errf("more than %d links and LANs", MaxLinks)
			}
			continue
		}
		l, err := parseLink(stmt, f)
		if err != nil {
			return t, err
		}
		if i, ok := byName[l.Name]; ok && i < 0 {
			return t, errf("link %q: the name is declared twice", l.Name)
		} else if ok {
			return t, errf("link %q is declared twice (links %d and %d)", l.Name, i+1, len(t.Links)+1)
		}
		pair := [2]string{min(l.A, l.B), max(l.A, l.B)}
		if i, ok := byPair[pair]; ok {
			return t, errf("link %q duplicates link %q between %s and %s", l.Name, t.Links[i].Name, l.A, l.B)
		}
		byName[l.Name], byPair[pair] = len(t.Links), len(t.Links)
		t.Links = append(t.Links, l)
		if len(t.Links) > MaxLinks {
			return t, errf("more than %d links", MaxLinks)
		}
		if len(t.Links)+len(t.LANs) > MaxLinks {
			return t, errf("more than %d links and LANs", MaxLinks)
		}
	}
	if len(t.Links)+len(t.LANs) > 0 && !t.Prefix.IsValid() {
		return t, errf("links need a private range: add \"prefix <IPv4 prefix>\", e.g. prefix 10.200.0.0/24")
	}
	if n := len(t.Links); n > 0 && n > 1<<(30-t.Prefix.Bits()) {
		return t, errf("prefix %s holds %d links (one /30 each), not %d", t.Prefix, 1<<(30-t.Prefix.Bits()), n)
	}
	if len(t.LANs) > 0 {
		low, ok := t.lanBlocks()
		if !ok || low[len(low)-1] < 4*uint32(len(t.Links)) {
			return t, errf("prefix %s is too small for %d links (one /30 each, from the bottom) and LANs %s (from the top)", t.Prefix, len(t.Links), t.lanSizes())
		}
	}
	return t, nil
}

// blockSize is the size of a LAN block for n members: the smallest power
// of two holding them and the network and broadcast addresses, at least 4.
func blockSize(n int) uint32 {
	b := uint32(4)
	for b < uint32(n)+2 {
		b <<= 1
	}
	return b
}

// lanBlocks returns the offset of each LAN's block from the prefix's first
// address, allocated from the top of the prefix down, each aligned to its
// size; ok is false when they do not fit.
func (t Topology) lanBlocks() (offsets []uint32, ok bool) {
	if !t.Prefix.IsValid() {
		return nil, false
	}
	cursor := uint64(1) << (32 - t.Prefix.Bits())
	for _, n := range t.LANs {
		b := uint64(blockSize(len(n.Members)))
		if cursor < b {
			return offsets, false
		}
		cursor = (cursor - b) &^ (b - 1)
		offsets = append(offsets, uint32(cursor))
	}
	return offsets, true
}

func (t Topology) lanSizes() string {
	var s []string
	for _, n := range t.LANs {
		s = append(s, fmt.Sprintf("%s (%d members: /%d)", n.Name, len(n.Members), 32-bitsOf(blockSize(len(n.Members)))))
	}
	return strings.Join(s, ", ")
}

// bitsOf is log2 of a power of two.
func bitsOf(b uint32) int {
	n := 0
	for b > 1 {
		b >>= 1
		n++
	}
	return n
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return p, errf("prefix %q is not an IPv4 prefix (a.b.c.d/n)", s)
	}
	if p.Masked() != p {
		return p, errf("prefix %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	if p.Bits() < 8 || p.Bits() > 30 {
		return p, errf("prefix %s: length must be /8 to /30", p)
	}
	for _, q := range private {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return p, nil
		}
	}
	return p, errf("prefix %s is not a private range (within 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10)", p)
}

// parseLAN reads "lan <name> <host> <host> [<host>...] [key=value...]".
func parseLAN(stmt string, f []string) (LAN, error) {
	n := LAN{RateKbit: DefaultRateKbit}
	if len(f) < 2 {
		return n, errf("%q: want \"lan <name> <host> <host> [<host>...] [rate=..] [delay=..] [loss=..]\"", stmt)
	}
	n.Name = f[1]
	if !linkName.MatchString(n.Name) || reserved[n.Name] {
		return n, errf("LAN name %q: want 1-15 of [a-z0-9] starting with a letter, not lo, eth0, lan or prefix (it names an interface)", n.Name)
	}
	i := 2
	seen := map[string]bool{}
	for ; i < len(f) && !strings.Contains(f[i], "="); i++ {
		h := strings.ToLower(f[i])
		if len(h) > 253 || !hostName.MatchString(h) {
			return n, errf("LAN %s: %q is not a host name", n.Name, f[i])
		}
		if seen[h] {
			return n, errf("LAN %s: %s is a member twice", n.Name, h)
		}
		seen[h] = true
		n.Members = append(n.Members, h)
		if len(n.Members) > MaxLANMembers {
			return n, errf("LAN %s: more than %d members", n.Name, MaxLANMembers)
		}
	}
	if len(n.Members) < MinLANMembers {
		return n, errf("LAN %s: %d members, want at least %d nodes", n.Name, len(n.Members), MinLANMembers)
	}
	var err error
	n.RateKbit, n.Delay, n.LossPPM, err = parseProps(f[i:], n.RateKbit)
	if err != nil {
		return n, errf("LAN %s: %v", n.Name, err)
	}
	return n, nil
}

// parseProps reads a statement's key=value properties.
func parseProps(kvs []string, rate int64) (int64, time.Duration, int64, error) {
	var delay time.Duration
	var loss int64
	seen := map[string]bool{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return 0, 0, 0, fmt.Errorf("%q is not key=value", kv)
		}
		if seen[k] {
			return 0, 0, 0, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "rate":
			rate, err = parseRate(v)
		case "delay":
			delay, err = parseDelay(v)
		case "loss":
			loss, err = parseLoss(v)
		default:
			return 0, 0, 0, fmt.Errorf("unknown property %q (want rate, delay or loss)", k)
		}
		if err != nil {
			return 0, 0, 0, err
		}
	}
	return rate, delay, loss, nil
}

func parseLink(stmt string, f []string) (Link, error) {
	if len(f) < 3 {
		return Link{}, errf("%q: want \"<name> <host-a> <host-b> [rate=..] [delay=..] [loss=..]\"", stmt)
	}
	l := Link{Name: f[0], A: strings.ToLower(f[1]), B: strings.ToLower(f[2]), RateKbit: DefaultRateKbit}
	if !linkName.MatchString(l.Name) || reserved[l.Name] {
		return l, errf("link name %q: want 1-15 of [a-z0-9] starting with a letter, not lo, eth0, lan or prefix (it names an interface)", l.Name)
	}
	for _, h := range []string{l.A, l.B} {
		if len(h) > 253 || !hostName.MatchString(h) {
			return l, errf("link %s: %q is not a host name", l.Name, h)
		}
	}
	if l.A == l.B {
		return l, errf("link %s: both ends are on %s (a link joins two nodes)", l.Name, l.A)
	}
	var err error
	if l.RateKbit, l.Delay, l.LossPPM, err = parseProps(f[3:], l.RateKbit); err != nil {
		return l, errf("link %s: %v", l.Name, err)
	}
	return l, nil
}

func parseRate(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kbit", 1}, {"mbit", 1000}, {"gbit", 1_000_000}} {
		if n, ok := strings.CutSuffix(strings.ToLower(v), u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(num, "+") {
		return 0, fmt.Errorf("rate %q: want a whole number with unit kbit, mbit or gbit", v)
	}
	if n > MaxRateKbit/mult+1 || n*mult < MinRateKbit || n*mult > MaxRateKbit {
		return 0, fmt.Errorf("rate %s is impossible: want %d kbit/s to %d kbit/s", v, int64(MinRateKbit), int64(MaxRateKbit))
	}
	return n * mult, nil
}

func parseDelay(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("delay %q is not a duration (e.g. 20ms)", v)
	}
	if d < 0 || d > MaxDelay {
		return 0, fmt.Errorf("delay %s is out of range 0..%s", v, MaxDelay)
	}
	if d%time.Microsecond != 0 {
		return 0, fmt.Errorf("delay %s is finer than a microsecond", v)
	}
	return d, nil
}

// parseLoss reads "0.5%" as 5000 parts per million.
func parseLoss(v string) (int64, error) {
	num, ok := strings.CutSuffix(v, "%")
	bad := fmt.Errorf("loss %q: want a percentage such as 0.5%% (at most four decimals)", v)
	if !ok || num == "" {
		return 0, bad
	}
	whole, frac, _ := strings.Cut(num, ".")
	if len(frac) > 4 || whole == "" && frac == "" {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	if len(whole) > 3 {
		return 0, fmt.Errorf("loss %s is above 100%%", v)
	}
	w, _ := strconv.ParseInt("0"+whole, 10, 64)
	f, _ := strconv.ParseInt((frac + "0000")[:4], 10, 64)
	ppm := w*10_000 + f // 1% = 10000 ppm; the fourth decimal is 1 ppm
	if ppm > 1_000_000 {
		return 0, fmt.Errorf("loss %s is above 100%%", v)
	}
	return ppm, nil
}

// Addrs returns the two ends' addresses of link i: a's and b's, with the
// /30's length.
func (t Topology) Addrs(i int) (a, b netip.Prefix) {
	base := t.Prefix.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	n += uint32(i) * 4
	at := func(k uint32) netip.Prefix {
		v := n + k
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 30)
	}
	return at(1), at(2)
}

// VNI returns the tunnel id of link i of slice sliceID: unique among all
// slices' links (each slice owns 64 numbers; 0 is never used).
func VNI(sliceID int64, i int) (uint32, error) {
	if sliceID < 1 || sliceID > MaxSliceID {
		return 0, core.Errorf(core.Invalid, "vlinks: slice id %d is beyond %d, the last that can have virtual links", sliceID, MaxSliceID)
	}
	if i < 0 || i >= MaxLinks {
		return 0, core.Errorf(core.Invalid, "vlinks: link index %d out of range", i)
	}
	return uint32(sliceID)*64 + uint32(i) + 1, nil
}

// LANAddr returns member m's address on LAN j, with the length of the
// LAN's block.
func (t Topology) LANAddr(j, m int) netip.Prefix {
	off, _ := t.lanBlocks()
	base := t.Prefix.Addr().As4()
	v := (uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])) + off[j] + uint32(m) + 1
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}),
		32-bitsOf(blockSize(len(t.LANs[j].Members))))
}

// LANVNI returns the tunnel id of LAN j of slice sliceID: LANs take the
// slice's numbers from the top (links from the bottom), so neither moves
// the other's.
func LANVNI(sliceID int64, j int) (uint32, error) {
	if j < 0 || j >= MaxLinks {
		return 0, core.Errorf(core.Invalid, "vlinks: LAN index %d out of range", j)
	}
	return VNI(sliceID, MaxLinks-1-j)
}

// Ends returns the ends of t's links, then of its LANs, on host (each in
// declaration order) for slice sliceID. addr gives a node's public IPv4
// address; a link whose other node has none (it left the slice, or has no
// address) is left out and reported in missing, as is a LAN none of whose
// other members has one (those without are left out of its peers).
func (t Topology) Ends(sliceID int64, host string, addr func(host string) (netip.Addr, bool)) (ends []core.VLink, missing []string, err error) {
	host = strings.ToLower(host)
	for i, l := range t.Links {
		var peer string
		var local, remote netip.Prefix
		a, b := t.Addrs(i)
		switch host {
		case l.A:
			peer, local, remote = l.B, a, b
		case l.B:
			peer, local, remote = l.A, b, a
		default:
			continue
		}
		p, ok := addr(peer)
		if !ok || !p.Is4() {
			missing = append(missing, l.Name)
			continue
		}
		vni, err := VNI(sliceID, i)
		if err != nil {
			return nil, nil, err
		}
		ends = append(ends, core.VLink{Name: l.Name, VNI: vni, Local: local.String(), Remote: remote.Addr().String(),
			PeerNode: peer, PeerAddr: p.String(), RateKbit: l.RateKbit, DelayUS: l.Delay.Microseconds(), LossPPM: l.LossPPM})
	}
	for j, n := range t.LANs {
		self := -1
		for m, h := range n.Members {
			if h == host {
				self = m
			}
		}
		if self < 0 {
			continue
		}
		var peers []core.VLinkPeer
		for m, h := range n.Members {
			if m == self {
				continue
			}
			if p, ok := addr(h); ok && p.Is4() {
				peers = append(peers, core.VLinkPeer{Node: h, Addr: p.String(), Private: t.LANAddr(j, m).Addr().String()})
			}
		}
		if len(peers) == 0 {
			missing = append(missing, n.Name)
			continue
		}
		vni, err := LANVNI(sliceID, j)
		if err != nil {
			return nil, nil, err
		}
		ends = append(ends, core.VLink{Name: n.Name, VNI: vni, Local: t.LANAddr(j, self).String(), RateKbit: n.RateKbit,
			DelayUS: n.Delay.Microseconds(), LossPPM: n.LossPPM, Peers: peers})
	}
	return ends, missing, nil
}

// End is a checked link or LAN end, parsed for the node's data plane.
type End struct {
	core.VLink
	LocalPrefix netip.Prefix
	RemoteAddr  netip.Addr // a link's other end; invalid on a LAN
	Peer        netip.Addr // a link's peer node; invalid on a LAN
	// Peers are the nodes the end's tunnel sends to and accepts from: a
	// link's Peer, or a LAN's other members' nodes.
	Peers []netip.Addr
}

// IsLAN reports whether e is the end of a LAN.
func (e End) IsLAN() bool { return len(e.VLink.Peers) > 0 }

// CheckEnd validates a link end received from PLC, as a node must before
// building it.
func CheckEnd(v core.VLink) (End, error) {
	e := End{VLink: v}
	if !linkName.MatchString(v.Name) || reserved[v.Name] {
		return e, errf("link name %q is not a usable interface name", v.Name)
	}
	if v.VNI == 0 || v.VNI >= 1<<24 {
		return e, errf("link %s: VNI %d is not 1..%d", v.Name, v.VNI, 1<<24-1)
	}
	if len(v.Peers) > 0 {
		if err := checkLANEnd(&e); err != nil {
			return e, err
		}
	} else if err := checkLinkEnd(&e); err != nil {
		return e, err
	}
	if v.RateKbit < MinRateKbit || v.RateKbit > MaxRateKbit {
		return e, errf("link %s: rate %d kbit/s out of range %d..%d", v.Name, v.RateKbit, int64(MinRateKbit), int64(MaxRateKbit))
	}
	if v.DelayUS < 0 || v.DelayUS > MaxDelay.Microseconds() {
		return e, errf("link %s: delay %d µs out of range", v.Name, v.DelayUS)
	}
	if v.LossPPM < 0 || v.LossPPM > 1_000_000 {
		return e, errf("link %s: loss %d ppm out of range", v.Name, v.LossPPM)
	}
	return e, nil
}

func checkLinkEnd(e *End) error {
	v := e.VLink
	var err error
	if e.LocalPrefix, err = netip.ParsePrefix(v.Local); err != nil || !e.LocalPrefix.Addr().Is4() || e.LocalPrefix.Bits() != 30 {
		return errf("link %s: local address %q is not an IPv4 address with /30", v.Name, v.Local)
	}
	if e.RemoteAddr, err = netip.ParseAddr(v.Remote); err != nil || !e.LocalPrefix.Contains(e.RemoteAddr) || e.RemoteAddr == e.LocalPrefix.Addr() {
		return errf("link %s: remote address %q is not the other host of %s", v.Name, v.Remote, e.LocalPrefix.Masked())
	}
	if e.Peer, err = netip.ParseAddr(v.PeerAddr); err != nil || !e.Peer.Is4() || !e.Peer.IsGlobalUnicast() {
		return errf("link %s: peer address %q is not a unicast IPv4 address", v.Name, v.PeerAddr)
	}
	e.Peers = []netip.Addr{e.Peer}
	return nil
}

// checkLANEnd checks a LAN end: its address is a host of its block (not
// the network or broadcast address), every peer has a distinct unicast
// node address and a distinct private address on the block.
func checkLANEnd(e *End) error {
	v := e.VLink
	var err error
	if v.Remote != "" || v.PeerAddr != "" || v.PeerNode != "" {
		return errf("LAN %s: an end with peers has no remote, peer_node or peer_addr", v.Name)
	}
	if len(v.Peers) > MaxLANMembers-1 {
		return errf("LAN %s: %d peers, more than %d", v.Name, len(v.Peers), MaxLANMembers-1)
	}
	isHost := func(a netip.Addr, p netip.Prefix) bool {
		last := p.Masked().Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			last[i/8] |= 1 << (7 - i%8)
		}
		return p.Contains(a) && a != p.Masked().Addr() && a != netip.AddrFrom4(last)
	}
	if e.LocalPrefix, err = netip.ParsePrefix(v.Local); err != nil || !e.LocalPrefix.Addr().Is4() || e.LocalPrefix.Bits() < 8 || e.LocalPrefix.Bits() > 30 ||
		!isHost(e.LocalPrefix.Addr(), e.LocalPrefix) {
		return errf("LAN %s: local address %q is not a host address of an IPv4 block /8 to /30", v.Name, v.Local)
	}
	nodes, privs := map[netip.Addr]bool{}, map[netip.Addr]bool{e.LocalPrefix.Addr(): true}
	for _, p := range v.Peers {
		a, err := netip.ParseAddr(p.Addr)
		if err != nil || !a.Is4() || !a.IsGlobalUnicast() {
			return errf("LAN %s: peer %s: address %q is not a unicast IPv4 address", v.Name, p.Node, p.Addr)
		}
		if nodes[a] {
			return errf("LAN %s: two peers on node address %s", v.Name, a)
		}
		q, err := netip.ParseAddr(p.Private)
		if err != nil || !isHost(q, e.LocalPrefix) || privs[q] {
			return errf("LAN %s: peer %s: private address %q is not another host of %s", v.Name, p.Node, p.Private, e.LocalPrefix.Masked())
		}
		nodes[a], privs[q] = true, true
		e.Peers = append(e.Peers, a)
	}
	return nil
}

// Overlaps reports whether two topologies' private ranges overlap.
func Overlaps(a, b Topology) bool {
	return a.Prefix.IsValid() && b.Prefix.IsValid() && a.Prefix.Overlaps(b.Prefix)
}

// String renders t canonically (the syntax Parse reads).
func (t Topology) String() string {
	var parts []string
	if t.Prefix.IsValid() {
		parts = append(parts, "prefix "+t.Prefix.String())
	}
	for _, l := range t.Links {
		s := fmt.Sprintf("%s %s %s %s", l.Name, l.A, l.B, props(l.RateKbit, l.Delay, l.LossPPM))
		parts = append(parts, s)
	}
	for _, n := range t.LANs {
		s := fmt.Sprintf("%s %s %s %s", lanWord, n.Name, strings.Join(n.Members, " "), props(n.RateKbit, n.Delay, n.LossPPM))
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// props renders a statement's properties canonically.
func props(rate int64, delay time.Duration, loss int64) string {
	s := fmt.Sprintf("rate=%dkbit", rate)
	if delay > 0 {
		s += " delay=" + delay.String()
	}
	if loss > 0 {
		s += fmt.Sprintf(" loss=%d.%04d%%", loss/10_000, loss%10_000)
	}
	return s
}
