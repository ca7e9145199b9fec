package nodecmd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/mountinfo"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/spf13/cobra"
)

// StaticPLC is an in-process node API serving a state set by the caller.
// It records when each version was handed to the node, so latencies can
// be measured from "desired state received". Used by `pl bench sliver` and
// by tests that need no PLC.
type StaticPLC struct {
	mu        sync.Mutex
	st        *core.NodeState
	changed   chan struct{}
	delivered map[string]time.Time
	seq       int
	down      bool
	Reports   []nodeapi.Report
}

var errPLCDown = &core.Error{Code: core.Unavailable, Message: "PLC unreachable (switched off)"}

// SetDown makes the PLC unreachable (true) or reachable again.
func (p *StaticPLC) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	close(p.changed)
	p.changed = make(chan struct{})
}

// NewStaticPLC returns a PLC serving an empty state for node 1.
func NewStaticPLC() *StaticPLC {
	return &StaticPLC{st: &core.NodeState{NodeID: 1, Version: "v0"}, changed: make(chan struct{}), delivered: map[string]time.Time{}}
}

// Set replaces the slivers and returns the new version.
func (p *StaticPLC) Set(slivers []core.Sliver) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.st = &core.NodeState{NodeID: 1, Version: fmt.Sprintf("v%d", p.seq), Slivers: slivers}
	close(p.changed)
	p.changed = make(chan struct{})
	return p.st.Version
}

// SetState replaces the whole state (slivers, leases, policy) and
// returns the new version.
func (p *StaticPLC) SetState(st core.NodeState) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	st.NodeID, st.Version = 1, fmt.Sprintf("v%d", p.seq)
	p.st = &st
	close(p.changed)
	p.changed = make(chan struct{})
	return p.st.Version
}

// Delivered returns when version was first handed to the node.
func (p *StaticPLC) Delivered(version string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.delivered[version]
	return t, ok
}

func (p *StaticPLC) deliver() *core.NodeState {
	if _, ok := p.delivered[p.st.Version]; !ok {
		p.delivered[p.st.Version] = time.Now()
	}
	return p.st
}

// State implements agent.PLC.
func (p *StaticPLC) State(ctx context.Context) (*core.NodeState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil, errPLCDown
	}
	return p.deliver(), nil
}

// Watch implements agent.PLC.
func (p *StaticPLC) Watch(ctx context.Context, version string, timeout time.Duration) (*core.NodeState, error) {
	for {
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			return nil, errPLCDown
		}
		if p.st.Version != version {
			st := p.deliver()
			p.mu.Unlock()
			return st, nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(timeout):
			return nil, nil
		case <-ch:
		}
	}
}

// Report implements agent.PLC.
func (p *StaticPLC) Report(ctx context.Context, r nodeapi.Report) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return errPLCDown
	}
	p.Reports = append(p.Reports, r)
	return nil
}

// Sandbox is a network namespace with a stand-in uplink, so a node manager
// under test or benchmark never touches the host's real uplink.
type Sandbox struct {
	Name     string // ip netns name
	NetNS    string // /run/netns/<name>
	Uplink   string
	NodeAddr string
}

