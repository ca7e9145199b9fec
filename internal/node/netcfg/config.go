package netcfg

import (
	"log/slog"
	"net/netip"
	"regexp"

	"github.com/planetlab/pl/internal/core"
)

// Config configures the Linux implementation. Zero fields take the
// documented defaults; New validates the result.
type Config struct {
	// StateDir holds the persisted sliver namespaces (StateDir/netns/<name>,
	// bind mounts, not /var/run/netns, so several emulated nodes on one host
	// never collide) and one small JSON record per sliver
	// (StateDir/slivers/<name>.json). Required.
	StateDir string
	// NetNS is the path of the node's network namespace, where veths, rules
	// and shaping are installed. "" means the namespace of the calling
	// thread at New (the process's own, normally).
	NetNS string
	// Uplink is the node's interface to the world. Default: the interface
	// of the IPv4 default route.
	Uplink string
	// NodeAddr is the node's public IPv4 address: the source of NATed
	// sliver traffic and the destination of reserved ports. Default: the
	// first global IPv4 address of the uplink.
	NodeAddr netip.Addr
	// Prefix holds one /30 per sliver (derived from the xid). Default
	// 10.42.0.0/16; at most /18 so that every xid 1..4094 fits.
	Prefix netip.Prefix
	// Prefix6, when set, is the node's IPv6 prefix for slivers: each gets
	// a routable address in it derived from its xid (SliverAddr6), at most
	// a /111. The prefix must be routed to the node. Unset: slivers are
	// IPv4-only and the node drops their IPv6. Linux.SetPrefix6 changes
	// it while the manager runs (the node manager sets PLC's).
	Prefix6 netip.Prefix
	// NodeAddr6 is the node's own IPv6 address: with a Prefix6, slivers'
	// reserved ports on it are forwarded to their IPv6 addresses, as the
	// IPv4 ports on NodeAddr. Default: the first global IPv6 address of
	// the uplink (none: reserved ports are forwarded on IPv4 only, and
	// slivers are reached at their own IPv6 addresses).
	NodeAddr6 netip.Addr
	// CapKbit is the node-wide egress cap on the uplink in kbit/s
	// (the original's bwcap). Default 1 Gbit/s.
	CapKbit int64
	// Table is the name of the nftables table (family inet) the manager
	// owns entirely. Default "pl".
	Table string
	// VethPrefix prefixes the node-side veth names (prefix+xid, so at most
	// 11 characters). Default "plv". No other interface of the node may
	// start with it.
	VethPrefix string
	// NodeServices are ports on the node itself that slivers may reach
	// (e.g. a DNS forwarder or the ssh gateway); everything else on the node
	// is closed to slivers. Default none.
	NodeServices []Port
	// NodePorts are ports the node itself serves on its address (its ssh
	// daemon or gateway, the node manager's API): no sliver may reserve
	// them. nil means tcp/22; an empty non-nil slice means none.
	NodePorts []Port
	// NewNetNS, if set, creates the persisted namespace of a sliver whose
	// UIDBase is non-zero, owned by a user namespace mapping root to
	// uidBase (sliver.NewNetNS does this): processes of the sliver's user
	// namespace then hold network capabilities (CAP_NET_RAW for ping,
	// traceroute and sniffers) inside their namespace. Otherwise netcfg
	// creates the namespace itself, owned by the node's user namespace.
	NewNetNS func(path string, uidBase uint32) error
	// Logger receives operational messages. Default slog.Default().
	Logger *slog.Logger
}

var vethPrefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,10}$`)
var tableRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// withDefaults fills the defaults that need no system access and checks
// the fields that were given.
func (c Config) withDefaults() (Config, error) {
	if c.StateDir == "" {
		return c, core.FieldErrorf("state_dir", "is required")
	}
	if !c.Prefix.IsValid() {
		c.Prefix = netip.MustParsePrefix(DefaultPrefix)
	}
	if !c.Prefix.Addr().Is4() || c.Prefix.Bits() > 18 {
		return c, core.FieldErrorf("prefix", "%s is not an IPv4 prefix of /18 or shorter", c.Prefix)
	}
	c.Prefix = c.Prefix.Masked()
	if c.Prefix6.IsValid() {
		if err := validPrefix6(c.Prefix6); err != nil {
			return c, err
		}
		c.Prefix6 = c.Prefix6.Masked()
	}
	if c.CapKbit == 0 {
		c.CapKbit = DefaultCapKbit
	}
	if c.CapKbit < 8 {
		return c, core.FieldErrorf("cap_kbit", "%d kbit/s is below the 8 kbit/s minimum", c.CapKbit)
	}
	if c.Table == "" {
		c.Table = "pl"
	}
	if !tableRE.MatchString(c.Table) {
		return c, core.FieldErrorf("table", "%q is not a valid nftables table name", c.Table)
	}
	if c.VethPrefix == "" {
		c.VethPrefix = "plv"
	}
	if !vethPrefixRE.MatchString(c.VethPrefix) {
		return c, core.FieldErrorf("veth_prefix", "%q is not 1-11 lowercase letters and digits starting with a letter", c.VethPrefix)
	}
	for _, p := range c.NodeServices {
		if err := p.Validate(); err != nil {
			return c, core.FieldErrorf("node_services", "%v", err)
		}
	}
	if c.NodePorts == nil {
		c.NodePorts = []Port{{Proto: "tcp", From: 22, To: 22}}
	}
	for _, p := range c.NodePorts {
		if err := p.Validate(); err != nil {
			return c, core.FieldErrorf("node_ports", "%v", err)
		}
	}
	if c.NodeAddr.IsValid() && !c.NodeAddr.Is4() {
		return c, core.FieldErrorf("node_addr", "%s is not an IPv4 address", c.NodeAddr)
	}
	if a := c.NodeAddr6; a.IsValid() && (!a.Is6() || a.Is4In6() || a.Zone() != "" || !a.IsGlobalUnicast()) {
		return c, core.FieldErrorf("node_addr6", "%s is not a global IPv6 address", a)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
