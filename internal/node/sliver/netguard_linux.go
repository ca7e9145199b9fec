package sliver

import (
	"fmt"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// The kernel's silence in a gVisor sliver's network namespace.
//
// With a network namespace, runsc hands the namespace's interfaces to the
// sentry's own network stack: it copies their addresses and routes, opens
// a packet socket on each and removes the addresses from the kernel. But
// netcfg's Ensure, which runs before every later Apply of the sliver (any
// update: keys, resources, enabled), puts the address and the default
// route back, and the namespace's kernel would then answer the sentry's
// traffic too: a TCP segment of a connection only the sentry knows gets a
// reset from the kernel, and the connection dies (TestSliverNetwork
// "after-update"). So the namespace of a gVisor sliver gets an nftables
// table that drops every packet its kernel would receive or send. Packet
// sockets see frames before the prerouting hook and send them past the
// output hook, so the sentry's traffic is untouched; ARP stays the
// kernel's (its replies carry the same address as the sentry's).

// gvisorGuardTable is the table in a gVisor sliver's network namespace.
const gvisorGuardTable = "pl-gvisor-guard"

// setNetGuard installs (on) or removes (!on) the guard table in the
// network namespace at nsPath. Idempotent.
func setNetGuard(nsPath string, on bool) error {
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer unix.Close(fd)
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return fmt.Errorf("nftables in %s: %w", nsPath, err)
	}
	defer c.CloseLasting()
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("nftables in %s: %w", nsPath, err)
	}
	exists := false
	for _, t := range tables {
		exists = exists || t.Name == gvisorGuardTable
	}
	if exists == on {
		return nil
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: gvisorGuardTable}
	if !on {
		c.DelTable(table)
	} else {
		c.AddTable(table)
		drop := nftables.ChainPolicyDrop
		for _, h := range []struct {
			name string
			hook *nftables.ChainHook
		}{{"in", nftables.ChainHookPrerouting}, {"out", nftables.ChainHookOutput}} {
			c.AddChain(&nftables.Chain{Name: h.name, Table: table, Type: nftables.ChainTypeFilter,
				Hooknum: h.hook, Priority: nftables.ChainPriorityRaw, Policy: &drop})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables in %s: guard table on=%v: %w", nsPath, on, err)
	}
	return nil
}
