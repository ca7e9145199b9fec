package nodecmd

import (
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sensors"
	"github.com/planetlab/pl/internal/node/sliver"
	"golang.org/x/crypto/ssh"
)

// liveNode is a whole node manager (real runc runtime, real netcfg in a
// sandbox namespace) driven by a PLC in the test.
type liveNode struct {
	t      *testing.T
	state  string
	sb     *Sandbox
	plc    agent.PLC
	parent string
	report time.Duration // agent report interval; 0 = default
	node   *Node
	cancel context.CancelFunc
	done   chan error
	// gateway and sshAddr, when set, run the SSH gateway as a process of
	// its own listening on sshAddr (Options.GatewayCommand).
	gateway []string
	sshAddr string
	codemux bool // Options.Codemux
	// apiSocket, when set, is the local API socket (Options.APISocket).
	apiSocket string
	// vsysDir, datasetDir and apiClient are Options.VsysDir, DatasetDir
	// and APIClient.
	vsysDir, datasetDir, apiClient string

	mu  sync.Mutex
	ops []string // ops observed, "kind name"
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs real slivers with runc, netns and nftables")
	}
	for _, bin := range []string{"runc", "ip"} {
		if _, err := exec.LookPath(bin); err != nil { // hostdeps: runc ip
			t.Skipf("needs %s", bin)
		}
	}
}

func newLiveNode(t *testing.T, plc agent.PLC) *liveNode {
	needRoot(t)
	// Unique even in a private pid namespace (where our pid may be 1).
	id := fmt.Sprintf("%d-%d", os.Getpid(), rand.IntN(1e6))
	sb, err := NewSandbox("pltest-nodecmd-" + id)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parents are 0700 and slivers' user namespaces must
	// traverse the state directory.
	dir, err := os.MkdirTemp("", "pltest-nodecmd-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o711)
	l := &liveNode{t: t, state: filepath.Join(dir, "node"), sb: sb, plc: plc, parent: "/pltest-nodecmd-" + id}
	t.Cleanup(func() {
		l.stop()
		// Last resort cleanup of anything a failed test left behind.
		n, err := l.newNode()
		if err == nil {
			ctx := context.Background()
			if sts, err := n.Runtime.List(ctx); err == nil {
				for _, s := range sts {
					n.Runtime.Destroy(ctx, s.Name)
				}
			}
			n.Net.Teardown(ctx)
			n.Close()
		}
		sb.Close()
		// The runtime's disk filesystem is mounted once per node and
		// outlives the agent: unmount it, then remove everything.
		sliver.UnmountState(filepath.Join(l.state, "slivers"))
		os.RemoveAll(dir)
		hier, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range append(hier, "/sys/fs/cgroup") {
			os.Remove(filepath.Join(h, l.parent))
		}
	})
	return l
}

func (l *liveNode) newNode() (*Node, error) {
	return NewNode(context.Background(), l.options())
}

func (l *liveNode) options() Options {
	listen := "127.0.0.1:0"
	if l.sshAddr != "" {
		listen = l.sshAddr
	}
	return Options{
		State: l.state, SSHListen: listen, GatewayCommand: l.gateway, SensorAddr: "127.0.0.1:0", SensorSlivers: sensors.Public, NetNS: l.sb.NetNS, Uplink: l.sb.Uplink, NodeAddr: l.sb.NodeAddr,
		NFTable: "pltest_nodecmd", VethPrefix: "pltn", CgroupParent: l.parent, Prefix: "10.77.0.0/16",
		Logger: testLogger(), PLC: l.plc, ResyncInterval: 200 * time.Millisecond, ReportInterval: l.report, Codemux: l.codemux, APISocket: l.apiSocket, APIClient: orNone(l.apiClient),
		VsysDir: l.vsysDir, DatasetDir: l.datasetDir,
		Observe: func(op agent.Op, err error, took time.Duration) {
			l.mu.Lock()
			defer l.mu.Unlock()
			s := fmt.Sprintf("%s %s", op.Kind, op.Name)
			if err != nil {
				s += " failed: " + err.Error()
			}
			l.ops = append(l.ops, s)
		},
	}
}

func (l *liveNode) start() {
	l.t.Helper()
	n, err := l.newNode()
	if err != nil {
		l.t.Fatal(err)
	}
	l.node = n
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan error, 1)
	go func() { l.done <- n.Run(ctx) }()
}

