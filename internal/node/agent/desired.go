package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/vsys"
)

// DesiredSliver is the complete configuration one sliver should have.
type DesiredSliver struct {
	SliceID int64
	Expires int64 // UNIX seconds; 0 = never
	// Daily egress budget, KiB (bwmon): -1 = the node's default, 0 = none.
	MaxKByte    int64
	ThreshKByte int64
	Spec        sliver.Spec
	Net         netcfg.Sliver
	Routes      []tags.Route // codemux host names (not applied by the runtime: see Config.OnCodemux)
}

// Desired is the node's desired state as the host should realise it.
//
// A sliver in Errors is listed by PLC but its configuration was refused;
// it is neither created, changed nor destroyed: an existing one keeps its
// last good configuration. Every other sliver not in Slivers must not exist.
type Desired struct {
	Version string
	Slivers map[string]DesiredSliver
	Errors  map[string]string // slice name -> reason
}

// Env is what Compute needs besides PLC's state.
type Env struct {
	Now    int64           // UNIX seconds, for expiry
	XIDs   map[string]int  // allocated sliver numbers (see XIDs)
	Images map[string]bool // known reference images; nil = do not check
	// Runtimes are the sliver runtimes the node has (sliver.Spec.Runtime
	// values); nil = do not check.
	Runtimes map[string]bool
	NCPU     int // CPUs of the node, for cpu_pct
	// APISocket is the local API socket's host path, bound into slivers
	// with nm_api=1 or a vsys grant ("" = the node has no local API).
	APISocket string
	// APIClient is a static pl binary's host path, bound beside the socket
	// ("" = none).
	APIClient string
	// Prefix6 is the slivers' IPv6 prefix (EffectivePrefix6), carried in
	// each sliver's network configuration; zero = none.
	Prefix6 netip.Prefix
}

// UIDBase returns the first host uid of a sliver's uid range. Ranges start
// at 2^28 (268435456), far above the uids of host users and of the usual
// /etc/subuid allocations (100000 + 65536*k), and never overlap: xid <= 4094
// ends below 2^29.
func UIDBase(xid int) uint32 { return 1<<28 + uint32(xid)*sliver.UIDCount }

// Instantiations that produce a sliver on the node. delegated and
// nm-controller slices are listed on every node by PLC but are not
// instantiated by the node manager; not-instantiated slices never are.
func instantiated(inst string) bool { return inst == "" || inst == "plc-instantiated" }

