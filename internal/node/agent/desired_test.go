package agent

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/node/netcfg"
)

func attrs(kv ...string) []core.Attribute {
	var out []core.Attribute
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, core.Attribute{TagName: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestParseAttributesDefaults(t *testing.T) {
	c, err := ParseAttributes(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := SliverConfig{Enabled: true, CPUShare: 1, MemKiB: 512 * 1024, NProc: 1024, NoFile: 4096, DiskKiB: 10000000, NetMinKbit: 1, NetMaxKbit: 1000000}
	if c.Enabled != want.Enabled || c.CPUShare != want.CPUShare || c.MemKiB != want.MemKiB || c.NProc != want.NProc ||
		c.NoFile != want.NoFile || c.DiskKiB != want.DiskKiB || c.NetMinKbit != want.NetMinKbit || c.NetMaxKbit != want.NetMaxKbit ||
		c.CPUPct != 0 || c.CPUCapPct != 0 || c.Image != "" || c.InitScript != "" || len(c.Ports) != 0 {
		t.Fatalf("defaults: got %+v want %+v", c, want)
	}
}

func TestParseAttributes(t *testing.T) {
	scripts := map[string]string{"hello": "#!/bin/sh\necho hi\n"}
	tests := []struct {
		name  string
		attrs []core.Attribute
		check func(SliverConfig) bool
	}{
		{"enabled 0", attrs("enabled", "0"), func(c SliverConfig) bool { return !c.Enabled }},
		{"enabled -1", attrs("enabled", "-1"), func(c SliverConfig) bool { return !c.Enabled }},
		{"enabled 2", attrs("enabled", "2"), func(c SliverConfig) bool { return c.Enabled }},
		{"last value wins", attrs("cpu_share", "3", "cpu_share", "5"), func(c SliverConfig) bool { return c.CPUShare == 5 }},
		{"cpu", attrs("cpu_share", "0", "cpu_pct", "25", "cpu_cap_pct", "150"), func(c SliverConfig) bool {
			return c.CPUShare == 0 && c.CPUPct == 25 && c.CPUCapPct == 150
		}},
		{"memory", attrs("mem_max", "1048576"), func(c SliverConfig) bool { return c.MemKiB == 1048576 }},
		{"memlock_hard alias", attrs("memlock_hard", "65536"), func(c SliverConfig) bool { return c.MemKiB == 65536 }},
		{"mem_max beats memlock_hard", attrs("memlock_hard", "65536", "mem_max", "131072"), func(c SliverConfig) bool { return c.MemKiB == 131072 }},
		{"unlimited memory", attrs("mem_max", "0"), func(c SliverConfig) bool { return c.MemKiB == 0 }},
		{"rlimit aliases", attrs("nproc_hard", "99", "nofile_hard", "1000"), func(c SliverConfig) bool { return c.NProc == 99 && c.NoFile == 1000 }},
		{"nproc beats nproc_hard", attrs("nproc_hard", "99", "nproc", "50"), func(c SliverConfig) bool { return c.NProc == 50 }},
		{"procs files disk", attrs("nproc", "64", "nofile", "100", "disk_max", "2048"), func(c SliverConfig) bool {
			return c.NProc == 64 && c.NoFile == 100 && c.DiskKiB == 2048
		}},
		{"net rates", attrs("net_min_rate", "100", "net_max_rate", "5000"), func(c SliverConfig) bool { return c.NetMinKbit == 100 && c.NetMaxKbit == 5000 }},
		{"net min clamped to max", attrs("net_min_rate", "9000", "net_max_rate", "5000"), func(c SliverConfig) bool { return c.NetMinKbit == 5000 }},
		{"net_max_rate -1 = node cap only", attrs("net_max_rate", "-1"), func(c SliverConfig) bool { return c.NetMaxKbit == 0 }},
		{"vref default", attrs("vref", "default"), func(c SliverConfig) bool { return c.Image == "" }},
		{"vref", attrs("vref", "debian-12"), func(c SliverConfig) bool { return c.Image == "debian-12" }},
		{"initscript by name", attrs("initscript", "hello"), func(c SliverConfig) bool { return c.InitScript == scripts["hello"] }},
		{"initscript_code wins", attrs("initscript", "hello", "initscript_code", "echo code"), func(c SliverConfig) bool { return c.InitScript == "echo code" }},
		{"ports accumulate", attrs("ports", "tcp/80", "ports", "udp/5000-5010, 8080"), func(c SliverConfig) bool {
			return len(c.Ports) == 3 && c.Ports[1] == (netcfg.Port{Proto: "udp", From: 5000, To: 5010}) && c.Ports[2].Proto == "tcp"
		}},
		{"unknown tags ignored", attrs("vsys", "pfmount", "delegations", "x"), func(c SliverConfig) bool { return c.Enabled }},
		{"codemux routes accumulate", attrs("codemux", "WWW.example.org,8080", "codemux", "shop.example.org,80,tls=443,proxy"), func(c SliverConfig) bool {
			return len(c.Routes) == 2 && c.Routes[0] == tags.Route{Host: "www.example.org", Port: 8080} &&
				c.Routes[1] == tags.Route{Host: "shop.example.org", Port: 80, TLSPort: 443, Proxy: true}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseAttributes(tc.attrs, scripts)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("got %+v", c)
			}
		})
	}
}

func TestParseAttributesErrors(t *testing.T) {
	tests := []struct {
		attrs []core.Attribute
		field string
		text  string
	}{
		{attrs("cpu_share", "-1"), "cpu_share", "-1 is out of range"},
		{attrs("cpu_share", "lots"), "cpu_share", `"lots" is not an integer`},
		{attrs("cpu_share", "257"), "cpu_share", "out of range"},
		{attrs("cpu_pct", "101"), "cpu_pct", "out of range"},
		{attrs("disk_max", "lots"), "disk_max", `"lots" is not an integer`},
		{attrs("disk_max", "-5"), "disk_max", "out of range"},
		{attrs("mem_max", "100"), "mem_max", "below the minimum"},
		{attrs("nproc", "3"), "nproc", "below the minimum"},
		{attrs("nofile", "0"), "nofile", "out of range"},
		{attrs("net_max_rate", "-2"), "net_max_rate", "out of range"},
		{attrs("enabled", "yes"), "enabled", "not an integer"},
		{attrs("ports", "tcp/70000"), "ports", "out of range"},
		{attrs("ports", "sctp/80"), "ports", "not tcp or udp"},
		{attrs("vref", "../etc"), "vref", "not an image name"},
		{attrs("runtime", "kata"), "runtime", `unknown value "kata": want one of runc, runsc`},
		{attrs("initscript", "nosuch"), "initscript", `no enabled init script named "nosuch"`},
	}
	for _, tc := range tests {
		_, err := ParseAttributes(tc.attrs, nil)
		if err == nil {
			t.Errorf("%v: want an error", tc.attrs)
			continue
		}
		if core.ErrorField(err) != tc.field || !strings.Contains(err.Error(), tc.text) || core.ErrorCode(err) != core.Invalid {
			t.Errorf("%v: got %q (field %q), want field %q containing %q", tc.attrs, err, core.ErrorField(err), tc.field, tc.text)
		}
	}
}

func FuzzParseAttributes(f *testing.F) {
	f.Add("cpu_share", "1", "ports", "tcp/80")
	f.Add("disk_max", "lots", "net_max_rate", "-1")
	f.Add("mem_max", "4096", "vref", "default")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		c, err := ParseAttributes(attrs(k1, v1, k2, v2), map[string]string{"x": "y"})
		if err != nil {
			if core.ErrorField(err) == "" {
				t.Fatalf("error without field: %v", err)
			}
			return
		}
		if c.CPUShare < 0 || c.CPUShare > tags.MaxCPUShare || c.DiskKiB < 0 || c.NProc < 0 || c.NetMinKbit < 0 || c.NetMaxKbit < 0 {
			t.Fatalf("accepted out-of-range config %+v", c)
		}
		for _, p := range c.Ports {
			if p.From == 0 || p.To < p.From {
				t.Fatalf("bad port %+v", p)
			}
		}
	})
}

