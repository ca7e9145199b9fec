// Command worldgen converts world-atlas' countries-110m.json (TopoJSON of
// Natural Earth's 1:110m countries, public domain; the npm package
// world-atlas, ISC licence) into the portal's embedded world map
// static/world.svg: every country outline as one SVG path in the
// equirectangular projection, x = (lon+180)*10 and y = (90-lat)*10 in a
// 3600x1800 viewBox, with relative integer moves so the file stays small.
// It runs at development time, not at build time:
//
//	npm pack world-atlas && tar xzf world-atlas-*.tgz
//	go run ./internal/plc/portal/worldgen package/countries-110m.json > internal/plc/portal/static/world.svg
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// topology is the part of a TopoJSON file the map needs.
type topology struct {
	Type      string `json:"type"`
	Transform *struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64 `json:"arcs"`
	Objects map[string]struct {
		Geometries []struct {
			Type string          `json:"type"`
			Arcs json.RawMessage `json:"arcs"`
		} `json:"geometries"`
	} `json:"objects"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: worldgen countries-110m.json > world.svg")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "worldgen:", err)
		os.Exit(1)
	}
	defer f.Close()
	w := bufio.NewWriter(os.Stdout)
	if err := convert(f, w); err != nil {
		fmt.Fprintln(os.Stderr, "worldgen:", err)
		os.Exit(1)
	}
	w.Flush()
}

// convert reads TopoJSON from r and writes the SVG map to w.
func convert(r io.Reader, w io.Writer) error {
	var t topology
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return fmt.Errorf("decode TopoJSON: %w", err)
	}
	if t.Type != "Topology" {
		return fmt.Errorf("not a TopoJSON topology (type %q)", t.Type)
	}
	countries, ok := t.Objects["countries"]
	if !ok {
		return fmt.Errorf("no object \"countries\"")
	}
	arcs := decodeArcs(t)
	var d strings.Builder
	for i, g := range countries.Geometries {
		var polys [][][]int
		switch g.Type {
		case "Polygon":
			var p [][]int
			if err := json.Unmarshal(g.Arcs, &p); err != nil {
				return fmt.Errorf("geometry %d: %w", i, err)
			}
			polys = [][][]int{p}
		case "MultiPolygon":
			if err := json.Unmarshal(g.Arcs, &polys); err != nil {
				return fmt.Errorf("geometry %d: %w", i, err)
			}
		default:
			continue
		}
		for _, poly := range polys {
			for _, ring := range poly {
				pts, err := ringPoints(arcs, ring)
				if err != nil {
					return fmt.Errorf("geometry %d: %w", i, err)
				}
				for _, r := range unwrap(pts) {
					writeRing(&d, r)
				}
			}
		}
	}
	_, err := fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 3600 1800"><!-- Natural Earth 1:110m countries (public domain) via world-atlas 2.0.2 (ISC); see world.LICENSE --><path fill="#dfe6d9" stroke="#9aa69a" stroke-width="2" stroke-linejoin="round" d="%s"/></svg>`+"\n", d.String())
	return err
}

type pt struct{ x, y int }

// decodeArcs undoes the quantization (delta-encoded integers, then the
// transform) and projects to the map's integer coordinates.
func decodeArcs(t topology) [][]pt {
	out := make([][]pt, len(t.Arcs))
	for i, arc := range t.Arcs {
		var x, y float64
		for _, p := range arc {
			lon, lat := p[0], p[1]
			if t.Transform != nil {
				x, y = x+p[0], y+p[1]
				lon = x*t.Transform.Scale[0] + t.Transform.Translate[0]
				lat = y*t.Transform.Scale[1] + t.Transform.Translate[1]
			}
			out[i] = append(out[i], project(lon, lat))
		}
	}
	return out
}

func project(lon, lat float64) pt {
	return pt{int(math.Round((lon + 180) * 10)), int(math.Round((90 - lat) * 10))}
}

// ringPoints joins a ring's arcs; a negative index ~i is arc i reversed;
// each arc after the first starts where the previous one ended.
func ringPoints(arcs [][]pt, ring []int) ([]pt, error) {
	var out []pt
	for k, idx := range ring {
		rev := idx < 0
		if rev {
			idx = ^idx
		}
		if idx >= len(arcs) {
			return nil, fmt.Errorf("arc %d out of range (%d arcs)", idx, len(arcs))
		}
		a := arcs[idx]
		seq := make([]pt, len(a))
		for j := range a {
			if rev {
				seq[j] = a[len(a)-1-j]
			} else {
				seq[j] = a[j]
			}
		}
		if k > 0 && len(seq) > 0 {
			seq = seq[1:]
		}
		out = append(out, seq...)
	}
	return out, nil
}

// unwrap handles a ring that crosses the antimeridian (a step of more than
// half the map's width: Fiji, Chukotka): its x are made continuous and the
// ring is drawn twice, once shifted by the map's width, so that each side
// shows its part (the viewBox clips the rest). A ring that goes round a
// pole (Antarctica: the continuous x would not come back to the start) is
// left as it is.
func unwrap(pts []pt) [][]pt {
	const width = 3600
	out := make([]pt, len(pts))
	off, lo, hi := 0, 0, 0
	for i, p := range pts {
		if i > 0 {
			switch dx := p.x + off - out[i-1].x; {
			case dx > width/2:
				off -= width
			case dx < -width/2:
				off += width
			}
		}
		out[i] = pt{p.x + off, p.y}
		lo, hi = min(lo, out[i].x), max(hi, out[i].x)
	}
	if off != 0 || (lo >= 0 && hi <= width) {
		return [][]pt{pts}
	}
	shift := width
	if hi > width {
		shift = -width
	}
	moved := make([]pt, len(out))
	for i, p := range out {
		moved[i] = pt{p.x + shift, p.y}
	}
	return [][]pt{out, moved}
}

// writeRing appends a closed subpath: an absolute move, then relative
// lines, skipping repeated points.
func writeRing(d *strings.Builder, pts []pt) {
	if len(pts) < 3 {
		return
	}
	fmt.Fprintf(d, "M%d %d", pts[0].x, pts[0].y)
	prev := pts[0]
	first := true
	for _, p := range pts[1:] {
		dx, dy := p.x-prev.x, p.y-prev.y
		if dx == 0 && dy == 0 {
			continue
		}
		if first {
			d.WriteByte('l')
			first = false
		} else if dx >= 0 {
			d.WriteByte(' ')
		}
		d.WriteString(strconv.Itoa(dx))
		if dy >= 0 {
			d.WriteByte(' ')
		}
		d.WriteString(strconv.Itoa(dy))
		prev = p
	}
	d.WriteByte('z')
}
