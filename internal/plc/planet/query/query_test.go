package query

import (
	"errors"
	"strings"
	"testing"
)

type row struct {
	Host    string   `expr:"hostname"`
	Load    float64  `expr:"load"`
	Disk    float64  `expr:"disk_free_gb"`
	Country string   `expr:"country"`
	Up      bool     `expr:"up"`
	Slivers int64    `expr:"slivers"`
	Top     []string `expr:"top_cpu"`
	hidden  int
}

var rows = []row{
	{Host: "a.jp", Load: 1, Disk: 10, Country: "JP", Up: true, Slivers: 3, Top: []string{"x"}, hidden: 1},
	{Host: "b.br", Load: 3, Disk: 10, Country: "BR", Up: true, Slivers: 1},
	{Host: "c.ch", Load: 0.5, Disk: 2, Country: "CH", Up: false, Slivers: 0},
	{Host: "d.br", Load: 0.1, Disk: 50, Country: "BR", Up: true, Slivers: 7, Top: []string{"y", "x"}},
}

func match(t *testing.T, src string) []string {
	t.Helper()
	q, err := Compile[row](src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	var out []string
	for i := range rows {
		ok, err := q.Match(&rows[i])
		if err != nil {
			t.Fatalf("Match(%q): %v", src, err)
		}
		if ok {
			out = append(out, rows[i].Host)
		}
	}
	return out
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct{ q, want string }{
		{``, "a.jp b.br c.ch d.br"},
		{`   `, "a.jp b.br c.ch d.br"},
		{`load < 2 && disk_free_gb > 5 && country in ["JP","BR"]`, "a.jp d.br"},
		{`up`, "a.jp b.br d.br"},
		{`!up || slivers > 5`, "c.ch d.br"},
		{`hostname endsWith ".br"`, "b.br d.br"},
		{`hostname matches "^[ab]"`, "a.jp b.br"},
		{`"x" in top_cpu`, "a.jp d.br"},
		{`len(top_cpu) == 0`, "b.br c.ch"},
		{`slivers >= 1 and load <= 1`, "a.jp d.br"},
		{`country not in ["BR"]`, "a.jp c.ch"},
	} {
		if got := strings.Join(match(t, tc.q), " "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		q         string
		line, col int
		msg       string
	}{
		{`load < `, 1, 8, "unexpected end of the query"},
		{`lod < 2`, 1, 1, "unknown name lod"},
		{`load + 1`, 1, 1, "must be a condition"},
		{`load < "x"`, 1, 6, "invalid operation: < (mismatched types float64 and string)"},
		{`hostname`, 1, 1, "must be a condition"},
		{`load < 2 &&`, 1, 12, "unexpected end of the query"},
		{"up &&\n  (load < ", 2, 11, "unexpected end of the query"},
		{`hidden == 0`, 1, 1, "unknown name hidden"},
	} {
		_, err := Compile[row](tc.q)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("%q: err = %v, want *Error", tc.q, err)
			continue
		}
		if qe.Line != tc.line || qe.Column != tc.col || !strings.Contains(qe.Msg, tc.msg) {
			t.Errorf("%q: got line %d column %d %q; want line %d column %d containing %q", tc.q, qe.Line, qe.Column, qe.Msg, tc.line, tc.col, tc.msg)
		}
	}
}

func TestLimits(t *testing.T) {
	if _, err := Compile[row](strings.Repeat("up && ", 400) + "up"); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long query: %v", err)
	}
	if _, err := Compile[row](strings.Repeat("(", 100) + "up" + strings.Repeat(")", 100) + strings.Repeat(" && slivers > 1", 100)); err == nil {
		t.Errorf("a query of more than %d nodes compiled", MaxNodes)
	}
	if _, err := Compile[row]("up \xff"); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	// A loop that allocates more than the budget stops with an error.
	q, err := Compile[row](`len(map(1..100000, {# * 2})) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Match(&rows[0]); err == nil || !strings.Contains(err.Error(), "memory budget") {
		t.Errorf("runaway range: %v", err)
	}
}

func TestOrder(t *testing.T) {
	o, err := ParseOrder[row]("-country, load")
	if err != nil {
		t.Fatal(err)
	}
	rs := append([]row(nil), rows...)
	o.Sort(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.Host)
	}
	if strings.Join(got, " ") != "a.jp c.ch d.br b.br" {
		t.Errorf("sorted: %v", got)
	}
	if _, err := ParseOrder[row]("lod"); err == nil || !strings.Contains(err.Error(), `unknown column "lod"`) {
		t.Errorf("bad column: %v", err)
	}
	if _, err := ParseOrder[row]("top_cpu"); err == nil {
		t.Error("a list column sorted")
	}
}

// FuzzCompile: any input either compiles to a condition that evaluates
// without panicking on every row, or is refused with an *Error.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{`load < 2 && disk_free_gb > 5 && country in ["JP","BR"]`, `up`, `"x" in top_cpu`,
		`load < `, `1..100`, `hostname matches "("`, `all(1..10, {# > 0})`, `slivers / 0 == 1`, "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, err := Compile[row](src)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("%q: error %T %v is not a *query.Error", src, err, err)
			}
			return
		}
		for i := range rows {
			if _, err := q.Match(&rows[i]); err != nil {
				var qe *Error
				if !errors.As(err, &qe) {
					t.Fatalf("%q: run error %T %v is not a *query.Error", src, err, err)
				}
			}
		}
	})
}
