package nodecmd

import (
	"context"
	"flag"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/pflag"
)

// TestHelperGateway is not a test: it is the gateway process (`pl node
// sshgw`) of TestGatewayOutlivesNodeManager, run from the test binary.
func TestHelperGateway(t *testing.T) {
	if os.Getenv("PLTEST_GATEWAY") == "" {
		t.Skip("helper process for TestGatewayOutlivesNodeManager")
	}
	var o GatewayOptions
	fs := pflag.NewFlagSet("sshgw", pflag.ContinueOnError)
	gatewayFlags(fs, &o)
	if err := fs.Parse(flag.Args()); err != nil {
		t.Fatal(err)
	}
	o.Logger = testLogger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := RunGateway(ctx, o); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayOutlivesNodeManager: the SSH gateway runs as a process of its
// own, in its own cgroup; logins work while the node manager is down; a
// new node manager adopts the running gateway, restarts it when it dies,
// and key changes still reach it (issue 9.18).
func TestGatewayOutlivesNodeManager(t *testing.T) {
	needRoot(t)
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.sshAddr = ln.Addr().String()
	ln.Close()
	t.Setenv("PLTEST_GATEWAY", "1") // inherited by the gateway process
	l.gateway = []string{os.Args[0], "-test.run=^TestHelperGateway$", "--"}
	t.Cleanup(func() {
		if err := StopGateway(l.state, 5*time.Second); err != nil {
			t.Error(err)
		}
		hier, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range append(hier, "/sys/fs/cgroup") {
			os.Remove(filepath.Join(h, l.parent, gatewayCgroup))
		}
	})

	l.start()
	signer, authorized := testKey(t)
	s := liveSliver("pltest_gw", 1)
	s.Keys = []core.SliverKey{{KeyType: "ssh", Key: authorized}}
	plc.Set([]core.Sliver{s})
	l.eventually("sliver running", 30*time.Second, func() bool { return l.running("pltest_gw") })
	login := func() error {
		out, err := l.ssh("pltest_gw", signer, "cat /etc/slicename")
		if err == nil && out != "pltest_gw\n" {
			t.Fatalf("ssh: %q", out)
		}
		return err
	}
	l.eventually("ssh through the gateway process", 30*time.Second, func() bool { return login() == nil })
	running, pid := gatewayRunning(l.state)
	if !running || pid <= 1 || pid == os.Getpid() {
		t.Fatalf("gateway process: running %v pid %d (test %d)", running, pid, os.Getpid())
	}
	if cg, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); !strings.Contains(string(cg), l.parent+"/"+gatewayCgroup) {
		t.Errorf("gateway not in its own cgroup %s/%s:\n%s", l.parent, gatewayCgroup, cg)
	}

	// The node manager is down: logins keep working.
	l.stop()
	if err := login(); err != nil {
		t.Fatalf("ssh with the node manager down: %v", err)
	}

	// A new node manager adopts the gateway rather than start another.
	l.start()
	l.eventually("passes", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 1 })
	if r, p := gatewayRunning(l.state); !r || p != pid {
		t.Fatalf("after the node manager's restart the gateway is pid %d (running %v), want %d adopted", p, r, pid)
	}
	if err := login(); err != nil {
		t.Fatalf("ssh after the node manager's restart: %v", err)
	}

	// The gateway dies: the node manager starts a new one.
	syscall.Kill(pid, syscall.SIGKILL)
	l.eventually("a new gateway", 30*time.Second, func() bool {
		r, p := gatewayRunning(l.state)
		return r && p != pid && login() == nil
	})

	// A key removed at PLC stops working at the gateway.
	s.Keys = nil
	plc.Set([]core.Sliver{s})
	l.eventually("key revoked", 30*time.Second, func() bool { return login() != nil })
	l.stop()
}
