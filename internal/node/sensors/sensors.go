// Package sensors collects a node's figures (core.NodeFigures): load, CPU,
// memory and swap from /proc, the sliver store's disk from statfs,
// network counters per link, and per sliver its cgroup's CPU time, memory
// and processes, its disk use and quota, and its veth's byte and packet
// counters. It serves them over HTTP (server.go: JSON sensors, a
// server-sent-event stream, Prometheus /metrics) and hands them to the
// agent's periodic report to PLC.
//
// Everything is read from files under Config.Root ("/" on a node; a
// testdata tree in unit tests) except what sits behind the small function
// hooks of Config (the sliver list and last errors from the agent, disk
// use from the sliver runtime, link counters from netcfg's netlink handle,
// the clock offset from the PLC client), so the whole collection runs
// against a fake filesystem.
//
// Rates (node and sliver CPU share) are computed between the current
// reading and the newest earlier reading at least MinWindow old, so any
// caller (the report loop every 15 s, a stream every 2 s, a scrape now and
// then) sees shares over a window of at least MinWindow, and about its
// own period when that is longer. The first collection has
// no base: the node's share is its average since boot, a sliver's is 0.
package sensors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// MinWindow is the shortest window over which CPU shares are computed.
const MinWindow = time.Second

// Sliver is what the node manager knows about one of its slivers.
type Sliver struct {
	Name      string
	LastError string // why its last configuration was refused; "" = none
	IPv6      string // its IPv6 address; "" = none
}

// Config says where the figures come from. Zero values take the defaults
// shown.
type Config struct {
	Root         string // filesystem root holding proc/ and sys/; "/"
	CgroupParent string // cgroup of the slivers, as sliver.Config; "/pl"
	StoreDir     string // statfs of the sliver store for disk figures; "" = none
	VethPrefix   string // node-side sliver veth names (prefix + xid); "plv"

	// Slivers lists the slivers the node manager keeps (with their last
	// errors). Slivers found only as cgroups are reported too. nil = only
	// the cgroups.
	Slivers func() []Sliver
	// Disk returns a sliver's disk use and quota (0 = none) in bytes.
	// nil = no disk figures per sliver.
	Disk func(name string) (used, quota uint64, err error)
	// Links returns every link's counters in the node's network namespace
	// with sliver veths' Alias set to the sliver name (netcfg, netlink).
	// nil = Root/proc/net/dev with aliases from Root/sys/class/net/*/ifalias
	// (the namespace of this process).
	Links func() ([]Link, error)
	// Clock returns the node's clock offset to PLC in milliseconds, and
	// whether it has been measured (plcclient).
	Clock func() (offsetMs int64, known bool)
	// SSH returns the state of the node's ssh gateway (core.SSHUp,
	// SSHDown, SSHOff). nil = not reported.
	SSH func() string
	Now func() time.Time
}

// Collector reads the node's figures. Safe for concurrent use.
type Collector struct {
	cfg     Config
	cgroups map[string]string // controller -> mount point under Root ("" = v2)

	mu       sync.Mutex
	readings []*sample // recent readings, oldest first (see remember)
}

// sample is a reading kept for rates.
type sample struct {
	at     time.Time
	cpu    cpuTimes
	sliver map[string]uint64 // slice -> cumulative CPU ns
}

// New prepares a collector; it reads the cgroup mounts once.
func New(cfg Config) (*Collector, error) {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/pl"
	}
	if cfg.VethPrefix == "" {
		cfg.VethPrefix = "plv"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !strings.HasPrefix(cfg.CgroupParent, "/") || strings.Contains(cfg.CgroupParent, "..") {
		return nil, core.FieldErrorf("cgroup_parent", "cgroup parent %q must be an absolute path without ..", cfg.CgroupParent)
	}
	mi, err := os.ReadFile(filepath.Join(cfg.Root, "proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("sensors: %w", err)
	}
	c := &Collector{cfg: cfg, cgroups: parseCgroupMounts(mi)}
	for k, v := range c.cgroups {
		c.cgroups[k] = filepath.Join(cfg.Root, v)
	}
	return c, nil
}

func (c *Collector) read(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(c.cfg.Root, rel))
}

