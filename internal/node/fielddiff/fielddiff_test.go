package fielddiff

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

type inner struct {
	A int    `diff:"a,live"`
	B string `diff:"b,rebuild"`
}

type outer struct {
	Name  string            `diff:"name"`
	List  []int             `diff:"list,live"`
	Map   map[string]string `diff:"map,live"`
	In    inner             `diff:",inline"`
	Other inner             `diff:"other,rebuild"`
	Skip  string            `diff:"skip,ignored"`
	priv  int
}

func TestDiff(t *testing.T) {
	a := outer{Name: "x", List: nil, Map: map[string]string{}, In: inner{1, "b"}, priv: 1}
	if d := Diff(a, outer{Name: "x", List: []int{}, In: inner{1, "b"}, priv: 2}); len(d) != 0 {
		t.Errorf("nil and empty, unexported: %v", Names(d))
	}
	b := a
	b.List = []int{1}
	b.In.B = "c"
	b.Other.A = 3
	d := Diff(a, b)
	if got := Names(d); !slices.Equal(got, []string{"list", "b", "other"}) {
		t.Errorf("names = %v", got)
	}
	if c := Classes(d); !c["live"] || !c["rebuild"] || len(c) != 2 {
		t.Errorf("classes = %v", c)
	}
	if d[1].Path != "In.B" {
		t.Errorf("path = %q", d[1].Path)
	}
}

func TestFieldsRefusesUntagged(t *testing.T) {
	type bad struct {
		A int `diff:"a"`
		B int
		C struct {
			D int
		} `diff:",inline"`
		E int `diff:""`
	}
	_, err := Fields(reflect.TypeFor[bad]())
	if err == nil || !strings.Contains(err.Error(), "without a diff tag: B, C.D, E (empty name)") {
		t.Fatalf("err = %v", err)
	}
	type dup struct {
		A int `diff:"x"`
		B int `diff:"x"`
	}
	if _, err := Fields(reflect.TypeFor[dup]()); err == nil || !strings.Contains(err.Error(), `both named "x"`) {
		t.Fatalf("dup: %v", err)
	}
	if _, err := Fields(reflect.TypeFor[int]()); err == nil {
		t.Fatal("int accepted")
	}
}

type limits struct {
	CPU  uint64 `diff:"cpu"`
	Mem  int64  `diff:"mem"`
	Pids int64  `diff:"pids"`
	Disk int64  `diff:"disk"`
}

type spec struct {
	Name   string   `diff:"name"`
	XID    int      `diff:"xid"`
	Image  string   `diff:"image"`
	Keys   []string `diff:"keys"`
	Script string   `diff:"script"`
	On     bool     `diff:"on"`
	Limits limits   `diff:",inline"`
}

// BenchmarkDiff measures Diff on a sliver-like spec beside the hand-written
// comparison it replaces (the baseline), in the same run.
func BenchmarkDiff(b *testing.B) {
	a := spec{Name: "pl_a", XID: 7, Image: "default", Keys: []string{"ssh-ed25519 AAAA k1", "ssh-ed25519 AAAA k2"}, Script: "echo hi", On: true,
		Limits: limits{1024, 512 << 20, 1024, 10 << 30}}
	c := a
	c.Keys = slices.Clone(a.Keys)
	c.Limits.Mem = 1 << 30
	b.Run("fielddiff", func(b *testing.B) {
		for range b.N {
			if len(Diff(a, c)) != 1 {
				b.Fatal("diff")
			}
		}
	})
	b.Run("baseline-handwritten", func(b *testing.B) {
		for range b.N {
			var out []string
			add := func(cond bool, name string) {
				if cond {
					out = append(out, name)
				}
			}
			add(a.Name != c.Name, "name")
			add(a.XID != c.XID, "xid")
			add(a.Image != c.Image, "image")
			add(!slices.Equal(a.Keys, c.Keys), "keys")
			add(a.Script != c.Script, "script")
			add(a.On != c.On, "on")
			add(a.Limits.CPU != c.Limits.CPU, "cpu")
			add(a.Limits.Mem != c.Limits.Mem, "mem")
			add(a.Limits.Pids != c.Limits.Pids, "pids")
			add(a.Limits.Disk != c.Limits.Disk, "disk")
			if len(out) != 1 {
				b.Fatal("diff")
			}
		}
	})
}
