package tags

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

var update = flag.Bool("update", false, "rewrite docs/tags.md from the table")

const docPath = "../../../docs/tags.md"

// TestDocUpToDate fails when docs/tags.md is not what the table says.
func TestDocUpToDate(t *testing.T) {
	want := Markdown()
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is stale: run go test ./internal/core/tags -update", docPath)
	}
}

func TestTableWellFormed(t *testing.T) {
	for _, tag := range All() {
		if tag.Name == "" || tag.Category == "" || tag.Doc == "" {
			t.Errorf("%+v: name, category and doc are required", tag)
		}
		if strings.ContainsAny(tag.Doc+tag.Category+tag.Name, ";|\n") {
			t.Errorf("%s: ';', '|' and line breaks are not allowed in the table's text (SQL seed, Markdown)", tag.Name)
		}
		if tag.Kind == Int && tag.Min > tag.Max {
			t.Errorf("%s: min %d > max %d", tag.Name, tag.Min, tag.Max)
		}
		if tag.Default != "" {
			if err := tag.Check(tag.Default); err != nil {
				t.Errorf("%s: default %q refused: %v", tag.Name, tag.Default, err)
			}
		}
		for _, r := range tag.Roles {
			switch r {
			case core.RolePI, core.RoleUser, core.RoleTech, core.RoleNode:
			default:
				t.Errorf("%s: unknown role %q", tag.Name, r)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name, value string
		bad         string // substring of the error; "" = accepted
	}{
		{CPUShare, "256", ""},
		{CPUShare, " 3 ", ""},
		{CPUShare, "257", "cpu_share: 257 is out of range 0..256"},
		{CPUShare, "x", `cpu_share: "x" is not an integer`},
		{CPUCapPct, "102400", ""},
		{CPUCapPct, "102401", "out of range 0..102400"},
		{CPUCapPct, "-1", "out of range"},
		{MemMax, "0", ""},
		{MemMax, "4095", "mem_max: 4095 is below the minimum of 4096 (0 = no limit)"},
		{MemMax, "4096", ""},
		{MemlockHard, "100", "memlock_hard: 100 is below the minimum of 4096"},
		{NProc, "8", "below the minimum of 16"},
		{NoFile, "0", "out of range 64..1048576"},
		{NoFile, "63", "out of range 64..1048576"},
		{NoFileHard, "1048577", "nofile_hard: 1048577 is out of range"},
		{DiskMax, "1023", "below the minimum of 1024"},
		{NetMaxRate, "-1", ""},
		{NetMaxRate, "-2", "out of range -1..100000000"},
		{Enabled, "-5", ""},
		{PortsTag, "tcp/80, udp/5000-5010 8080", ""},
		{PortsTag, "tcp/0", "ports: port \"tcp/0\": 0 is out of range 1-65535"},
		{PortsTag, "sctp/1", "is not tcp or udp"},
		{Vref, "f39-x86_64", ""},
		{Vref, "../etc", "vref: \"../etc\" is not an image name"},
		{InitScriptCode, "echo\x00", "initscript_code: value contains NUL"},
		{Runtime, "runsc", ""},
		{Runtime, " runc ", ""},
		{Runtime, "kata", `runtime: unknown value "kata": want one of runc, runsc`},
		{SSHPort, "2222", ""},
		{SSHPort, "70000", "ssh_port: 70000 is out of range 1..65535"},
		{"arch", "anything", ""},
		{"no_such_tag", "whatever\x00", ""},
	} {
		err := Check(c.name, c.value)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("Check(%s, %q) = %v, want accepted", c.name, c.value, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("Check(%s, %q) = %v, want error containing %q", c.name, c.value, err, c.bad)
		case err != nil && (core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != c.name):
			t.Errorf("Check(%s, %q) = %v: want an Invalid error on field %s", c.name, c.value, err, c.name)
		}
	}
}

func TestAliasesShareRange(t *testing.T) {
	for _, tag := range All() {
		if tag.Alias == "" {
			continue
		}
		a := MustLookup(tag.Alias)
		if tag.Kind != a.Kind || tag.Min != a.Min || tag.Max != a.Max || tag.ZeroMeans != a.ZeroMeans {
			t.Errorf("%s: alias of %s with a different kind or range", tag.Name, a.Name)
		}
	}
}

func TestDefaults(t *testing.T) {
	if DefaultInt(MemMax) != 512*1024 || DefaultInt(CPUShare) != 1 {
		t.Errorf("defaults: mem_max %d, cpu_share %d", DefaultInt(MemMax), DefaultInt(CPUShare))
	}
	if MaxKernelShares != 262144 {
		t.Errorf("MaxKernelShares = %d, want the kernel's cpu.shares maximum 262144", MaxKernelShares)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"1", "-1", " 4096 ", "tcp/80,udp/1-2", "default", "\x00"} {
		f.Add(CPUCapPct, s)
		f.Add(PortsTag, s)
		f.Add(Vref, s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		err := Check(name, value)
		if err != nil && core.ErrorField(err) != name {
			t.Fatalf("Check(%q, %q) = %v: does not name the tag", name, value, err)
		}
	})
}
