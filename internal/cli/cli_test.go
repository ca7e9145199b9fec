package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/cmdtree"
	"github.com/planetlab/pl/internal/core"
)

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitError},
		{usagef("bad"), ExitUsage},
		{errors.New(`unknown command "x" for "pl"`), ExitUsage},
		{errors.New("accepts 1 arg(s), received 0"), ExitUsage},
		{core.Errorf(core.NotFound, "no such site"), ExitNotFound},
		{fmt.Errorf("ctx: %w", core.Errorf(core.Unauthenticated, "x")), ExitAuth},
		{core.Errorf(core.Forbidden, "x"), ExitAuth},
		{core.FieldErrorf("email", "bad"), ExitInvalid},
		{core.Errorf(core.Conflict, "dup"), ExitInvalid},
		{core.Errorf(core.Unavailable, "down"), ExitError},
		{core.Errorf(core.Internal, "bug"), ExitError},
	} {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestConfigSelect(t *testing.T) {
	t.Setenv("PL_CONFIG_DIR", t.TempDir())
	t.Setenv("PL_PLC", "")
	cfg, err := LoadConfig()
	if err != nil || len(cfg.PLCs) != 0 {
		t.Fatal(cfg, err)
	}
	if _, err := cfg.Select(""); core.ErrorCode(err) != core.Unauthenticated {
		t.Errorf("empty config: %v", err)
	}
	cfg.PLCs["https://a.example.org:8443"] = &PLCEntry{URL: "https://a.example.org:8443", Token: "ta"}
	cfg.PLCs["https://b.example.org:8443"] = &PLCEntry{URL: "https://b.example.org:8443", Token: "tb"}
	cfg.Current = "https://a.example.org:8443"
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(os.Getenv("PL_CONFIG_DIR"), "config.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode: %v %v", fi, err)
	}
	cfg, _ = LoadConfig()
	for sel, want := range map[string]string{"": "ta", "https://b.example.org:8443/": "tb", "b.example.org": "tb", "a.example.org:8443": "ta"} {
		e, err := cfg.Select(sel)
		if err != nil || e.Token != want {
			t.Errorf("Select(%q) = %v %v, want token %s", sel, e, err, want)
		}
	}
	t.Setenv("PL_PLC", "b.example.org")
	if e, _ := cfg.Select(""); e == nil || e.Token != "tb" {
		t.Errorf("PL_PLC selection: %v", e)
	}
	if _, err := cfg.Select("c.example.org"); core.ErrorCode(err) != core.Unauthenticated {
		t.Errorf("unknown PLC: %v", err)
	}
}

func TestInterfaceRecord(t *testing.T) {
	rec, err := interfaceRecord("10.1.2.3/22", "", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := core.Record{"type": "ipv4", "is_primary": true, "method": "static", "ip": "10.1.2.3", "network": "10.1.0.0",
		"netmask": "255.255.252.0", "broadcast": "10.1.3.255", "gateway": "10.1.0.1", "dns1": "10.1.0.1"}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("got %v\nwant %v", rec, want)
	}
	rec, _ = interfaceRecord("192.168.5.9", "192.168.5.254", "8.8.8.8", "AA:BB:CC:DD:EE:FF", 1000000)
	if rec["netmask"] != "255.255.255.0" || rec["gateway"] != "192.168.5.254" || rec["dns1"] != "8.8.8.8" || rec["bwlimit"] != int64(1000000) {
		t.Errorf("explicit: %v", rec)
	}
	if rec, _ := interfaceRecord("", "", "", "", 0); rec["method"] != "dhcp" || rec["ip"] != nil {
		t.Errorf("dhcp: %v", rec)
	}
	for _, bad := range []string{"10.1.2.3/40", "not-an-ip", "::1", "fe80::1/64"} {
		if _, err := interfaceRecord(bad, "", "", "", 0); core.ErrorField(err) != "ip" {
			t.Errorf("interfaceRecord(%q): %v", bad, err)
		}
	}
}

