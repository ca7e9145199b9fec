package netcfg

import (
	"context"
	"fmt"
	"net/netip"
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
	if err := InNetNS(m.nodeNS, func() error { return writeSysctl("net/ipv4/ip_forward", "1") }); err != nil {
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
	m.jumps = map[int]bool{}
	for _, bc := range baseChains {
		rs, err := m.nft.GetRules(m.table, &nftables.Chain{Name: bc.name, Table: m.table})
		if err != nil {
			return fmt.Errorf("node setup: list chain %s: %w", bc.name, err)
		}
		for _, r := range rs {
			if xid, ok := jumpXID(r); ok {
				m.jumps[xid] = true
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
		"cap_kbit", m.cfg.CapKbit, "table", m.cfg.Table, "slivers", len(m.jumps), "took", time.Since(start))
	return nil
}

// jumpXID reports the xid a base-chain rule jumps for (from-N or ports-N).
func jumpXID(r *nftables.Rule) (int, bool) {
	for _, e := range r.Exprs {
		v, ok := e.(*expr.Verdict)
		if !ok || v.Kind != expr.VerdictJump {
			continue
		}
		for _, p := range []string{"from-", "ports-"} {
			if s, ok := strings.CutPrefix(v.Chain, p); ok {
				if n, err := strconv.Atoi(s); err == nil {
					return n, true
				}
			}
		}
	}
	return 0, false
}

func (m *Linux) nftRule(r *rule) *nftables.Rule {
	return &nftables.Rule{Table: m.table, Chain: &nftables.Chain{Name: r.chain, Table: m.table}, Exprs: r.exprs, UserData: r.userData()}
}

// ensureRules replaces the sliver's two chains atomically and adds its
// jumps to the base chains if missing. Nothing else in the table changes.
func (m *Linux) ensureRules(s Sliver, addr netip.Addr) error {
	chains, rs := sliverRules(&m.cfg, s, addr)
	for _, c := range chains {
		ch := m.nft.AddChain(&nftables.Chain{Name: c, Table: m.table})
		m.nft.FlushChain(ch)
	}
	for _, r := range rs {
		if slices.Contains(chains, r.chain) {
			m.nft.AddRule(m.nftRule(r))
		} else if !m.jumps[s.XID] {
			m.nft.InsertRule(m.nftRule(r))
		}
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("nftables rules: %w", err)
	}
	m.jumps[s.XID] = true
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
			if x, ok := jumpXID(r); ok && x == xid {
				if err := m.nft.DelRule(r); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range []string{fromChain(xid), portsChain(xid)} {
		if chains[c] {
			ch := &nftables.Chain{Name: c, Table: m.table}
			m.nft.FlushChain(ch)
			m.nft.DelChain(ch)
		}
	}
	if err := m.flush(); err != nil {
		return fmt.Errorf("delete nftables rules: %w", err)
	}
	delete(m.jumps, xid)
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