// stop stops the node manager (slivers keep running).
func (l *liveNode) stop() {
	if l.node == nil {
		return
	}
	l.cancel()
	<-l.done
	l.node.Close()
	l.node = nil
}

func (l *liveNode) takeOps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.ops
	l.ops = nil
	return o
}

func (l *liveNode) eventually(what string, limit time.Duration, cond func() bool) time.Duration {
	l.t.Helper()
	start := time.Now()
	if !waitFor(context.Background(), limit, cond) {
		l.t.Fatalf("timed out after %v waiting for %s (agent: %+v; ops: %v)", limit, what, l.node.Agent.Status(), l.takeOps())
	}
	return time.Since(start)
}

func (l *liveNode) running(name string) bool {
	sts, err := l.node.Runtime.List(context.Background())
	if err != nil {
		return false
	}
	for _, s := range sts {
		if s.Name == name {
			return s.Running && !s.Frozen
		}
	}
	return false
}

func (l *liveNode) cgroupFile(subsys, name, file string) string {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", subsys, l.parent, name, file))
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

// initPID is the host pid of the sliver's init as runc knows it, with its
// start time (so a restarted init with a recycled pid is still noticed);
// "" when the sliver does not run.
func (l *liveNode) initPID(name string) string {
	out, err := exec.Command("runc", "--root", filepath.Join(l.state, "slivers", "runc"), "state", name).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Pid    int    `json:"pid"`
		Status string `json:"status"`
	}
	if json.Unmarshal(out, &st) != nil || st.Pid == 0 || st.Status == "stopped" {
		return ""
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.Pid))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return fmt.Sprintf("%d@%s", st.Pid, f[19]) // starttime is field 22 of stat
}