func TestParseSetValue(t *testing.T) {
	for in, want := range map[string]any{
		"5": int64(5), "1.5": 1.5, "true": true, "null": nil, `"5"`: "5", "hello": "hello",
		"[1,2]": []int64{1, 2}, "": "", `1,"x":2`: `1,"x":2`, "{": "{",
	} {
		if got := parseSetValue(in); !reflect.DeepEqual(got, want) {
			t.Errorf("parseSetValue(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestCommandTree(t *testing.T) {
	root := NewRoot()
	node := cmdtree.Sub(root, "node", "")
	if node.RunE != nil || node.Run != nil {
		t.Error("pl node must be left for the node manager to attach its daemon")
	}
	for _, path := range [][]string{
		{"login"}, {"logout"}, {"whoami"},
		{"site", "add"}, {"site", "list"}, {"site", "show"}, {"site", "update"}, {"site", "delete"},
		{"person", "add"}, {"person", "enable"}, {"person", "disable"}, {"person", "role", "add"}, {"person", "role", "remove"},
		{"person", "site", "add"}, {"person", "site", "remove"}, {"person", "site", "primary"},
		{"key", "add"}, {"key", "list"}, {"key", "delete"}, {"key", "blacklist"},
		{"node", "register"}, {"node", "list"}, {"node", "show"}, {"node", "delete"}, {"node", "state"}, {"node", "token"},
		{"slice", "create"}, {"slice", "list"}, {"slice", "show"}, {"slice", "renew"}, {"slice", "delete"},
		{"slice", "add-nodes"}, {"slice", "remove-nodes"}, {"slice", "add-users"}, {"slice", "remove-users"},
		{"slice", "set"}, {"slice", "unset"}, {"slice", "links"}, {"tagtype", "add"}, {"initscript", "add"}, {"exit-codes"},
		{"geni", "cert"}, {"geni", "credential"},
	} {
		c, rest, err := root.Find(path)
		if err != nil || len(rest) != 0 || c.Name() != path[len(path)-1] {
			t.Errorf("pl %s: %v %v", strings.Join(path, " "), c, err)
		}
	}
	// completion scripts come from cobra
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"completion", "bash"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "bash completion") {
		t.Errorf("completion bash: %v %.100s", err, out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("PL_CONFIG_DIR", t.TempDir())
	for _, args := range [][]string{
		{"site", "show"},
		{"site", "list", "--bogus"},
		{"slice", "renew", "x_y", "--days", "0"},
		{"slice", "renew", "x_y", "--until", "someday"},
		{"site", "update", "x"},
		{"slice", "set", "a", "b"},
	} {
		root := NewRoot()
		root.SetArgs(args)
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		_, err := root.ExecuteC()
		if ExitCode(err) != ExitUsage {
			t.Errorf("pl %s: %v (exit %d), want usage", strings.Join(args, " "), err, ExitCode(err))
		}
	}
	// not logged in: exit 4
	root := NewRoot()
	root.SetArgs([]string{"site", "list"})
	_, err := root.ExecuteC()
	if ExitCode(err) != ExitAuth {
		t.Errorf("not logged in: %v", err)
	}
}

func TestLinksValue(t *testing.T) {
	p := netip.MustParsePrefix("10.200.0.0/24")
	hosts := []string{"a.org", "b.org", "c.org"}
	for _, c := range []struct {
		shape string
		hosts []string
		props linkProps
		want  string
	}{
		{"ring", hosts, linkProps{delay: "10ms"}, "prefix 10.200.0.0/24; r1 a.org b.org rate=10000kbit delay=10ms; r2 b.org c.org rate=10000kbit delay=10ms; r3 c.org a.org rate=10000kbit delay=10ms"},
		{"ring", hosts[:2], linkProps{rate: "20mbit", loss: "1%"}, "prefix 10.200.0.0/24; r1 a.org b.org rate=20000kbit loss=1.0000%"},
		{"lan", hosts, linkProps{}, "prefix 10.200.0.0/24; lan x a.org b.org c.org rate=10000kbit"},
	} {
		got, err := linksValue(c.shape, "x", p, c.hosts, c.props)
		if err != nil || got != c.want {
			t.Errorf("%s %v %+v: %q %v, want %q", c.shape, c.hosts, c.props, got, err, c.want)
		}
	}
	for _, c := range []struct {
		shape string
		hosts []string
		props linkProps
		want  string
		code  int
	}{
		{"ring", hosts[:1], linkProps{}, "at least 2 nodes", ExitUsage},
		{"star", hosts, linkProps{}, `unknown shape "star"`, ExitUsage},
		{"ring", hosts, linkProps{delay: "soon"}, `link r1: delay "soon" is not a duration`, ExitInvalid},
		{"ring", []string{"a.org", "b.org", "a.org"}, linkProps{}, "duplicates", ExitInvalid},
		{"lan", hosts[:1], linkProps{}, "want at least 2", ExitInvalid},
	} {
		_, err := linksValue(c.shape, "x", p, c.hosts, c.props)
		if err == nil || !strings.Contains(err.Error(), c.want) || ExitCode(err) != c.code {
			t.Errorf("%s %v %+v: %v (exit %d), want %q (exit %d)", c.shape, c.hosts, c.props, err, ExitCode(err), c.want, c.code)
		}
	}
	if got := defaultLinksPrefix(7).String(); got != "10.128.7.0/24" {
		t.Errorf("default prefix of slice 7: %s", got)
	}
	if got := defaultLinksPrefix(32767).String(); got != "10.255.255.0/24" {
		t.Errorf("default prefix of slice 32767: %s", got)
	}
}
