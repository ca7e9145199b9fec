package sshgw

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/node/image"
	"github.com/planetlab/pl/internal/node/sliver"
)

// Integration tests with the real runc sliver runtime (root only). One
// sliver is shared by the tests of the package binary; TestMain removes it.

const (
	realSliceName    = "pltest_sshgw"
	realCgroupParent = "/pltest-sshgw"
)

var real struct {
	once sync.Once
	err  error
	dir  string
	imgs *image.Store
	rt   *sliver.Runc
	spec sliver.Spec
}

func TestMain(m *testing.M) {
	code := m.Run()
	if real.rt != nil {
		ctx := context.Background()
		real.rt.Destroy(ctx, realSliceName)
		unmountUnder(filepath.Join(real.dir, "state"))
	}
	if real.dir != "" {
		os.RemoveAll(real.dir)
		for _, h := range []string{"cpu", "cpuacct", "memory", "pids", "blkio", "freezer", "devices", "cpuset", "systemd", "unified"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", h, realCgroupParent))
		}
	}
	os.Exit(code)
}

// unmountUnder lazily unmounts every mount below dir (the runtime's
// loop-mounted disk), deepest first.
func unmountUnder(dir string) {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		syscall.Unmount(mps[i], syscall.MNT_DETACH)
	}
}

// realSliver returns the runtime with a running sliver whose account
// accepts key. The sliver has its own network namespace (Spec.NetNS is
// empty: with a netns created by `ip netns add` the runtime's Apply fails
// with EACCES at the time of writing); the gateway reaches it through the
// sliver init's /proc/<pid>/ns/net.
func realSliver(t testing.TB, key string) (*sliver.Runc, sliver.Spec) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runc slivers")
	}
	for _, p := range []string{"runc", "/usr/bin/tini-static", "/bin/busybox"} {
		if _, err := exec.LookPath(p); err != nil { // hostdeps: runc /usr/bin/tini-static /bin/busybox
			t.Skipf("needs %s: %v", p, err)
		}
	}
	real.once.Do(func() {
		ctx := context.Background()
		if real.dir, real.err = os.MkdirTemp("", "pltest-sshgw-"); real.err != nil {
			return
		}
		os.Chmod(real.dir, 0o711)
		if real.imgs, real.err = image.Open(filepath.Join(real.dir, "images")); real.err != nil {
			return
		}
		if real.err = real.imgs.EnsureDefault(ctx); real.err != nil {
			return
		}
		real.rt, real.err = sliver.New(ctx, sliver.Config{
			StateDir: filepath.Join(real.dir, "state"), Images: real.imgs,
			CgroupParent: realCgroupParent, DiskImageSize: 2 << 30,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if real.err != nil {
			return
		}
		real.spec = sliver.Spec{
			Name: realSliceName, XID: 3901, UIDBase: 3901 * sliver.UIDCount,
			Enabled:   true,
			Resources: sliver.Resources{CPUShares: 1024, MemoryBytes: 512 << 20, Pids: 512, NoFile: 4096, DiskBytes: 512 << 20},
		}
	})
	if real.err != nil {
		t.Fatal(real.err)
	}
	spec := real.spec
	spec.Keys = []string{key}
	if err := real.rt.Apply(context.Background(), spec); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return real.rt, spec
}

// runtimeSlices is the agent's view for one real sliver.
type runtimeSlices struct {
	mu    sync.Mutex
	spec  sliver.Spec
	netns string
	on    bool
}

func (r *runtimeSlices) Lookup(name string) (SliceAccess, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on || name != r.spec.Name {
		return SliceAccess{}, false
	}
	return SliceAccess{Keys: r.spec.Keys, Enabled: r.spec.Enabled, Running: true, NetNS: r.netns}, true
}

// sliverInit returns the host pid of the sliver's init (pid 1 inside).
func sliverInit(t testing.TB) string {
	t.Helper()
	// The init lives in the workload's child cgroup (see sliver.LoginReserve).
	procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", realCgroupParent, realSliceName, "sliver", "cgroup.procs"))
	if err != nil {
		t.Fatalf("sliver cgroup: %v", err)
	}
	for _, p := range strings.Fields(string(procs)) {
		status, _ := os.ReadFile("/proc/" + p + "/status")
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == "NSpid:" && f[len(f)-1] == "1" {
				return p
			}
		}
	}
	t.Fatalf("no init among the sliver's processes %q", procs)
	return ""
}

