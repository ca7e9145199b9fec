package vsys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

func TestCheckArgs(t *testing.T) {
	long := strings.Repeat("a", MaxArgLen)
	for _, c := range []struct {
		args []string
		err  string
	}{
		{nil, ""},
		{[]string{"attach", "census"}, ""},
		{[]string{"tcp/8080-8090", "a=b,c:d", "x@y+z%", "dir/file.txt", long}, ""},
		{[]string{""}, "argument 0 is empty"},
		{[]string{"ok", "-rf"}, `argument 1 "-rf"`},
		{[]string{"a b"}, `argument 0 "a b"`},
		{[]string{"$(id)"}, `argument 0 "$(id)"`},
		{[]string{"a;b"}, `argument 0 "a;b"`},
		{[]string{"x\n"}, "argument 0"},
		{[]string{"*"}, "argument 0"},
		{[]string{"../etc/passwd"}, "no '..' path element"},
		{[]string{"a/../b"}, "no '..' path element"},
		{[]string{"a..b"}, ""},
		{[]string{long + "a"}, "at most 256"},
		{make([]string, MaxArgs+1), "at most 16"},
	} {
		err := CheckArgs(c.args)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || core.ErrorCode(err) != core.Invalid) {
			t.Errorf("%q: %v, want %q", c.args, err, c.err)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Request
		err  string
	}{
		{`{"op":"sensor"}`, Request{Op: "sensor"}, ""},
		{`{"op":"dataset","args":["attach","census"]}`, Request{Op: "dataset", Args: []string{"attach", "census"}}, ""},
		{`{"op":"sensor","slice":"pl_x"}`, Request{}, "unknown field"},
		{`{"op":"sensor"} {}`, Request{}, "data after the object"},
		{`{"op":""}`, Request{}, "not an operation name"},
		{`{"op":"../x"}`, Request{}, "not an operation name"},
		{`{"op":"x","args":"attach"}`, Request{}, "cannot unmarshal"},
		{`{"op":"x","args":["-f"]}`, Request{}, "argument 0"},
		{`[]`, Request{}, "cannot unmarshal"},
	} {
		q, err := ParseRequest([]byte(c.in))
		if c.err == "" {
			if err != nil || q.Op != c.want.Op || !slices.Equal(q.Args, c.want.Args) {
				t.Errorf("%s: %+v %v", c.in, q, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) || core.ErrorCode(err) != core.Invalid {
			t.Errorf("%s: %v, want %q", c.in, err, c.err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"op":"sensor"}`, `{"op":"dataset","args":["attach","census"]}`, `{"op":"x","args":["a/../b"]}`, `{`, `{"args":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := ParseRequest(raw)
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("refusal with code %s: %v", core.ErrorCode(err), err)
			}
			return
		}
		if !tags.ValidVsysOp(q.Op) || CheckArgs(q.Args) != nil {
			t.Fatalf("accepted %+v", q)
		}
		for _, a := range q.Args {
			if strings.HasPrefix(a, "-") || strings.ContainsAny(a, " \t\n\x00;$`'\"*?") {
				t.Fatalf("accepted argument %q", a)
			}
		}
	})
}

// recorder is an operation that records what it was asked to run.
type recorder struct{ runs []string }

func (r *recorder) op() Op {
	return Op{Name: "probe", Help: "test",
		Check: func(args []string) (string, error) {
			if len(args) != 1 {
				return "", core.FieldErrorf("args", "probe takes one argument")
			}
			return args[0], nil
		},
		Run: func(ctx context.Context, c Caller, args []string) (Result, error) {
			r.runs = append(r.runs, c.Slice+" "+strings.Join(args, " "))
			return Result{Data: "done"}, nil
		}}
}

func testLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Refusals come in a fixed order, are precise, change nothing (the
// operation does not run) and are logged with caller, operation,
// arguments and reason; granted calls run and are logged too.
func TestCallRefusalsAndLog(t *testing.T) {
	var rec recorder
	var log bytes.Buffer
	r := New(Config{Log: testLog(&log)}, rec.op())
	g := func(vals ...string) []tags.VsysGrant {
		var out []tags.VsysGrant
		for _, v := range vals {
			gr, err := tags.ParseVsysGrant(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, gr)
		}
		return out
	}
	c := Caller{Slice: "pl_mon", XID: 7}
	for _, tc := range []struct {
		grants []tags.VsysGrant
		q      Request
		code   core.Code
		msg    string
	}{
		{nil, Request{Op: "probe", Args: []string{"a"}}, core.Forbidden, "operation probe is not granted to slice pl_mon (no vsys tag probe)"},
		{g("other"), Request{Op: "probe", Args: []string{"a"}}, core.Forbidden, "not granted"},
		{nil, Request{Op: "nosuch"}, core.Forbidden, "not granted"}, // ungranted: no word on what exists
		{g("nosuch"), Request{Op: "nosuch"}, core.NotFound, "unknown operation nosuch"},
		{g("probe"), Request{Op: "probe", Args: []string{"a", "b"}}, core.Invalid, "probe takes one argument"},
		{g("probe"), Request{Op: "probe", Args: []string{"-a"}}, core.Invalid, `argument 0 "-a"`},
		{g("probe"), Request{Op: "Probe"}, core.Invalid, "not an operation name"},
		{g("probe:a"), Request{Op: "probe", Args: []string{"b"}}, core.Forbidden, "operation probe is not granted to slice pl_mon for b (it has probe:a)"},
	} {
		_, err := r.Call(context.Background(), c, tc.grants, tc.q)
		if core.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v with %v: %v, want %s %q", tc.q, tc.grants, err, tc.code, tc.msg)
		}
	}
	if len(rec.runs) != 0 {
		t.Fatalf("refused calls ran: %v", rec.runs)
	}
	if n := strings.Count(log.String(), "vsys call refused"); n != 8 {
		t.Errorf("%d refusals logged, want 8:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), `slice=pl_mon op=probe args=[b] took=`) || !strings.Contains(log.String(), `err="operation probe is not granted to slice pl_mon for b`) {
		t.Errorf("refusal log lacks caller, op and args:\n%s", log.String())
	}
	for _, grants := range [][]tags.VsysGrant{g("probe"), g("probe:x", "probe:a")} {
		res, err := r.Call(context.Background(), c, grants, Request{Op: "probe", Args: []string{"a"}})
		if err != nil || res.Data != "done" || res.Op != "probe" {
			t.Fatalf("granted call: %+v %v", res, err)
		}
	}
	if !slices.Equal(rec.runs, []string{"pl_mon a", "pl_mon a"}) {
		t.Errorf("runs %v", rec.runs)
	}
	if !strings.Contains(log.String(), `msg="vsys call" slice=pl_mon op=probe args=[a]`) {
		t.Errorf("granted call not logged:\n%s", log.String())
	}
	if h := r.Help(g("probe:a", "nosuch")); h["probe"] != "test" || !strings.Contains(h["nosuch"], "unknown operation") {
		t.Errorf("help %v", h)
	}
}

// writeScript writes an operator script with mode perm.
func writeScript(t *testing.T, dir, name, body string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
}

func TestScripts(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	writeScript(t, dir, "echoargs", `printf '%s|' "$@"; echo; echo "slice=$PL_SLICE xid=$PL_XID op=$PL_VSYS_OP home=${HOME:-none}"; echo err >&2; exit 3`+"\n", 0o755)
	writeScript(t, dir, "slow", "sleep 30 & sleep 30\n", 0o755)
	writeScript(t, dir, "chatty", "head -c 200000 /dev/zero | tr '\\0' x\n", 0o755)
	writeScript(t, dir, "groupw", "echo hi\n", 0o775)
	writeScript(t, dir, "noexec", "echo hi\n", 0o644)
	if err := os.Symlink(filepath.Join(dir, "echoargs"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	r := New(Config{ScriptDir: dir, Timeout: 500 * time.Millisecond, MaxOutput: 1000, Log: testLog(&log)})
	c := Caller{Slice: "pl_ops", XID: 12}
	all := []tags.VsysGrant{{Op: "echoargs"}, {Op: "slow"}, {Op: "chatty"}, {Op: "groupw"}, {Op: "noexec"}, {Op: "link"}, {Op: "absent"}}

	res, err := r.Call(context.Background(), c, all, Request{Op: "echoargs", Args: []string{"tcp/8080", "a=b c"[:3], "x.y"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "tcp/8080|a=b|x.y|\nslice=pl_ops xid=12 op=echoargs home=none\n"
	if res.Stdout != want || res.Stderr != "err\n" || res.Exit != 3 || res.Truncated {
		t.Errorf("echoargs: %+v, want stdout %q", res, want)
	}
	// A scoped grant restricts the first argument.
	if _, err := r.Call(context.Background(), c, []tags.VsysGrant{{Op: "echoargs", Scope: "tcp"}}, Request{Op: "echoargs", Args: []string{"udp"}}); core.ErrorCode(err) != core.Forbidden {
		t.Errorf("scoped script grant: %v", err)
	}
	if res, err := r.Call(context.Background(), c, []tags.VsysGrant{{Op: "echoargs", Scope: "tcp"}}, Request{Op: "echoargs", Args: []string{"tcp"}}); err != nil || res.Exit != 3 {
		t.Errorf("scoped script grant, its scope: %+v %v", res, err)
	}

	res, err = r.Call(context.Background(), c, all, Request{Op: "chatty"})
	if err != nil || len(res.Stdout) != 1000 || !res.Truncated || res.Exit != 0 {
		t.Errorf("chatty: %d bytes, truncated %v, exit %d, %v", len(res.Stdout), res.Truncated, res.Exit, err)
	}
	if _, err := r.Call(context.Background(), c, all, Request{Op: "slow"}); core.ErrorCode(err) != core.Unavailable || !strings.Contains(err.Error(), "did not finish within 500ms: killed") {
		t.Errorf("slow: %v", err)
	}
	for op, want := range map[string]string{
		"groupw": "script groupw is unsafe", "noexec": "script noexec is unsafe", "link": "script link is unsafe",
		"absent": "unknown operation absent: no built-in ([]) and no script of that name",
	} {
		if _, err := r.Call(context.Background(), c, all, Request{Op: op}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", op, err, want)
		}
	}
	for _, want := range []string{"writable by group or others", "not executable", "not a regular file"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log.String())
		}
	}
	// A directory others may write makes every script unsafe.
	os.Chmod(dir, 0o777)
	if _, err := r.Call(context.Background(), c, all, Request{Op: "echoargs"}); core.ErrorCode(err) != core.Unavailable || !strings.Contains(err.Error(), "script directory is unsafe") {
		t.Errorf("unsafe directory: %v", err)
	}
}

// The per-slice bound on calls in progress.
func TestPending(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, MaxPending+1)
	op := Op{Name: "wait", Check: func([]string) (string, error) { return "", nil },
		Run: func(ctx context.Context, c Caller, args []string) (Result, error) {
			started <- c.Slice
			<-release
			return Result{}, nil
		}}
	r := New(Config{Log: slog.New(slog.DiscardHandler)}, op)
	g := []tags.VsysGrant{{Op: "wait"}}
	errs := make(chan error, MaxPending+1)
	call := func(slice string) {
		_, err := r.Call(context.Background(), Caller{Slice: slice}, g, Request{Op: "wait"})
		errs <- err
	}
	for range MaxPending {
		go call("pl_a")
	}
	for range MaxPending {
		<-started
	}
	if _, err := r.Call(context.Background(), Caller{Slice: "pl_a"}, g, Request{Op: "wait"}); core.ErrorCode(err) != core.Unavailable {
		t.Errorf("one call too many: %v", err)
	}
	go call("pl_b") // another slice is not held up
	if s := <-started; s != "pl_b" {
		t.Errorf("%s started", s)
	}
	close(release)
	for range MaxPending + 1 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if _, err := r.Call(context.Background(), Caller{Slice: "pl_a"}, g, Request{Op: "wait"}); err != nil {
		t.Errorf("after the calls ended: %v", err)
	}
}

func TestSensor(t *testing.T) {
	fig := &core.NodeFigures{Slivers: []core.SliverFigures{{Slice: "pl_a", CPUSeconds: 1.5, MemUsed: 100}, {Slice: "pl_b", MemUsed: 200}}}
	fail := false
	r := New(Config{Log: slog.New(slog.DiscardHandler)}, Sensor(func() (*core.NodeFigures, error) {
		if fail {
			return nil, errors.New("no cgroups")
		}
		return fig, nil
	}))
	c := Caller{Slice: "pl_mon"}
	res, err := r.Call(context.Background(), c, []tags.VsysGrant{{Op: "sensor", Scope: "pl_b"}}, Request{Op: "sensor", Args: []string{"pl_b"}})
	if err != nil || res.Data.(core.SliverFigures).MemUsed != 200 {
		t.Fatalf("sensor pl_b: %+v %v", res, err)
	}
	for _, tc := range []struct {
		grant string
		args  []string
		code  core.Code
	}{
		{"pl_b", []string{"pl_a"}, core.Forbidden},
		{"pl_b", nil, core.Forbidden}, // every sliver needs an unscoped grant
		{"", []string{"pl_gone"}, core.NotFound},
		{"", []string{"PL_A"}, core.Invalid},
		{"", []string{"pl_a", "pl_b"}, core.Invalid},
	} {
		_, err := r.Call(context.Background(), c, []tags.VsysGrant{{Op: "sensor", Scope: tc.grant}}, Request{Op: "sensor", Args: tc.args})
		if core.ErrorCode(err) != tc.code {
			t.Errorf("sensor %v with grant %q: %v, want %s", tc.args, tc.grant, err, tc.code)
		}
	}
	res, err = r.Call(context.Background(), c, []tags.VsysGrant{{Op: "sensor"}}, Request{Op: "sensor"})
	if err != nil || len(res.Data.([]core.SliverFigures)) != 2 {
		t.Fatalf("sensor: %+v %v", res, err)
	}
	fail = true
	if _, err := r.Call(context.Background(), c, []tags.VsysGrant{{Op: "sensor"}}, Request{Op: "sensor"}); core.ErrorCode(err) != core.Unavailable {
		t.Errorf("sensors failing: %v", err)
	}
}

// fakeMounter records what it is asked to do as canonical lines.
type fakeMounter struct {
	lines   []string
	mounted map[string]bool
	fail    error
}

func (m *fakeMounter) BindReadOnly(src, dst string) error {
	if m.fail != nil {
		return m.fail
	}
	m.lines = append(m.lines, fmt.Sprintf("bind-ro %s %s", src, dst))
	m.mounted[dst] = true
	return nil
}

func (m *fakeMounter) Unmount(dst string) error {
	m.lines = append(m.lines, "unmount "+dst)
	delete(m.mounted, dst)
	return nil
}

func (m *fakeMounter) Mounted(dir string) (bool, error) { return m.mounted[dir], nil }

func TestDataset(t *testing.T) {
	data, slivers := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(data, "census"), 0o755)
	os.Mkdir(filepath.Join(data, "weather"), 0o755)
	os.WriteFile(filepath.Join(data, "afile"), nil, 0o644)
	mnt := &fakeMounter{mounted: map[string]bool{filepath.Join(slivers, "pl_a"): true}}
	os.Mkdir(filepath.Join(slivers, "pl_a"), 0o755)
	r := New(Config{Log: slog.New(slog.DiscardHandler)}, Dataset(DatasetConfig{
		Dir: data, InSliver: "/run/pl/datasets", Mounter: mnt,
		SliverDir: func(slice string) (string, error) { return filepath.Join(slivers, slice), nil },
	}))
	a := Caller{Slice: "pl_a"}
	g := []tags.VsysGrant{{Op: "dataset", Scope: "census"}, {Op: "dataset", Scope: "afile"}, {Op: "dataset", Scope: "nosuch"}}
	call := func(c Caller, args ...string) (Result, error) {
		return r.Call(context.Background(), c, g, Request{Op: "dataset", Args: args})
	}
	for _, tc := range []struct {
		c    Caller
		args []string
		code core.Code
		msg  string
	}{
		{a, []string{"attach", "weather"}, core.Forbidden, "not granted to slice pl_a for weather"},
		{a, []string{"attach"}, core.Invalid, "attach <name> or detach <name>"},
		{a, []string{"mount", "census"}, core.Invalid, "attach <name> or detach <name>"},
		{a, []string{"attach", ".census"}, core.Invalid, "not a dataset name"},
		{a, []string{"attach", "nosuch"}, core.NotFound, "no dataset nosuch on this node"},
		{a, []string{"attach", "afile"}, core.NotFound, "no dataset afile"},
		{Caller{Slice: "pl_b"}, []string{"attach", "census"}, core.Unavailable, "has no datasets directory"},
	} {
		_, err := call(tc.c, tc.args...)
		if core.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %v: %v, want %s %q", tc.c.Slice, tc.args, err, tc.code, tc.msg)
		}
	}
	if len(mnt.lines) != 0 {
		t.Fatalf("refusals mounted: %v", mnt.lines)
	}
	for range 2 { // attaching twice mounts once
		res, err := call(a, "attach", "census")
		if err != nil || res.Data.(map[string]string)["path"] != "/run/pl/datasets/census" {
			t.Fatalf("attach: %+v %v", res, err)
		}
	}
	for range 2 {
		if _, err := call(a, "detach", "census"); err != nil {
			t.Fatalf("detach: %v", err)
		}
	}
	dst := filepath.Join(slivers, "pl_a", "census")
	want := []string{"bind-ro " + filepath.Join(data, "census") + " " + dst, "unmount " + dst}
	if !slices.Equal(mnt.lines, want) {
		t.Errorf("mounts:\n%s\nwant:\n%s", strings.Join(mnt.lines, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point left after detach: %v", err)
	}
	// A dataset whose grant is withdrawn is detached at the next pass.
	if _, err := call(a, "attach", "census"); err != nil {
		t.Fatal(err)
	}
	mnt.lines = nil
	r.Revoke("pl_a", g)
	r.Revoke("pl_b", g) // no sliver directory: nothing to do
	if len(mnt.lines) != 0 {
		t.Fatalf("revoked a granted dataset: %v", mnt.lines)
	}
	r.Revoke("pl_a", []tags.VsysGrant{{Op: "dataset", Scope: "weather"}, {Op: "sensor"}})
	if want := []string{"unmount " + dst}; !slices.Equal(mnt.lines, want) || mnt.mounted[dst] {
		t.Fatalf("revoke: %v, want %v", mnt.lines, want)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point left after revoke: %v", err)
	}
	// Never through a symbolic link at the mount point.
	os.Symlink("/etc", filepath.Join(slivers, "pl_a", "census"))
	if _, err := call(a, "attach", "census"); core.ErrorCode(err) != core.Internal || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("attach over a symbolic link: %v", err)
	}
	os.Remove(filepath.Join(slivers, "pl_a", "census"))
	mnt.lines = nil
	mnt.fail = errors.New("EPERM")
	if _, err := call(a, "attach", "census"); core.ErrorCode(err) != core.Internal || len(mnt.lines) != 0 {
		t.Errorf("failing mount: %v %v", err, mnt.lines)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point left after a failed attach: %v", err)
	}
}
