// Package vlink builds slivers' virtual links on a node (VINI, the vlinks
// slice tag of package core/vlinks): one interface per link inside the
// sliver's network namespace, joined to the sliver at the other end by a
// VXLAN tunnel between the two nodes, shaped to the link's rate, with the
// link's loss, and unforgeable.
//
// What one link end (VNI V, interface name L) is on the node:
//
//	sliver netns:  L (veth end, the link's /30 address)  -- the sliver may run routing daemons over it
//	node netns:    <p>h<V> (veth end) + <p>x<V> (vxlan V to the peer node) in bridge <p>b<V>
//	               tbf on <p>x<V>: the link's rate (and a netem child for delay, where the kernel has it)
//	delayed link without netem: + <p>t<V> (TAP) in the bridge, read by a relay that holds frames for
//	               the delay and sends them to the peer as VXLAN; tbf on the TAP (delay_linux.go)
//
// The shaping qdisc sits on the node side, where the sliver has no
// capability. VXLAN (not GRE, not WireGuard) because it is the tunnel this
// kernel has (no ip_gre, no wireguard module), it carries Ethernet (routing
// daemons, ARP, multicast hellos work as on a wire), its 24-bit VNI names
// the link, and its packets are plain UDP that nftables can inspect.
//
// A LAN end (VNI V) is the same, with no single peer: the tunnel has one
// all-zero forwarding entry per other member's node (head-end
// replication: broadcast and unknown frames go to each, unicast frames to
// the member the tunnel learnt the destination behind); a delayed LAN's
// relay sends each frame to every member.
//
// Isolation (nftables table Config.Table, rebuilt whole on every change):
//
//	input:   a VXLAN packet (udp dport Port) is accepted only from the peer node of a link (or a member of a LAN) with that VNI
//	output:  a VXLAN packet leaves only toward the peer of a link (or a member of a LAN) with that VNI (and the loss is applied here)
//	forward: no forwarded packet may carry udp dport Port: a sliver cannot send a forged tunnel packet
//	         (it would leave with the node's address after NAT and pass the peer's input check)
//
// So a sliver can only ever reach its own slice's links, whatever it does
// inside its namespace, and VNIs are unique among slices (core/vlinks).
package vlink

import (
	"net/netip"
	"strconv"
)

// DefaultPort is the VXLAN UDP port (IANA).
const DefaultPort = 4789

// Config configures a Manager. Zero fields take the defaults shown.
type Config struct {
	// NetNS is the path of the node's network namespace; "" = the calling
	// thread's at New.
	NetNS string
	// StateDir holds vlinks.json, the link ends of every sliver (so the
	// isolation rules cover all of them after a restart). Required.
	StateDir string
	// LocalAddr is the tunnels' source address; invalid = the kernel's
	// choice (the route's source toward the peer).
	LocalAddr netip.Addr
	// Reserved are ranges link addresses must not overlap: the node's
	// sliver prefix (netcfg), whose addresses and routes every sliver has.
	Reserved []netip.Prefix
	// Port is the VXLAN UDP port; DefaultPort.
	Port uint16
	// MTU of the links (the tunnel devices and both veth ends): the
	// underlay's MTU less VXLAN's 50 bytes of headers; 1450.
	MTU int
	// Table is the nftables table (family inet) owned by the manager;
	// "plvl".
	Table string
	// DevPrefix starts the names of the node-side devices (prefix, one
	// letter, the VNI: at most 15 characters); "vl". No other interface of
	// the node may start with it.
	DevPrefix string
	// SrcPortMin and SrcPortMax bound the tunnels' UDP source ports: each
	// link or LAN end on the node sends from a port of its own in the
	// range (so its conntrack entries are its alone and carry its slice's
	// mark); DefaultSrcPortMin..DefaultSrcPortMax, below Linux's default
	// ephemeral range. The range bounds the number of ends on the node.
	SrcPortMin, SrcPortMax uint16
}

// Defaults of the tunnels' source port range.
const (
	DefaultSrcPortMin = 30000
	DefaultSrcPortMax = 32767
)

func (c Config) withDefaults() Config {
	if c.MTU == 0 {
		c.MTU = 1450
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Table == "" {
		c.Table = "plvl"
	}
	if c.DevPrefix == "" {
		c.DevPrefix = "vl"
	}
	if c.SrcPortMin == 0 || c.SrcPortMax <= c.SrcPortMin {
		c.SrcPortMin, c.SrcPortMax = DefaultSrcPortMin, DefaultSrcPortMax
	}
	return c
}

// devName is the node-side device of a link: role 'x' vxlan, 'b' bridge,
// 'h' the node's veth end, 't' a delay relay's TAP.
func (c Config) devName(role byte, vni uint32) string {
	return c.DevPrefix + string(role) + strconv.FormatUint(uint64(vni), 10)
}
