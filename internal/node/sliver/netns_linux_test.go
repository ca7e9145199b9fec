package sliver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJoinNetNS runs a sliver in a network namespace made by NewNetNS
// (owned by the sliver's user namespace: raw sockets work) and checks that
// Destroy leaves the namespace to its creator but no mount of its own.
func TestJoinNetNS(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "netns")
	dir, _ := testEnv(t)
	s.NetNS = filepath.Join(dir, "netns-"+s.Name)
	if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountAll(s.NetNS)
		os.Remove(s.NetNS)
	})
	if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
		t.Fatalf("NewNetNS is not idempotent: %v", err)
	}
	apply(t, r, s)
	got := mustRun(t, r, s.Name, false, "readlink", "/proc/self/ns/net")
	if l, err := os.Readlink("/proc/self/ns/net"); err == nil && l == got {
		t.Fatalf("sliver is in the host network namespace")
	}
	if out, err := run(t, r, s.Name, false, "ping", "-c", "1", "-W", "2", "127.0.0.1"); err != nil {
		t.Errorf("ping in joined namespace: %v: %s", err, out)
	}
	tr, _ := r.Traces(s.Name)
	if !strings.Contains(strings.Join(tr, "\n"), "userns") {
		t.Errorf("no user namespace mount among traces: %v", tr)
	}
	if err := r.Destroy(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	if tr, _ := r.Traces(s.Name); len(tr) != 0 {
		t.Errorf("traces after destroy: %v", tr)
	}
	if !isNsfsMount(s.NetNS) {
		t.Errorf("Destroy removed the network namespace it did not create")
	}
}

// TestRejectsForeignMapping refuses a network namespace whose user
// namespace maps root to another uid.
func TestRejectsForeignMapping(t *testing.T) {
	r := newTestRuntime(t)
	s := testSpec(t, "foreign")
	dir, _ := testEnv(t)
	s.NetNS = filepath.Join(dir, "netns-"+s.Name)
	if err := NewNetNS(s.NetNS, s.UIDBase+UIDCount*1000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Destroy(context.Background(), s.Name)
		unmountAll(s.NetNS)
		os.Remove(s.NetNS)
	})
	if err := r.Apply(context.Background(), s); err == nil {
		t.Fatal("Apply accepted a network namespace of another uid range")
	}
}

// TestNetAdmin: a sliver with NetAdmin (one with virtual links) configures
// its own network namespace (addresses, routes, links up and down: what a
// routing daemon does); without it, the same commands are refused.
func TestNetAdmin(t *testing.T) {
	r := newTestRuntime(t)
	cmds := "ip link set lo down && ip link set lo up && ip addr add 10.9.9.9/32 dev lo && ip route add 10.8.0.0/24 dev lo && ip route show"
	for _, netAdmin := range []bool{true, false} {
		s := testSpec(t, map[bool]string{true: "nadm", false: "nonadm"}[netAdmin])
		s.NetAdmin = netAdmin
		dir, _ := testEnv(t)
		s.NetNS = filepath.Join(dir, "netns-"+s.Name)
		if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			unmountAll(s.NetNS)
			os.Remove(s.NetNS)
		})
		apply(t, r, s)
		destroyAtEnd(t, r, s.Name)
		out, err := run(t, r, s.Name, true, "sh", "-c", cmds)
		switch {
		case netAdmin && (err != nil || !strings.Contains(out, "10.8.0.0/24 dev lo")):
			t.Errorf("with NetAdmin: %v: %s", err, out)
		case !netAdmin && err == nil:
			t.Errorf("without NetAdmin the sliver configured its network: %s", out)
		}
	}
}
