package sliver

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/node/image"
)

// Root integration tests share one state directory (one XFS loop mount,
// one built-in image) per test binary.
var (
	envOnce sync.Once
	envDir  string
	envImgs *image.Store
	envErr  error
)

const testCgroupParent = "/pltest-sliver"

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runc, mounts, cgroups")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("needs runc")
	}
}

func testEnv(t testing.TB) (string, *image.Store) {
	needRoot(t)
	envOnce.Do(func() {
		envDir, envErr = os.MkdirTemp("", "pltest-sliver-")
		if envErr != nil {
			return
		}
		os.Chmod(envDir, 0o711)
		envImgs, envErr = image.Open(filepath.Join(envDir, "images"))
		if envErr == nil {
			envErr = envImgs.EnsureDefault(context.Background())
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return envDir, envImgs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if envDir != "" {
		// Leave nothing behind: slivers, then the loop-mounted disk.
		if r, err := New(context.Background(), testConfig(envDir, envImgs)); err == nil {
			l, _ := r.List(context.Background())
			for _, s := range l {
				r.Destroy(context.Background(), s.Name)
			}
		}
		UnmountState(filepath.Join(envDir, "state"))
		os.RemoveAll(envDir)
		for _, root := range mustCgroupMounts() {
			os.Remove(filepath.Join(root, testCgroupParent))
			os.Remove(filepath.Join(root, testCgroupParent+"-floor"))
		}
	}
	os.Exit(code)
}

func mustCgroupMounts() []string {
	m, _ := cgroupMounts()
	return m
}

func testConfig(dir string, imgs *image.Store) Config {
	return Config{
		StateDir:      filepath.Join(dir, "state"),
		Images:        imgs,
		CgroupParent:  testCgroupParent,
		DiskImageSize: 2 << 30,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func newTestRuntime(t testing.TB) *Runc {
	dir, imgs := testEnv(t)
	r, err := New(context.Background(), testConfig(dir, imgs))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var uidSeq struct {
	sync.Mutex
	n uint32
}

// testSpec returns a spec with a unique name, xid and uid range.
func testSpec(t testing.TB, prefix string) Spec {
	uidSeq.Lock()
	uidSeq.n++
	n := uidSeq.n
	uidSeq.Unlock()
	name := fmt.Sprintf("%s%d", prefix, n)
	return Spec{
		Name:    name,
		XID:     int(n),
		UIDBase: (300 + n) * UIDCount,
		Keys:    []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test@pl"},
		Enabled: true,
		Resources: Resources{
			CPUShares: 1024, MemoryBytes: 256 << 20, Pids: 256, NoFile: 4096, DiskBytes: 64 << 20,
		},
	}
}

func apply(t testing.TB, r Runtime, s Spec) {
	t.Helper()
	if err := r.Apply(context.Background(), s); err != nil {
		t.Fatalf("Apply %s: %v", s.Name, err)
	}
}

func destroyAtEnd(t testing.TB, r Runtime, name string) {
	t.Cleanup(func() {
		if err := r.Destroy(context.Background(), name); err != nil {
			t.Errorf("Destroy %s: %v", name, err)
		}
	})
}

// run runs a command in the sliver and returns its combined output.
func run(t testing.TB, r Runtime, name string, root bool, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, err := r.Command(ctx, name, Process{Args: args, Root: root})
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func mustRun(t testing.TB, r Runtime, name string, root bool, args ...string) string {
	t.Helper()
	out, err := run(t, r, name, root, args...)
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", strings.Join(args, " "), name, err, out)
	}
	return strings.TrimSpace(out)
}

func TestCreateUpdateDestroy(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "cud")
	s.Hostname = "planetlab1.cs.example.org"
	before, err := r.Traces(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Fatalf("traces before create: %v", before)
	}
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)

	if got := mustRun(t, r, s.Name, false, "id"); !strings.HasPrefix(got, fmt.Sprintf("uid=1000(%s) gid=1000(%s)", s.Name, s.Name)) {
		t.Errorf("id = %q", got)
	}
	// The node's host name, as in PlanetLab; /etc/slicename says the slice.
	if got := mustRun(t, r, s.Name, false, "sh", "-c", "hostname; uname -n"); got != s.Hostname+"\n"+s.Hostname {
		t.Errorf("hostname; uname -n = %q, want the node's %q", got, s.Hostname)
	}
	if got := mustRun(t, r, s.Name, false, "cat", "/etc/slicename"); got != s.Name {
		t.Errorf("slicename = %q", got)
	}
	// The node is renamed: the running sliver follows without a restart.
	init1 := mustRun(t, r, s.Name, false, "sh", "-c", "cut -d' ' -f22 /proc/1/stat")
	s.Hostname = "planetlab2.cs.example.org"
	apply(t, r, s)
	if got := mustRun(t, r, s.Name, false, "uname", "-n"); got != s.Hostname {
		t.Errorf("after renaming the node, uname -n = %q, want %q", got, s.Hostname)
	}
	if init2 := mustRun(t, r, s.Name, false, "sh", "-c", "cut -d' ' -f22 /proc/1/stat"); init2 != init1 {
		t.Errorf("renaming the node restarted the sliver (init start time %s -> %s)", init1, init2)
	}
	if got := mustRun(t, r, s.Name, false, "sh", "-c", "echo $HOME $USER; pwd"); got != fmt.Sprintf("/home/%s %s\n/home/%s", s.Name, s.Name, s.Name) {
		t.Errorf("env = %q", got)
	}
	if got := mustRun(t, r, s.Name, false, "cat", ".ssh/authorized_keys"); !strings.Contains(got, s.Keys[0]) {
		t.Errorf("authorized_keys = %q", got)
	}
	// Weaker root: the slice account becomes sliver root without password.
	if got := mustRun(t, r, s.Name, false, "su", "-c", "id -u"); got != "0" {
		t.Errorf("su -c id -u = %q", got)
	}
	if got := mustRun(t, r, s.Name, true, "sh", "-c", "echo hi > /root/f; stat -c %u /root/f"); got != "0" {
		t.Errorf("root file owner = %q", got)
	}
	// PID 1 is the init, and it reaps.
	if got := mustRun(t, r, s.Name, false, "cat", "/proc/1/comm"); got != "pl-init" && got != "tini-static" && !strings.Contains(got, "init") {
		t.Errorf("pid 1 = %q", got)
	}
	statuses, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range statuses {
		if st.Name == s.Name {
			found = true
			if !st.Running || st.Frozen || st.Spec == nil || st.XID != s.XID {
				t.Errorf("status = %+v", st)
			}
		}
	}
	if !found {
		t.Errorf("List does not report %s: %+v", s.Name, statuses)
	}

	traces, err := r.Traces(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) < 4 {
		t.Errorf("too few traces of a running sliver: %v", traces)
	}
	if err := r.Destroy(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	after, err := r.Traces(s.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 0 {
		t.Errorf("traces after destroy: %v", after)
	}
	if err := r.Destroy(context.Background(), s.Name); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}
