package geni

import (
	"regexp"
	"strings"
	"testing"
)

var nodeSliceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func TestForeignLoginBase(t *testing.T) {
	seen := map[string]string{}
	for _, auth := range []string{"plc-a.test", "PLC-A.test", "plc-b.test", "ch.geni.net", "ch.geni.net:proj1", "ch.geni.net:proj2", "123.example", "-", "wall2.ilabt.iminds.be", "x"} {
		lb := ForeignLoginBase(auth)
		if !regexp.MustCompile(`^[a-z][a-z0-9]{5,10}$`).MatchString(lb) {
			t.Errorf("ForeignLoginBase(%q) = %q: not a login_base that starts a node's slice name", auth, lb)
		}
		if lb != ForeignLoginBase(auth) {
			t.Errorf("ForeignLoginBase(%q) is not deterministic", auth)
		}
		key := strings.ToLower(auth)
		if other, ok := seen[lb]; ok && other != key {
			t.Errorf("%q and %q share login_base %q", auth, other, lb)
		}
		seen[lb] = key
	}
	if got := ForeignLoginBase("plc-a.test"); !strings.HasPrefix(got, "plca") || got != ForeignLoginBase("PLC-A.TEST") {
		t.Errorf("ForeignLoginBase(plc-a.test) = %q", got)
	}
	if got := ForeignLoginBase("123.example"); !strings.HasPrefix(got, "g123") {
		t.Errorf("ForeignLoginBase(123.example) = %q", got)
	}
}

func TestForeignSliceName(t *testing.T) {
	lb := ForeignLoginBase("plc-a.test")
	for _, tc := range []struct{ name, want, err string }{
		{"pr_geni", lb + "_pr_geni", ""},
		{"My-Exp1", lb + "_my_exp1", ""},
		{"0day", lb + "_0day", ""},
		{"", "", "empty"},
		{"-x", "", "starts with '-'"},
		{"a.b", "", "holds '.'"},
		{"a b", "", "holds ' '"},
		{"é", "", "starts with"},
		{strings.Repeat("a", 32-len(lb)), "", "too long"},
		{strings.Repeat("a", 32-len(lb)-1), lb + "_" + strings.Repeat("a", 32-len(lb)-1), ""},
	} {
		got, err := ForeignSliceName(lb, tc.name)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ForeignSliceName(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ForeignSliceName(%q) = %q, %v; want an error with %q", tc.name, got, err, tc.err)
		case err == nil && !nodeSliceName.MatchString(got):
			t.Errorf("ForeignSliceName(%q) = %q: nodes refuse it", tc.name, got)
		}
	}
}

// FuzzForeignSliceName: any authority and name map to a name nodes take,
// or are refused.
func FuzzForeignSliceName(f *testing.F) {
	for _, s := range [][2]string{{"plc-a.test", "pr_geni"}, {"ch.geni.net:proj", "My-Exp"}, {"", ""}, {"9", "-"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, auth, name string) {
		lb := ForeignLoginBase(auth)
		if !regexp.MustCompile(`^[a-z][a-z0-9]{5,10}$`).MatchString(lb) {
			t.Fatalf("login_base %q of %q", lb, auth)
		}
		got, err := ForeignSliceName(lb, name)
		if err == nil && !nodeSliceName.MatchString(got) {
			t.Fatalf("ForeignSliceName(%q, %q) = %q: nodes refuse it", lb, name, got)
		}
	})
}