// NewSandbox creates the namespace (iproute2 `ip netns`).
func NewSandbox(name string) (*Sandbox, error) {
	s := &Sandbox{Name: name, NetNS: "/run/netns/" + name, Uplink: "up0", NodeAddr: "192.0.2.1"}
	exec.Command("ip", "netns", "del", name).Run() // leftover of a crashed run
	for _, args := range [][]string{
		{"netns", "add", name},
		{"-n", name, "link", "set", "lo", "up"},
		// No dummy driver on every kernel: a veth pair with both ends inside.
		{"-n", name, "link", "add", s.Uplink, "type", "veth", "peer", "name", s.Uplink + "p"},
		{"-n", name, "link", "set", s.Uplink + "p", "up"},
		{"-n", name, "addr", "add", s.NodeAddr + "/24", "dev", s.Uplink},
		{"-n", name, "link", "set", s.Uplink, "up"},
		{"-n", name, "route", "add", "default", "via", "192.0.2.254", "dev", s.Uplink},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			s.Close()
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return s, nil
}

// Close deletes the namespace.
func (s *Sandbox) Close() error {
	if out, err := exec.Command("ip", "netns", "del", s.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", s.Name, err, out)
	}
	return nil
}

// BenchResult is one row of `pl bench sliver`.
type BenchResult struct {
	N                    int
	P50, P99             time.Duration // desired state received -> sliver running (agent path)
	OpP50                time.Duration // one sliver's create operation (network + runtime Apply)
	FloorP50, FloorP99   time.Duration // bare runc create+start of one container
	BatchP50, BatchP99   time.Duration // bare runc, N containers one after another: batch start -> container running
	CgroupBytesPerSliver int64         // memory charged to the sliver cgroups, per sliver
	HostBytesPerSliver   int64         // drop of MemAvailable, per sliver
}

// BenchOptions configure BenchSliver.
type BenchOptions struct {
	Ns       []int
	Dir      string // scratch state directory (removed afterwards)
	Parallel int
	Runtime  string // slice tag runtime of the slivers ("" = the default, runc)
	Log      *slog.Logger
	Progress io.Writer
}

// BenchSliver measures sliver creation through the whole node manager
// (agent + runtime + netcfg, in a network sandbox) for each N, beside the
// floor of bare runc, and the memory of idle slivers.
func BenchSliver(ctx context.Context, o BenchOptions) ([]BenchResult, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if err := os.MkdirAll(o.Dir, 0o711); err != nil {
		return nil, err
	}
	cgroupParent := fmt.Sprintf("/plbench%d", os.Getpid())
	defer func() {
		// The runtime's disk filesystem outlives node managers: unmount it
		// before removing the scratch directory, then the cgroup parents.
		sliver.UnmountState(filepath.Join(o.Dir, "slivers"))
		os.RemoveAll(o.Dir)
		for _, h := range hostCgroups().Mounts() {
			os.Remove(filepath.Join(h, cgroupParent))
			os.Remove(filepath.Join(h, cgroupParent+"-floor"))
		}
	}()
	sb, err := NewSandbox(fmt.Sprintf("plbench%d", os.Getpid()))
	if err != nil {
		return nil, err
	}
	defer sb.Close()

	plc := NewStaticPLC()
	var mu sync.Mutex
	created := map[string]time.Time{}
	var opTimes []time.Duration
	destroyed := 0
	n, err := NewNode(ctx, Options{
		State: o.Dir, SSHListen: "-", SensorAddr: "-", NetNS: sb.NetNS, Uplink: sb.Uplink, NodeAddr: sb.NodeAddr,
		NFTable: "plbench", VethPrefix: "plb", CgroupParent: cgroupParent, Parallel: o.Parallel,
		Logger: o.Log, PLC: plc, ResyncInterval: time.Hour,
		Observe: func(op agent.Op, err error, took time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				return
			}
			switch op.Kind {
			case agent.OpCreate:
				created[op.Name] = time.Now()
				opTimes = append(opTimes, took)
			case agent.OpDestroy:
				destroyed++
			}
		},
	})
	if err != nil {
		return nil, err
	}
	defer n.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()
	defer func() {
		plc.Set(nil) // destroy everything before leaving
		waitFor(ctx, 5*time.Minute, func() bool { l, _ := n.Runtime.List(ctx); return len(l) == 0 })
		cancel()
		<-done
		n.Net.Teardown(context.Background())
	}()
	rootfs, err := n.Images.Rootfs("default")
	if err != nil {
		return nil, err
	}

	var out []BenchResult
	for _, N := range o.Ns {
		fmt.Fprintf(o.Progress, "N=%d: creating slivers...\n", N)
		mu.Lock()
		created = map[string]time.Time{}
		opTimes = nil
		mu.Unlock()
		memBefore := memAvailable()
		var slivers []core.Sliver
		for i := 1; i <= N; i++ {
			attrs := []core.Attribute{{TagName: tags.DiskMax, Value: "1000000"}}
			if o.Runtime != "" {
				attrs = append(attrs, core.Attribute{TagName: tags.Runtime, Value: o.Runtime})
			}
			slivers = append(slivers, core.Sliver{Name: fmt.Sprintf("bench_s%d", i), SliceID: int64(i), Instantiation: "plc-instantiated",
				Attributes: attrs})
		}
		version := plc.Set(slivers)
		// Done when every sliver is created, or refused (a runtime the
		// node cannot run): a refusal ends the bench with its reason.
		if !waitFor(ctx, 10*time.Minute, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(created) == N || len(created)+len(n.Agent.Status().SliverErrors) >= N
		}) || len(created) < N {
			return out, fmt.Errorf("bench with N=%d: only %d slivers created: %v", N, len(created), n.Agent.Status().SliverErrors)
		}
		t0, _ := plc.Delivered(version)
		var lat []time.Duration
		mu.Lock()
		for _, t := range created {
			lat = append(lat, t.Sub(t0))
		}
		ops := append([]time.Duration(nil), opTimes...)
		mu.Unlock()
		time.Sleep(2 * time.Second) // let slivers settle idle
		r := BenchResult{N: N, P50: sliver.Quantile(lat, 0.5), P99: sliver.Quantile(lat, 0.99), OpP50: sliver.Quantile(ops, 0.5)}
		var cg int64
		for _, s := range slivers {
			cg += cgroupMemory(cgroupParent, s.Name)
		}
		r.CgroupBytesPerSliver = cg / int64(N)
		if d := memBefore - memAvailable(); d > 0 {
			r.HostBytesPerSliver = d / int64(N)
		}
		fmt.Fprintf(o.Progress, "N=%d: destroying...\n", N)
		plc.Set(nil)
		if !waitFor(ctx, 10*time.Minute, func() bool { l, _ := n.Runtime.List(ctx); return len(l) == 0 }) {
			return out, fmt.Errorf("bench with N=%d: slivers not destroyed", N)
		}
		fmt.Fprintf(o.Progress, "N=%d: bare runc floor...\n", N)
		floor, err := sliver.BenchFloor(ctx, sliver.FloorConfig{Dir: filepath.Join(o.Dir, "floor"), Rootfs: rootfs, N: N, CgroupParent: cgroupParent + "-floor"})
		if err != nil {
			return out, fmt.Errorf("floor: %w", err)
		}
		r.FloorP50, r.FloorP99 = sliver.Quantile(floor, 0.5), sliver.Quantile(floor, 0.99)
		// The floor runs containers one after another; what a batch of N
		// costs bare runc is the cumulative time to each container.
		var batch []time.Duration
		var sum time.Duration
		for _, d := range floor {
			sum += d
			batch = append(batch, sum)
		}
		r.BatchP50, r.BatchP99 = sliver.Quantile(batch, 0.5), sliver.Quantile(batch, 0.99)
		out = append(out, r)
	}
	return out, nil
}