func sliverOf(name string, id int64, kv ...string) core.Sliver {
	return core.Sliver{Name: name, SliceID: id, Instantiation: "plc-instantiated", Expires: 2000000000,
		Keys: []core.SliverKey{{KeyType: "ssh", Key: "ssh-ed25519 AAAA " + name}}, Attributes: attrs(kv...)}
}

func TestComputeIsolatesBadSlices(t *testing.T) {
	st := &core.NodeState{Version: "v1", NodeID: 1, Hostname: "planetlab1.cs.example.org", Slivers: []core.Sliver{
		sliverOf("pl_good", 1, "cpu_share", "2", "ports", "tcp/80", "codemux", "www.example.org,8080"),
		sliverOf("pl_badshare", 2, "cpu_share", "-4"),
		sliverOf("pl_baddisk", 3, "disk_max", "lots"),
		sliverOf("pl_badvref", 4, "vref", "nosuch"),
		sliverOf("pl_portclash", 5, "ports", "tcp/79-81"),
		sliverOf("pl_expired", 6),
		{Name: "pl_delegated", SliceID: 7, Instantiation: "delegated"},
		sliverOf("Bad-Name", 8),
		sliverOf("pl_badkey", 9),
		sliverOf("pl_noxid", 10),
		sliverOf("pl_debian", 11, "vref", "debian"),
		sliverOf("pl_hostclash", 12, "codemux", "WWW.example.org,80"),
		sliverOf("pl_badroute", 13, "codemux", "www.example.org"),
	}}
	st.Slivers[5].Expires = 1000
	st.Slivers[8].Keys = []core.SliverKey{{Key: "ssh-ed25519 AAAA\ncommand=\"evil\" ssh-rsa BBBB"}}
	xids := map[string]int{}
	for i, n := range Candidates(st, 1500) {
		if n != "pl_noxid" {
			xids[n] = i + 1
		}
	}
	d := Compute(st, Env{Now: 1500, XIDs: xids, Images: map[string]bool{"debian": true}, NCPU: 2})

	var got []string
	for n := range d.Slivers {
		got = append(got, n)
	}
	if len(d.Slivers) != 2 || d.Slivers["pl_good"].Spec.Name == "" || d.Slivers["pl_debian"].Spec.Image != "debian" {
		t.Fatalf("valid slivers: %v", got)
	}
	wantErr := map[string]string{
		"pl_badshare":  "cpu_share: -4 is out of range",
		"pl_baddisk":   `disk_max: "lots" is not an integer`,
		"pl_badvref":   `vref: unknown image "nosuch"`,
		"pl_portclash": `reserved port tcp/79-81 overlaps tcp/80 of slice "pl_good"`,
		"Bad-Name":     "is not usable on a node",
		"pl_badkey":    "contains a line break",
		"pl_noxid":     "no sliver number",
		"pl_hostclash": `codemux: host www.example.org is served by slice "pl_good" on this node`,
		"pl_badroute":  `codemux: "www.example.org" is not <host>,<port>`,
	}
	if len(d.Errors) != len(wantErr) {
		t.Errorf("errors: got %v", d.Errors)
	}
	for n, frag := range wantErr {
		if !strings.Contains(d.Errors[n], frag) {
			t.Errorf("error of %s: got %q, want it to contain %q", n, d.Errors[n], frag)
		}
	}
	g := d.Slivers["pl_good"]
	if g.Spec.Resources.CPUShares != 2048 || g.Spec.UIDBase != UIDBase(g.Spec.XID) || g.Spec.Resources.DiskBytes != 10000000*1024 ||
		g.Net.XID != g.Spec.XID || len(g.Net.Ports) != 1 || g.Spec.Keys[0] != "ssh-ed25519 AAAA pl_good" {
		t.Errorf("pl_good: %+v", g)
	}
	if g.Spec.Hostname != st.Hostname {
		t.Errorf("pl_good sees host name %q, want the node's %q", g.Spec.Hostname, st.Hostname)
	}
}

