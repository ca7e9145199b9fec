// Package netcfg gives each sliver its own network stack on a node: a
// network namespace joined to the node by a veth pair with a private
// address, outbound NAT through the node's address, anti-spoofing,
// isolation between slivers, reserved ports forwarded from the node's
// address, and per-sliver HTB shaping on the uplink under a node-wide cap.
//
// This file is the contract the node agent relies on; the Linux
// implementation (netlink, nftables) lives beside it.
package netcfg

import (
	"context"
	"net/netip"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/node/fielddiff"
)

// Port is a reserved port (or range) forwarded from the node's public
// address to the owning sliver. Parse slice tag values with ports.Parse.
type Port = ports.Port

// Sliver is the desired network configuration of one sliver.
//
// The diff tags (package fielddiff) name the fields in plans (Changes).
type Sliver struct {
	Name        string `diff:"name"`
	XID         int    `diff:"xid"`
	Ports       []Port `diff:"ports"`
	MinRateKbit int64  `diff:"net_min_rate"` // guaranteed egress rate (net_min_rate)
	MaxRateKbit int64  `diff:"net_max_rate"` // egress ceiling (net_max_rate), capped by the node cap
	// UIDBase, when non-zero, is the host uid of the sliver's root; with
	// a Config.NewNetNS hook the namespace is then created owned by a user
	// namespace with that mapping, so the sliver has CAP_NET_RAW in it.
	UIDBase uint32 `diff:"uidbase"`
	// Links are the sliver's virtual link ends (the vlinks slice tag).
	// netcfg does not build them (package vlink does, on the namespace
	// Ensure returns); they are part of the sliver's network so that a
	// change shows in plans as "network vlinks".
	Links []core.VLink `diff:"vlinks"`
	// Prefix6 is the node's IPv6 prefix for slivers this configuration
	// was computed with (zero: none, or the manager's own). Ensure gives
	// the address of the manager's prefix (Linux.SetPrefix6) and refuses
	// a configuration made for another; the field makes a change of
	// prefix show in plans ("network ipv6_prefix") and re-ensure every
	// sliver.
	Prefix6 netip.Prefix `diff:"ipv6_prefix"`
}

// Changes names the fields in which two sliver network configurations
// differ, in declaration order (nil and empty Ports are equal).
func Changes(a, b Sliver) []string { return fielddiff.Names(fielddiff.Diff(a, b)) }

// Attachment is what a sliver's container needs to use its network.
type Attachment struct {
	NetNS   string     // path of the sliver's network namespace
	Addr    netip.Addr // the sliver's private address
	Gateway netip.Addr // the node side of the veth
	// Addr6 is the sliver's routable IPv6 address (its gateway is
	// Gateway6); invalid when the node has no IPv6 prefix.
	Addr6 netip.Addr
}

// Manager configures sliver networking on one node. All methods are
// idempotent.
type Manager interface {
	// Ensure creates or updates the sliver's namespace, veth, address,
	// NAT, port forwards and shaping class.
	Ensure(ctx context.Context, s Sliver) (Attachment, error)
	// Remove deletes everything Ensure created for the sliver.
	Remove(ctx context.Context, name string, xid int) error
	// List returns the names of slivers that have networking on the host.
	List(ctx context.Context) ([]string, error)
}