func waitFor(ctx context.Context, limit time.Duration, cond func() bool) bool {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}

// memAvailable returns MemAvailable from /proc/meminfo in bytes.
func memAvailable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemAvailable:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cgroupMemory reads the memory charged to a sliver's cgroup (v1 or v2,
// wherever the memory hierarchy is mounted).
func cgroupMemory(parent, name string) int64 {
	m, unified := hostCgroups().Controller("memory")
	if m == "" {
		return 0
	}
	file := "memory.usage_in_bytes"
	if unified {
		file = "memory.current"
	}
	b, err := os.ReadFile(filepath.Join(m, parent, name, file))
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// hostCgroups is the host's cgroup layout from its mount table.
func hostCgroups() mountinfo.Cgroups {
	ms, _ := mountinfo.Read()
	return mountinfo.CgroupLayout(ms)
}

func benchSliverCmd() *cobra.Command {
	var ns string
	var dir string
	var parallel int
	var runtime string
	c := &cobra.Command{
		Use:   "sliver",
		Short: "Measure sliver creation latency and idle memory (root)",
		Long: `Create N slivers (default N = 1, 10, 100) through the node manager
(agent, runc runtime and networking, in a private network namespace) and
report p50/p99 of the time from desired state received to the sliver's init
running, beside bare 'runc create' + 'runc start' of the same root
filesystem, the memory per idle sliver and the resulting capacity estimate.
With --runtime runsc the slivers run under gVisor (slice tag runtime); the
bare floor stays runc's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []int
			for _, f := range strings.Split(ns, ",") {
				v, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || v < 1 || v > agent.MaxXID {
					return fmt.Errorf("-n: %q is not a number of slivers 1..%d", f, agent.MaxXID)
				}
				list = append(list, v)
			}
			if runtime != "" {
				if err := tags.Check(tags.Runtime, runtime); err != nil {
					return fmt.Errorf("--runtime: %w", err)
				}
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("pl bench sliver needs root")
			}
			ctx, stop := signalContext()
			defer stop()
			if dir == "" {
				dir = filepath.Join(os.TempDir(), fmt.Sprintf("pl-bench-sliver-%d", os.Getpid()))
			}
			res, err := BenchSliver(ctx, BenchOptions{Ns: list, Dir: dir, Parallel: parallel, Runtime: runtime, Progress: cmd.ErrOrStderr()})
			PrintBench(cmd.OutOrStdout(), res)
			return err
		},
	}
	c.Flags().StringVarP(&ns, "n", "n", "1,10,100", "comma-separated numbers of slivers (-n or --n)")
	c.Flags().StringVar(&dir, "dir", "", "scratch state directory (default a new one under $TMPDIR)")
	c.Flags().IntVar(&parallel, "parallel", 8, "concurrent sliver operations")
	c.Flags().StringVar(&runtime, "runtime", "", "sliver runtime (slice tag runtime): runc or runsc")
	return c
}

// PrintBench renders results as a table, with a capacity estimate.
func PrintBench(w io.Writer, res []BenchResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tp50\tp99\top p50\trunc p50\trunc p99\trunc batch p50\trunc batch p99\tp50/batch\tcgroup mem/sliver\thost mem/sliver\t")
	var per int64
	for _, r := range res {
		ratio := "-"
		if r.BatchP50 > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(r.P50)/float64(r.BatchP50))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.N, ms(r.P50), ms(r.P99), ms(r.OpP50), ms(r.FloorP50), ms(r.FloorP99),
			ms(r.BatchP50), ms(r.BatchP99), ratio, mib(r.CgroupBytesPerSliver), mib(r.HostBytesPerSliver))
		if r.N >= 10 && r.HostBytesPerSliver > per {
			per = r.HostBytesPerSliver
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "p50/p99: desired state received -> sliver init running, all N slivers bound at once;")
	fmt.Fprintln(w, "op: one sliver's create (network + runtime); runc: bare runc create+start of the same rootfs;")
	fmt.Fprintln(w, "runc batch: the N bare containers started one after another, batch start -> each running.")
	if per > 0 {
		total := memTotal()
		est := total / per
		fmt.Fprintf(w, "capacity estimate: %d idle slivers by memory (%.1f GiB total / %s each), capped at %d by the xid space\n",
			est, float64(total)/(1<<30), mib(per), agent.MaxXID)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
func mib(b int64) string        { return fmt.Sprintf("%.2fMiB", float64(b)/(1<<20)) }

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