// Collect reads every figure now. A sensor that cannot be read is an
// error, except per-sliver figures of a sliver that vanished meanwhile.
// The result is within the bounds of core.NodeFigures (Bound applied) with
// slivers sorted by name.
func (c *Collector) Collect() (*core.NodeFigures, error) {
	now := c.cfg.Now()
	f := &core.NodeFigures{Time: now.UTC()}
	var err error
	b, err := c.read("proc/loadavg")
	if err != nil {
		return nil, err
	}
	if f.Load1, f.Load5, f.Load15, err = parseLoadavg(b); err != nil {
		return nil, err
	}
	if b, err = c.read("proc/stat"); err != nil {
		return nil, err
	}
	cpu, err := parseStat(b)
	if err != nil {
		return nil, err
	}
	f.CPUs = max(cpu.cpus, 1)
	if b, err = c.read("proc/meminfo"); err != nil {
		return nil, err
	}
	mem, err := parseMeminfo(b)
	if err != nil {
		return nil, err
	}
	f.MemTotal, f.MemUsed = mem.total, mem.total-mem.available
	f.SwapTotal, f.SwapUsed = mem.swapTotal, mem.swapTotal-mem.swapFree
	if b, err = c.read("proc/uptime"); err != nil {
		return nil, err
	}
	if f.UptimeSec, err = parseUptime(b); err != nil {
		return nil, err
	}
	if c.cfg.StoreDir != "" {
		if f.DiskTotal, f.DiskUsed, err = statfs(c.cfg.StoreDir); err != nil {
			return nil, fmt.Errorf("sliver store %s: %w", c.cfg.StoreDir, err)
		}
	}
	if c.cfg.Clock != nil {
		f.ClockOffsetMs, f.ClockKnown = c.cfg.Clock()
		f.ClockOffsetMs = max(-core.MaxClockOffsetMs, min(core.MaxClockOffsetMs, f.ClockOffsetMs))
	}
	if c.cfg.SSH != nil {
		f.SSH = c.cfg.SSH()
	}
	links, err := c.links()
	if err != nil {
		return nil, err
	}
	veth := map[string]Link{}
	for _, l := range links {
		if rest, ok := strings.CutPrefix(l.Name, c.cfg.VethPrefix); ok && isDigits(rest) {
			if l.Alias != "" {
				veth[l.Alias] = l
			}
			continue
		}
		if l.Name == "lo" {
			continue
		}
		f.RxBytes += l.RxBytes
		f.TxBytes += l.TxBytes
		f.RxPackets += l.RxPackets
		f.TxPackets += l.TxPackets
		f.RxDrops += l.RxDrops
		f.TxDrops += l.TxDrops
	}

	slivers, err := c.slivers()
	if err != nil {
		return nil, err
	}
	cur := &sample{at: now, cpu: cpu, sliver: make(map[string]uint64, len(slivers))}
	for _, s := range slivers {
		sf := core.SliverFigures{Slice: s.Name, LastError: s.LastError, IPv6: s.IPv6}
		ns, err := c.sliverCgroup(s.Name, &sf)
		if err != nil {
			return nil, err
		}
		cur.sliver[s.Name] = ns
		sf.CPUSeconds = float64(ns) / 1e9
		if c.cfg.Disk != nil {
			if used, quota, err := c.cfg.Disk(s.Name); err == nil {
				sf.DiskUsed, sf.DiskQuota = used, quota
			}
		}
		if l, ok := veth[s.Name]; ok {
			// The node side of the veth: what it receives, the sliver sent.
			sf.TxBytes, sf.RxBytes, sf.TxPackets, sf.RxPackets = l.RxBytes, l.TxBytes, l.RxPackets, l.TxPackets
		}
		f.Slivers = append(f.Slivers, sf)
	}
	f.SliverCount = len(f.Slivers)

	base := c.remember(cur)
	if base == nil {
		if cpu.total > 0 {
			f.CPUPct = pct(float64(cpu.busy) / float64(cpu.total))
		}
	} else {
		if dt := cpu.total - base.cpu.total; cpu.total > base.cpu.total {
			f.CPUPct = pct(float64(cpu.busy-min(cpu.busy, base.cpu.busy)) / float64(dt))
		}
		if wall := now.Sub(base.at); wall > 0 {
			for i := range f.Slivers {
				s := &f.Slivers[i]
				prev, ok := base.sliver[s.Slice]
				if ok && cur.sliver[s.Slice] >= prev {
					s.CPUPct = pct(float64(cur.sliver[s.Slice]-prev) / (float64(wall) * float64(f.CPUs)))
				}
			}
		}
	}
	f.Bound()
	return f, nil
}

// remember records cur and returns the reading to compute rates
// against: the newest earlier reading at least MinWindow old, else the
// oldest (nil at the first collection). Readings older than the one
// returned are dropped, so at most about MinWindow of readings is kept.
func (c *Collector) remember(cur *sample) *sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	var base *sample
	keep := 0
	for i, r := range c.readings {
		if cur.at.Sub(r.at) >= MinWindow {
			base, keep = r, i
		}
	}
	if base == nil && len(c.readings) > 0 {
		base = c.readings[0]
	}
	c.readings = append(c.readings[keep:], cur)
	return base
}