// newRealEnv is env with the real runtime and sliver.
func newRealEnv(t *testing.T) (*env, *sliver.Runc, *runtimeSlices) {
	t.Helper()
	requireTool(t, "ssh")
	var view *runtimeSlices
	var rt *sliver.Runc
	e := newEnvWith(t, func(e *env, c *Config) {
		r, spec := realSliver(t, e.key.authorized)
		rt = r
		view = &runtimeSlices{spec: spec, on: true, netns: "/proc/" + sliverInit(t) + "/ns/net"}
		c.Runtime, c.Slices = r, view
	})
	return e, rt, view
}

func TestRealSliverLogin(t *testing.T) {
	e, _, _ := newRealEnv(t)
	out, errOut, code := e.ssh(realSliceName, `id -un; id -u; echo "$HOME"; hostname; echo err >&2; exit 3`)
	want := fmt.Sprintf("%s\n1000\n/home/%s\n", realSliceName, realSliceName)
	if code != 3 || !strings.HasPrefix(out, want) || errOut != "err\n" {
		t.Fatalf("login: code %d stdout %q stderr %q; want code 3, stdout starting %q", code, out, errOut, want)
	}
	// stdin streams into the sliver.
	data := make([]byte, 1<<20)
	rand.Read(data)
	out, _, code = e.sshIn(bytes.NewReader(data), realSliceName, "sha256sum")
	if want := fmt.Sprintf("%x", sha256.Sum256(data)); code != 0 || !strings.HasPrefix(out, want) {
		t.Fatalf("stdin: %q (code %d), want %s", out, code, want)
	}
}

func TestRealSliverInteractive(t *testing.T) {
	requireTool(t, "tmux")
	e, _, _ := newRealEnv(t)
	rc := filepath.Join(e.dir, "rc")
	sshCmd := "ssh " + strings.Join(append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port)), " ") + " " + realSliceName + "@127.0.0.1"
	p := newTmux(t, e.dir, 100, 30, fmt.Sprintf("%s; echo rc=$? > %s", sshCmd, rc))
	// Type at the prompt, as a person does: runc exec -t sizes the
	// sliver-side terminal a moment after the shell starts (see
	// sliver.Runtime.Command), so input typed ahead of the prompt may
	// still see 0x0.
	p.waitFor(":~$")
	p.send("echo who=$(id -un); stty size; tty >/dev/null && echo has-tty", "Enter")
	p.waitFor("who=" + realSliceName)
	p.waitFor("30 100")
	p.waitFor("has-tty")
	p.cmd("resize-window", "-t", "t", "-x", "90", "-y", "25").Run()
	p.askUntil("clear; stty size", "25 90")
	p.send("exit 5", "Enter")
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(rc)
		if strings.TrimSpace(string(b)) == "rc=5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exit status file = %q, want rc=5; pane:\n%s", b, p.capture())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealSliverFileTransfer(t *testing.T) {
	requireTool(t, "scp", "sftp", "rsync")
	e, _, _ := newRealEnv(t)
	opts := append(e.sshOpts(e.key.path), "-P", strconv.Itoa(e.port))
	src := filepath.Join(e.dir, "big.bin")
	data := make([]byte, 48<<20)
	rand.Read(data)
	os.WriteFile(src, data, 0o644)
	sum := fmt.Sprintf("%x", sha256.Sum256(data))

	if _, errOut, code := run(t, nil, "scp", append(opts, src, realSliceName+"@127.0.0.1:big.bin")...); code != 0 {
		t.Fatalf("scp push: %d %s", code, errOut)
	}
	out, _, code := e.ssh(realSliceName, "sha256sum big.bin; stat -c %U big.bin")
	if code != 0 || !strings.HasPrefix(out, sum) || !strings.Contains(out, "\n"+realSliceName+"\n") {
		t.Fatalf("in the sliver: %q (code %d), want checksum %s owned by %s", out, code, sum, realSliceName)
	}
	back := filepath.Join(e.dir, "back.bin")
	batch := filepath.Join(e.dir, "batch")
	os.WriteFile(batch, []byte("get big.bin "+back+"\n"), 0o644)
	if _, errOut, code := run(t, nil, "sftp", append(opts, "-b", batch, realSliceName+"@127.0.0.1")...); code != 0 {
		t.Fatalf("sftp get: %d %s", code, errOut)
	}
	got, _ := os.ReadFile(back)
	if fmt.Sprintf("%x", sha256.Sum256(got)) != sum {
		t.Fatal("sftp get: checksum differs")
	}

	tree := filepath.Join(e.dir, "tree")
	for i := 0; i < 40; i++ {
		p := filepath.Join(tree, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%02d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, 3000*i)
		rand.Read(b)
		os.WriteFile(p, b, 0o644)
	}
	rsh := "ssh " + strings.Join(append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port)), " ")
	if _, errOut, code := run(t, nil, "rsync", "-a", "-e", rsh, tree+"/", realSliceName+"@127.0.0.1:tree/"); code != 0 {
		t.Fatalf("rsync: %d %s", code, errOut)
	}
	remote, _, code := e.ssh(realSliceName, "cd tree && find . -type f | sort | xargs sha256sum")
	local, _, _ := run(t, nil, "sh", "-c", "cd "+tree+" && find . -type f | sort | xargs sha256sum")
	if code != 0 || remote != local || strings.Count(local, "\n") != 40 {
		t.Fatalf("rsync tree differs:\nremote:\n%s\nlocal:\n%s", remote, local)
	}
}

