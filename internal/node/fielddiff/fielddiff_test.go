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
