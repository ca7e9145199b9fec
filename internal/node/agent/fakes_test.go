package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/nodeapi"
	"time"
)

// fakeRuntime is an in-memory sliver.Runtime that records every call as a
// canonical text line.
type fakeRuntime struct {
	mu      sync.Mutex
	slivers map[string]sliver.Status
	calls   []string
	fail    map[string]error // Apply/Destroy of these names fail
	starts  map[string]int   // how many times each sliver's init was started

	delay         time.Duration // each Apply takes this long
	active        map[string]int
	inFlight, max int
	overlap       bool // two Applies of one sliver ran at once
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{slivers: map[string]sliver.Status{}, fail: map[string]error{}, starts: map[string]int{}}
}

var _ sliver.Runtime = (*fakeRuntime)(nil)

func specLine(s sliver.Spec) string {
	r := s.Resources
	return fmt.Sprintf("%s xid=%d uid=%d image=%q enabled=%t shares=%d cap=%d mem=%d pids=%d nofile=%d disk=%d keys=%d init=%q netns=%s",
		s.Name, s.XID, s.UIDBase, s.Image, s.Enabled, r.CPUShares, r.CPUCapPct, r.MemoryBytes, r.Pids, r.NoFile, r.DiskBytes, len(s.Keys), s.InitScript, s.NetNS)
}

func (f *fakeRuntime) Apply(ctx context.Context, spec sliver.Spec) error {
	if f.delay > 0 {
		f.mu.Lock()
		if f.active == nil {
			f.active = map[string]int{}
		}
		f.active[spec.Name]++
		f.overlap = f.overlap || f.active[spec.Name] > 1
		f.inFlight++
		f.max = max(f.max, f.inFlight)
		f.mu.Unlock()
		time.Sleep(f.delay)
		f.mu.Lock()
		f.active[spec.Name]--
		f.inFlight--
		f.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "apply "+specLine(spec))
	if err := f.fail[spec.Name]; err != nil {
		return err
	}
	st := f.slivers[spec.Name]
	if !st.Running {
		f.starts[spec.Name]++
	}
	cp := spec
	cp.Keys = append([]string(nil), spec.Keys...)
	f.slivers[spec.Name] = sliver.Status{Name: spec.Name, XID: spec.XID, Running: true, Frozen: !spec.Enabled, Spec: &cp}
	return nil
}

func (f *fakeRuntime) Destroy(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "destroy "+name)
	if err := f.fail[name]; err != nil {
		return err
	}
	delete(f.slivers, name)
	return nil
}

func (f *fakeRuntime) List(ctx context.Context) ([]sliver.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sliver.Status
	for _, s := range f.slivers {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeRuntime) Command(ctx context.Context, name string, p sliver.Process) (*exec.Cmd, error) {
	return nil, errors.New("fake runtime runs no commands")
}

func (f *fakeRuntime) takeCalls() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	sort.Strings(f.calls) // concurrent execution: order across slivers is free
	s := strings.Join(f.calls, "\n")
	f.calls = nil
	return s
}

// fakeNet is an in-memory netcfg.Manager recording calls as text lines.
type fakeNet struct {
	mu      sync.Mutex
	nets    map[string]netcfg.Sliver
	calls   []string
	prefix6 netip.Prefix // as SetPrefix6 left it
}

// SetPrefix6 makes fakeNet a Prefix6Setter; Ensure refuses a
// configuration made for another prefix, as netcfg.Linux does.
func (f *fakeNet) SetPrefix6(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prefix6 = p
	return nil
}

func newFakeNet() *fakeNet { return &fakeNet{nets: map[string]netcfg.Sliver{}} }

var _ netcfg.Manager = (*fakeNet)(nil)

func (f *fakeNet) Ensure(ctx context.Context, s netcfg.Sliver) (netcfg.Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Prefix6.IsValid() && s.Prefix6 != f.prefix6 {
		return netcfg.Attachment{}, fmt.Errorf("configuration made for IPv6 prefix %s, but the node's is %s", s.Prefix6, f.prefix6)
	}
	f.calls = append(f.calls, fmt.Sprintf("ensure %s xid=%d uid=%d ports=%v min=%d max=%d", s.Name, s.XID, s.UIDBase, s.Ports, s.MinRateKbit, s.MaxRateKbit))
	f.nets[s.Name] = s
	return netcfg.Attachment{NetNS: "/run/netns/pl-" + s.Name}, nil
}

func (f *fakeNet) Remove(ctx context.Context, name string, xid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("remove %s xid=%d", name, xid))
	delete(f.nets, name)
	return nil
}

func (f *fakeNet) List(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.nets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// fakePLC is an in-memory node API with a switch to make it unreachable.
type fakePLC struct {
	mu      sync.Mutex
	st      *core.NodeState
	down    bool
	changed chan struct{}
	reports []nodeapi.Report
}

func newFakePLC(st *core.NodeState) *fakePLC {
	return &fakePLC{st: st, changed: make(chan struct{})}
}

func (p *fakePLC) set(f func(st *core.NodeState)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := *p.st
	cp.Slivers = append([]core.Sliver(nil), p.st.Slivers...)
	f(&cp)
	cp.Version = fmt.Sprintf("v%d", time.Now().UnixNano())
	p.st = &cp
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *fakePLC) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

var errDown = &core.Error{Code: core.Unavailable, Message: "PLC unreachable (test)"}

func (p *fakePLC) State(ctx context.Context) (*core.NodeState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, errDown
	}
	return p.st, nil
}

func (p *fakePLC) Watch(ctx context.Context, version string, timeout time.Duration) (*core.NodeState, error) {
	for {
		p.mu.Lock()
		down, st, ch := p.down, p.st, p.changed
		p.mu.Unlock()
		if down {
			return nil, errDown
		}
		if st.Version != version {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-time.After(timeout):
			return nil, nil
		}
	}
}

func (p *fakePLC) Report(ctx context.Context, r nodeapi.Report) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errDown
	}
	p.reports = append(p.reports, r)
	return nil
}

func (p *fakePLC) lastReport() (nodeapi.Report, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reports) == 0 {
		return nodeapi.Report{}, 0
	}
	return p.reports[len(p.reports)-1], len(p.reports)
}
