package nmapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestArgsFromCLI(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, `{}`},
		{[]string{`{"slice":"pl_a"}`}, `{"slice":"pl_a"}`},
		{[]string{"slice=pl_a"}, `{"slice":"pl_a"}`},
		{[]string{"slice=pl_a", "amount.cpu_share=2", "amount.net_max_rate=1000", "until=1900000000"}, `{"amount":{"cpu_share":2,"net_max_rate":1000},"slice":"pl_a","until":1900000000}`},
		{[]string{`slice="123"`, "flag=true", "empty="}, `{"empty":"","flag":true,"slice":"123"}`},
		{[]string{`loans=[{"to":"pl_b"}]`}, `{"loans":[{"to":"pl_b"}]}`},
		{[]string{"rcap=rcap1.AAAA-_x"}, `{"rcap":"rcap1.AAAA-_x"}`},
	} {
		got, err := ArgsFromCLI(c.args)
		if err != nil || string(got) != c.want {
			t.Errorf("%q: %s %v, want %s", c.args, got, err, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"slice"}, "not key=value"},
		{[]string{"Slice=x"}, "key \"Slice\""},
		{[]string{"a..b=1"}, "is not lower-case"},
		{[]string{"a=1", "a=2"}, "a given twice"},
		{[]string{"a=1", "a.b=2"}, "a is both a value and an object"},
		{[]string{`{"a":1}`, "b=2"}, "the only argument"},
		{[]string{`{"a":`}, "not one JSON object"},
		{[]string{`{"a":1} {}`}, "not one JSON object"},
	} {
		_, err := ArgsFromCLI(c.args)
		if core.ErrorCode(err) != core.Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want Invalid %q", c.args, err, c.want)
		}
	}
}

// FuzzArgsFromCLI: no command line makes ArgsFromCLI panic; what it
// accepts is one JSON object (what the server's ReadArgs accepts), and
// each key=value it took is in it.
func FuzzArgsFromCLI(f *testing.F) {
	f.Add("slice=pl_a\x00amount.cpu_share=2")
	f.Add(`{"slice":"x"}`)
	f.Add("a=1\x00a.b=2")
	f.Add("a.b.c=[1,{\"x\":null}]\x00d=\"q\"")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		raw, err := ArgsFromCLI(args)
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("%q: code %s: %v", args, core.ErrorCode(err), err)
			}
			return
		}
		if _, err := ReadArgs(strings.NewReader(string(raw))); err != nil {
			t.Fatalf("%q gave %s, which the server refuses: %v", args, raw, err)
		}
		if strings.HasPrefix(strings.TrimSpace(args[0]), "{") {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		for _, a := range args {
			k, _, _ := strings.Cut(a, "=")
			obj := m
			parts := strings.Split(k, ".")
			for _, p := range parts[:len(parts)-1] {
				next, ok := obj[p].(map[string]any)
				if !ok {
					t.Fatalf("%q: %s has no object %s", args, raw, p)
				}
				obj = next
			}
			if _, ok := obj[parts[len(parts)-1]]; !ok {
				t.Fatalf("%q: %s lacks %s", args, raw, k)
			}
		}
	})
}
