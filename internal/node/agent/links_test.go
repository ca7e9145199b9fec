package agent

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// fakeLinks records what the executor asks of the link manager.
type fakeLinks struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

var _ LinkManager = (*fakeLinks)(nil)

func (f *fakeLinks) Ensure(ctx context.Context, sliver string, xid int, netns string, links []core.VLink) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for _, l := range links {
		names = append(names, fmt.Sprintf("%s/%d", l.Name, l.VNI))
	}
	f.calls = append(f.calls, fmt.Sprintf("ensure %s xid=%d %s [%s]", sliver, xid, netns, strings.Join(names, " ")))
	return f.fail
}

func (f *fakeLinks) Remove(ctx context.Context, sliver string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+sliver)
	return nil
}

func (f *fakeLinks) take() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.Join(f.calls, "\n")
	f.calls = nil
	return s
}

func withLinks(s core.Sliver, ls ...core.VLink) core.Sliver { s.VLinks = ls; return s }

var testLink = core.VLink{Name: "ab", VNI: 65, Local: "10.200.0.1/30", Remote: "10.200.0.2", PeerNode: "n2", PeerAddr: "192.0.2.2", RateKbit: 1000}

// TestExecutorLinks: links are built in the namespace netcfg returned, a
// change of links is a network change in the plan, a link the kernel
// cannot fully shape does not stop the sliver (the error is reported
// once), other failures are retried, and destroy removes the links first.
func TestExecutorLinks(t *testing.T) {
	w := newWorld(t)
	fl := &fakeLinks{}
	w.exec.Links = fl
	ctx := context.Background()
	must(t, w.exec.XIDs.Allocate([]string{"pl_a"}))
	d := desiredOf(t, withLinks(sliverOf("pl_a", 1), testLink))
	if errs := w.exec.Run(ctx, Plan(w.actual(t), d)); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := fl.take(); got != "ensure pl_a xid=1 /run/netns/pl-pl_a [ab/65]" {
		t.Fatalf("link calls: %q", got)
	}
	if got := RenderPlan(Plan(w.actual(t), d)); got != "none pl_a xid=1\n" {
		t.Fatalf("plan after: %q", got)
	}
	// A second link: the plan says so.
	bc := testLink
	bc.Name, bc.VNI, bc.Local, bc.Remote = "bc", 66, "10.200.0.5/30", "10.200.0.6"
	d2 := desiredOf(t, withLinks(sliverOf("pl_a", 1), testLink, bc))
	if got := RenderPlan(Plan(w.actual(t), d2)); got != "update pl_a xid=1 (network vlinks)\n" {
		t.Fatalf("plan with a new link: %q", got)
	}
	// A property the node cannot enforce (Unimplemented): the sliver still
	// runs, the error is reported, and the links are recorded (not retried
	// every pass).
	fl.fail = core.Errorf(core.Unimplemented, "link bc: delay 20ms not enforced")
	errs := w.exec.Run(ctx, Plan(w.actual(t), d2))
	if core.ErrorCode(errs["pl_a"]) != core.Unimplemented || !w.rt.slivers["pl_a"].Running {
		t.Fatalf("unenforced delay: errs %v", errs)
	}
	if got := RenderPlan(Plan(w.actual(t), d2)); got != "none pl_a xid=1\n" {
		t.Fatalf("plan after unenforced delay: %q", got)
	}
	// Another failure is not recorded: the next pass tries again.
	d3 := desiredOf(t, withLinks(sliverOf("pl_a", 1), bc))
	fl.fail = fmt.Errorf("netlink: busy")
	if errs := w.exec.Run(ctx, Plan(w.actual(t), d3)); errs["pl_a"] == nil {
		t.Fatal("failed link ensure not reported")
	}
	if got := RenderPlan(Plan(w.actual(t), d3)); got != "update pl_a xid=1 (network vlinks)\n" {
		t.Fatalf("plan after a failed ensure: %q", got)
	}
	fl.fail = nil
	fl.take()
	w.net.calls = nil
	w.exec.Run(ctx, Plan(w.actual(t), Desired{}))
	if got := fl.take(); got != "remove pl_a" {
		t.Fatalf("destroy link calls: %q", got)
	}
	// Without a link manager, a sliver with links runs without them and
	// the refusal is reported.
	w2 := newWorld(t)
	must(t, w2.exec.XIDs.Allocate([]string{"pl_a"}))
	errs = w2.exec.Run(ctx, Plan(w2.actual(t), d))
	if core.ErrorCode(errs["pl_a"]) != core.Unimplemented || !strings.Contains(errs["pl_a"].Error(), "virtual links are not supported on this node") {
		t.Fatalf("no link manager: %v", errs)
	}
}

// TestComputeRefusesBadLinkEnds: a link end the node cannot build refuses
// the sliver (kept as is), naming the problem.
func TestComputeRefusesBadLinkEnds(t *testing.T) {
	bad := testLink
	bad.Remote = "10.9.9.9"
	d := desiredOf(t, withLinks(sliverOf("pl_a", 1), bad), withLinks(sliverOf("pl_b", 2), testLink))
	if !strings.Contains(d.Errors["pl_a"], "remote address \"10.9.9.9\" is not the other host of 10.200.0.0/30") {
		t.Fatalf("errors %v", d.Errors)
	}
	if len(d.Slivers["pl_b"].Net.Links) != 1 {
		t.Fatalf("pl_b links %+v", d.Slivers["pl_b"].Net.Links)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
