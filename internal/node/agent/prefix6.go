package agent

import (
	"net/netip"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

// Prefix6Setter is a network manager whose IPv6 prefix for slivers can
// change while it runs (netcfg.Linux). The agent sets the effective
// prefix before each pass; every sliver's network configuration carries
// it (netcfg.Sliver.Prefix6), so a change re-ensures each one.
type Prefix6Setter interface {
	SetPrefix6(netip.Prefix) error
}

// EffectivePrefix6 is the IPv6 prefix of the node's slivers: the node's
// own (pl node --ipv6-prefix) when it has one, which wins, else PLC's
// (the sliversipv6prefix interface tag, NodeState.IPv6Prefix), checked as
// PLC checks it; the zero Prefix when neither has one. A bad value from
// PLC is an error naming the tag.
func EffectivePrefix6(own netip.Prefix, st *core.NodeState) (netip.Prefix, error) {
	if own.IsValid() {
		return own, nil
	}
	if st == nil || st.IPv6Prefix == "" {
		return netip.Prefix{}, nil
	}
	return tags.ParsePrefix6(st.IPv6Prefix)
}

// sliverPrefix6 decides the pass's IPv6 prefix and gives it to the
// network manager. A prefix that is refused (by EffectivePrefix6 or by
// the manager) leaves the last good one in force, logged once per value.
func (m *Main) sliverPrefix6(st *core.NodeState) netip.Prefix {
	m.mu.Lock()
	last, bad := m.prefix6, m.badPrefix6
	m.mu.Unlock()
	want, err := EffectivePrefix6(m.IPv6Prefix, st)
	if err == nil {
		if s, ok := m.Net.(Prefix6Setter); ok {
			err = s.SetPrefix6(want)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if bad != st.IPv6Prefix {
			m.log.Error("IPv6 prefix for slivers refused; slivers keep the last good one", "prefix", st.IPv6Prefix, "keep", last, "err", err)
		}
		m.badPrefix6 = st.IPv6Prefix
		return last
	}
	if want != last {
		src := "plc"
		if m.IPv6Prefix.IsValid() {
			src = "node (--ipv6-prefix)"
		}
		m.log.Info("IPv6 prefix for slivers", "prefix", want, "from", src, "was", last)
	}
	m.prefix6, m.badPrefix6 = want, ""
	return want
}
