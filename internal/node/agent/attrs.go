package agent

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// Slice tags the node manager understands, with their units. Defaults are
// those of the original node manager (reference nodemanager.md §3.1) where
// it had one. See docs/node.md for the user-facing table.
const (
	TagEnabled        = "enabled"         // 1 running, <=0 suspended (frozen); default 1
	TagCPUShare       = "cpu_share"       // proportional CPU weight, 0..256; default 1 (= 1024 cpu.shares)
	TagCPUPct         = "cpu_pct"         // guaranteed % of the node's CPU, 0..100; default 0
	TagCPUCapPct      = "cpu_cap_pct"     // hard cap in % of one CPU (200 = two CPUs); default 0 = none
	TagMemMax         = "mem_max"         // memory limit, KiB; default 524288 (512 MiB, the original LXC template)
	TagMemlockHard    = "memlock_hard"    // the original LXC name of mem_max (KiB); used when mem_max is absent
	TagNProc          = "nproc"           // process (pids) limit; default 1024; 0 = none
	TagNProcHard      = "nproc_hard"      // the original's rlimit name of nproc; used when nproc is absent
	TagNoFile         = "nofile"          // open files (RLIMIT_NOFILE); default 4096
	TagNoFileHard     = "nofile_hard"     // the original's rlimit name of nofile; used when nofile is absent
	TagDiskMax        = "disk_max"        // disk quota, KiB; default 10000000 (~9.5 GiB)
	TagNetMinRate     = "net_min_rate"    // guaranteed egress, kbit/s; default 1
	TagNetMaxRate     = "net_max_rate"    // egress ceiling, kbit/s; default 1000000; -1 = only the node cap
	TagVref           = "vref"            // reference image; default "default"
	TagInitScript     = "initscript"      // name of a PLC init script
	TagInitScriptCode = "initscript_code" // literal init script; wins over initscript
	TagPorts          = "ports"           // reserved TCP/UDP ports, syntax of package core/ports; repeatable
)

// Defaults of the resource tags.
const (
	DefaultCPUShare   = 1
	DefaultMemMaxKiB  = 512 * 1024
	DefaultNProc      = 1024
	DefaultNoFile     = 4096
	DefaultDiskMaxKiB = 10000000
	DefaultNetMinKbit = 1
	DefaultNetMaxKbit = 1000000
)

// Limits of accepted tag values.
const (
	maxCPUShare  = 256 // 256 * 1024 = 262144, the kernel's cpu.shares maximum
	minMemMaxKiB = 4096
	maxMemMaxKiB = 1 << 40 // 1 PiB
	minNProc     = 16
	maxNProc     = 1 << 22
	maxNoFile    = 1 << 20 // the kernel's default fs.nr_open
	maxDiskKiB   = 1 << 40
	maxRateKbit  = 100_000_000 // 100 Gbit/s
)

// sliceName is what a slice name must look like on a node: it becomes a
// container id, a hostname, a Unix login and a directory name.
var sliceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// SliverConfig is the parsed, validated configuration one sliver asks for,
// before node-wide CPU arbitration.
type SliverConfig struct {
	Enabled    bool
	CPUShare   int // cpu_share
	CPUPct     int // cpu_pct
	CPUCapPct  int
	MemKiB     int64
	NProc      int64
	NoFile     uint64
	DiskKiB    int64
	NetMinKbit int64
	NetMaxKbit int64 // 0 = only the node cap
	Image      string
	InitScript string
	Ports      []netcfg.Port
}

