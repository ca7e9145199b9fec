package agent

import (
	"regexp"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sliver"
)

// The slice tags the node manager understands, their ranges and defaults
// are in package core/tags (docs/tags.md). Defaults are those of the
// original node manager (reference nodemanager.md §3.1) where it had one.

// sliceName is what a slice name must look like on a node: it becomes a
// container id, a hostname, a Unix login and a directory name.
var sliceName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// SliverConfig is the parsed, validated configuration one sliver asks for,
// before node-wide CPU arbitration.
type SliverConfig struct {
	Enabled    bool
	CPUShare   int    // cpu_share
	CPUPct     int    // cpu_pct
	CPUCapPct  int    // cpu_cap_pct
	MemKiB     int64  // mem_max
	NProc      int64  // nproc
	NoFile     uint64 // nofile
	DiskKiB    int64  // disk_max
	NetMinKbit int64  // net_min_rate
	NetMaxKbit int64  // net_max_rate; 0 = only the node cap
	// Daily egress budget (bwmon): net_max_kbyte (-1 = absent: the
	// node's default; 0 = none) and net_thresh_kbyte (0 = 80%).
	NetMaxKByte    int64
	NetThreshKByte int64
	Image          string
	Runtime        string // sliver.Spec.Runtime: "" (runc) or "runsc"
	InitScript     string
	Ports          []netcfg.Port
	Routes         []tags.Route // codemux: host names served on the node's ports 80/443
	NMAPI          bool         // nm_api: the local API socket in the sliver
}

// ParseAttributes turns a sliver's tags into a SliverConfig. initscripts are the
// node's enabled init scripts by name. The first bad value is returned as an
// Invalid error naming the tag and value; unknown tags are ignored.
func ParseAttributes(attrs []core.Attribute, initscripts map[string]string) (SliverConfig, error) {
	var c SliverConfig
	// Single-valued tags: the last value wins. Ports accumulate.
	last := map[string]string{}
	var portValues, routeValues []string
	for _, a := range attrs {
		if a.TagName == tags.PortsTag {
			portValues = append(portValues, a.Value)
			continue
		}
		if a.TagName == tags.Codemux {
			routeValues = append(routeValues, a.Value)
			continue
		}
		last[a.TagName] = a.Value
	}
	// The original's names (seeded by PLC as rlimit tags) stand in for
	// ours when ours are absent; errors name the tag that was given.
	given := map[string]string{}
	for _, t := range []string{tags.MemlockHard, tags.NProcHard, tags.NoFileHard} {
		alias := tags.MustLookup(t).Alias
		if _, ok := last[alias]; !ok {
			if v, ok := last[t]; ok {
				last[alias], given[alias] = v, t
			}
		}
	}
	var err error
	intTag := func(name string) int64 {
		v, ok := last[name]
		if !ok || err != nil {
			return tags.DefaultInt(name)
		}
		t := tags.MustLookup(name)
		if g, ok := given[name]; ok {
			t = tags.MustLookup(g)
		}
		n, perr := t.Int(v)
		if perr != nil {
			err = perr
		}
		return n
	}
	c.Enabled = intTag(tags.Enabled) > 0
	c.CPUShare = int(intTag(tags.CPUShare))
	c.CPUPct = int(intTag(tags.CPUPct))
	c.CPUCapPct = int(intTag(tags.CPUCapPct))
	c.MemKiB = intTag(tags.MemMax)
	c.NProc = intTag(tags.NProc)
	c.NoFile = uint64(intTag(tags.NoFile))
	c.DiskKiB = intTag(tags.DiskMax)
	c.NetMinKbit = intTag(tags.NetMinRate)
	c.NetMaxKbit = intTag(tags.NetMaxRate)
	c.NetMaxKByte = -1
	if _, ok := last[tags.NetMaxKByte]; ok {
		c.NetMaxKByte = intTag(tags.NetMaxKByte)
	}
	c.NetThreshKByte = intTag(tags.NetThreshKByte)
	c.NMAPI = intTag(tags.NMAPI) > 0
	if err != nil {
		return SliverConfig{}, err
	}
	if c.NetMaxKbit == -1 {
		c.NetMaxKbit = 0 // shaping off for this sliver: only the node cap applies
	}
	if c.NetMaxKbit > 0 && c.NetMinKbit > c.NetMaxKbit {
		c.NetMinKbit = c.NetMaxKbit // as the original bwlimit.on(): min <= max
	}

	if v, ok := last[tags.Vref]; ok {
		if err := tags.Check(tags.Vref, v); err != nil {
			return SliverConfig{}, err
		}
		if v = strings.TrimSpace(v); v != tags.DefaultImage {
			c.Image = v
		}
	}
	if v, ok := last[tags.Runtime]; ok {
		if err := tags.Check(tags.Runtime, v); err != nil {
			return SliverConfig{}, err
		}
		if v = strings.TrimSpace(v); v == sliver.RuntimeGVisor {
			c.Runtime = v
		}
	}
	if code, ok := last[tags.InitScriptCode]; ok && strings.TrimSpace(code) != "" {
		if err := tags.Check(tags.InitScriptCode, code); err != nil {
			return SliverConfig{}, err
		}
		c.InitScript = code
	} else if name, ok := last[tags.InitScript]; ok && strings.TrimSpace(name) != "" {
		script, found := initscripts[strings.TrimSpace(name)]
		if !found {
			return SliverConfig{}, core.FieldErrorf(tags.InitScript, "no enabled init script named %q", name)
		}
		c.InitScript = script
	}
	for _, p := range portValues {
		ps, perr := ports.Parse(p)
		if perr != nil {
			return SliverConfig{}, core.FieldErrorf(tags.PortsTag, "%q: %v", p, perr)
		}
		c.Ports = append(c.Ports, ps...)
	}
	for _, v := range routeValues {
		r, err := tags.ParseRoute(v)
		if err != nil {
			return SliverConfig{}, err
		}
		c.Routes = append(c.Routes, r)
	}
	return c, nil
}