func (l *liveNode) exec(name string, args ...string) (string, error) {
	cmd, err := l.node.Runtime.Command(context.Background(), name, sliverProcess(args))
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// traces lists what exists on the host for a sliver: runtime traces and
// network (namespace, veth).
func (l *liveNode) traces(name string, xid int) []string {
	tr, err := l.node.Runtime.Traces(name)
	if err != nil {
		tr = append(tr, "traces error: "+err.Error())
	}
	nets, _ := l.node.Net.List(context.Background())
	for _, n := range nets {
		if n == name {
			tr = append(tr, "netcfg "+n)
		}
	}
	if _, err := os.Stat(l.node.Net.NetNSPath(name)); err == nil {
		tr = append(tr, "netns "+l.node.Net.NetNSPath(name))
	}
	// nftables chains and the HTB class of the sliver's xid.
	if out, _ := exec.Command("ip", "netns", "exec", l.sb.Name, "nft", "list", "table", "inet", "pltest_nodecmd").Output(); xid > 0 {
		for _, chain := range []string{fmt.Sprintf("from-%d ", xid), fmt.Sprintf("ports-%d ", xid)} {
			if strings.Contains(string(out), "chain "+chain) {
				tr = append(tr, "nft chain "+chain)
			}
		}
	}
	if out, _ := exec.Command("tc", "-n", l.sb.Name, "class", "show", "dev", l.sb.Uplink).Output(); xid > 0 && strings.Contains(string(out), fmt.Sprintf("class htb 1:%x ", 0x1000|xid)) {
		tr = append(tr, fmt.Sprintf("tc class 1:%x", 0x1000|xid))
	}
	if out, _ := exec.Command("ip", "-n", l.sb.Name, "-o", "link", "show").Output(); strings.Contains(string(out), fmt.Sprintf("pltn%d@", xid)) || strings.Contains(string(out), fmt.Sprintf("pltn%d:", xid)) {
		tr = append(tr, fmt.Sprintf("veth pltn%d", xid))
	}
	return tr
}

func (l *liveNode) xid(name string) int {
	sts, _ := l.node.Runtime.List(context.Background())
	for _, s := range sts {
		if s.Name == name {
			return s.XID
		}
	}
	return 0
}

func liveSliver(name string, id int64, kv ...string) core.Sliver {
	s := core.Sliver{Name: name, SliceID: id, Instantiation: "plc-instantiated", Expires: time.Now().Add(24 * time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Attributes = append(s.Attributes, core.Attribute{TagName: kv[i], Value: kv[i+1]})
	}
	return s
}

// TestNodeLifecycle runs the node manager with the real runtime and
// networking against an in-process PLC stand-in: bind, live limit changes,
// suspend/resume, agent restart with adoption, PLC outage, a crash between
// steps, unbind, expiry, and a clean host afterwards.
func TestNodeLifecycle(t *testing.T) {
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })

	// Bind (pltest_a with a member key, for ssh).
	signer, authorized := testKey(t)
	withKey := liveSliver("pltest_a", 1)
	withKey.Keys = []core.SliverKey{{KeyType: "ssh", Key: authorized}}
	plc.Set([]core.Sliver{withKey, liveSliver("pltest_b", 2, "cpu_share", "2")})
	took := l.eventually("slivers running", 30*time.Second, func() bool { return l.running("pltest_a") && l.running("pltest_b") })
	t.Logf("bind -> 2 slivers running in %v", took)
	pidA := l.initPID("pltest_a")
	if pidA == "" {
		t.Fatal("no init process in pltest_a's cgroup")
	}
	if out, err := l.exec("pltest_a", "cat", "/etc/slicename"); err != nil || strings.TrimSpace(out) != "pltest_a" {
		t.Fatalf("exec in sliver: %q %v", out, err)
	}
	// The trace counter sees a running sliver everywhere it leaves traces
	// (so "no traces" after destroy means something).
	running := strings.Join(l.traces("pltest_a", l.xid("pltest_a")), "\n")
	for _, want := range []string{"mount ", "cgroup", "netcfg pltest_a", "netns ", "veth pltn", "nft chain from-", "tc class 1:"} {
		if !strings.Contains(running, want) {
			t.Errorf("traces of a running sliver lack %q:\n%s", want, running)
		}
	}
	// ssh pltest_a@node through the node's gateway lands in the sliver;
	// pltest_b has no such key.
	if out, err := l.ssh("pltest_a", signer, "cat /etc/slicename; id -un"); err != nil || out != "pltest_a\npltest_a\n" {
		t.Fatalf("ssh into sliver: %q %v", out, err)
	}
	if _, err := l.ssh("pltest_b", signer, "true"); err == nil {
		t.Fatal("ssh into another slice with a key it does not list succeeded")
	}

	// Live resource change: no restart.
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77"), liveSliver("pltest_b", 2, "cpu_share", "2")})
	l.eventually("cpu.shares 4096", 30*time.Second, func() bool { return l.cgroupFile("cpu", "pltest_a", "cpu.shares") == "4096" })
	l.eventually("memory limit", 10*time.Second, func() bool {
		return l.cgroupFile("memory", "pltest_a", "memory.limit_in_bytes") == fmt.Sprint(262144*1024)
	})
	l.eventually("pids limit", 10*time.Second, func() bool { return l.cgroupFile("pids", "pltest_a/sliver", "pids.max") == "77" })
	if got := l.initPID("pltest_a"); got != pidA {
		t.Fatalf("init pid changed %s -> %s: a live change restarted the sliver", pidA, got)
	}

	// Bad tag: refused and reported, sliver keeps its configuration.
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77", "disk_max", "lots"), liveSliver("pltest_b", 2, "cpu_share", "3")})
	l.eventually("pltest_b cpu.shares 3072", 30*time.Second, func() bool { return l.cgroupFile("cpu", "pltest_b", "cpu.shares") == "3072" })
	l.eventually("error reported", 10*time.Second, func() bool {
		plc.mu.Lock()
		defer plc.mu.Unlock()
		return len(plc.Reports) > 0 && strings.Contains(plc.Reports[len(plc.Reports)-1].SliverErrors["pltest_a"], "disk_max")
	})
	if l.cgroupFile("cpu", "pltest_a", "cpu.shares") != "4096" || l.initPID("pltest_a") != pidA {
		t.Fatal("refused slice lost its last good configuration")
	}

	// Suspend and resume.
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77", "enabled", "0"), liveSliver("pltest_b", 2, "cpu_share", "3")})
	l.eventually("frozen", 30*time.Second, func() bool { return l.cgroupFile("freezer", "pltest_a", "freezer.state") == "FROZEN" })
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77"), liveSliver("pltest_b", 2, "cpu_share", "3")})
	l.eventually("thawed", 30*time.Second, func() bool { return l.running("pltest_a") })
	if l.initPID("pltest_a") != pidA {
		t.Fatal("resume restarted the sliver")
	}

	// Kill the agent: slivers keep running. Restart: adopted, untouched.
	l.stop()
	time.Sleep(300 * time.Millisecond)
	if l.initPID("pltest_a") != pidA {
		t.Fatal("stopping the node manager stopped a sliver")
	}
	l.takeOps()
	l.start()
	l.eventually("passes after restart", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 2 })
	if ops := l.takeOps(); len(ops) > 0 {
		t.Fatalf("restart changed slivers: %v", ops)
	}
	if l.initPID("pltest_a") != pidA {
		t.Fatal("restart restarted a sliver")
	}

	// PLC down: nothing destroyed; a change made meanwhile is applied when it returns.
	plc.SetDown(true)
	l.eventually("offline", 10*time.Second, func() bool { return !l.node.Agent.Online() })
	passes := l.node.Agent.Status().Passes
	l.eventually("passes while offline", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > passes+2 })
	if !l.running("pltest_a") || !l.running("pltest_b") {
		t.Fatal("a sliver went away while PLC was down")
	}
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77")})
	plc.SetDown(false)
	l.eventually("pltest_b destroyed after PLC returned", 30*time.Second, func() bool {
		tr := l.traces("pltest_b", 2)
		return !l.running("pltest_b") && len(tr) == 0
	})

	// Crash between steps: networking of a new sliver exists but no
	// container (crash during create); the next pass completes it.
	if _, err := l.node.Net.Ensure(context.Background(), netcfg.Sliver{Name: "pltest_c", XID: 3}); err != nil {
		t.Fatal(err)
	}
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77"), liveSliver("pltest_c", 3)})
	l.eventually("pltest_c running", 30*time.Second, func() bool { return l.running("pltest_c") })
	// Crash during destroy: container gone, network left; the next pass removes it.
	xidC := 0
	if sts, _ := l.node.Runtime.List(context.Background()); true {
		for _, s := range sts {
			if s.Name == "pltest_c" {
				xidC = s.XID
			}
		}
	}
	if err := l.node.Runtime.Destroy(context.Background(), "pltest_c"); err != nil {
		t.Fatal(err)
	}
	plc.Set([]core.Sliver{liveSliver("pltest_a", 1, "cpu_share", "4", "mem_max", "262144", "nproc", "77")})
	l.eventually("pltest_c network removed", 30*time.Second, func() bool { return len(l.traces("pltest_c", xidC)) == 0 })

	// Expiry, enforced locally even with PLC down.
	exp := liveSliver("pltest_a", 1)
	exp.Expires = time.Now().Add(2 * time.Second).Unix()
	plc.Set([]core.Sliver{exp})
	l.eventually("pltest_a updated", 30*time.Second, func() bool { return l.cgroupFile("cpu", "pltest_a", "cpu.shares") == "1024" })
	xidA := 0
	if sts, _ := l.node.Runtime.List(context.Background()); len(sts) == 1 {
		xidA = sts[0].XID
	}
	plc.SetDown(true)
	l.eventually("expired sliver destroyed", 30*time.Second, func() bool { return len(l.traces("pltest_a", xidA)) == 0 })
	plc.SetDown(false)
}

func sliverProcess(args []string) sliver.Process { return sliver.Process{Args: args, Root: true} }

// testLogger discards logs unless PLTEST_LOG is set (to debug a failure).
func testLogger() *slog.Logger {
	if os.Getenv("PLTEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// ssh runs cmd in a slice's sliver through the node's SSH gateway,
// checking the gateway's host key is the node's persistent one.
func (l *liveNode) ssh(slice string, signer ssh.Signer, cmd string) (string, error) {
	pub, err := HostKey(l.state)
	if err != nil {
		return "", err
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		return "", err
	}
	addr := l.sshAddr
	if addr == "" {
		addr = l.node.Gateway.Addr().String()
	}
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: slice, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(hk), Timeout: 10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output(cmd)
	return string(out), err
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