// ParseAttributes turns a sliver's tags into a SliverConfig. initscripts are the
// node's enabled init scripts by name. The first bad value is returned as an
// Invalid error naming the tag and value; unknown tags are ignored.
func ParseAttributes(attrs []core.Attribute, initscripts map[string]string) (SliverConfig, error) {
	c := SliverConfig{
		Enabled:    true,
		CPUShare:   DefaultCPUShare,
		MemKiB:     DefaultMemMaxKiB,
		NProc:      DefaultNProc,
		NoFile:     DefaultNoFile,
		DiskKiB:    DefaultDiskMaxKiB,
		NetMinKbit: DefaultNetMinKbit,
		NetMaxKbit: DefaultNetMaxKbit,
	}
	// Single-valued tags: the last value wins. Ports accumulate.
	last := map[string]string{}
	var ports []string
	for _, a := range attrs {
		if a.TagName == TagPorts {
			ports = append(ports, a.Value)
			continue
		}
		last[a.TagName] = a.Value
	}
	var err error
	intTag := func(tag string, lo, hi int64, dst *int64) {
		v, ok := last[tag]
		if !ok || err != nil {
			return
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case perr != nil:
			err = core.FieldErrorf(tag, "%q is not an integer", v)
		case n < lo || n > hi:
			err = core.FieldErrorf(tag, "%d is out of range %d..%d", n, lo, hi)
		default:
			*dst = n
		}
	}
	var enabled, share, pct, capPct int64 = 1, DefaultCPUShare, 0, 0
	intTag(TagEnabled, -1<<31, 1<<31, &enabled)
	c.Enabled = enabled > 0
	intTag(TagCPUShare, 0, maxCPUShare, &share)
	intTag(TagCPUPct, 0, 100, &pct)
	intTag(TagCPUCapPct, 0, 100*4096, &capPct)
	c.CPUShare, c.CPUPct, c.CPUCapPct = int(share), int(pct), int(capPct)
	// The original's names (seeded by PLC as rlimit tags) stand in for
	// ours when ours are absent.
	for tag, alias := range map[string]string{TagMemMax: TagMemlockHard, TagNProc: TagNProcHard, TagNoFile: TagNoFileHard} {
		if _, ok := last[tag]; !ok {
			if v, ok := last[alias]; ok {
				last[tag] = v
			}
		}
	}
	intTag(TagMemMax, 0, maxMemMaxKiB, &c.MemKiB)
	if err == nil && c.MemKiB != 0 && c.MemKiB < minMemMaxKiB {
		err = core.FieldErrorf(TagMemMax, "%d KiB is below the minimum of %d KiB (0 = unlimited)", c.MemKiB, minMemMaxKiB)
	}
	intTag(TagNProc, 0, maxNProc, &c.NProc)
	if err == nil && c.NProc != 0 && c.NProc < minNProc {
		err = core.FieldErrorf(TagNProc, "%d is below the minimum of %d (0 = unlimited)", c.NProc, minNProc)
	}
	var nofile int64 = DefaultNoFile
	intTag(TagNoFile, 1, maxNoFile, &nofile)
	c.NoFile = uint64(nofile)
	intTag(TagDiskMax, 0, maxDiskKiB, &c.DiskKiB)
	intTag(TagNetMinRate, 0, maxRateKbit, &c.NetMinKbit)
	intTag(TagNetMaxRate, -1, maxRateKbit, &c.NetMaxKbit)
	if err != nil {
		return SliverConfig{}, err
	}
	if c.NetMaxKbit == -1 {
		c.NetMaxKbit = 0 // shaping off for this sliver: only the node cap applies
	}
	if c.NetMaxKbit > 0 && c.NetMinKbit > c.NetMaxKbit {
		c.NetMinKbit = c.NetMaxKbit // as the original bwlimit.on(): min <= max
	}

	if v, ok := last[TagVref]; ok {
		v = strings.TrimSpace(v)
		if !imageName.MatchString(v) {
			return SliverConfig{}, core.FieldErrorf(TagVref, "%q is not an image name", v)
		}
		if v != DefaultImage {
			c.Image = v
		}
	}
	if code, ok := last[TagInitScriptCode]; ok && strings.TrimSpace(code) != "" {
		c.InitScript = code
	} else if name, ok := last[TagInitScript]; ok && strings.TrimSpace(name) != "" {
		script, found := initscripts[strings.TrimSpace(name)]
		if !found {
			return SliverConfig{}, core.FieldErrorf(TagInitScript, "no enabled init script named %q", name)
		}
		c.InitScript = script
	}
	for _, p := range ports {
		ps, perr := parsePorts(p)
		if perr != nil {
			return SliverConfig{}, core.FieldErrorf(TagPorts, "%q: %v", p, perr)
		}
		c.Ports = append(c.Ports, ps...)
	}
	return c, nil
}

// DefaultImage is the name of the built-in reference image; vref "default"
// and no vref both select it (Spec.Image "").
const DefaultImage = "default"

var imageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// parsePorts parses one value of the ports tag (package ports: "tcp/80",
// "udp/5000-5010", "8080", separated by commas or spaces), the syntax PLC
// checks too.
var parsePorts = ports.Parse