func TestUIDBaseRanges(t *testing.T) {
	if UIDBase(1) < 1<<28 {
		t.Fatalf("UIDBase(1) = %d collides with the usual subuid ranges", UIDBase(1))
	}
	if end := uint64(UIDBase(MaxXID)) + 65536; end > 1<<31 {
		t.Fatalf("last uid range ends at %d, beyond 2^31", end)
	}
}

func TestArbitrateCPU(t *testing.T) {
	frac := func(a map[string]CPUAlloc, name string) float64 {
		sum := 0.0
		for _, v := range a {
			sum += float64(v.Shares)
		}
		return float64(a[name].Shares) / sum
	}
	t.Run("no reservations: weights", func(t *testing.T) {
		a := ArbitrateCPU([]CPURequest{{Name: "a", Share: 1}, {Name: "b", Share: 3}, {Name: "c", Share: 0, CapPct: 50}}, 2)
		if a["a"].Shares != 1024 || a["b"].Shares != 3072 || a["c"].Shares != 2 || a["c"].CapPct != 50 || a["a"].CapPct != 0 {
			t.Fatalf("%+v", a)
		}
	})
	t.Run("guarantee against best effort", func(t *testing.T) {
		reqs := []CPURequest{{Name: "r", Share: 1, Pct: 50}}
		for i := 0; i < 20; i++ {
			reqs = append(reqs, CPURequest{Name: fmt.Sprintf("b%d", i), Share: 1})
		}
		a := ArbitrateCPU(reqs, 2)
		if f := frac(a, "r"); math.Abs(f-0.5) > 0.01 {
			t.Fatalf("reserved fraction %.3f, want 0.50", f)
		}
		for _, v := range a {
			if v.CapPct != 0 {
				t.Fatalf("caps used although weights suffice: %+v", a)
			}
		}
	})
	t.Run("over-commit scaled to 90", func(t *testing.T) {
		a := ArbitrateCPU([]CPURequest{{Name: "r1", Pct: 80}, {Name: "r2", Pct: 70}, {Name: "b", Share: 1}}, 2)
		if f := frac(a, "b"); math.Abs(f-0.10) > 0.01 {
			t.Fatalf("best-effort fraction %.3f, want 0.10", f)
		}
		if f1, f2 := frac(a, "r1"), frac(a, "r2"); math.Abs(f1/f2-80.0/70) > 0.01 {
			t.Fatalf("guarantees not scaled proportionally: %.3f %.3f", f1, f2)
		}
	})
	t.Run("disabled slivers do not compete", func(t *testing.T) {
		a := ArbitrateCPU([]CPURequest{{Name: "r", Pct: 40}, {Name: "b", Share: 1}, {Name: "off", Share: 100, Disabled: true}}, 1)
		delete(a, "off")
		if f := frac(a, "r"); math.Abs(f-0.4) > 0.01 {
			t.Fatalf("reserved fraction %.3f, want 0.40", f)
		}
	})
	t.Run("only reserved slivers", func(t *testing.T) {
		a := ArbitrateCPU([]CPURequest{{Name: "r1", Pct: 30}, {Name: "r2", Pct: 10}}, 1)
		if f := frac(a, "r1"); math.Abs(f-0.75) > 0.01 {
			t.Fatalf("r1 fraction %.3f, want 0.75", f)
		}
	})
	t.Run("weights cannot express it: caps", func(t *testing.T) {
		reqs := []CPURequest{{Name: "r1", Pct: 45}, {Name: "r2", Pct: 45}, {Name: "big", Share: 256, CapPct: 10}}
		for i := 0; i < 1000; i++ {
			reqs = append(reqs, CPURequest{Name: "s" + string(rune(0x100+i)), Share: 0})
		}
		a := ArbitrateCPU(reqs, 2)
		if a["r1"].CapPct != 0 || a["r2"].CapPct != 0 {
			t.Fatalf("reserved slivers capped: %+v %+v", a["r1"], a["r2"])
		}
		if a["big"].CapPct != 10 {
			t.Fatalf("explicit smaller cap must win: %+v", a["big"])
		}
		small := a["s"+string(rune(0x100))]
		if small.CapPct != 1 {
			t.Fatalf("tiny best-effort sliver cap: %+v, want 1%%", small)
		}
		for _, v := range a {
			if v.Shares < minShares || v.Shares > maxShares {
				t.Fatalf("shares out of the kernel range: %+v", v)
			}
		}
	})
}