// pct turns a fraction into a percentage clamped to 0..100 (counters read
// at slightly different instants can overshoot).
func pct(frac float64) float64 { return max(0, min(100, frac*100)) }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// slivers returns the node manager's slivers and those found as cgroups,
// sorted by name.
func (c *Collector) slivers() ([]Sliver, error) {
	byName := map[string]Sliver{}
	if c.cfg.Slivers != nil {
		for _, s := range c.cfg.Slivers() {
			byName[s.Name] = s
		}
	}
	dir := c.cgroupDir("cpuacct", "")
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			if _, ok := byName[e.Name()]; e.IsDir() && !ok && validName(e.Name()) {
				byName[e.Name()] = Sliver{Name: e.Name()}
			}
		}
	}
	out := make([]Sliver, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Sliver) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// validName is sliver.ValidName's rule (1-32 of [a-z0-9_], a letter
// first), restated to keep this package free of the runtime.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// cgroupDir returns the directory of the sliver cgroup name ("" = the
// parent) for a v1 controller, or in the v2 hierarchy when there is no
// such v1 controller; "" when neither is mounted.
func (c *Collector) cgroupDir(controller, name string) string {
	root, ok := c.cgroups[controller]
	if !ok {
		if root, ok = c.cgroups[""]; !ok {
			return ""
		}
	}
	return filepath.Join(root, c.cfg.CgroupParent, name)
}

// sliverCgroup fills the cgroup figures of sliver name and returns its
// cumulative CPU time in ns. A sliver without cgroups (stopped, or
// vanished meanwhile) reads as stopped with zero figures.
func (c *Collector) sliverCgroup(name string, sf *core.SliverFigures) (cpuNs uint64, err error) {
	sf.State = "stopped"
	readUint := func(controller, file string) (uint64, bool, error) {
		dir := c.cgroupDir(controller, name)
		if dir == "" {
			return 0, false, nil
		}
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		v, err := parseUint(p, b)
		return v, err == nil, err
	}
	_, v1 := c.cgroups["cpuacct"]
	var ok bool
	if v1 {
		if cpuNs, ok, err = readUint("cpuacct", "cpuacct.usage"); err != nil || !ok {
			return 0, err
		}
		if sf.MemUsed, _, err = readUint("memory", "memory.usage_in_bytes"); err != nil {
			return 0, err
		}
		if sf.MemLimit, _, err = readUint("memory", "memory.limit_in_bytes"); err != nil {
			return 0, err
		}
	} else {
		dir := c.cgroupDir("", name)
		if dir == "" {
			return 0, nil
		}
		b, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		} else if err != nil {
			return 0, err
		}
		usec, err := parseKeyed(filepath.Join(dir, "cpu.stat"), b, "usage_usec")
		if err != nil {
			return 0, err
		}
		cpuNs = usec * 1000
		if sf.MemUsed, _, err = readUint("", "memory.current"); err != nil {
			return 0, err
		}
		if sf.MemLimit, _, err = readUint("", "memory.max"); err != nil {
			return 0, err
		}
	}
	if sf.MemLimit >= 1<<62 { // v1 "unlimited" is 2^63 rounded down to a page
		sf.MemLimit = 0
	}
	sf.MemUsed = min(sf.MemUsed, core.MaxFigure)
	if sf.Procs, _, err = readUint("pids", "pids.current"); err != nil {
		return 0, err
	}
	sf.Procs = min(sf.Procs, core.MaxFigure)
	frozen := false
	if v1 {
		if b, err := os.ReadFile(filepath.Join(c.cgroupDir("freezer", name), "freezer.state")); err == nil {
			frozen = strings.TrimSpace(string(b)) != "THAWED"
		}
	} else if b, err := os.ReadFile(filepath.Join(c.cgroupDir("", name), "cgroup.freeze")); err == nil {
		frozen = strings.TrimSpace(string(b)) == "1"
	}
	switch {
	case frozen:
		sf.State = "frozen"
	case sf.Procs > 0:
		sf.State = "running"
	}
	return cpuNs, nil
}

// links returns the link counters: from Config.Links, or /proc/net/dev
// with sliver veths' aliases from sysfs.
func (c *Collector) links() ([]Link, error) {
	if c.cfg.Links != nil {
		return c.cfg.Links()
	}
	b, err := c.read("proc/net/dev")
	if err != nil {
		return nil, err
	}
	links, err := parseNetDev(b)
	if err != nil {
		return nil, err
	}
	for i := range links {
		if rest, ok := strings.CutPrefix(links[i].Name, c.cfg.VethPrefix); ok && isDigits(rest) {
			if a, err := c.read(filepath.Join("sys/class/net", links[i].Name, "ifalias")); err == nil {
				links[i].Alias = strings.TrimSpace(string(a))
			}
		}
	}
	return links, nil
}

// Slice returns the figures of one sliver from f, or false.
func Slice(f *core.NodeFigures, name string) (core.SliverFigures, bool) {
	for _, s := range f.Slivers {
		if s.Slice == name {
			return s, true
		}
	}
	return core.SliverFigures{}, false
}

// Site returns the site label of a slice: PlanetLab slice names are
// <site login base>_<name>, so the part before the first underscore.
func Site(slice string) string {
	if i := strings.IndexByte(slice, '_'); i > 0 {
		return slice[:i]
	}
	return ""
}
