package sensors

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// fakeNode is a fake filesystem root: /proc files and cgroup v1
// hierarchies with slivers, whose figures tests change between
// collections.
type fakeNode struct {
	t    testing.TB
	root string
	now  time.Time
}

const fakeMountinfo = `22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/mem\040ory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func newFakeNode(t testing.TB) *fakeNode {
	n := &fakeNode{t: t, root: t.TempDir(), now: time.Unix(1700000000, 0)}
	n.write("proc/self/mountinfo", fakeMountinfo)
	n.write("proc/loadavg", "1.50 0.75 0.25 3/400 999\n")
	n.setCPU(1000, 4000)
	n.write("proc/meminfo", "MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:    3000000 kB\nSwapTotal:       1000000 kB\nSwapFree:         750000 kB\n")
	n.write("proc/uptime", "3600.50 7000.00\n")
	n.setNet(map[string][4]uint64{"eth0": {1000, 2000, 10, 20}, "lo": {5, 5, 1, 1}})
	return n
}

func (n *fakeNode) write(rel, content string) {
	p := filepath.Join(n.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// setCPU writes /proc/stat with 2 CPUs and the given busy and total ticks.
func (n *fakeNode) setCPU(busy, total uint64) {
	idle := total - busy
	n.write("proc/stat", fmt.Sprintf("cpu  %d 0 %d %d %d 0 0 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\ncpu1 1 0 1 1 0 0 0 0 0 0\nctxt 1\n", busy/2, busy-busy/2, idle-idle/4, idle/4))
}

// setNet writes /proc/net/dev; values are rx bytes, tx bytes, rx packets,
// tx packets.
func (n *fakeNode) setNet(links map[string][4]uint64) {
	var b strings.Builder
	b.WriteString("Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	for name, v := range links {
		fmt.Fprintf(&b, "%6s: %d %d 0 3 0 0 0 0 %d %d 0 4 0 0 0 0\n", name, v[0], v[2], v[1], v[3])
	}
	n.write("proc/net/dev", b.String())
}

// setSliver writes the cgroup files of sliver name (v1).
func (n *fakeNode) setSliver(name string, cpuNs, mem, limit, procs uint64, frozen bool) {
	n.write("sys/fs/cgroup/cpuacct/pl/"+name+"/cpuacct.usage", fmt.Sprintf("%d\n", cpuNs))
	n.write("sys/fs/cgroup/mem ory/pl/"+name+"/memory.usage_in_bytes", fmt.Sprintf("%d\n", mem))
	n.write("sys/fs/cgroup/mem ory/pl/"+name+"/memory.limit_in_bytes", fmt.Sprintf("%d\n", limit))
	n.write("sys/fs/cgroup/pids/pl/"+name+"/pids.current", fmt.Sprintf("%d\n", procs))
	st := "THAWED"
	if frozen {
		st = "FROZEN"
	}
	n.write("sys/fs/cgroup/freezer/pl/"+name+"/freezer.state", st+"\n")
}

func (n *fakeNode) collector(cfg Config) *Collector {
	cfg.Root = n.root
	cfg.Now = func() time.Time { return n.now }
	c, err := New(cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

func TestCollectNode(t *testing.T) {
	n := newFakeNode(t)
	n.setSliver("pl_busy", 5e9, 100<<20, 1<<30, 4, false)
	n.setSliver("pl_idle", 1e9, 10<<20, 9223372036854771712, 1, false)
	n.setSliver("pl_frozen", 0, 0, 0, 2, true)
	n.setSliver("pl_empty", 0, 0, 0, 0, false)
	n.write("sys/class/net/plv7/ifalias", "pl_busy\n")
	n.setNet(map[string][4]uint64{"eth0": {1000, 2000, 10, 20}, "lo": {5, 5, 1, 1}, "plv7": {300, 400, 3, 4}, "plv8": {1, 1, 1, 1}})
	c := n.collector(Config{
		StoreDir: n.root,
		Slivers: func() []Sliver {
			return []Sliver{{Name: "pl_busy"}, {Name: "pl_gone", LastError: "bad \"vsys\" value"}}
		},
		Disk: func(name string) (uint64, uint64, error) {
			if name == "pl_busy" {
				return 5 << 20, 1 << 30, nil
			}
			return 0, 0, fmt.Errorf("no subvolume")
		},
		Clock: func() (int64, bool) { return -42, true },
	})
	f, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("collected figures invalid: %v", err)
	}
	if f.Load1 != 1.5 || f.Load5 != 0.75 || f.Load15 != 0.25 || f.CPUs != 2 {
		t.Errorf("load/cpus: %+v", f)
	}
	if f.CPUPct != 25 { // first collection: average since boot, 1000 of 4000 ticks
		t.Errorf("cpu_pct %g, want 25", f.CPUPct)
	}
	if f.MemTotal != 4000000*1024 || f.MemUsed != 1000000*1024 || f.SwapTotal != 1000000*1024 || f.SwapUsed != 250000*1024 {
		t.Errorf("memory: %d %d %d %d", f.MemTotal, f.MemUsed, f.SwapTotal, f.SwapUsed)
	}
	if f.UptimeSec != 3600.5 || f.ClockOffsetMs != -42 || !f.ClockKnown {
		t.Errorf("uptime/clock: %g %d %v", f.UptimeSec, f.ClockOffsetMs, f.ClockKnown)
	}
	if f.DiskTotal == 0 || f.DiskUsed > f.DiskTotal {
		t.Errorf("disk: %d of %d", f.DiskUsed, f.DiskTotal)
	}
	// Node traffic: eth0 only (not lo, not the sliver veths).
	if f.RxBytes != 1000 || f.TxBytes != 2000 || f.RxPackets != 10 || f.TxPackets != 20 || f.RxDrops != 3 || f.TxDrops != 4 {
		t.Errorf("node network: %+v", f)
	}
	var names []string
	for _, s := range f.Slivers {
		names = append(names, s.Slice+":"+s.State)
	}
	if got := strings.Join(names, " "); got != "pl_busy:running pl_empty:stopped pl_frozen:frozen pl_gone:stopped pl_idle:running" || f.SliverCount != 5 {
		t.Fatalf("slivers: %s (count %d)", got, f.SliverCount)
	}
	busy, _ := Slice(f, "pl_busy")
	want := core.SliverFigures{Slice: "pl_busy", State: "running", CPUSeconds: 5, MemUsed: 100 << 20, MemLimit: 1 << 30, Procs: 4,
		DiskUsed: 5 << 20, DiskQuota: 1 << 30, RxBytes: 400, TxBytes: 300, RxPackets: 4, TxPackets: 3}
	if busy != want {
		t.Errorf("pl_busy:\n got %+v\nwant %+v", busy, want)
	}
	idle, _ := Slice(f, "pl_idle")
	if idle.MemLimit != 0 || idle.RxBytes != 0 {
		t.Errorf("pl_idle: unlimited memory reads as 0, no veth: %+v", idle)
	}
	gone, _ := Slice(f, "pl_gone")
	if gone.LastError != `bad "vsys" value` || gone.CPUSeconds != 0 {
		t.Errorf("pl_gone: %+v", gone)
	}
}

// TestCollectRates: shares are computed over the window since the base
// reading, which moves forward once MinWindow old.
func TestCollectRates(t *testing.T) {
	n := newFakeNode(t)
	n.setSliver("pl_a", 0, 0, 0, 1, false)
	n.setSliver("pl_b", 0, 0, 0, 1, false)
	c := n.collector(Config{})
	if _, err := c.Collect(); err != nil {
		t.Fatal(err)
	}
	// 2 s later: pl_a used 3 CPU-seconds of 4 (2 CPUs), pl_b 0.4; the
	// node was busy 900 of 1000 ticks.
	n.now = n.now.Add(2 * time.Second)
	n.setSliver("pl_a", 3e9, 0, 0, 1, false)
	n.setSliver("pl_b", 4e8, 0, 0, 1, false)
	n.setCPU(1900, 5000)
	f, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Slice(f, "pl_a")
	b, _ := Slice(f, "pl_b")
	if a.CPUPct != 75 || b.CPUPct != 10 || f.CPUPct != 90 {
		t.Fatalf("shares: a %g (want 75), b %g (want 10), node %g (want 90)", a.CPUPct, b.CPUPct, f.CPUPct)
	}
	// 100 ms later: the reading of 2 s is too recent; the window is
	// the 2.1 s since the first: 3.21 CPU-seconds of 4.2.
	n.now = n.now.Add(100 * time.Millisecond)
	n.setSliver("pl_a", 3e9+21e7, 0, 0, 1, false)
	f, _ = c.Collect()
	if a, _ := Slice(f, "pl_a"); a.CPUPct < 76.42 || a.CPUPct > 76.43 {
		t.Errorf("pl_a over a 2.1 s window: %g, want 76.43", a.CPUPct)
	}
	// A counter going backwards (sliver re-created) reads as 0, not garbage.
	n.now = n.now.Add(2 * time.Second)
	n.setSliver("pl_a", 1e6, 0, 0, 1, false)
	f, _ = c.Collect()
	if a, _ := Slice(f, "pl_a"); a.CPUPct != 0 {
		t.Errorf("re-created sliver share %g, want 0", a.CPUPct)
	}
}

func TestCollectErrors(t *testing.T) {
	n := newFakeNode(t)
	c := n.collector(Config{})
	n.write("proc/loadavg", "garbage\n")
	if _, err := c.Collect(); err == nil || !strings.Contains(err.Error(), "/proc/loadavg") {
		t.Errorf("bad loadavg: %v", err)
	}
	n.write("proc/loadavg", "1 1 1 1/1 1\n")
	n.setSliver("pl_x", 0, 0, 0, 0, false)
	n.write("sys/fs/cgroup/cpuacct/pl/pl_x/cpuacct.usage", "lots\n")
	if _, err := c.Collect(); err == nil || !strings.Contains(err.Error(), "cpuacct.usage") {
		t.Errorf("bad cpuacct.usage: %v", err)
	}
	if _, err := New(Config{Root: n.root, CgroupParent: "../x"}); err == nil {
		t.Error("relative cgroup parent accepted")
	}
}

// TestCgroupV2: a node with only the unified hierarchy.
func TestCgroupV2(t *testing.T) {
	n := newFakeNode(t)
	n.write("proc/self/mountinfo", "41 31 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n")
	n.write("sys/fs/cgroup/pl/pl_v/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n")
	n.write("sys/fs/cgroup/pl/pl_v/memory.current", "1048576\n")
	n.write("sys/fs/cgroup/pl/pl_v/memory.max", "max\n")
	n.write("sys/fs/cgroup/pl/pl_v/pids.current", "3\n")
	n.write("sys/fs/cgroup/pl/pl_v/cgroup.freeze", "1\n")
	c := n.collector(Config{Slivers: func() []Sliver { return []Sliver{{Name: "pl_v"}} }})
	f, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Slice(f, "pl_v")
	if s.CPUSeconds != 2.5 || s.MemUsed != 1<<20 || s.MemLimit != 0 || s.Procs != 3 || s.State != "frozen" {
		t.Errorf("v2 sliver: %+v", s)
	}
}

// TestParsersRealFiles: the parsers read files captured from a real node.
func TestParsersRealFiles(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata/proc", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, _, _, err := parseLoadavg(read("loadavg")); err != nil {
		t.Error(err)
	}
	if c, err := parseStat(read("stat")); err != nil || c.cpus != 2 || c.busy == 0 || c.total <= c.busy {
		t.Errorf("stat: %+v %v", c, err)
	}
	if m, err := parseMeminfo(read("meminfo")); err != nil || m.available == 0 || m.available > m.total {
		t.Errorf("meminfo: %+v %v", m, err)
	}
	if u, err := parseUptime(read("uptime")); err != nil || u <= 0 {
		t.Errorf("uptime: %g %v", u, err)
	}
	if l, err := parseNetDev(read("net/dev")); err != nil || len(l) == 0 || l[0].Name != "lo" {
		t.Errorf("net/dev: %+v %v", l, err)
	}
	m := parseCgroupMounts(read("self/mountinfo"))
	if m["cpuacct"] != "/sys/fs/cgroup/cpuacct" || m["memory"] != "/sys/fs/cgroup/memory" || m["pids"] != "/sys/fs/cgroup/pids" || m[""] != "/sys/fs/cgroup/unified" {
		t.Errorf("cgroup mounts: %v", m)
	}
}

func TestParserErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"loadavg short", second(parseLoadavg([]byte("1 2"))), "want 3 load averages"},
		{"loadavg negative", second(parseLoadavg([]byte("-1 2 3"))), "field 1: bad load"},
		{"stat no cpu", second2(parseStat([]byte("ctxt 1\n"))), "no cpu line"},
		{"stat bad", second2(parseStat([]byte("cpu 1 2 x 4\n"))), "line 1: field 4"},
		{"meminfo unit", second3(parseMeminfo([]byte("MemTotal: 5 MB\n"))), `line 1: want "<n> kB"`},
		{"meminfo none", second3(parseMeminfo([]byte("Foo: 1 kB\n"))), "no MemTotal"},
		{"uptime", second4(parseUptime([]byte("x"))), "bad uptime"},
		{"net/dev short", second5(parseNetDev([]byte("a\nb\n eth0: 1 2 3\n"))), "line 3: want 16 counters"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, c.err, c.want)
		}
	}
}

func second(_, _, _ float64, err error) error { return err }
func second2(_ cpuTimes, err error) error     { return err }
func second3(_ meminfo, err error) error      { return err }
func second4(_ float64, err error) error      { return err }
func second5(_ []Link, err error) error       { return err }

// FuzzParsers: no kernel file content makes a parser panic.
func FuzzParsers(f *testing.F) {
	for _, name := range []string{"loadavg", "stat", "meminfo", "uptime", "net/dev", "self/mountinfo"} {
		b, err := os.ReadFile(filepath.Join("testdata/proc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseLoadavg(b)
		parseStat(b)
		parseMeminfo(b)
		parseUptime(b)
		parseNetDev(b)
		parseCgroupMounts(b)
		parseUint("f", b)
		parseKeyed("f", b, "usage_usec")
	})
}

// BenchmarkCollect100 measures a full collection on a fake node with 100
// slivers (per-op time = snapshot latency; p50/p99 reported), beside the
// node-only collection (no slivers) as the baseline.
func BenchmarkCollect100(b *testing.B) {
	for _, k := range []int{0, 100} {
		b.Run(fmt.Sprintf("slivers=%d", k), func(b *testing.B) {
			n := newFakeNode(b)
			for i := range k {
				n.setSliver(fmt.Sprintf("pl_s%03d", i), uint64(i)*1e9, 1<<20, 1<<30, 2, false)
			}
			c := n.collector(Config{StoreDir: n.root})
			lat := make([]time.Duration, 0, b.N)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				f, err := c.Collect()
				if err != nil || len(f.Slivers) != k {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			perOp := (cpuTime(b) - cpu0) / time.Duration(b.N)
			// CPU cost of collecting every 15 s (the report interval), in
			// percent of one core.
			b.ReportMetric(100*perOp.Seconds()/15, "core-%@15s")
			reportLatency(b, lat)
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
