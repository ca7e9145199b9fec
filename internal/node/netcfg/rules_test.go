package netcfg

import (
	"flag"

	"github.com/google/nftables/expr"
	"net/netip"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// renderPlan renders the whole rule plan of a node with two slivers as
// canonical text, one rule per line; with prefix6 the node gives slivers
// IPv6 addresses in it.
func renderPlan(t *testing.T, prefix6 string) string {
	t.Helper()
	cfg := &Config{
		Uplink:       "eth0",
		NodeAddr:     netip.MustParseAddr("198.51.100.7"),
		Prefix:       netip.MustParsePrefix(DefaultPrefix),
		VethPrefix:   "plv",
		NodeServices: []Port{{Proto: "udp", From: 53, To: 53}, {Proto: "tcp", From: 22, To: 22}},
	}
	if prefix6 != "" {
		cfg.Prefix6 = netip.MustParsePrefix(prefix6)
		// The node's own address, where reserved ports are forwarded.
		cfg.NodeAddr6 = netip.MustParseAddr("2001:db8:1::7")
	}
	var b strings.Builder
	b.WriteString("table inet pl\n")
	for _, c := range baseChains {
		b.WriteString(c.String() + "\n")
	}
	for _, r := range nodeRules(cfg) {
		b.WriteString(r.String() + "\n")
	}
	for _, s := range []Sliver{
		{Name: "pl_web", XID: 5, Ports: []Port{{Proto: "udp", From: 5000, To: 5010}, {Proto: "tcp", From: 8080, To: 8080}}},
		{Name: "pl_quiet", XID: 4094},
	} {
		_, _, addr, err := SliverSubnet(cfg.Prefix, s.XID)
		if err != nil {
			t.Fatal(err)
		}
		var addr6 netip.Addr
		if cfg.Prefix6.IsValid() {
			if addr6, err = SliverAddr6(cfg.Prefix6, s.XID); err != nil {
				t.Fatal(err)
			}
		}
		chains, rs := sliverRules(cfg, s, addr, addr6)
		b.WriteString("# sliver " + s.Name + " chains " + strings.Join(chains, " ") + "\n")
		for _, r := range rs {
			b.WriteString(r.String() + "\n")
			if len(r.exprs) == 0 {
				t.Errorf("rule without expressions: %s", r)
			}
		}
	}
	return b.String()
}

func TestRulePlanGolden(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { checkGolden(t, renderPlan(t, ""), "testdata/plan.golden") })
	t.Run("ipv6", func(t *testing.T) { checkGolden(t, renderPlan(t, "2001:db8:7::/64"), "testdata/plan6.golden") })
}

func checkGolden(t *testing.T, got, golden string) {
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("rule plan differs from %s (run with -update after checking):\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestIfnameMatchBytes(t *testing.T) {
	exact := newRule("c").ifname(true, "plv5")
	wild := newRule("c").ifname(false, "plv*")
	if got := len(cmpData(exact)); got != 16 {
		t.Errorf("exact ifname compares %d bytes, want 16 (IFNAMSIZ)", got)
	}
	if got := string(cmpData(wild)); got != "plv" {
		t.Errorf("wildcard compares %q, want prefix plv", got)
	}
}

func cmpData(r *rule) []byte {
	for _, e := range r.exprs {
		if c, ok := e.(*expr.Cmp); ok {
			return c.Data
		}
	}
	return nil
}