// TestTagsAgreeWithRuntime checks, at the boundaries of every integer slice
// tag of the table, that the node manager accepts exactly what PLC accepts
// (tags.Check) and that an accepted value gives a spec the sliver runtime
// accepts: a value PLC takes can never fail at every Apply.
func TestTagsAgreeWithRuntime(t *testing.T) {
	for _, tag := range tags.All() {
		if tag.Kind != tags.Int || !strings.HasPrefix(tag.Category, "slice/") {
			continue
		}
		for _, n := range []int64{tag.Min - 1, tag.Min, tag.Min + 1, 0, 1, tag.Max - 1, tag.Max, tag.Max + 1} {
			v := fmt.Sprint(n)
			want := tags.Check(tag.Name, v)
			st := &core.NodeState{Slivers: []core.Sliver{sliverOf("s", 1, tag.Name, v)}}
			d := Compute(st, Env{NCPU: 2, XIDs: map[string]int{"s": 1}})
			if (d.Errors["s"] == "") != (want == nil) {
				t.Errorf("%s = %s: PLC says %v, node manager says %q", tag.Name, v, want, d.Errors["s"])
				continue
			}
			if want != nil {
				if !strings.Contains(d.Errors["s"], tag.Name) {
					t.Errorf("%s = %s: node error %q does not name the tag", tag.Name, v, d.Errors["s"])
				}
				continue
			}
			if err := d.Slivers["s"].Spec.Validate(); err != nil {
				t.Errorf("%s = %s: accepted by PLC and the node manager, refused by the runtime: %v", tag.Name, v, err)
			}
		}
	}
}

