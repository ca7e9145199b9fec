package netcfg

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The HTB tree on the uplink (egress), as in the original (nodemanager.md
// §3.3) minus the exempt and DRL branches:
//
//	1:        root qdisc, default class 1:1fff
//	1:1       node class, rate = ceil = node cap
//	1:1fff    unmarked traffic (the node's own), rate 5% of cap, ceil cap
//	1:1xxx    one per sliver (0x1000|xid), rate = min rate, ceil = max rate
//
// Sliver packets are classified without tc filters: the sliver's nftables
// chain sets skb->priority to its class id, which HTB honours directly
// (this kernel has no cls_fw; the packet/conntrack mark carries the xid
// for attribution).

func htbHandle(minor uint16) uint32 { return netlink.MakeHandle(htbMajor, minor) }

func kbit(v int64) uint64 { return uint64(v) * 1000 }

func htbClass(link int, parent, handle uint32, rateKbit, ceilKbit int64) *netlink.HtbClass {
	return netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: link, Parent: parent, Handle: handle},
		netlink.HtbClassAttrs{Rate: kbit(rateKbit), Ceil: kbit(ceilKbit), Quantum: 1600})
}

// isOurRoot reports whether q is the HTB root qdisc this package installs.
func isOurRoot(q netlink.Qdisc) bool {
	a := q.Attrs()
	return q.Type() == "htb" && a.Parent == netlink.HANDLE_ROOT && a.Handle == netlink.MakeHandle(htbMajor, 0)
}

// setupHTB installs (or keeps) the root qdisc and (re)sets the node and
// default classes. An existing tree of ours is kept, so sliver classes
// survive a node manager restart; a changed cap is applied live.
func setupHTB(h *netlink.Handle, link int, capKbit int64) error {
	qs, err := h.QdiscList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: link}})
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	have := false
	for _, q := range qs {
		if q.Attrs().LinkIndex == link && isOurRoot(q) {
			have = true
		}
	}
	if !have {
		q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: link, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(htbMajor, 0)})
		q.Defcls = htbDefaultMinor
		if err := h.QdiscReplace(q); err != nil {
			return fmt.Errorf("install htb root qdisc: %w", err)
		}
	}
	if err := h.ClassReplace(htbClass(link, netlink.MakeHandle(htbMajor, 0), htbHandle(htbNodeMinor), capKbit, capKbit)); err != nil {
		return fmt.Errorf("htb node class: %w", err)
	}
	if err := h.ClassReplace(htbClass(link, htbHandle(htbNodeMinor), htbHandle(htbDefaultMinor), defaultClassRate(capKbit), capKbit)); err != nil {
		return fmt.Errorf("htb default class: %w", err)
	}
	return nil
}

// ensureSliverClass creates or changes (live) the sliver's class.
func ensureSliverClass(h *netlink.Handle, link, xid int, rateKbit, ceilKbit int64) error {
	if err := h.ClassReplace(htbClass(link, htbHandle(htbNodeMinor), htbHandle(htbClassMinor(xid)), rateKbit, ceilKbit)); err != nil {
		return fmt.Errorf("htb class %x:%x: %w", htbMajor, htbClassMinor(xid), err)
	}
	return nil
}

func removeSliverClass(h *netlink.Handle, link, xid int) error {
	c := htbClass(link, htbHandle(htbNodeMinor), htbHandle(htbClassMinor(xid)), 1, 1)
	if err := h.ClassDel(c); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete htb class %x:%x: %w", htbMajor, htbClassMinor(xid), err)
	}
	return nil
}

// removeHTB deletes the root qdisc if it is ours.
func removeHTB(h *netlink.Handle, link int) error {
	qs, err := h.QdiscList(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Index: link}})
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qs {
		if q.Attrs().LinkIndex == link && isOurRoot(q) {
			if err := h.QdiscDel(q); err != nil {
				return fmt.Errorf("delete htb root qdisc: %w", err)
			}
		}
	}
	return nil
}
