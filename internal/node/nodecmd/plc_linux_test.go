package nodecmd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/plc/server"
)

// realPLC is PLC's server (store, service, REST, node API over pinned
// HTTPS) running in-process.
type realPLC struct {
	t     *testing.T
	m     *server.Main
	reg   core.Registry
	admin *core.Caller
	ctx   context.Context
	// stop stops the server (and waits); later calls do nothing.
	stop func()
}

func startPLC(t *testing.T) *realPLC {
	t.Helper()
	ctx := context.Background()
	cfg := server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Log: testLogger()}
	if _, err := server.Init(ctx, cfg, server.InitOptions{Email: "admin@plc.test", Password: "admin-pw"}); err != nil {
		t.Fatal(err)
	}
	m := &server.Main{Config: cfg}
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	p := &realPLC{t: t, m: m, reg: m.Registry(), ctx: ctx, stop: stop}
	var err error
	p.admin, err = p.reg.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@plc.test", Password: "admin-pw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *realPLC) add(class core.Class, rec core.Record) int64 {
	p.t.Helper()
	id, err := p.reg.Add(p.ctx, p.admin, class, rec)
	if err != nil {
		p.t.Fatalf("add %s %v: %v", class, rec, err)
	}
	return id
}

func (p *realPLC) must(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
}

// tag sets a slice tag (replacing an earlier value) and returns its id.
func (p *realPLC) tag(slice int64, name, value string) int64 {
	p.t.Helper()
	tt, err := p.reg.Resolve(p.ctx, p.admin, core.TagType, name)
	p.must(err)
	old, err := p.reg.Get(p.ctx, p.admin, core.SliceTag, &core.Filter{Terms: []core.Term{
		{Field: "slice_id", Op: core.Eq, Value: slice}, {Field: "tag_type_id", Op: core.Eq, Value: tt}}}, []string{"slice_tag_id"})
	p.must(err)
	for _, r := range old {
		p.must(p.reg.Delete(p.ctx, p.admin, core.SliceTag, r["slice_tag_id"].(int64)))
	}
	return p.add(core.SliceTag, core.Record{"slice_id": slice, "tag_type_id": tt, "value": value})
}