// Candidates returns the names of the slivers of st that are live at now
// and instantiated here, with valid names: the names that need an XID.
func Candidates(st *core.NodeState, now int64) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range st.Slivers {
		if seen[s.Name] || !instantiated(s.Instantiation) || expired(s.Expires, now) || !sliceName.MatchString(s.Name) {
			continue
		}
		seen[s.Name] = true
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

func expired(expires, now int64) bool { return expires > 0 && expires <= now }

// Compute turns PLC's state into the desired configuration of every sliver.
// It is pure: the same arguments always give the same result. A sliver
// whose tags do not parse gets an entry in Errors and nothing else; it never
// affects the others (except that it keeps no CPU guarantee while refused).
func Compute(st *core.NodeState, env Env) Desired {
	d := Desired{Version: st.Version, Slivers: map[string]DesiredSliver{}, Errors: map[string]string{}}
	ok := acceptSlivers(st, env, d.Errors)
	reqs := make([]CPURequest, len(ok))
	for i, p := range ok {
		reqs[i] = CPURequest{Name: p.s.Name, Share: p.cfg.CPUShare, Pct: p.cfg.CPUPct, CapPct: p.cfg.CPUCapPct, Disabled: !p.cfg.Enabled}
	}
	cpu := ArbitrateCPU(reqs, env.NCPU)
	hostname := sliver.NodeHostname(st.Hostname) // what slivers see (uname -n), as in PlanetLab
	for _, p := range ok {
		ds := desiredSliver(p, env.XIDs[p.s.Name], cpu[p.s.Name], hostname)
		grants, _ := tags.VsysGrants(p.s.Attributes)
		if p.cfg.NMAPI || len(grants) > 0 {
			ds.Spec.APISocket = env.APISocket
			if env.APISocket != "" {
				ds.Spec.APIClient = env.APIClient
			}
		}
		ds.Spec.Datasets = env.APISocket != "" && tags.VsysGranted(grants, vsys.OpDataset) && p.cfg.Runtime != sliver.RuntimeGVisor
		ds.Net.Prefix6 = env.Prefix6
		d.Slivers[p.s.Name] = ds
	}
	return d
}

// parsedSliver is a sliver PLC listed whose attributes parsed.
type parsedSliver struct {
	s   core.Sliver
	cfg SliverConfig
}

// acceptSlivers returns the slivers the node will run, oldest slice first,
// and records in errs why each other listed sliver is refused: not
// instantiated here or expired (silently), a bad name, listed twice, bad
// attributes, an unknown image, bad keys, no xid, or a port another slice
// holds (the older slice keeps the port), or a codemux host name another
// slice serves (the older slice keeps the name).
func acceptSlivers(st *core.NodeState, env Env, errs map[string]string) []parsedSliver {
	scripts := map[string]string{}
	for _, is := range st.InitScripts {
		if is.Enabled {
			scripts[is.Name] = is.Script
		}
	}
	slivers := append([]core.Sliver(nil), st.Slivers...)
	sort.SliceStable(slivers, func(i, j int) bool {
		if slivers[i].SliceID != slivers[j].SliceID {
			return slivers[i].SliceID < slivers[j].SliceID
		}
		return slivers[i].Name < slivers[j].Name
	})
	var ok []parsedSliver
	seen, dups := map[string]bool{}, map[string]bool{}
	for _, s := range slivers {
		if !instantiated(s.Instantiation) || expired(s.Expires, env.Now) {
			continue
		}
		if !sliceName.MatchString(s.Name) {
			errs[s.Name] = fmt.Sprintf("slice name %q is not usable on a node (want [a-z][a-z0-9_]{0,31})", s.Name)
			continue
		}
		if seen[s.Name] {
			errs[s.Name] = fmt.Sprintf("slice %q is listed twice by PLC", s.Name)
			dups[s.Name] = true
			continue
		}
		seen[s.Name] = true
		cfg, err := checkSliver(s, scripts, env, ok)
		if err != nil {
			errs[s.Name] = err.Error()
			continue
		}
		ok = append(ok, parsedSliver{s, cfg})
	}
	// The old entry for a name listed twice is refused too: we cannot know
	// which of the two PLC meant.
	return slices.DeleteFunc(ok, func(p parsedSliver) bool { return dups[p.s.Name] })
}

// checkSliver parses one sliver's attributes and checks it against the
// node (images, xids) and the slivers accepted before it (ports).
func checkSliver(s core.Sliver, scripts map[string]string, env Env, accepted []parsedSliver) (SliverConfig, error) {
	cfg, err := ParseAttributes(s.Attributes, scripts)
	if err != nil {
		return cfg, err
	}
	if cfg.Image != "" && env.Images != nil && !env.Images[cfg.Image] {
		return cfg, core.FieldErrorf(tags.Vref, "unknown image %q on this node", cfg.Image)
	}
	if env.Runtimes != nil && !env.Runtimes[cfg.Runtime] {
		return cfg, core.FieldErrorf(tags.Runtime, "runtime %q is not installed on this node", cfg.Runtime)
	}
	if err := checkKeys(s.Keys); err != nil {
		return cfg, err
	}
	for _, l := range s.VLinks {
		if _, err := vlinks.CheckEnd(l); err != nil {
			return cfg, err
		}
	}
	if x := env.XIDs[s.Name]; x < 1 || x > MaxXID {
		return cfg, core.Errorf(core.Unavailable, "no sliver number (xid) available")
	}
	if err := portConflict(cfg.Ports, accepted, func(p parsedSliver) ([]netcfg.Port, string) { return p.cfg.Ports, p.s.Name }); err != nil {
		return cfg, err
	}
	return cfg, hostConflict(cfg.Routes, accepted)
}

// hostConflict reports the first codemux host name of routes already
// served by an earlier (accepted) sliver: PLC refuses such claims, and the
// node checks again (the older slice keeps the name).
func hostConflict(routes []tags.Route, earlier []parsedSliver) error {
	for _, r := range routes {
		for _, e := range earlier {
			for _, theirs := range e.cfg.Routes {
				if theirs.Host == r.Host {
					return core.Errorf(core.Conflict, "%s: host %s is served by slice %q on this node", tags.Codemux, r.Host, e.s.Name)
				}
			}
		}
	}
	return nil
}

// desiredSliver is the spec and network configuration of one accepted sliver.
func desiredSliver(p parsedSliver, xid int, c CPUAlloc, hostname string) DesiredSliver {
	var keys []string
	for _, k := range p.s.Keys {
		if k := strings.TrimSpace(k.Key); k != "" {
			keys = append(keys, k)
		}
	}
	return DesiredSliver{
		SliceID:     p.s.SliceID,
		Expires:     p.s.Expires,
		MaxKByte:    p.cfg.NetMaxKByte,
		ThreshKByte: p.cfg.NetThreshKByte,
		Spec: sliver.Spec{
			Name:       p.s.Name,
			XID:        xid,
			Image:      p.cfg.Image,
			Runtime:    p.cfg.Runtime,
			UIDBase:    UIDBase(xid),
			Keys:       keys,
			InitScript: p.cfg.InitScript,
			Enabled:    p.cfg.Enabled,
			Hostname:   hostname,
			NetAdmin:   len(p.s.VLinks) > 0, // routing daemons over its links
			Resources: sliver.Resources{
				CPUShares:   c.Shares,
				CPUCapPct:   c.CapPct,
				MemoryBytes: p.cfg.MemKiB * 1024,
				Pids:        p.cfg.NProc,
				NoFile:      p.cfg.NoFile,
				DiskBytes:   p.cfg.DiskKiB * 1024,
			},
		},
		Routes: p.cfg.Routes,
		Net: netcfg.Sliver{
			Name:        p.s.Name,
			XID:         xid,
			Ports:       p.cfg.Ports,
			MinRateKbit: p.cfg.NetMinKbit,
			MaxRateKbit: p.cfg.NetMaxKbit,
			UIDBase:     UIDBase(xid),
			Links:       p.s.VLinks,
		},
	}
}

// checkKeys refuses keys that could smuggle extra authorized_keys lines.
func checkKeys(keys []core.SliverKey) error {
	for i, k := range keys {
		if strings.ContainsAny(k.Key, "\r\n\x00") {
			return core.FieldErrorf("keys", "key %d contains a line break", i)
		}
	}
	return nil
}

// portConflict reports the first port of ps already held by an earlier
// (accepted) sliver.
func portConflict[T any](ps []netcfg.Port, earlier []T, get func(T) ([]netcfg.Port, string)) error {
	for _, p := range ps {
		for _, e := range earlier {
			theirs, owner := get(e)
			if _, q, found := ports.Conflict([]netcfg.Port{p}, theirs); found {
				return core.Errorf(core.Conflict, "%s: reserved port %s overlaps %s of slice %q", tags.PortsTag, p, q, owner)
			}
		}
	}
	return nil
}
