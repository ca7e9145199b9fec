package portal

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Line plots drawn on the server as inline SVG: no script, no library
// from the internet. Only numbers and escaped labels reach the markup.

// series is one line of a plot.
type series struct {
	Name  string
	Class string // the CSS class of its colour: s1, s2, s3
	Y     []float64
}

// maxPoints bounds the points of a line: longer series are averaged in
// buckets, so a day of minutes stays a few KB.
const maxPoints = 240

// Plot geometry (viewBox units).
const (
	plotW, plotH           = 600.0, 180.0
	padL, padR, padT, padB = 48.0, 8.0, 10.0, 22.0
)

// linePlot draws series over the times at (UNIX seconds, ascending, one
// per point), with the y range from 0 to the largest value, the first
// and last times below and a legend.
func linePlot(title string, at []int64, ss []series) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="plot"><svg viewBox="0 0 %g %g" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, plotW, plotH, html.EscapeString(title))
	if len(at) < 2 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" class="axis">not enough samples yet</text></svg><figcaption>%s</figcaption></figure>`, padL, plotH/2, html.EscapeString(title))
		return template.HTML(b.String())
	}
	xs := bucketTimes(at)
	top := 0.0
	lines := make([][]float64, len(ss))
	for i, s := range ss {
		lines[i] = bucket(s.Y, len(at))
		for _, v := range lines[i] {
			top = max(top, v)
		}
	}
	top = niceCeil(top)
	t0, t1 := float64(xs[0]), float64(xs[len(xs)-1])
	x := func(t int64) float64 { return padL + (float64(t)-t0)/(t1-t0)*(plotW-padL-padR) }
	y := func(v float64) float64 { return plotH - padB - v/top*(plotH-padT-padB) }
	// Axes and labels.
	fmt.Fprintf(&b, `<path class="grid" d="M%g %gH%gM%g %gH%g"/>`, padL, y(0), plotW-padR, padL, y(top), plotW-padR)
	fmt.Fprintf(&b, `<text class="axis" x="%g" y="%g" text-anchor="end">%s</text>`, padL-4, y(top)+4, num(top))
	fmt.Fprintf(&b, `<text class="axis" x="%g" y="%g" text-anchor="end">0</text>`, padL-4, y(0)+4)
	fmt.Fprintf(&b, `<text class="axis" x="%g" y="%g">%s</text>`, padL, plotH-4, hhmm(xs[0]))
	fmt.Fprintf(&b, `<text class="axis" x="%g" y="%g" text-anchor="end">%s UTC</text>`, plotW-padR, plotH-4, hhmm(xs[len(xs)-1]))
	for i, s := range ss {
		b.WriteString(`<polyline class="line ` + s.Class + `" points="`)
		for j, v := range lines[i] {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(x(xs[j]), 'f', 1, 64) + "," + strconv.FormatFloat(y(v), 'f', 1, 64))
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg><figcaption>` + html.EscapeString(title) + `:`)
	for _, s := range ss {
		last := s.Y[len(s.Y)-1]
		fmt.Fprintf(&b, ` <span class="key %s">%s</span> %s`, s.Class, html.EscapeString(s.Name), num(last))
	}
	b.WriteString(` (now)</figcaption></figure>`)
	return template.HTML(b.String())
}

// buckets is how many points n samples become, and their size.
func buckets(n int) (int, int) {
	size := (n + maxPoints - 1) / maxPoints
	return (n + size - 1) / size, size
}

// bucket averages v in buckets of the size n samples need.
func bucket(v []float64, n int) []float64 {
	k, size := buckets(n)
	out := make([]float64, 0, k)
	for i := 0; i < len(v); i += size {
		sum, c := 0.0, 0
		for _, x := range v[i:min(i+size, len(v))] {
			sum += x
			c++
		}
		out = append(out, sum/float64(c))
	}
	return out
}

// bucketTimes is the time of each bucket: its first sample's.
func bucketTimes(at []int64) []int64 {
	_, size := buckets(len(at))
	var out []int64
	for i := 0; i < len(at); i += size {
		out = append(out, at[i])
	}
	return out
}

// niceCeil rounds a plot's top up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func hhmm(unix int64) string { return time.Unix(unix, 0).UTC().Format("01-02 15:04") }
