package netcfg

import (
	"reflect"
	"slices"
	"testing"

	"github.com/planetlab/pl/internal/node/fielddiff"
)

// TestChanges: every field of Sliver is compared (a new one without a diff
// tag fails here), nil and empty ports are the same configuration.
func TestChanges(t *testing.T) {
	if _, err := fielddiff.Fields(reflect.TypeFor[Sliver]()); err != nil {
		t.Fatal(err)
	}
	a := Sliver{Name: "s", XID: 3, Ports: nil, MinRateKbit: 1, MaxRateKbit: 10}
	b := a
	b.Ports = []Port{}
	if c := Changes(a, b); len(c) != 0 {
		t.Errorf("nil vs empty ports: %v", c)
	}
	b.Ports = []Port{{Proto: "tcp", From: 80, To: 80}}
	b.MaxRateKbit = 20
	b.UIDBase = 1 << 28
	if c := Changes(a, b); !slices.Equal(c, []string{"ports", "net_max_rate", "uidbase"}) {
		t.Errorf("Changes = %v", c)
	}
}
