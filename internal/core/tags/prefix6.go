package tags

import (
	"net/netip"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// SliversIPv6Prefix is the interface tag that gives a node's slivers
// their IPv6 addresses (the original's accessor SliversIPv6Prefix, tag
// sliversipv6prefix, PlanetLab Europe's): PLC delivers the value of the
// node's primary interface in the node state (core.NodeState.IPv6Prefix)
// and the node gives sliver xid the address <prefix> + 0x10000 + xid.
const SliversIPv6Prefix = "sliversipv6prefix"

// MaxSliverPrefix6Bits is the longest prefix PLC accepts for a node's
// slivers: a /64 (a routed /64 is what providers give a site's LAN).
const MaxSliverPrefix6Bits = 64

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	uniqueLocal6   = netip.MustParsePrefix("fc00::/7")
)

// ParsePrefix6 parses and checks the value of the sliversipv6prefix tag:
// an IPv6 prefix of length 3..64 without host bits inside the global
// unicast range (2000::/3) or the unique local range (fc00::/7), written
// as <address>/<length>, surrounding white space ignored. The error, an
// Invalid *core.Error naming the tag, says what is wrong.
func ParsePrefix6(value string) (netip.Prefix, error) {
	bad := func(format string, args ...any) (netip.Prefix, error) {
		return netip.Prefix{}, core.FieldErrorf(SliversIPv6Prefix, format, args...)
	}
	v := strings.TrimSpace(value)
	if v == "" {
		return bad("empty: want an IPv6 prefix such as 2001:db8:7::/64")
	}
	if len(v) > 64 {
		return bad("%d bytes: not an IPv6 prefix", len(v))
	}
	if !strings.Contains(v, "/") {
		return bad("%q has no prefix length: want <address>/<length>, such as 2001:db8:7::/64", v)
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return bad("%q is not an IPv6 prefix: want <address>/<length>, such as 2001:db8:7::/64", v)
	}
	a := p.Addr()
	if !a.Is6() || a.Is4In6() {
		return bad("%s is not an IPv6 prefix", p)
	}
	if p.Bits() > MaxSliverPrefix6Bits {
		return bad("%s is longer than a /%d: slivers get addresses from a /%d or a shorter prefix", p, MaxSliverPrefix6Bits, MaxSliverPrefix6Bits)
	}
	if p.Masked() != p {
		return bad("%s has host bits set (did you mean %s?)", p, p.Masked())
	}
	if !(globalUnicast6.Bits() <= p.Bits() && globalUnicast6.Contains(a)) && !(uniqueLocal6.Bits() <= p.Bits() && uniqueLocal6.Contains(a)) {
		return bad("%s is not inside the global unicast range 2000::/3 or the unique local range fc00::/7", p)
	}
	return p, nil
}
