package dev

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// TestFederationEndToEnd: two peered planets of one node each (pl dev
// --plcs 2). A slice of PLC A on the node of PLC B: B's node runs the
// sliver with the user's key (ssh works), PLC A going down leaves it
// running, deleting the slice at A removes it at B. It measures the time
// from a change at A to the sliver answering ssh on B's node.
func TestFederationEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"ssh", "ssh-keygen", "runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: ssh ssh-keygen runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const id = "fed"
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	for _, i := range []string{id, id + "b"} {
		exec.Command(pl, "dev", "down", "--id", i).Run() // hostdeps: self
	}
	before := snapshotHost(t)
	defer func() { compareSnapshots(t, before, snapshotHost(t), pl) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var logb lockedBuffer
	cfg := Config{Nodes: 1, ID: id, WAN: netip.MustParsePrefix("10.83.0.0/16"), PLCPort: 18451, Binary: pl,
		Log: slog.New(slog.NewTextHandler(&logb, nil))}
	f, err := UpFederation(ctx, cfg)
	if err != nil {
		t.Fatalf("UpFederation: %v\n%s", err, logb.String())
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	nodeA, nodeB := f.A.Nodes[0], f.B.Nodes[0]
	// The demo slice of A serves on B's node (UpFederation waited for it).
	if body, err := httpGet(fmt.Sprintf("http://%s:%d/", nodeB.Addr, DemoPort)); err != nil || !strings.Contains(body, f.A.Demo.Slice) {
		t.Fatalf("demo service on B's node: %v %q", err, body)
	}
	if nodeA.SiteName == nodeB.SiteName {
		t.Fatalf("both PLCs use site %s", nodeA.SiteName)
	}
	a, err := f.A.AdminClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.B.AdminClient(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A user of A with a key made by the stock ssh-keygen.
	key := filepath.Join(tmp, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fed", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	site, err := a.Resolve(ctx, nil, core.Site, nodeA.SiteName)
	must(t, err)
	person, err := a.Add(ctx, nil, core.Person, core.Record{"email": "ada@fed.example.org", "first_name": "Ada", "last_name": "L"})
	must(t, err)
	must(t, a.Update(ctx, nil, core.Person, person, core.Record{"enabled": true}))
	must(t, a.Link(ctx, nil, core.PersonSite, person, site, nil))
	_, err = a.Add(ctx, nil, core.Key, core.Record{"person_id": person, "key": strings.TrimSpace(string(pub))})
	must(t, err)
	slice := nodeA.SiteName + "_fed"
	sliceID, err := a.Add(ctx, nil, core.Slice, core.Record{"name": slice, "url": "https://fed.example.org/", "description": "spans two PLCs"})
	must(t, err)
	must(t, a.Link(ctx, nil, core.SlicePerson, sliceID, person, nil))
	remote, err := a.Resolve(ctx, nil, core.Node, nodeB.Hostname) // B's node, foreign at A
	must(t, err)

	knownHosts := filepath.Join(tmp, "known_hosts")
	ssh := func(n *Node, command ...string) (string, error) {
		return sshAt(ctx, key, knownHosts, slice, n, command...)
	}
	until := func(what string, timeout time.Duration, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > timeout {
				t.Fatalf("%s: not after %v\nnode B log: %s", what, timeout, lastError(filepath.Join(nodeB.StateDir, "node.log")))
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}
	sshWorks := func() bool { _, err := ssh(nodeB, "true"); return err == nil }
	sshWorksA := func() bool { _, err := ssh(nodeA, "true"); return err == nil }

	// The slice goes on both PLCs' nodes; B's node runs it with the key.
	must(t, a.Link(ctx, nil, core.SliceNode, sliceID, nodeA.NodeID, nil))
	start := time.Now()
	must(t, a.Link(ctx, nil, core.SliceNode, sliceID, remote, nil))
	until("ssh into the sliver on B's node", 3*time.Minute, sshWorks)
	t.Logf("first sliver on B's node (image setup included): %v", time.Since(start).Round(time.Millisecond))
	if out, err := ssh(nodeB, "cat /etc/slicename"); err != nil || !strings.Contains(out, slice) {
		t.Fatalf("ssh %s@%s: %v %q", slice, nodeB.Name, err, out)
	}
	fs, err := b.Get(ctx, nil, core.Slice, &core.Filter{IsList: true, Names: []string{slice}}, []string{"peer_id", "peer_slice_id"})
	must(t, err)
	if len(fs) != 1 || fs[0]["peer_id"] == nil || fs[0]["peer_slice_id"] != sliceID {
		t.Fatalf("the slice at B: %v", fs)
	}

	// Change at A -> sliver running on B's node, a few times; the
	// baseline, in the same run, is the same change on A's own node.
	until("ssh into the sliver on A's node", 3*time.Minute, sshWorksA)
	toggle := func(node int64, works func() bool) time.Duration {
		must(t, a.Unlink(ctx, nil, core.SliceNode, sliceID, node))
		until("sliver gone", time.Minute, func() bool { return !works() })
		start := time.Now()
		must(t, a.Link(ctx, nil, core.SliceNode, sliceID, node, nil))
		until("sliver back", time.Minute, works)
		return time.Since(start)
	}
	// Toggles alternate between the two nodes, so both series see the
	// same load; p99 is the nearest rank (with n=15, the maximum).
	const toggles = 15
	var peer, local []time.Duration
	for range toggles {
		peer = append(peer, toggle(remote, sshWorks))
		local = append(local, toggle(nodeA.NodeID, sshWorksA))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("BENCH federation change-to-sliver (PLCAPI call at A to ssh answering in the sliver): on B's node (peering) %s; baseline on A's node %s; loadavg %s",
		quantiles(peer), quantiles(local), strings.TrimSpace(string(load)))

	// PLC A goes down: B's sliver keeps running; B's refresh of A fails
	// and changes nothing.
	if _, err := f.A.StopProc("plc"); err != nil {
		t.Fatal(err)
	}
	peers, err := b.Get(ctx, nil, core.Peer, nil, []string{"peer_id"})
	must(t, err)
	if _, err := b.RefreshPeer(ctx, nil, peers[0]["peer_id"].(int64)); err == nil {
		t.Fatal("refreshing a stopped peer succeeded")
	}
	time.Sleep(2 * time.Second)
	if out, err := ssh(nodeB, "cat /etc/slicename"); err != nil {
		t.Fatalf("with PLC A down, the sliver on B's node: %v %s", err, out)
	}
	if _, err := f.A.StartProc("plc"); err != nil {
		t.Fatal(err)
	}
	a, err = f.A.AdminClient(ctx) // PLC A restarted: a new session
	for i := 0; err != nil && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		a, err = f.A.AdminClient(ctx)
	}
	must(t, err)

	// Deleting at A removes the sliver at B.
	must(t, a.Delete(ctx, nil, core.Slice, sliceID))
	d := until("sliver gone from B's node after the deletion at A", time.Minute, func() bool { return !sshWorks() })
	load, _ = os.ReadFile("/proc/loadavg")
	t.Logf("BENCH federation deletion at A to sliver gone on B's node: %v; loadavg %s", d.Round(time.Millisecond), strings.TrimSpace(string(load)))
	if fs, err := b.Get(ctx, nil, core.Slice, &core.Filter{IsList: true, Names: []string{slice}}, nil); err != nil || len(fs) != 0 {
		t.Fatalf("the slice at B after its deletion at A: %v %v", fs, err)
	}
}

func sshAt(ctx context.Context, key, knownHosts, slice string, n *Node, command ...string) (string, error) {
	args := append([]string{"-i", key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
		"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + knownHosts, "-o", "LogLevel=ERROR",
		slice + "@" + n.Addr.String()}, command...)
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput() // hostdeps: ssh
	return string(out), err
}

// quantiles formats the p50, p99 (nearest rank) and maximum of ds.
func quantiles(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
	}
	return fmt.Sprintf("p50 %v p99 %v max %v n=%d", rank(0.50), rank(0.99), s[len(s)-1].Round(time.Millisecond), len(s))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
