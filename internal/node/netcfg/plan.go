package netcfg

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/planetlab/pl/internal/core"
)

// Limits and defaults of the Linux implementation.
const (
	// MaxXID is the largest sliver xid: the HTB class minor is 0x1000|xid and
	// 0x1fff is the default class, so xids are 1..4094 as in the original.
	MaxXID = 4094
	// DefaultPrefix holds the private /30 of every sliver.
	DefaultPrefix = "10.42.0.0/16"
	// DefaultCapKbit is the node egress cap when none is configured (1 Gbit/s,
	// the original's bwmax).
	DefaultCapKbit = 1_000_000
	// MinRateFloorKbit is the smallest guaranteed rate of a class (the
	// original's bwmin of 1000 bit/s).
	MinRateFloorKbit = 1
	// SliverIfName is the name of the sliver's interface inside its netns.
	SliverIfName = "eth0"

	htbMajor        = 1
	htbNodeMinor    = 0x1
	htbDefaultMinor = 0x1fff
	htbSliverBase   = 0x1000
)

var sliverNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// validName reports whether name can be a sliver name on the host: it
// becomes a file name in the state directory and an interface alias.
func validName(name string) error {
	if !sliverNameRE.MatchString(name) {
		return core.FieldErrorf("name", "sliver name %q is not 1-64 characters of letters, digits, '_', '.', '-' (not starting with '.' or '-')", name)
	}
	return nil
}

func validXID(xid int) error {
	if xid < 1 || xid > MaxXID {
		return core.FieldErrorf("xid", "xid %d is outside 1..%d", xid, MaxXID)
	}
	return nil
}

