package service

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// TestPeerCaps: B bounds A's slivers on B's node: how many per node
// (A's first slices by id) and each one's rspec; bad caps are refused
// and change nothing; clearing a cap restores the sliver as it was.
func TestPeerCaps(t *testing.T) {
	a, b, bAtA, aAtB, _, nodeB := twoPLCs(t, filepath.Join(t.TempDir(), "a.db"), filepath.Join(t.TempDir(), "b.db"))
	site := get(t, a.env, a.admin, core.Site, "pla", "site_id")[0]["site_id"].(int64)
	pi := a.person("pi@pla.test", site, "pi", "user")
	a.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": sshKey(t)})
	remote := get(t, a.env, a.admin, core.Node, "n1.plb.test", "node_id")[0]["node_id"].(int64)
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("pla_s%d", i)
		id := a.slice(pi, name)
		a.must(a.s.Link(a.ctx, pi, core.SlicePerson, id, pi.PersonID, nil))
		a.must(a.s.Link(a.ctx, pi, core.SliceNode, id, remote, nil))
		names = append(names, name)
	}
	_ = bAtA
	b.refresh(aAtB)
	have := func() []string {
		var out []string
		for _, sl := range b.state(nodeB).Slivers {
			if strings.HasPrefix(sl.Name, "pla_") {
				out = append(out, sl.Name)
			}
		}
		return out
	}
	if got := have(); len(got) != 3 {
		t.Fatalf("slivers before a cap: %v", got)
	}
	plain := b.sliverAttr(nodeB, names[0])

	// Refused caps change nothing.
	for rec, want := range map[string]core.Record{
		"max_slivers_per_node": {"max_slivers_per_node": -1},
		"cap_mem_max":          {"cap_mem_max": 0},
		"cap_net_max_rate":     {"cap_net_max_rate": 0},
		"cap_cpu_share":        {"cap_cpu_share": 0},
		"cap_cpu_pct":          {"cap_cpu_pct": 101},
	} {
		err := b.s.Update(b.ctx, b.admin, core.Peer, aAtB, want)
		wantCode(t, err, core.Invalid, rec)
		if err != nil && !strings.Contains(err.Error(), rec) {
			t.Errorf("%s: the error %q does not name the field", rec, err)
		}
	}
	if got := have(); len(got) != 3 {
		t.Fatalf("refused caps changed the slivers: %v", got)
	}
	if p := get(t, b.env, b.admin, core.Peer, aAtB, "max_slivers_per_node", "cap_mem_max")[0]; p["max_slivers_per_node"] != nil || p["cap_mem_max"] != nil {
		t.Fatalf("refused caps stored: %v", p)
	}

	// At most 2 per node: A's first two slices keep their slivers.
	b.must(b.s.Update(b.ctx, b.admin, core.Peer, aAtB, core.Record{"max_slivers_per_node": 2}))
	if got := have(); strings.Join(got, ",") != "pla_s0,pla_s1" {
		t.Fatalf("with max_slivers_per_node 2: %v", got)
	}
	// Refusing one admits the next one.
	s1 := get(t, b.env, b.admin, core.Slice, "pla_s1", "slice_id")[0]["slice_id"].(int64)
	b.must(b.s.RefuseSlice(b.ctx, b.admin, s1, true, "test"))
	if got := have(); strings.Join(got, ",") != "pla_s0,pla_s2" {
		t.Fatalf("one refused under max_slivers_per_node 2: %v", got)
	}
	b.must(b.s.RefuseSlice(b.ctx, b.admin, s1, false, ""))
	b.must(b.s.Update(b.ctx, b.admin, core.Peer, aAtB, core.Record{"max_slivers_per_node": 0}))
	if got := have(); len(got) != 0 {
		t.Fatalf("with max_slivers_per_node 0: %v", got)
	}

	// The rspec caps: the unlimited defaults are clipped, the rest kept.
	b.must(b.s.Update(b.ctx, b.admin, core.Peer, aAtB, core.Record{"max_slivers_per_node": nil,
		"cap_mem_max": 524288, "cap_net_max_rate": 10000, "cap_cpu_share": 1, "cap_cpu_pct": 0}))
	got := b.sliverAttr(nodeB, names[0])
	if got["mem_max"] != "524288" || got["net_max_rate"] != "10000" || got["cpu_pct"] != "0" || got["cpu_share"] != "1" {
		t.Fatalf("capped sliver attributes %v", got)
	}
	if got["initscript_code"] != plain["initscript_code"] || got["enabled"] != plain["enabled"] {
		t.Fatalf("capping changed other attributes: %v, was %v", got, plain)
	}
	// A local slice on B's node is not capped.
	bsite := get(t, b.env, b.admin, core.Site, "plb", "site_id")[0]["site_id"].(int64)
	bpi := b.person("pi@plb.test", bsite, "pi", "user")
	local := b.slice(bpi, "plb_own")
	b.must(b.s.Link(b.ctx, bpi, core.SliceNode, local, nodeB, nil))
	if got := b.sliverAttr(nodeB, "plb_own"); got["mem_max"] != "" {
		t.Fatalf("a local sliver was capped: %v", got)
	}
	// Clearing the caps restores the sliver as it was.
	b.must(b.s.Update(b.ctx, b.admin, core.Peer, aAtB, core.Record{"cap_mem_max": nil, "cap_net_max_rate": nil, "cap_cpu_share": nil, "cap_cpu_pct": nil}))
	if got := b.sliverAttr(nodeB, names[0]); fmt.Sprint(got) != fmt.Sprint(plain) {
		t.Fatalf("after clearing the caps %v, want %v", got, plain)
	}
}
