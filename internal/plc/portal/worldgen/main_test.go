package main

import (
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	// Two arcs forming a square: arc 0 goes (0,0)→(10,0)→(10,10), arc 1
	// (stored the other way round) is used reversed (~1 = -2) from
	// (10,10) back to (0,0). Quantized with delta encoding and a transform
	// of 1 degree per unit from (-180,-90).
	const topo = `{"type":"Topology","transform":{"scale":[1,1],"translate":[-180,-90]},
	"arcs":[[[0,0],[10,0],[0,10]],[[0,0],[0,10],[10,0]]],
	"objects":{"countries":{"type":"GeometryCollection","geometries":[
	 {"type":"Polygon","arcs":[[0,-2]]},{"type":"Point","coordinates":[0,0]}]}}}`
	var out strings.Builder
	if err := convert(strings.NewReader(topo), &out); err != nil {
		t.Fatal(err)
	}
	// (lon,lat) = (-180,-90) → (0,1800); (-170,-90) → (100,1800); (-170,-80) → (100,1700); (-180,-80) → (0,1700).
	if want := `d="M0 1800l100 0 0-100-100 0 0 100z"`; !strings.Contains(out.String(), want) {
		t.Fatalf("got %s, want path %s", out.String(), want)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "decode TopoJSON"},
		{`{"type":"FeatureCollection"}`, "not a TopoJSON topology"},
		{`{"type":"Topology","objects":{}}`, `no object "countries"`},
		{`{"type":"Topology","arcs":[],"objects":{"countries":{"geometries":[{"type":"Polygon","arcs":[[3]]}]}}}`, "arc 3 out of range"},
	} {
		err := convert(strings.NewReader(tc.in), &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestUnwrap(t *testing.T) {
	// A ring crossing the antimeridian near Fiji: drawn twice, continuous.
	fiji := []pt{{3590, 1060}, {10, 1060}, {10, 1070}, {3590, 1070}}
	got := unwrap(fiji)
	if len(got) != 2 || got[0][1].x != 3610 || got[1][0].x != -10 {
		t.Fatalf("fiji: %v", got)
	}
	// A ring round the pole (Antarctica) and a plain ring stay as they are.
	pole := []pt{{0, 1700}, {1800, 1710}, {3599, 1700}, {3599, 1800}, {0, 1800}}
	plain := []pt{{100, 100}, {200, 100}, {200, 200}}
	for _, r := range [][]pt{pole, plain} {
		if got := unwrap(r); len(got) != 1 || len(got[0]) != len(r) || got[0][2] != r[2] {
			t.Fatalf("%v: %v", r, got)
		}
	}
}
