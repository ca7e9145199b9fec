package nodecmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

func TestNodeFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	_, err := LoadNodeFile(dir)
	if core.ErrorCode(err) != core.NotFound || !strings.Contains(err.Error(), "pl node join") {
		t.Fatalf("missing node.json: %v", err)
	}
	nf := NodeFile{PLCURL: "https://plc:8443", NodeID: 4, NodeKey: "k", Fingerprint: strings.Repeat("ab", 32), Hostname: "n4"}
	if err := SaveNodeFile(dir, nf); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "node.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node.json: %v %v", fi, err)
	}
	got, err := LoadNodeFile(dir)
	if err != nil || got != nf {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "node.json"), []byte(`{"plc_url":"x"}`), 0o600)
	if _, err := LoadNodeFile(dir); core.ErrorCode(err) != core.Invalid {
		t.Fatalf("incomplete node.json: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "node.json"), []byte(`{`), 0o600)
	if _, err := LoadNodeFile(dir); core.ErrorCode(err) != core.Invalid {
		t.Fatalf("corrupt node.json: %v", err)
	}
}

func TestHostKeyStable(t *testing.T) {
	dir := t.TempDir()
	a, err := HostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := HostKey(dir)
	if err != nil || a != b || !strings.HasPrefix(a, "ssh-ed25519 ") {
		t.Fatalf("host key: %q %q %v", a, b, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, hostKeyFileName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v", fi.Mode())
	}
}

func TestJoinRejectsBadToken(t *testing.T) {
	_, err := Join(context.Background(), t.TempDir(), "https://plc", "not-a-token")
	if core.ErrorCode(err) != core.Invalid {
		t.Fatalf("bad token: %v", err)
	}
}

func TestStaticPLC(t *testing.T) {
	p := NewStaticPLC()
	ctx := context.Background()
	st, err := p.Watch(ctx, "", time.Second)
	if err != nil || st.Version != "v0" {
		t.Fatalf("first watch: %+v %v", st, err)
	}
	if st, err := p.Watch(ctx, "v0", 10*time.Millisecond); st != nil || err != nil {
		t.Fatalf("unchanged watch: %+v %v", st, err)
	}
	go func() { time.Sleep(20 * time.Millisecond); p.Set([]core.Sliver{{Name: "a_b"}}) }()
	st, err = p.Watch(ctx, "v0", 10*time.Second)
	if err != nil || st.Version != "v1" || len(st.Slivers) != 1 {
		t.Fatalf("changed watch: %+v %v", st, err)
	}
	if _, ok := p.Delivered("v1"); !ok {
		t.Fatal("delivery time not recorded")
	}
	p.SetDown(true)
	if _, err := p.State(ctx); core.ErrorCode(err) != core.Unavailable {
		t.Fatalf("down: %v", err)
	}
}

func TestCommandTree(t *testing.T) {
	root := &cobra.Command{Use: "pl"}
	Attach(root)
	for _, path := range [][]string{{"node"}, {"node", "join"}, {"node", "image", "import"}, {"node", "image", "list"}, {"node", "image", "rm"}, {"bench", "sliver"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Name() != path[len(path)-1] {
			t.Errorf("pl %s: %v", strings.Join(path, " "), err)
		}
	}
	node, _, _ := root.Find([]string{"node"})
	if node.RunE == nil || node.Flags().Lookup("ssh-listen") == nil || node.Flags().Lookup("node-cap-kbit") == nil {
		t.Fatal("pl node daemon flags missing")
	}
}

func TestPrintBench(t *testing.T) {
	var b bytes.Buffer
	PrintBench(&b, []BenchResult{{N: 10, P50: 40 * time.Millisecond, P99: 80 * time.Millisecond, FloorP50: 30 * time.Millisecond, FloorP99: 50 * time.Millisecond,
		BatchP50: 30 * time.Millisecond, CgroupBytesPerSliver: 1 << 20, HostBytesPerSliver: 2 << 20}})
	out := b.String()
	for _, want := range []string{"40.0ms", "1.33x", "2.00MiB", "capacity estimate"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}
	if got := version(bi, true); got != "pl-node/v1.4.0+0123456789ab" {
		t.Errorf("release build: %q", got)
	}
	bi.Main.Version = "(devel)"
	bi.Settings[1].Value = "true"
	if got := version(bi, true); got != "pl-node/devel+0123456789ab.dirty" {
		t.Errorf("work tree build: %q", got)
	}
	if got := version(nil, false); got != "pl-node/devel" {
		t.Errorf("no build info: %q", got)
	}
	if !strings.HasPrefix(Version, "pl-node/") {
		t.Errorf("Version = %q", Version)
	}
}

// `pl bench sliver -n 1` and `--n 1` both set the list (issue 9.16).
func TestBenchSliverShorthand(t *testing.T) {
	for _, args := range [][]string{{"-n", "1"}, {"--n", "1"}, {"-n1"}} {
		c := benchSliverCmd()
		if err := c.ParseFlags(args); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if got := c.Flags().Lookup("n").Value.String(); got != "1" {
			t.Fatalf("%v: n = %q, want 1", args, got)
		}
	}
}

func TestCheckCgroupMounts(t *testing.T) {
	v2 := "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n"
	v1 := "40 30 0:35 / /sys/fs/cgroup/cpu rw shared:15 - cgroup cgroup rw,cpu\n"
	none := "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n23 1 0:5 / /proc rw - proc proc rw\n"
	for _, ok := range []string{v2, v1, none + v1} {
		if err := checkCgroupMounts(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	err := checkCgroupMounts(none)
	if err == nil || !strings.Contains(err.Error(), "ip netns exec") || !strings.Contains(err.Error(), "nsenter --net=") {
		t.Errorf("no cgroup mount: %v", err)
	}
}

func TestCheckTraversable(t *testing.T) {
	top := t.TempDir()
	closed := filepath.Join(top, "closed")
	if err := os.MkdirAll(filepath.Join(closed, "planet"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(top, 0o755)
	os.Chmod(filepath.Dir(top), 0o755) // t.TempDir's own parent is 0700
	if err := CheckTraversable(filepath.Join(closed, "planet", "nodes", "n1")); err != nil {
		t.Fatalf("open parents: %v", err)
	}
	os.Chmod(closed, 0o700)
	err := CheckTraversable(filepath.Join(closed, "planet", "nodes", "n1"))
	if err == nil || !strings.Contains(err.Error(), closed+" has mode 0700") || !strings.Contains(err.Error(), "chmod o+x "+closed) {
		t.Fatalf("0700 parent: %v", err)
	}
}

// `pl bench reconnect` at a small scale: every node reaches PLC again
// after the outage, under both policies (issue 9.20; figures in docs/node.md).
func TestBenchReconnectSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	res, err := BenchReconnect(context.Background(), ReconnectOptions{Nodes: 20, Outage: time.Second, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Nodes != 20 || res[1].Nodes != 20 || res[0].Max <= 0 || res[1].Max <= 0 {
		t.Fatalf("results %+v", res)
	}
	var b bytes.Buffer
	PrintReconnect(&b, time.Second, res)
	t.Log("\n" + b.String())
}

// The client bound into slivers must be a static executable: a
// dynamically linked one or a non-ELF file is refused and none is bound.
func TestSliverClient(t *testing.T) {
	if err := checkStatic("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/sh: %v", err)
	}
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	if err := checkStatic(script); err == nil {
		t.Error("a script taken for a static executable")
	}
	if got := sliverClient(script, nil); got != "" {
		t.Errorf("sliverClient(script) = %q", got)
	}
	if got := sliverClient("-", nil); got != "" {
		t.Errorf("sliverClient(-) = %q", got)
	}
}
