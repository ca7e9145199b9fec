package nodecmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/vsys"
)

// execAs runs args in sliver name as the slice account (root false) or
// sliver root.
func (l *liveNode) execAs(root bool, name string, args ...string) (string, error) {
	cmd, err := l.node.Runtime.Command(context.Background(), name, sliver.Process{Args: args, Root: root})
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Privileged operations from real slivers: a slice granted a dataset
// attaches it and sees it read-only in its sliver (writes refused to the
// slice account and to sliver root, remounting too), detaches it, and
// Destroy leaves nothing mounted; a slice granted another dataset, or
// none, is refused and sees nothing; the sensor reads another sliver's
// figures; an operator script gets the checked argv and the caller in its
// environment, and a bad argument never reaches it; a grant added to a
// running sliver restarts it with the datasets directory.
func TestVsysFromSlivers(t *testing.T) {
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	base := filepath.Dir(l.state) // 0711: slivers' uids may traverse it
	l.apiSocket = filepath.Join(base, "api.sock")
	l.datasetDir = filepath.Join(base, "datasets")
	l.vsysDir = filepath.Join(base, "vsys")
	for _, d := range []string{"census", "secret"} {
		if err := os.MkdirAll(filepath.Join(l.datasetDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.datasetDir, d, "readme.txt"), []byte(d+" data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(l.vsysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(base, "record.out")
	script := "#!/bin/sh\nprintf '%s|' \"$@\" > " + marker + "\necho \"$PL_SLICE $PL_XID $PL_VSYS_OP\" >> " + marker + "\ncat " + marker + "\n"
	if err := os.WriteFile(filepath.Join(l.vsysDir, "record"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// The slivers' client: a static pl at /run/pl/pl.
	l.apiClient = filepath.Join(base, "pl")
	build := exec.Command("go", "build", "-o", l.apiClient, "github.com/planetlab/pl/cmd/pl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build pl: %v\n%s", err, out)
	}
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })
	dat := liveSliver("pltest_dat", 1, "vsys", "dataset:census", "vsys", "sensor:pltest_oth", "vsys", "record")
	oth := liveSliver("pltest_oth", 2, "nm_api", "1")
	plc.Set([]core.Sliver{dat, oth})
	l.eventually("slivers running", 60*time.Second, func() bool { return l.running("pltest_dat") && l.running("pltest_oth") })
	uidOf := func(name string) uint32 { return agent.UIDBase(l.xid(name)) + 1000 }
	sock := l.apiSocket
	vcall := func(slice, op string, args ...string) (vsys.Result, error) {
		var res vsys.Result
		err := callAs(uidOf(slice), sock, "Vsys", vsys.Request{Op: op, Args: args}, &res)
		return res, err
	}
	if out, err := l.exec("pltest_dat", "sh", "-c", "test -S /run/pl/api.sock && test -d /run/pl/datasets && echo yes"); err != nil || strings.TrimSpace(out) != "yes" {
		t.Fatalf("a vsys grant brings the socket and a dataset grant the datasets directory: %q %v", out, err)
	}
	if out, _ := l.exec("pltest_oth", "sh", "-c", "test -e /run/pl/datasets && echo yes"); strings.TrimSpace(out) != "" {
		t.Fatalf("datasets directory without a dataset grant: %q", out)
	}

	// Refusals change nothing.
	for _, c := range []struct {
		slice, op string
		args      []string
		code      core.Code
		want      string
	}{
		{"pltest_dat", "dataset", []string{"attach", "secret"}, core.Forbidden, "not granted to slice pltest_dat for secret (it has dataset:census)"},
		{"pltest_oth", "dataset", []string{"attach", "census"}, core.Forbidden, "operation dataset is not granted to slice pltest_oth"},
		{"pltest_dat", "dataset", []string{"attach", "../census"}, core.Invalid, "no '..' path element"},
		{"pltest_dat", "dataset", []string{"attach", "census", "extra"}, core.Invalid, "attach <name> or detach <name>"},
		{"pltest_dat", "record", []string{"-x"}, core.Invalid, `argument 0 "-x"`},
		{"pltest_dat", "record", []string{"a b"}, core.Invalid, `argument 0 "a b"`},
		{"pltest_dat", "sensor", []string{"pltest_dat"}, core.Forbidden, "for pltest_dat"},
		{"pltest_dat", "nosuch", nil, core.Forbidden, "not granted"},
	} {
		_, err := vcall(c.slice, c.op, c.args...)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s %q: %v, want %s %q", c.slice, c.op, c.args, err, c.code, c.want)
		}
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a refused call ran the script: %v", err)
	}
	if out, _ := l.exec("pltest_dat", "ls", "/run/pl/datasets"); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused call attached something: %q", out)
	}

	// The granted dataset, read-only inside: asked from inside the
	// sliver by the slice account with the node's pl.
	out, err := l.execAs(false, "pltest_dat", "/run/pl/pl", "nm", "Vsys", `{"op":"dataset","args":["attach","census"]}`)
	if err != nil || !strings.Contains(out, `"path": "/run/pl/datasets/census"`) {
		t.Fatalf("attach census from the sliver: %q %v", out, err)
	}
	if out, err := l.execAs(false, "pltest_oth", "/run/pl/pl", "nm", "Vsys", `{"op":"dataset","args":["attach","census"]}`); err == nil || !strings.Contains(out, "operation dataset is not granted to slice pltest_oth") {
		t.Errorf("pltest_oth attaching census from its sliver: %q %v", out, err)
	}
	if out, err := l.execAs(false, "pltest_dat", "cat", "/run/pl/datasets/census/readme.txt"); err != nil || out != "census data\n" {
		t.Fatalf("the slice account reads the dataset: %q %v", out, err)
	}
	for _, root := range []bool{false, true} {
		out, err := l.execAs(root, "pltest_dat", "sh", "-c", "echo x > /run/pl/datasets/census/readme.txt || echo refused; touch /run/pl/datasets/census/new 2>/dev/null || echo refused")
		if err != nil || strings.Count(out, "refused") != 2 {
			t.Errorf("writes as root=%v: %q %v", root, out, err)
		}
	}
	if out, err := l.execAs(true, "pltest_dat", "sh", "-c", "ln -s /etc /run/pl/datasets/planted 2>/dev/null || echo refused; mkdir /run/pl/datasets/new 2>/dev/null || echo refused"); strings.Count(out, "refused") != 2 {
		t.Errorf("sliver root writing the datasets directory: %q %v", out, err)
	}
	if out, err := l.execAs(true, "pltest_dat", "sh", "-c", "mount -o remount,rw /run/pl/datasets/census 2>/dev/null && echo remounted || echo refused"); strings.TrimSpace(out) != "refused" {
		t.Errorf("sliver root remounting the dataset: %q %v", out, err)
	}
	if b, _ := os.ReadFile(filepath.Join(l.datasetDir, "census", "readme.txt")); string(b) != "census data\n" {
		t.Fatalf("the dataset changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(l.datasetDir, "census", "new")); err == nil {
		t.Fatal("a file appeared in the dataset")
	}
	if out, _ := l.exec("pltest_oth", "sh", "-c", "test -e /run/pl/datasets && echo visible; grep -c datasets /proc/mounts"); strings.TrimSpace(out) != "0" {
		t.Errorf("another sliver sees the dataset: %q", out)
	}
	if _, err := vcall("pltest_dat", "dataset", "attach", "census"); err != nil {
		t.Errorf("attaching twice: %v", err)
	}

	// The sensor reads the granted sliver's figures.
	res, err := vcall("pltest_dat", "sensor", "pltest_oth")
	if fig, _ := res.Data.(map[string]any); err != nil || fig["slice"] != "pltest_oth" || fig["state"] != "running" {
		t.Errorf("sensor pltest_oth: %+v %v", res, err)
	}

	// The operator script: checked argv, the caller in its environment.
	res, err = vcall("pltest_dat", "record", "tcp/8080", "x=y")
	want := "tcp/8080|x=y|pltest_dat " + strconv.Itoa(l.xid("pltest_dat")) + " record\n"
	if err != nil || res.Exit != 0 || res.Stdout != want {
		t.Errorf("record: %+v %v, want stdout %q", res, err, want)
	}

	// Cost of a call (measured, not asserted): a built-in and a script
	// beside GetRecord, the local API's cheapest call, in the same run.
	timeCalls := func(what string, fn func() error) {
		const n = 20
		start := time.Now()
		for range n {
			if err := fn(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		load, _ := os.ReadFile("/proc/loadavg")
		t.Logf("BENCH %s: %v per call (%d calls), load %s", what, time.Since(start)/n, n, strings.Fields(string(load))[0])
	}
	timeCalls("GetRecord (baseline)", func() error {
		return callAs(uidOf("pltest_dat"), sock, "GetRecord", struct{}{}, &agent.RecordResult{})
	})
	timeCalls("Vsys sensor", func() error { _, err := vcall("pltest_dat", "sensor", "pltest_oth"); return err })
	timeCalls("Vsys dataset attach (already attached)", func() error { _, err := vcall("pltest_dat", "dataset", "attach", "census"); return err })
	timeCalls("Vsys operator script", func() error { _, err := vcall("pltest_dat", "record", "a"); return err })

	// Detach, then Destroy with a dataset attached leaves nothing.
	if _, err := vcall("pltest_dat", "dataset", "detach", "census"); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if out, _ := l.exec("pltest_dat", "sh", "-c", "ls /run/pl/datasets; grep -c /run/pl/datasets/census /proc/mounts"); strings.TrimSpace(out) != "0" {
		t.Errorf("after detach the sliver still has: %q", out)
	}

	// A grant added to a running sliver: it restarts with the datasets
	// directory, its files kept.
	if _, err := l.exec("pltest_oth", "sh", "-c", "echo kept > /root/mark"); err != nil {
		t.Fatal(err)
	}
	oth = liveSliver("pltest_oth", 2, "nm_api", "1", "vsys", "dataset:secret")
	plc.Set([]core.Sliver{dat, oth})
	took := l.eventually("pltest_oth restarted with a datasets directory", 60*time.Second, func() bool {
		out, _ := l.exec("pltest_oth", "sh", "-c", "test -d /run/pl/datasets && cat /root/mark")
		return strings.TrimSpace(out) == "kept"
	})
	t.Logf("grant -> datasets directory in the running sliver: %v", took)
	if _, err := vcall("pltest_oth", "dataset", "attach", "secret"); err != nil {
		t.Fatalf("attach secret after the grant: %v", err)
	}
	if out, err := l.execAs(false, "pltest_oth", "cat", "/run/pl/datasets/secret/readme.txt"); err != nil || out != "secret data\n" {
		t.Fatalf("pltest_oth reads secret: %q %v", out, err)
	}
	// The grant withdrawn: the dataset is detached at the next pass.
	oth = liveSliver("pltest_oth", 2, "nm_api", "1", "vsys", "dataset:census")
	plc.Set([]core.Sliver{dat, oth})
	l.eventually("secret detached from pltest_oth", 30*time.Second, func() bool {
		out, _ := l.exec("pltest_oth", "sh", "-c", "grep -c /run/pl/datasets/secret /proc/mounts; cat /root/mark")
		return strings.TrimSpace(out) == "0\nkept"
	})
	if _, err := vcall("pltest_dat", "dataset", "attach", "census"); err != nil {
		t.Fatal(err)
	}
	xid := l.xid("pltest_dat")
	plc.Set([]core.Sliver{oth})
	l.eventually("pltest_dat destroyed", 60*time.Second, func() bool { return len(l.traces("pltest_dat", xid)) == 0 })
	for _, op := range l.takeOps() {
		if strings.Contains(op, "failed") {
			t.Errorf("node manager: %s", op)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(l.datasetDir, "census", "readme.txt")); string(b) != "census data\n" {
		t.Fatalf("the dataset changed: %q", b)
	}
	var help map[string]string
	if err := callAs(uidOf("pltest_oth"), sock, "VsysHelp", struct{}{}, &help); err != nil || !strings.Contains(help["dataset"], "/run/pl/datasets") {
		t.Errorf("VsysHelp: %v %v", help, err)
	}
}
