package tags

import (
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestParseVsysGrant(t *testing.T) {
	for _, c := range []struct {
		in   string
		want VsysGrant
		err  string
	}{
		{"sensor", VsysGrant{Op: "sensor"}, ""},
		{" dataset:census ", VsysGrant{Op: "dataset", Scope: "census"}, ""},
		{"fd_tuntap", VsysGrant{Op: "fd_tuntap"}, ""},
		{"pf-mount:Data.v2_1", VsysGrant{Op: "pf-mount", Scope: "Data.v2_1"}, ""},
		{"", VsysGrant{}, `operation ""`},
		{"Sensor", VsysGrant{}, `operation "Sensor"`},
		{"1op", VsysGrant{}, `operation "1op"`},
		{"a/b", VsysGrant{}, `operation "a/b"`},
		{"dataset:", VsysGrant{}, `scope ""`},
		{"dataset:../etc", VsysGrant{}, `scope "../etc"`},
		{"dataset:a:b", VsysGrant{}, `scope "a:b"`},
		{"dataset:a b", VsysGrant{}, `scope "a b"`},
		{strings.Repeat("a", 33), VsysGrant{}, "operation"},
	} {
		g, err := ParseVsysGrant(c.in)
		if c.err == "" {
			if err != nil || g != c.want {
				t.Errorf("%q: %+v %v, want %+v", c.in, g, err, c.want)
			}
			if g.String() != strings.TrimSpace(c.in) {
				t.Errorf("%q: String %q", c.in, g.String())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || core.ErrorField(err) != Vsys {
			t.Errorf("%q: %v, want an error on field vsys naming %s", c.in, err, c.err)
		}
		if Check(Vsys, c.in) == nil {
			t.Errorf("%q: Check accepts it", c.in)
		}
	}
}

func TestVsysGrants(t *testing.T) {
	attrs := []core.Attribute{{TagName: Vsys, Value: "sensor:pl_a"}, {TagName: "nm_api", Value: "1"},
		{TagName: Vsys, Value: "dataset:census"}, {TagName: Vsys, Value: "Bad Value"}, {TagName: Vsys, Value: "dataset:weather"}}
	g, bad := VsysGrants(attrs)
	if len(g) != 3 || len(bad) != 1 || bad[0] != "Bad Value" {
		t.Fatalf("grants %v, bad %v", g, bad)
	}
	for _, c := range []struct {
		op, scope string
		want      bool
	}{
		{"sensor", "pl_a", true}, {"sensor", "pl_b", false}, {"sensor", "", false},
		{"dataset", "census", true}, {"dataset", "weather", true}, {"dataset", "secret", false},
		{"ports", "", false},
	} {
		if got := VsysAllows(g, c.op, c.scope); got != c.want {
			t.Errorf("VsysAllows(%s, %q) = %v", c.op, c.scope, got)
		}
	}
	if !VsysGranted(g, "dataset") || VsysGranted(g, "ports") {
		t.Error("VsysGranted")
	}
	if !VsysAllows([]VsysGrant{{Op: "sensor"}}, "sensor", "") || !VsysAllows([]VsysGrant{{Op: "sensor"}}, "sensor", "pl_x") {
		t.Error("an unscoped grant allows every scope")
	}
	// The original's writers: admins (always) and the slice's PIs, users
	// and techs; repeatable.
	if tg, _ := Lookup(Vsys); !slices.Equal(tg.Roles, []string{core.RolePI, core.RoleUser, core.RoleTech}) || !tg.Multi {
		t.Errorf("vsys must be written by pi, user and tech as in the original, and repeatable: %+v", tg)
	}
}

func FuzzParseVsysGrant(f *testing.F) {
	for _, s := range []string{"sensor", "dataset:census", "a:", ":b", "x:y:z", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseVsysGrant(s)
		if err != nil {
			return
		}
		again, err := ParseVsysGrant(g.String())
		if err != nil || again != g {
			t.Fatalf("%q -> %+v -> %q -> %+v %v", s, g, g.String(), again, err)
		}
		if strings.ContainsAny(g.String(), " \t\n/\x00") {
			t.Fatalf("%q accepted", g.String())
		}
	})
}
