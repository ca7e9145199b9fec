package portal

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func TestLinePlot(t *testing.T) {
	at := []int64{0, 60, 120}
	got := string(linePlot(`load <"x">`, at, []series{{Name: "mean", Class: "s1", Y: []float64{1, 3, 2}}}))
	for _, want := range []string{
		`aria-label="load &lt;&#34;x&#34;&gt;"`,
		`<polyline class="line s1" points="48.0,`,                     // three points, the first at the left edge
		`<text class="axis" x="44" y="14" text-anchor="end">5</text>`, // top rounded up from 3
		`<span class="key s1">mean</span> 2 (now)`,
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("plot lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got[strings.Index(got, `points="`):], ","); n != 3 {
		t.Fatalf("%d points, want 3:\n%s", n, got)
	}
	if got := string(linePlot("x", at[:1], nil)); !strings.Contains(got, "not enough samples") {
		t.Fatalf("one sample: %s", got)
	}
	// A day of minutes becomes at most maxPoints points.
	long := make([]int64, 1440)
	y := make([]float64, 1440)
	for i := range long {
		long[i], y[i] = int64(i*60), float64(i%7)
	}
	got = string(linePlot("x", long, []series{{Name: "a", Class: "s1", Y: y}}))
	pts := got[strings.Index(got, `points="`)+8:]
	pts = pts[:strings.Index(pts, `"`)]
	if n := len(strings.Fields(pts)); n > maxPoints || n < maxPoints/2 {
		t.Fatalf("1440 samples drawn as %d points", n)
	}
}

func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 3: 5, 7: 10, 12: 20, 450: 500} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", v, got, want)
		}
	}
}

// BenchmarkOverviewPlots draws the admin overview's four plots from a
// full day of samples (1,440 a series) and reports their size, raw and
// gzip-compressed.
func BenchmarkOverviewPlots(b *testing.B) {
	at := make([]int64, 1440)
	y := make([]float64, 1440)
	for i := range at {
		at[i], y[i] = int64(i*60), float64(i%97)/7
	}
	three := []series{{Name: "a", Class: "s1", Y: y}, {Name: "b", Class: "s2", Y: y}, {Name: "c", Class: "s3", Y: y}}
	var out string
	for b.Loop() {
		out = ""
		for _, n := range []int{3, 2, 2, 2} {
			out += string(linePlot("plot", at, three[:n]))
		}
	}
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte(out))
	w.Close()
	b.ReportMetric(float64(len(out))/1024, "KB")
	b.ReportMetric(float64(buf.Len())/1024, "gz-KB")
}
