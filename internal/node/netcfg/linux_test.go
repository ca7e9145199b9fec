package netcfg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
)

func TestEnsureRemoveIdempotentAndClean(t *testing.T) {
	tn := newTestNet(t)
	ctx := context.Background()
	m := newTestManager(t, tn, nil)
	if c := m.Config(); c.Uplink != testUplink || c.NodeAddr.String() != testNodeAddr {
		t.Fatalf("detected uplink %q addr %v", c.Uplink, c.NodeAddr)
	}
	before := takeSnapshot(t, tn, m)
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	afterSetup := takeSnapshot(t, tn, m)
	if len(afterSetup.Rules) == 0 || !strings.Contains(afterSetup.Qdiscs, "htb 1:") || len(afterSetup.Classes) != 2 {
		t.Fatalf("setup left %+v", afterSetup)
	}

	a := Sliver{Name: "pltest_a", XID: 7, Ports: []Port{{Proto: "tcp", From: 8080, To: 8080}}, MinRateKbit: 100, MaxRateKbit: 5000}
	b := Sliver{Name: "pltest_b", XID: 9, Ports: []Port{{Proto: "udp", From: 5000, To: 5010}}}
	att, err := m.Ensure(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if att.NetNS != m.NetNSPath(a.Name) || att.Addr.String() != "10.42.0.30" || att.Gateway.String() != "10.42.0.29" || !isNetNSMount(att.NetNS) {
		t.Fatalf("attachment %+v", att)
	}
	if _, err := m.Ensure(ctx, b); err != nil {
		t.Fatal(err)
	}
	two := takeSnapshot(t, tn, m)
	idx := func() int {
		h, err := netlinkAt(tn.node)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		return mustLinkIndex(h, "plv7")
	}
	idx0 := idx()
	for range 2 {
		if _, err := m.Ensure(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Ensure(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if d := takeSnapshot(t, tn, m).diff(two); d != "" {
		t.Fatalf("repeated Ensure changed the host:\n%s", d)
	}
	if idx() != idx0 {
		t.Fatal("repeated Ensure recreated the veth")
	}
	if len(two.NetNSFiles) != 2 || two.Mounts != afterSetup.Mounts+2 || len(two.Links) != len(afterSetup.Links)+2 ||
		len(two.Classes) != len(afterSetup.Classes)+2 || len(two.Records) != 2 {
		t.Fatalf("after two slivers: %+v", two)
	}
	t.Logf("nft table with two slivers:\n%s", strings.Join(two.Rules, "\n"))
	inSliver := sh(t, att.NetNS, "ip", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(inSliver, "10.42.0.30/30") {
		t.Fatalf("sliver address: %s", inSliver)
	}
	if r := sh(t, att.NetNS, "ip", "route"); !strings.Contains(r, "default via 10.42.0.29 dev eth0") {
		t.Fatalf("sliver routes: %s", r)
	}

	names, err := m.List(ctx)
	if err != nil || !slices.Equal(names, []string{"pltest_a", "pltest_b"}) {
		t.Fatalf("List = %v, %v", names, err)
	}

	// Conflicts: a port held by another sliver, and a reused xid.
	_, err = m.Ensure(ctx, Sliver{Name: "pltest_c", XID: 11, Ports: []Port{{Proto: "tcp", From: 8000, To: 8090}}})
	if core.ErrorCode(err) != core.Conflict || !strings.Contains(err.Error(), `"pltest_c"`) || !strings.Contains(err.Error(), `"pltest_a"`) || !strings.Contains(err.Error(), "tcp/8080") {
		t.Fatalf("port conflict: %v", err)
	}
	_, err = m.Ensure(ctx, Sliver{Name: "pltest_c", XID: 9})
	if core.ErrorCode(err) != core.Conflict || !strings.Contains(err.Error(), "xid 9") {
		t.Fatalf("xid conflict: %v", err)
	}
	// Ports of the node itself (default tcp/22) cannot be reserved.
	_, err = m.Ensure(ctx, Sliver{Name: "pltest_c", XID: 11, Ports: []Port{{Proto: "tcp", From: 20, To: 30}}})
	if core.ErrorCode(err) != core.Conflict || !strings.Contains(err.Error(), "used by the node itself (tcp/22)") {
		t.Fatalf("node port: %v", err)
	}
	// Same port on the other protocol is fine.
	if _, err := m.Ensure(ctx, Sliver{Name: "pltest_c", XID: 11, Ports: []Port{{Proto: "udp", From: 8080, To: 8080}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "pltest_c", 11); err != nil {
		t.Fatal(err)
	}
	if d := takeSnapshot(t, tn, m).diff(two); d != "" {
		t.Fatalf("a refused Ensure or Remove of c left traces:\n%s", d)
	}

	// A restarted manager adopts what exists and still enforces reservations.
	m2, err := New(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if names, err := m2.List(ctx); err != nil || !slices.Equal(names, []string{"pltest_a", "pltest_b"}) {
		t.Fatalf("List after restart = %v, %v", names, err)
	}
	if _, err := m2.Ensure(ctx, Sliver{Name: "pltest_d", XID: 12, Ports: []Port{{Proto: "udp", From: 5010, To: 5020}}}); core.ErrorCode(err) != core.Conflict {
		t.Fatalf("restarted manager allowed a held port: %v", err)
	}
	if _, err := m2.Ensure(ctx, a); err != nil {
		t.Fatal(err)
	}
	if d := takeSnapshot(t, tn, m2).diff(two); d != "" {
		t.Fatalf("restarted manager's Setup+Ensure changed the host:\n%s", d)
	}

	// Remove is exact and idempotent.
	for range 2 {
		if err := m.Remove(ctx, a.Name, a.XID); err != nil {
			t.Fatal(err)
		}
	}
	one := takeSnapshot(t, tn, m)
	if len(one.NetNSFiles) != 1 || len(one.Links) != len(two.Links)-1 || len(one.Classes) != len(two.Classes)-1 || len(one.Records) != 1 {
		t.Fatalf("after removing a: %+v", one)
	}
	for _, r := range one.Rules {
		if strings.Contains(r, "pltest_a") || strings.Contains(r, "-7 ") || strings.HasSuffix(r, "-7") {
			t.Fatalf("rule of a survived: %s", r)
		}
	}
	if err := m.Remove(ctx, b.Name, b.XID); err != nil {
		t.Fatal(err)
	}
	if d := takeSnapshot(t, tn, m).diff(afterSetup); d != "" {
		t.Fatalf("after removing every sliver the host differs from after Setup:\n%s", d)
	}
	if names, _ := m.List(ctx); len(names) != 0 {
		t.Fatalf("List after removal = %v", names)
	}

	// Teardown removes everything, even with slivers present.
	if _, err := m.Ensure(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := takeSnapshot(t, tn, m).diff(before); d != "" {
		t.Fatalf("after Teardown the host differs from before Setup:\n%s", d)
	}
	if _, err := os.Stat(m.NetNSPath(b.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("netns file survived teardown: %v", err)
	}
}

func TestEnsureBadInput(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, nil)
	ctx := context.Background()
	before := takeSnapshot(t, tn, m)
	for _, tt := range []struct {
		s     Sliver
		field string
	}{
		{Sliver{Name: "../etc", XID: 3}, "name"},
		{Sliver{Name: "ok", XID: 0}, "xid"},
		{Sliver{Name: "ok", XID: 5000}, "xid"},
		{Sliver{Name: "ok", XID: 3, Ports: []Port{{Proto: "sctp", From: 1, To: 1}}}, "ports"},
		{Sliver{Name: "ok", XID: 3, Ports: []Port{{Proto: "tcp", From: 9, To: 8}}}, "ports"},
		{Sliver{Name: "ok", XID: 3, Ports: []Port{{Proto: "tcp", From: 1, To: 9}, {Proto: "tcp", From: 9, To: 9}}}, "ports"},
		{Sliver{Name: "ok", XID: 3, MinRateKbit: -1}, "net_min_rate"},
	} {
		_, err := m.Ensure(ctx, tt.s)
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != tt.field {
			t.Errorf("%+v: %v, want invalid %s", tt.s, err, tt.field)
		}
	}
	if d := takeSnapshot(t, tn, m).diff(before); d != "" {
		t.Fatalf("bad input changed the host:\n%s", d)
	}
}

func TestXIDChangeMovesEverything(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, nil)
	ctx := context.Background()
	if _, err := m.Ensure(ctx, Sliver{Name: "pltest_x", XID: 7, Ports: []Port{{Proto: "tcp", From: 80, To: 80}}}); err != nil {
		t.Fatal(err)
	}
	att, err := m.Ensure(ctx, Sliver{Name: "pltest_x", XID: 8, Ports: []Port{{Proto: "tcp", From: 80, To: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	s := takeSnapshot(t, tn, m)
	if !slices.Contains(s.Links, "plv8") || slices.Contains(s.Links, "plv7") || len(s.NetNSFiles) != 1 || len(s.Classes) != 3 {
		t.Fatalf("after xid change: %+v", s)
	}
	for _, r := range s.Rules {
		if strings.Contains(r, "-7") {
			t.Fatalf("rule of the old xid survived: %s", r)
		}
	}
	if att.Addr.String() != "10.42.0.34" {
		t.Fatalf("address %v", att.Addr)
	}
	// Remove with the stale xid still removes the current one (from the record).
	if err := m.Remove(ctx, "pltest_x", 7); err != nil {
		t.Fatal(err)
	}
	if s := takeSnapshot(t, tn, m); slices.Contains(s.Links, "plv8") || len(s.NetNSFiles) != 0 {
		t.Fatalf("after remove: %+v", s)
	}
}

// TestRemoveUnknown: removing what was never created (or after the node
// lost its state) succeeds and changes nothing, with or without Setup.
func TestRemoveUnknown(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, nil)
	ctx := context.Background()
	before := takeSnapshot(t, tn, m)
	if err := m.Remove(ctx, "pltest_never", 5); err != nil {
		t.Fatalf("Remove before Setup: %v", err)
	}
	if d := takeSnapshot(t, tn, m).diff(before); d != "" {
		t.Fatalf("Remove of nothing changed the host:\n%s", d)
	}
	if err := m.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "pltest_never", 5); err != nil {
		t.Fatalf("Remove after Setup: %v", err)
	}
	if err := m.Remove(ctx, "../x", 5); core.ErrorCode(err) != core.Invalid {
		t.Fatalf("Remove with a bad name: %v", err)
	}
}

// TestConcurrentEnsure: concurrent Ensures of distinct slivers all succeed,
// and of several slivers wanting one port exactly one wins. bwmon's and the
// sensors' readers run meanwhile, as on a node whose first Ensure sets the
// node up (go test -race found ClassBytes reading unlocked state).
func TestConcurrentEnsure(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, nil)
	ctx := context.Background()
	const n = 8
	stop := make(chan struct{})
	readers := make(chan struct{})
	go func() {
		defer close(readers)
		for {
			select {
			case <-stop:
				return
			default:
			}
			m.ClassBytes()
			m.Counters()
		}
	}()
	defer func() { close(stop); <-readers }()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := m.Ensure(ctx, Sliver{Name: fmt.Sprintf("pltest_c%d", i), XID: 100 + i, Ports: []Port{{Proto: "tcp", From: 443, To: 443}}})
			errs <- err
		}()
	}
	won := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			won++
		case core.ErrorCode(err) != core.Conflict:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d slivers got tcp/443", won)
	}
	if names, _ := m.List(ctx); len(names) != 1 {
		t.Fatalf("List = %v", names)
	}
}

// TestEnsureRepairs: Ensure restores a deleted veth and a lost namespace
// mount (as after a reboot, when only the empty file remains).
func TestEnsureRepairs(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, nil)
	ctx := context.Background()
	s := Sliver{Name: "pltest_r", XID: 40}
	att, err := m.Ensure(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	good := takeSnapshot(t, tn, m)
	serveEcho(listen(t, tn.peer, "tcp4", testPeerAddr+":7000"))
	sh(t, tn.node, "ip", "link", "del", "plv40")
	if _, err := m.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, att.NetNS, testPeerAddr+":7000"); err != nil {
		t.Fatalf("after veth repair: %v", err)
	}
	if err := unix.Unmount(att.NetNS, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ensure(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !isNetNSMount(att.NetNS) {
		t.Fatal("namespace mount not restored")
	}
	if _, err := roundTrip(t, att.NetNS, testPeerAddr+":7000"); err != nil {
		t.Fatalf("after netns repair: %v", err)
	}
	if d := takeSnapshot(t, tn, m).diff(good); d != "" {
		t.Fatalf("after repairs:\n%s", d)
	}
}