func TestRealSliverPortForward(t *testing.T) {
	e, _, _ := newRealEnv(t)
	// A web server inside the sliver, on the sliver's loopback.
	c, err := e.goClient(realSliceName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start("mkdir -p www && echo hello-from-sliver > www/index.html && exec httpd -f -p 127.0.0.1:8080 -h www"); err != nil {
		t.Fatal(err)
	}
	lport := freePort(t)
	args := append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port), "-N", "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:localhost:8080", lport), realSliceName+"@127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", lport)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "hello-from-sliver\n" {
				return
			}
			err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET through -L: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describeProcs lists the processes of a cgroup for diagnostics.
func describeProcs(procsFile string) string {
	b, _ := os.ReadFile(procsFile)
	var out []string
	for _, p := range strings.Fields(string(b)) {
		cmd, _ := os.ReadFile("/proc/" + p + "/cmdline")
		st, _ := os.ReadFile("/proc/" + p + "/stat")
		out = append(out, fmt.Sprintf("%s %q [%s]", p, strings.ReplaceAll(string(cmd), "\x00", " "), strings.TrimSpace(string(st))))
	}
	return strings.Join(out, "; ")
}

// nsInode returns the inode of a namespace link of pid ("self" works).
func nsInode(t *testing.T, pid, ns string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%s/ns/%s", pid, ns))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRealSliverProcessConfinement(t *testing.T) {
	e, _, view := newRealEnv(t)
	c, err := e.goClient(realSliceName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stdout, _ := s.StdoutPipe()
	if err := s.Start("echo $$; exec sleep 3131"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	innerPID := strings.TrimSpace(line)
	time.Sleep(200 * time.Millisecond) // exec replaces the shell

	// Find the process among the sliver's cgroup members (pids hierarchy).
	procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", realCgroupParent, realSliceName, "cgroup.procs"))
	if err != nil {
		t.Fatalf("sliver cgroup: %v", err)
	}
	var hostPID, initPID string
	for _, p := range strings.Fields(string(procs)) {
		cmdline, _ := os.ReadFile("/proc/" + p + "/cmdline")
		if string(cmdline) == "sleep\x003131\x00" {
			hostPID = p
		}
	}
	initPID = sliverInit(t)
	if hostPID == "" || initPID == "" {
		t.Fatalf("login process not in the sliver's cgroup (members %q)", procs)
	}
	// Its pid as seen inside the sliver is what the shell printed.
	status, _ := os.ReadFile("/proc/" + hostPID + "/status")
	if !strings.Contains(string(status), "NSpid:\t"+hostPID+"\t"+innerPID+"\n") {
		t.Errorf("NSpid of the login process: want host %s inner %s in\n%s", hostPID, innerPID, status)
	}
	// Same namespaces as the sliver's init, none of the host's.
	for _, ns := range []string{"pid", "mnt", "net", "uts", "ipc", "user"} {
		got := nsInode(t, hostPID, ns)
		if got != nsInode(t, initPID, ns) {
			t.Errorf("%s namespace %s differs from the sliver's %s", ns, got, nsInode(t, initPID, ns))
		}
		if got == nsInode(t, "self", ns) {
			t.Errorf("login process shares the host's %s namespace", ns)
		}
	}
	// Inside the sliver the process is visible; on the host it runs as the
	// sliver's uid range, not as a host user.
	out, _, _ := e.ssh(realSliceName, "ps -o pid,args | grep 'sleep 3131' | grep -v grep")
	if !strings.Contains(out, innerPID) {
		t.Errorf("sliver's ps does not show the login process %s: %q", innerPID, out)
	}
	if !strings.Contains(string(status), fmt.Sprintf("Uid:\t%d\t", int(view.spec.UIDBase)+1000)) {
		t.Errorf("login process host uid is not the sliver's account (base %d + 1000):\n%s", view.spec.UIDBase, status)
	}
}

func TestRealSliverDisabledAndDestroyed(t *testing.T) {
	e, rt, view := newRealEnv(t)
	// Disabled (frozen) sliver: refused with a clear message.
	view.mu.Lock()
	view.spec.Enabled = false
	spec := view.spec
	view.mu.Unlock()
	if err := rt.Apply(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-o", "LogLevel=INFO"}, e.sshOpts(e.key.path)...)
	args = append(args, "-p", strconv.Itoa(e.port), realSliceName+"@127.0.0.1", "true")
	_, errOut, code := run(t, nil, "ssh", args...)
	if code != 255 || !strings.Contains(errOut, "is disabled on this node") || !strings.Contains(errOut, "Permission denied (publickey)") {
		t.Fatalf("disabled sliver: code %d stderr %q", code, errOut)
	}
	view.mu.Lock()
	view.spec.Enabled = true
	spec = view.spec
	view.mu.Unlock()
	if err := rt.Apply(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if out, _, code := e.ssh(realSliceName, "echo back"); code != 0 || out != "back\n" {
		t.Fatalf("re-enabled: %q %d", out, code)
	}

	// A login in progress when the sliver is destroyed ends cleanly.
	c, err := e.goClient(realSliceName)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("sleep 300"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	// Destroy is idempotent and the agent retries it; the runtime can
	// fail with EBUSY removing a cgroup whose last process is still
	// exiting (reported to the sliver runtime's owner).
	for i := 0; ; i++ {
		err := rt.Destroy(context.Background(), realSliceName)
		if err == nil {
			break
		}
		if i == 20 {
			t.Fatal(err)
		}
		t.Logf("Destroy (attempt %d): %v; sliver processes: %s", i+1, err, describeProcs(filepath.Join("/sys/fs/cgroup/cpu", realCgroupParent, realSliceName, "cgroup.procs")))
		time.Sleep(500 * time.Millisecond)
	}
	view.mu.Lock()
	view.on = false
	view.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("session in a destroyed sliver ended with success")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("session still open 20 s after its sliver was destroyed")
	}
	// New logins are refused; the connection itself still works.
	if _, err := c.NewSession(); err == nil {
		t.Error("new session accepted for a destroyed sliver")
	}
	_, errOut, code = run(t, nil, "ssh", args...)
	if code != 255 || !strings.Contains(errOut, "no slice") {
		t.Errorf("destroyed sliver: code %d stderr %q", code, errOut)
	}
}