// TestNodeWithRealPLC is the issue's "done" scenario end to end: a node
// joins a real PLC over pinned HTTPS; binding a slice makes a running
// sliver appear; a tag change changes the live limit; disabling freezes;
// unbinding destroys and leaves the host clean.
func TestNodeWithRealPLC(t *testing.T) {
	needRoot(t)
	p := startPLC(t)
	site := p.add(core.Site, core.Record{"login_base": "pt", "name": "PT", "abbreviated_name": "pt", "max_slices": int64(10)})
	nodeID := p.add(core.Node, core.Record{"site_id": site, "hostname": "n1.pt.test"})
	secret, err := p.reg.IssueJoinToken(p.ctx, p.admin, nodeID)
	p.must(err)
	tok := nodeapi.JoinToken{NodeID: nodeID, Secret: secret, Fingerprint: p.m.Fingerprint()}

	l := newLiveNode(t, nil)
	nf, err := Join(context.Background(), l.state, p.m.URL(), tok.String())
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if nf.NodeID != nodeID || nf.Fingerprint != p.m.Fingerprint() || nf.Hostname != "n1.pt.test" {
		t.Fatalf("node.json: %+v", nf)
	}
	if fi, err := os.Stat(filepath.Join(l.state, "node.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("node.json mode: %v %v", fi, err)
	}
	// The one-time secret is spent.
	if _, err := Join(context.Background(), t.TempDir(), p.m.URL(), tok.String()); err == nil {
		t.Fatal("join token accepted twice")
	}
	l.start()
	l.eventually("online", 30*time.Second, func() bool { return l.node.Agent.Online() && l.node.Agent.Status().Passes > 0 })
	// PLC shows the node booted and the node manager's version (issue 9.15).
	l.eventually("boot state and version reported", 30*time.Second, func() bool {
		recs, err := p.reg.Get(p.ctx, p.admin, core.Node, &core.Filter{IsList: true, IDs: []int64{nodeID}}, []string{"boot_state", "run_level", "version"})
		return err == nil && len(recs) == 1 && recs[0]["boot_state"] == "boot" && recs[0]["run_level"] == "boot" && recs[0]["version"] == Version
	})

	sl := p.add(core.Slice, core.Record{"name": "pt_web", "url": "http://x.test", "description": "d"})
	p.must(p.reg.Link(p.ctx, p.admin, core.SliceNode, sl, nodeID, nil))
	took := l.eventually("sliver running after bind", 30*time.Second, func() bool { return l.running("pt_web") })
	t.Logf("bind at PLC -> sliver running on the node: %v", took)
	pid := l.initPID("pt_web")

	p.tag(sl, "cpu_share", "3")
	took = l.eventually("cpu_share live", 30*time.Second, func() bool { return l.cgroupFile("cpu", "pt_web", "cpu.shares") == "3072" })
	t.Logf("tag change at PLC -> live limit: %v", took)
	if l.initPID("pt_web") != pid {
		t.Fatal("tag change restarted the sliver")
	}

	// PLC refuses a value the node would refuse (core/tags); a value that
	// goes bad later (its init script disabled) is reported back to PLC.
	tt, err := p.reg.Resolve(p.ctx, p.admin, core.TagType, "disk_max")
	p.must(err)
	if _, err := p.reg.Add(p.ctx, p.admin, core.SliceTag, core.Record{"slice_id": sl, "tag_type_id": tt, "value": "lots"}); core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != "disk_max" {
		t.Fatalf("disk_max \"lots\" at PLC: %v", err)
	}
	script := p.add(core.InitScriptClass, core.Record{"name": "pt_init", "script": "#!/bin/sh\ntrue\n", "enabled": true})
	bad := p.tag(sl, "initscript", "pt_init")
	p.must(p.reg.Update(p.ctx, p.admin, core.InitScriptClass, script, core.Record{"enabled": false}))
	l.eventually("sliver error reported", 30*time.Second, func() bool {
		st := l.node.Agent.Status()
		return strings.Contains(st.SliverErrors["pt_web"], "initscript")
	})
	p.must(p.reg.Delete(p.ctx, p.admin, core.SliceTag, bad))

	en := p.tag(sl, "enabled", "0")
	l.eventually("frozen", 30*time.Second, func() bool { return l.cgroupFile("freezer", "pt_web", "freezer.state") == "FROZEN" })
	p.must(p.reg.Delete(p.ctx, p.admin, core.SliceTag, en))
	l.eventually("thawed", 30*time.Second, func() bool { return l.running("pt_web") })

	xid := 0
	if sts, _ := l.node.Runtime.List(context.Background()); len(sts) == 1 {
		xid = sts[0].XID
	}
	p.must(p.reg.Unlink(p.ctx, p.admin, core.SliceNode, sl, nodeID))
	l.eventually("destroyed after unbind, host clean", 30*time.Second, func() bool { return len(l.traces("pt_web", xid)) == 0 })
	if tr := l.traces("pt_web", xid); len(tr) > 0 {
		t.Fatalf("traces left: %v", tr)
	}
}

// daemonSpec is the serializable part of Options for the helper process.
type daemonSpec struct {
	State, SSHListen, NetNS, Uplink, NodeAddr, NFTable, VethPrefix, CgroupParent, Prefix string
}

// TestHelperDaemon is not a test: TestNodeSurvivesKill runs the test
// binary with PLTEST_DAEMON set to run a node manager in a child process
// that it can kill -9.
func TestHelperDaemon(t *testing.T) {
	spec := os.Getenv("PLTEST_DAEMON")
	if spec == "" {
		t.Skip("helper process for TestNodeSurvivesKill")
	}
	var d daemonSpec
	if err := json.Unmarshal([]byte(spec), &d); err != nil {
		t.Fatal(err)
	}
	o := Options{State: d.State, SSHListen: d.SSHListen, SensorAddr: "127.0.0.1:0", NetNS: d.NetNS, Uplink: d.Uplink, NodeAddr: d.NodeAddr,
		NFTable: d.NFTable, VethPrefix: d.VethPrefix, CgroupParent: d.CgroupParent, Prefix: d.Prefix, Logger: testLogger()}
	n, err := NewNode(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	n.Run(context.Background()) // until killed
}

// TestNodeSurvivesKill runs `pl node` as a separate process against the
// real PLC, kills it with SIGKILL while a sliver runs, and checks that the
// sliver keeps running and a new node manager adopts it untouched.
func TestNodeSurvivesKill(t *testing.T) {
	needRoot(t)
	p := startPLC(t)
	site := p.add(core.Site, core.Record{"login_base": "pk", "name": "PK", "abbreviated_name": "pk", "max_slices": int64(10)})
	nodeID := p.add(core.Node, core.Record{"site_id": site, "hostname": "n1.pk.test"})
	secret, err := p.reg.IssueJoinToken(p.ctx, p.admin, nodeID)
	p.must(err)
	l := newLiveNode(t, nil)
	if _, err := Join(context.Background(), l.state, p.m.URL(), nodeapi.JoinToken{NodeID: nodeID, Secret: secret, Fingerprint: p.m.Fingerprint()}.String()); err != nil {
		t.Fatal(err)
	}
	sl := p.add(core.Slice, core.Record{"name": "pk_app", "url": "http://x.test", "description": "d"})
	p.must(p.reg.Link(p.ctx, p.admin, core.SliceNode, sl, nodeID, nil))

	o := l.options()
	spec, err := json.Marshal(daemonSpec{State: o.State, SSHListen: o.SSHListen, NetNS: o.NetNS, Uplink: o.Uplink, NodeAddr: o.NodeAddr,
		NFTable: o.NFTable, VethPrefix: o.VethPrefix, CgroupParent: o.CgroupParent, Prefix: o.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDaemon$") // hostdeps: self
	cmd.Env = append(os.Environ(), "PLTEST_DAEMON="+string(spec))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	pid := ""
	// Wait until the create finished: the runtime persisted the applied
	// spec and the agent its network record. (A kill in the middle is the
	// crash case, covered by TestNodeLifecycle; here nothing may change.)
	done := func() bool {
		st, _ := os.ReadFile(filepath.Join(l.state, "slivers", "slivers", "pk_app", "state.json"))
		nr, _ := os.ReadFile(filepath.Join(l.state, "agent", "net.json"))
		return strings.Contains(string(st), `"spec"`) && strings.Contains(string(nr), "pk_app")
	}
	if !waitFor(context.Background(), 60*time.Second, func() bool { pid = l.initPID("pk_app"); return pid != "" && done() }) {
		t.Fatal("the node manager process did not create the sliver")
	}
	cmd.Process.Kill()
	cmd.Wait()
	killed = true
	time.Sleep(500 * time.Millisecond)
	if got := l.initPID("pk_app"); got != pid {
		t.Fatalf("sliver init %s -> %q after kill -9 of the node manager", pid, got)
	}
	l.start()
	l.eventually("passes after restart", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 2 && l.node.Agent.Online() })
	if ops := l.takeOps(); len(ops) > 0 {
		t.Fatalf("restart after kill changed slivers: %v", ops)
	}
	if got := l.initPID("pk_app"); got != pid {
		t.Fatal("restart restarted the sliver")
	}
	p.must(p.reg.Unlink(p.ctx, p.admin, core.SliceNode, sl, nodeID))
	l.eventually("destroyed", 30*time.Second, func() bool { return !l.running("pk_app") && l.initPID("pk_app") == "" })
}
