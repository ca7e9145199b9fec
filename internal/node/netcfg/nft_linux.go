package netcfg

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The nftables side of the network manager: the node's table, per-sliver rules and their removal.

// Setup prepares the node: IPv4 forwarding, the nftables table with its
// base chains and node-wide rules, and the HTB tree on the uplink. It is
// idempotent, keeps existing slivers' rules and classes, and is called by
// the first Ensure if the caller did not.
func (m *Linux) Setup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setupLocked()
}

func (m *Linux) setupLocked() error {
	start := time.Now()
	up, err := m.nl.LinkByName(m.cfg.Uplink)
	if err != nil {
		return fmt.Errorf("node setup: uplink %s: %w", m.cfg.Uplink, err)
	}
	m.uplinkIdx = up.Attrs().Index
	if err := InNetNS(m.nodeNS, m.forwardingSysctls); err != nil {
		return fmt.Errorf("node setup: %w", err)
	}
	// Table and base chains (create is a no-op when they exist).
	m.nft.AddTable(m.table)
	accept := nftables.ChainPolicyAccept
	for _, bc := range baseChains {
		m.nft.AddChain(&nftables.Chain{Name: bc.name, Table: m.table, Type: bc.typ, Hooknum: bc.hook, Priority: bc.priority, Policy: &accept})
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("node setup: nftables table %s: %w", m.cfg.Table, err)
	}
	// Replace the node-wide rules, keep the per-sliver jumps.
	m.jumps = map[string]bool{}
	for _, bc := range baseChains {
		rs, err := m.nft.GetRules(m.table, &nftables.Chain{Name: bc.name, Table: m.table})
		if err != nil {
			return fmt.Errorf("node setup: list chain %s: %w", bc.name, err)
		}
		for _, r := range rs {
			if _, target, ok := jumpXID(r); ok {
				m.jumps[jumpKey(bc.name, target)] = true
				continue
			}
			if err := m.nft.DelRule(r); err != nil {
				return fmt.Errorf("node setup: %w", err)
			}
		}
	}
	for _, r := range nodeRules(&m.cfg) {
		m.nft.AddRule(m.nftRule(r))
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("node setup: nftables rules: %w", err)
	}
	if err := setupHTB(m.nl, m.uplinkIdx, m.cfg.CapKbit); err != nil {
		return fmt.Errorf("node setup: uplink %s: %w", m.cfg.Uplink, err)
	}
	m.setupDone = true
	m.log.Info("node network set up", "uplink", m.cfg.Uplink, "node_addr", m.cfg.NodeAddr, "prefix", m.cfg.Prefix,
		"cap_kbit", m.cfg.CapKbit, "table", m.cfg.Table, "jumps", len(m.jumps), "took", time.Since(start))
	return nil
}

// forwardingSysctls turns on forwarding in the node's namespace (run
// there): IPv4 always, IPv6 when slivers have IPv6, with proxy NDP on the
// uplink (see ensureIPv6). A host that forwards
// IPv6 ignores router advertisements unless accept_ra is 2, so an uplink
// configured by them (accept_ra 1) gets 2 and keeps its address and route.
func (m *Linux) forwardingSysctls() error {
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if !m.cfg.Prefix6.IsValid() {
		return nil
	}
	ra := "net/ipv6/conf/" + m.cfg.Uplink + "/accept_ra"
	if b, err := os.ReadFile(filepath.Join("/proc/sys", ra)); err == nil && strings.TrimSpace(string(b)) == "1" {
		if err := writeSysctl(ra, "2"); err != nil {
			return err
		}
	}
	return errors.Join(
		writeSysctl("net/ipv6/conf/"+m.cfg.Uplink+"/proxy_ndp", "1"),
		writeSysctl("net/ipv6/conf/all/forwarding", "1"))
}

// jumpKey names a jump rule of a base chain.
func jumpKey(base, target string) string { return base + ">" + target }

// jumpXID reports the xid and the chain a base-chain rule jumps to
// (from-N, to-N or ports-N).
func jumpXID(r *nftables.Rule) (int, string, bool) {
	for _, e := range r.Exprs {
		v, ok := e.(*expr.Verdict)
		if !ok || v.Kind != expr.VerdictJump {
			continue
		}
		for _, p := range []string{"from-", "to-", "ports-"} {
			if s, ok := strings.CutPrefix(v.Chain, p); ok {
				if n, err := strconv.Atoi(s); err == nil {
					return n, v.Chain, true
				}
			}
		}
	}
	return 0, "", false
}

func (m *Linux) nftRule(r *rule) *nftables.Rule {
	return &nftables.Rule{Table: m.table, Chain: &nftables.Chain{Name: r.chain, Table: m.table}, Exprs: r.exprs, UserData: r.userData()}
}

// ensureRules replaces the sliver's two chains atomically and adds its
// jumps to the base chains if missing. Nothing else in the table changes.
func (m *Linux) ensureRules(s Sliver, addr, addr6 netip.Addr) error {
	chains, rs := sliverRules(&m.cfg, s, addr, addr6)
	for _, c := range chains {
		ch := m.nft.AddChain(&nftables.Chain{Name: c, Table: m.table})
		m.nft.FlushChain(ch)
	}
	for _, r := range rs {
		if slices.Contains(chains, r.chain) {
			m.nft.AddRule(m.nftRule(r))
		} else if !m.jumps[jumpKey(r.chain, r.target)] {
			m.nft.InsertRule(m.nftRule(r))
		}
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("nftables rules: %w", err)
	}
	for _, r := range rs {
		if r.target != "" {
			m.jumps[jumpKey(r.chain, r.target)] = true
		}
	}
	return nil
}

func (m *Linux) removeRules(xid int) error {
	chains, err := m.tableChains()
	if err != nil || chains == nil {
		return err
	}
	for _, bc := range baseChains {
		if !chains[bc.name] {
			continue
		}
		rs, err := m.nft.GetRules(m.table, &nftables.Chain{Name: bc.name, Table: m.table})
		if err != nil {
			return fmt.Errorf("list chain %s: %w", bc.name, err)
		}
		for _, r := range rs {
			if x, _, ok := jumpXID(r); ok && x == xid {
				if err := m.nft.DelRule(r); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range []string{fromChain(xid), portsChain(xid), toChain(xid)} {
		if chains[c] {
			ch := &nftables.Chain{Name: c, Table: m.table}
			m.nft.FlushChain(ch)
			m.nft.DelChain(ch)
		}
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("delete nftables rules: %w", err)
	}
	for _, bc := range baseChains {
		for _, c := range []string{fromChain(xid), portsChain(xid), toChain(xid)} {
			delete(m.jumps, jumpKey(bc.name, c))
		}
	}
	return nil
}

// tableChains returns the chain names of the table, nil if it does not
// exist.
func (m *Linux) tableChains() (map[string]bool, error) {
	cs, err := m.nft.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var out map[string]bool
	for _, c := range cs {
		if c.Table.Name == m.cfg.Table {
			if out == nil {
				out = map[string]bool{}
			}
			out[c.Name] = true
		}
	}
	return out, nil
}

// flush sends the queued nftables batch. After a failure the connection
// is replaced, because the library keeps serialization errors and a
// failed batch may leave unread acknowledgements on the socket.
func (m *Linux) flush() error {
	err := m.nft.Flush()
	if err != nil {
		_ = m.nft.CloseLasting()
		if c, nerr := nftables.New(nftables.WithNetNSFd(int(m.nodeNS)), nftables.AsLasting()); nerr == nil {
			m.nft = c
		} else {
			m.log.Error("reopen nftables connection", "err", nerr)
		}
	}
	return err
}