// TestComputeRuntime: the runtime tag selects the sliver's runtime; a node
// without runsc refuses a gVisor sliver with a reason and runs the others.
func TestComputeRuntime(t *testing.T) {
	st := &core.NodeState{Hostname: "n1.example.org", Slivers: []core.Sliver{
		sliverOf("pl_gv", 1, "runtime", "runsc"),
		sliverOf("pl_rc", 2, "runtime", "runc"),
		sliverOf("pl_plain", 3),
	}}
	xids := map[string]int{"pl_gv": 1, "pl_rc": 2, "pl_plain": 3}
	without := Compute(st, Env{XIDs: xids, NCPU: 2, Runtimes: map[string]bool{"": true}})
	if e := without.Errors["pl_gv"]; !strings.Contains(e, `runtime: runtime "runsc" is not installed on this node`) {
		t.Errorf("pl_gv on a node without runsc: error %q", e)
	}
	if len(without.Slivers) != 2 || without.Slivers["pl_rc"].Spec.Runtime != "" || without.Slivers["pl_plain"].Spec.Runtime != "" {
		t.Errorf("runc slivers on a node without runsc: %+v", without.Slivers)
	}
	with := Compute(st, Env{XIDs: xids, NCPU: 2, Runtimes: map[string]bool{"": true, "runsc": true}})
	if len(with.Errors) != 0 || with.Slivers["pl_gv"].Spec.Runtime != "runsc" || with.Slivers["pl_rc"].Spec.Runtime != "" {
		t.Errorf("node with runsc: errors %v, slivers %+v", with.Errors, with.Slivers)
	}
}

// TestCodemuxRoutes: the routes handed to codemux are those of enabled
// slivers, sorted, each with its sliver's xid.
func TestCodemuxRoutes(t *testing.T) {
	st := &core.NodeState{Version: "v1", Hostname: "n1.example.org", Slivers: []core.Sliver{
		sliverOf("pl_b", 2, "codemux", "b.example.org,80", "codemux", "a.example.org,81"),
		sliverOf("pl_a", 1, "codemux", "www.example.org,8080,tls=8443"),
		sliverOf("pl_off", 3, "codemux", "off.example.org,80", "enabled", "0"),
	}}
	d := Compute(st, Env{Now: 1500, XIDs: map[string]int{"pl_a": 11, "pl_b": 12, "pl_off": 13}, NCPU: 2})
	got := codemuxRoutes(d)
	want := []CodemuxRoute{
		{Slice: "pl_a", XID: 11, Route: tags.Route{Host: "www.example.org", Port: 8080, TLSPort: 8443}},
		{Slice: "pl_b", XID: 12, Route: tags.Route{Host: "a.example.org", Port: 81}},
		{Slice: "pl_b", XID: 12, Route: tags.Route{Host: "b.example.org", Port: 80}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes %+v\nwant %+v", got, want)
	}
}