// SliverSubnet returns the private /30 of a sliver: the network number is
// the prefix base plus 4*xid, the node (gateway) side is .1 and the sliver
// .2 of that /30. It is a pure function of the prefix and the xid, so a
// restarted node manager derives the same addresses.
func SliverSubnet(prefix netip.Prefix, xid int) (subnet netip.Prefix, gateway, addr netip.Addr, err error) {
	if err := validXID(xid); err != nil {
		return subnet, gateway, addr, err
	}
	if !prefix.Addr().Is4() || prefix.Bits() < 0 {
		return subnet, gateway, addr, core.FieldErrorf("prefix", "sliver prefix %s is not an IPv4 prefix", prefix)
	}
	if last := uint64(xid)*4 + 3; last >= 1<<(32-prefix.Bits()) {
		return subnet, gateway, addr, core.FieldErrorf("prefix", "sliver prefix %s is too small for xid %d (needs a /%d or shorter prefix)", prefix, xid, 32-bitsFor(last))
	}
	b := prefix.Masked().Addr().As4()
	base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	net := base + uint32(xid)*4
	mk := func(v uint32) netip.Addr {
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return netip.PrefixFrom(mk(net), 30), mk(net + 1), mk(net + 2), nil
}

// sliverHost6 is the host part of xid 0 in the node's IPv6 prefix: sliver
// xid gets prefix::1:0 + xid, clear of the low addresses (::1, ::2, ...)
// an admin gives the node itself and routers.
const sliverHost6 = 0x1_0000

// MaxPrefix6Bits is the longest node IPv6 prefix that holds every xid.
const MaxPrefix6Bits = 128 - 17

// Gateway6 is the node side of every sliver's veth for IPv6: a link-local
// address, the same on each veth, the sliver's default router.
var Gateway6 = netip.MustParseAddr("fe80::1")

// SliverAddr6 returns the routable IPv6 address of a sliver in the node's
// IPv6 prefix: the prefix base plus 0x10000 plus the xid (xid 5 in
// 2001:db8:7::/64 is 2001:db8:7::1:5). The sliver holds it as a /128 on
// its veth and routes through Gateway6; the node routes it to the veth.
// Like SliverSubnet it is a pure function of the prefix and the xid.
func SliverAddr6(prefix netip.Prefix, xid int) (netip.Addr, error) {
	if err := validXID(xid); err != nil {
		return netip.Addr{}, err
	}
	if err := validPrefix6(prefix); err != nil {
		return netip.Addr{}, err
	}
	b := prefix.Masked().Addr().As16()
	host := uint32(sliverHost6 + xid) // at most 17 bits: fits the prefix's host part
	lo := uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
	lo += host // no carry: the prefix's host bits are zero and 17 or more
	b[12], b[13], b[14], b[15] = byte(lo>>24), byte(lo>>16), byte(lo>>8), byte(lo)
	return netip.AddrFrom16(b), nil
}

// validPrefix6 checks a node's IPv6 sliver prefix: global unicast (or
// unique local) IPv6, long enough a host part for every xid.
func validPrefix6(p netip.Prefix) error {
	a := p.Addr()
	if !p.IsValid() || !a.Is6() || a.Is4In6() {
		return core.FieldErrorf("prefix6", "sliver IPv6 prefix %s is not an IPv6 prefix", p)
	}
	if !a.IsGlobalUnicast() {
		return core.FieldErrorf("prefix6", "sliver IPv6 prefix %s is not global unicast or unique local (link-local, multicast and loopback are not routable)", p)
	}
	if p.Bits() > MaxPrefix6Bits {
		return core.FieldErrorf("prefix6", "sliver IPv6 prefix %s is too small for every xid (needs a /%d or shorter prefix)", p, MaxPrefix6Bits)
	}
	return nil
}

func bitsFor(v uint64) int {
	n := 0
	for v > 0 {
		n++
		v >>= 1
	}
	return n
}

// vethName is the node-side interface of a sliver: prefix + decimal xid.
func vethName(prefix string, xid int) string { return prefix + strconv.Itoa(xid) }

// Chain names of a sliver in the node's table.
func fromChain(xid int) string  { return fmt.Sprintf("from-%d", xid) }
func portsChain(xid int) string { return fmt.Sprintf("ports-%d", xid) }
func toChain(xid int) string    { return fmt.Sprintf("to-%d", xid) }

// htbClassMinor is the minor of a sliver's HTB class (1:1000|xid as in the
// original). The sliver's packets carry it as skb priority, which HTB uses
// to classify without filters.
func htbClassMinor(xid int) uint16 { return uint16(htbSliverBase | xid) }

// ClassID is the uplink HTB class of sliver xid (major:minor in one
// number, as skb->priority takes it): traffic the node sends on a
// sliver's behalf (its virtual links' tunnels, package vlink) is put in it
// to count against the sliver's rates and daily budget.
func ClassID(xid int) uint32 { return uint32(htbMajor)<<16 | uint32(htbClassMinor(xid)) }

// rates clamps a sliver's rates: ceil = max rate (default and upper bound
// the node cap), rate = min rate floored at MinRateFloorKbit and at most
// ceil. Negative values are refused.
func rates(s Sliver, capKbit int64) (rateKbit, ceilKbit int64, err error) {
	if s.MinRateKbit < 0 {
		return 0, 0, core.FieldErrorf("net_min_rate", "%d kbit/s is negative", s.MinRateKbit)
	}
	if s.MaxRateKbit < 0 {
		return 0, 0, core.FieldErrorf("net_max_rate", "%d kbit/s is negative", s.MaxRateKbit)
	}
	ceilKbit = s.MaxRateKbit
	if ceilKbit == 0 || ceilKbit > capKbit {
		ceilKbit = capKbit
	}
	rateKbit = max(s.MinRateKbit, MinRateFloorKbit)
	rateKbit = min(rateKbit, ceilKbit)
	return rateKbit, ceilKbit, nil
}

// defaultClassRate is the guaranteed rate of unmarked (node) traffic: 5% of
// the cap, at least 8 kbit/s.
func defaultClassRate(capKbit int64) int64 { return max(capKbit/20, 8) }
