// Package tags is the one table of every tag this project knows: slice
// (and sliver) tags, node, interface, person and site tags. For each it
// says the value's kind and accepted range, the default, which non-admin
// roles may set it and what it means.
//
// Everything that gives a tag meaning reads this table: PLC seeds its tag
// types from it and refuses bad values when a tag is written (Check), the
// node manager parses slice tags with it (Int, Lookup) and the sliver
// runtime validates the limits it is given against it. docs/tags.md is
// generated from it (go test ./internal/core/tags -update).
//
// Values are text, as at PLC. Integers are decimal, surrounding white
// space ignored. A tag not in the table (an admin may create any tag type)
// has no constraints.
package tags

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ports"
	"github.com/planetlab/pl/internal/core/vlinks"
)

// Kind is the kind of a tag's value.
type Kind string

// The value kinds.
const (
	Text  Kind = "text"    // any text without NUL
	Int   Kind = "integer" // decimal integer in [Min, Max] (or 0 when ZeroMeans is set)
	Ports Kind = "ports"   // port reservations, syntax of package core/ports
	Image Kind = "image"   // reference image name: [A-Za-z0-9][A-Za-z0-9._-]{0,63}
	Enum  Kind = "one of"  // one of Values
	Host  Kind = "route"   // a codemux route: <host>,<port>[,tls=<port>][,proxy] (ParseRoute)
	// Topology is a slice's virtual links, syntax of package core/vlinks.
	Topology Kind = "topology"
	// VsysOp is a privileged operation granted to a slice: <op> or
	// <op>:<scope> (ParseVsysGrant).
	VsysOp Kind = "vsys operation"
	// IPv6Prefix is a node's prefix for its slivers' IPv6 addresses
	// (ParsePrefix6).
	IPv6Prefix Kind = "IPv6 prefix"
)

// Tag describes one tag.
type Tag struct {
	Name     string
	Category string // PLC tag type category: "slice/rspec", "node/config", ...
	Kind     Kind
	// Min and Max bound an Int value. When ZeroMeans is set, 0 is accepted
	// too (below Min) and means that ("no limit").
	Min, Max  int64
	ZeroMeans string
	Unit      string   // of an Int value: "KiB", "kbit/s", "%", ...
	Values    []string // the values of an Enum
	Default   string   // what the node assumes when the tag is absent; "" = none
	Roles     []string // non-admin roles that may set it (admin always may)
	Alias     string   // the tag this one stands in for when that one is absent; same kind and range
	Multi     bool     // several values are all used (others: the last value wins)
	Doc       string   // what it means, one line
}

// Names of the tags the code reads.
const (
	Enabled        = "enabled"
	GENIUserKey    = "geni_user_key"
	GENIAuthority  = "geni_authority"
	GENISlice      = "geni_slice"
	GENIUser       = "geni_user"
	CPUShare       = "cpu_share"
	CPUPct         = "cpu_pct"
	CPUCapPct      = "cpu_cap_pct"
	MemMax         = "mem_max"
	MemlockHard    = "memlock_hard"
	NProc          = "nproc"
	NProcHard      = "nproc_hard"
	NoFile         = "nofile"
	NoFileHard     = "nofile_hard"
	DiskMax        = "disk_max"
	NetMinRate     = "net_min_rate"
	NetMaxRate     = "net_max_rate"
	NetMaxKByte    = "net_max_kbyte"
	NetThreshKByte = "net_thresh_kbyte"
	Vref           = "vref"
	InitScript     = "initscript"
	InitScriptCode = "initscript_code"
	Runtime        = "runtime"
	PortsTag       = "ports"
	System         = "system"
	SSHPort        = "ssh_port"
	Country        = "country"
	Codemux        = "codemux"
	VLinks         = vlinks.Tag
	NMAPI          = "nm_api"
	Delegations    = "delegations"
	Vsys           = "vsys"
)

// CPU weights: one unit of cpu_share is SharesPerCPUShare cgroup
// cpu.shares; MaxCPUShare units are the kernel's maximum weight.
const (
	SharesPerCPUShare = 1024
	MaxCPUShare       = 256
	MaxKernelShares   = MaxCPUShare * SharesPerCPUShare // 262144
)

// DefaultImage is the vref of the built-in reference image; vref "default"
// and no vref both select it.
const DefaultImage = "default"

var (
	all    = []string{core.RolePI, core.RoleUser, core.RoleTech, core.RoleNode}
	member = []string{core.RolePI, core.RoleUser}
	site   = []string{core.RolePI, core.RoleTech}
)

// table is every known tag, in the order of docs/tags.md. Descriptions
// must not contain ';' (the seed migration is split on it).
var table = []Tag{
	// Slice tags the node manager applies (internal/node/agent).
	{Name: Enabled, Category: "slice/rspec", Kind: Int, Min: -1 << 31, Max: 1<<31 - 1, Default: "1", Roles: member,
		Doc: "> 0 running, <= 0 suspended (cgroup freezer, logins refused). Members may stop and start their own slivers (GENI geni_stop, geni_start). An admin suspension is the slice's enabled field, not this tag"},
	{Name: CPUShare, Category: "slice/rspec", Kind: Int, Min: 0, Max: MaxCPUShare, Default: "1",
		Doc: "proportional CPU weight, 1 = 1024 cpu.shares, 0 = the minimum weight (2)"},
	{Name: CPUPct, Category: "slice/rspec", Kind: Int, Min: 0, Max: 100, Default: "0", Unit: "% of the node",
		Doc: "guaranteed share of the node's CPU"},
	{Name: CPUCapPct, Category: "slice/rspec", Kind: Int, Min: 0, Max: 100 * 1024, Default: "0", Unit: "% of one CPU", ZeroMeans: "no cap",
		Doc: "hard CPU cap (CFS quota), 200 = two CPUs"},
	{Name: MemMax, Category: "slice/rspec", Kind: Int, Min: 4096, Max: 1 << 40, ZeroMeans: "no limit", Default: "524288", Unit: "KiB",
		Doc: "memory limit (default 512 MiB, the original LXC template)"},
	{Name: NProc, Category: "slice/rspec", Kind: Int, Min: 16, Max: 1 << 22, ZeroMeans: "no limit", Default: "1024", Unit: "processes",
		Doc: "process (pids) limit, a fork bomb stops there"},
	{Name: NoFile, Category: "slice/rspec", Kind: Int, Min: 64, Max: 1 << 20, Default: "4096", Unit: "files",
		Doc: "open files (RLIMIT_NOFILE, soft and hard), at most the kernel's default fs.nr_open"},
	{Name: DiskMax, Category: "slice/rspec", Kind: Int, Min: 1024, Max: 1 << 40, ZeroMeans: "no quota", Default: "10000000", Unit: "KiB",
		Doc: "disk quota of the sliver's writable layer (btrfs qgroup)"},
	{Name: NetMinRate, Category: "slice/rspec", Kind: Int, Min: 0, Max: 100_000_000, Default: "1", Unit: "kbit/s",
		Doc: "guaranteed egress (HTB rate), lowered to net_max_rate when above it"},
	{Name: NetMaxRate, Category: "slice/rspec", Kind: Int, Min: -1, Max: 100_000_000, Default: "1000000", Unit: "kbit/s",
		Doc: "egress ceiling (HTB ceil), never above the node cap, -1 = only the node cap"},
	{Name: NetMaxKByte, Category: "slice/rspec", Kind: Int, Min: 0, Max: 1 << 40, ZeroMeans: "no daily budget", Unit: "KiB per day",
		Doc: "daily egress budget on each node (bwmon): past it the sliver's ceiling drops to its net_min_rate (at least the node's floor) until the day ends. Absent: the node's default (10546875 KiB, about 10.8 GB, as the original)"},
	{Name: NetThreshKByte, Category: "slice/rspec", Kind: Int, Min: 0, Max: 1 << 40, ZeroMeans: "80% of net_max_kbyte", Default: "0", Unit: "KiB per day",
		Doc: "where bwmon starts slowing the sliver: its ceiling becomes what spreads the rest of the budget over the rest of the day"},
	{Name: PortsTag, Category: "slice/network", Kind: Ports, Roles: member, Multi: true,
		Doc: "reserved TCP/UDP ports forwarded from the node's address (tcp/80, udp/5000-5010, 8080), refused when they collide with another slice's"},
	{Name: VLinks, Category: "slice/network", Kind: Topology, Roles: member,
		Doc: "virtual links between the slice's slivers (VINI, see networks.md): a private range, named point-to-point links and LANs (lan <name> <node> <node>...) with rate, delay and loss. Refused when it names nodes the slice is not on, its range is too small for them or overlaps another slice's"},
	{Name: Vref, Category: "slice/config", Kind: Image, Default: DefaultImage, Roles: []string{core.RolePI, core.RoleUser, core.RoleNode},
		Doc: "reference image of the sliver, unknown on the node = refused"},
	{Name: Runtime, Category: "slice/config", Kind: Enum, Values: []string{"runc", "runsc"}, Default: "runc", Roles: member,
		Doc: "OCI runtime of the sliver: runc (a container on the node's kernel) or runsc (gVisor: a user-space kernel in front of the node's, stronger isolation, slower system calls, see slivers.md), refused by a node without it. A change re-creates the sliver"},
	{Name: InitScript, Category: "slice/config", Kind: Text, Roles: member,
		Doc: "name of an enabled PLC init script run at sliver start"},
	{Name: NMAPI, Category: "slice/config", Kind: Int, Min: 0, Max: 1, Default: "0",
		Doc: "1: the node manager's local API socket is at /run/pl/api.sock in the sliver (brokering.md), the caller known by its uid (a vsys grant brings it too). A change restarts the sliver, its files kept"},
	{Name: InitScriptCode, Category: "slice/config", Kind: Text, Roles: member,
		Doc: "literal init script, wins over initscript"},
	// The original's names of the limits above (seeded by PLC as rlimit
	// tags): used when ours are absent.
	{Name: MemlockHard, Category: "slice/rlimit", Kind: Int, Alias: MemMax, Doc: "the original LXC name of mem_max, used when mem_max is absent"},
	{Name: NProcHard, Category: "slice/rlimit", Kind: Int, Alias: NProc, Doc: "the original's rlimit name of nproc, used when nproc is absent"},
	{Name: NoFileHard, Category: "slice/rlimit", Kind: Int, Alias: NoFile, Doc: "the original's rlimit name of nofile, used when nofile is absent"},
	// Slice tags PLC interprets.
	{Name: System, Category: "slice/general", Kind: Text, Doc: "1 = system slice, present on every node"},
	// Slice tags of the original (reference plcapi.md §4), stored and
	// passed to nodes, not yet interpreted.
	{Name: "arch", Category: "slice/config", Kind: Text, Roles: all, Doc: "architecture (slices and nodes)"},
	{Name: "pldistro", Category: "slice/config", Kind: Text, Roles: all, Doc: "PlanetLab distribution"},
	{Name: "fcdistro", Category: "slice/config", Kind: Text, Roles: all, Doc: "Fedora or Debian distribution"},
	{Name: "cpu_cores", Category: "slice/rspec", Kind: Text, Doc: "reserved cores, n or nb (best effort)"},
	{Name: "cpu_freezable", Category: "slice/rspec", Kind: Text, Doc: "freeze when cpu_cores is 0"},
	{Name: "capabilities", Category: "slice/rspec", Kind: Text, Doc: "extra capabilities, comma-separated"},
	{Name: "ip_addresses", Category: "slice/rspec", Kind: Text, Doc: "extra IP addresses of the sliver"},
	{Name: Vsys, Category: "slice/vsys", Kind: VsysOp, Multi: true, Roles: []string{core.RolePI, core.RoleUser, core.RoleTech},
		Doc: "a privileged operation the node runs for the slice when it asks through the local API (brokering.md, Privileged operations): a built-in (sensor, dataset) or an operator script of the node, optionally only for one value of its scoped argument (dataset:census). The slivers get the local API socket as with nm_api=1, and a dataset grant a directory /run/pl/datasets (a change restarts the sliver, its files kept). Written, as in the original, by admins and the slice's PIs, users and techs: the node operator decides which operations exist (built-ins need the node's flags, scripts are the operator's), and a grant is only checked for form"},
	{Name: "vsys_vnet", Category: "slice/vsys", Kind: Text, Doc: "vnet subnet"},
	{Name: Codemux, Category: "slice/network", Kind: Host, Roles: member, Multi: true,
		Doc: "a web site of the slice on the node's shared ports 80 and 443 (CoDemux, see networks.md): HTTP requests whose Host is the host go to the sliver's port (X-Forwarded-For added), and with tls= TLS connections whose SNI is the host go to the sliver's TLS port unterminated. proxy: a PROXY protocol v1 header names the client first. Refused when another slice on a node of this one claims the host"},
	{Name: Delegations, Category: "slice/config", Kind: Text, Roles: member, Doc: "slices that may control this slice's slivers through the node manager's local API (names, comma or space separated, see brokering.md)"},
	{Name: "rawdisk", Category: "slice/config", Kind: Text, Roles: []string{core.RolePI}, Doc: "raw disk access"},
	{Name: "isolate_loopback", Category: "slice/network", Kind: Text, Doc: "private loopback"},
	{Name: "drl", Category: "slice/network", Kind: Text, Doc: "distributed rate limiting"},
	{Name: "interface", Category: "slice/network", Kind: Text, Doc: "a dedicated network interface"},
	{Name: "exempt_slice_until", Category: "slice/general", Kind: Text, Doc: "exempt from policing until"},
	{Name: "type", Category: "slice/config", Kind: Text, Doc: "sliver class"},
	{Name: "hrn", Category: "general", Kind: Text, Doc: "human readable name (SFA)"},
	{Name: "sfa_created", Category: "general", Kind: Text, Doc: "created by SFA"},
	{Name: "omf_control", Category: "slice/config", Kind: Text, Roles: member, Doc: "OMF resource controller"},
	{Name: "enable_hmac", Category: "slice/config", Kind: Text, Roles: member, Doc: "create an HMAC for the sliver"},
	{Name: "hmac", Category: "slice/config", Kind: Text, Doc: "sliver HMAC"},
	{Name: "ssh_key", Category: "slice/config", Kind: Text, Doc: "sliver ssh key"},
	{Name: GENIUserKey, Category: "slice/config", Kind: Text, Roles: member, Multi: true,
		Doc: "an ssh public key of a GENI user of the slice, installed in the slivers like the members' keys (the GENI aggregate sets it from the geni_users of Provision, see docs/geni.md)"},
	{Name: GENISlice, Category: "slice/geni", Kind: Text,
		Doc: "the URN of the GENI slice of another authority this slice stands in for (set by the GENI aggregate when it creates the slice, see docs/geni.md)"},
	{Name: "ipv6_address", Category: "slice/network", Kind: Text, Doc: "sliver IPv6 address"},
	// Node, interface, person and site tags.
	{Name: SSHPort, Category: "node/config", Kind: Int, Min: 1, Max: 65535, Default: "22", Roles: site,
		Doc: "port of the node's slice ssh gateway"},
	{Name: "virt", Category: "node/config", Kind: Text, Roles: site, Doc: "virtualisation of the node"},
	{Name: "deployment", Category: "node/deployment", Kind: Text, Roles: site, Doc: "deployment of the node"},
	{Name: "extensions", Category: "node/config", Kind: Text, Roles: site, Doc: "node extensions"},
	{Name: "ifname", Category: "interface/config", Kind: Text, Roles: site, Doc: "interface name"},
	{Name: "driver", Category: "interface/config", Kind: Text, Roles: site, Doc: "interface driver"},
	{Name: "alias", Category: "interface/config", Kind: Text, Roles: site, Doc: "interface alias"},
	{Name: SliversIPv6Prefix, Category: "interface/ipv6", Kind: IPv6Prefix, Roles: site,
		Doc: "IPv6 prefix routed to the node for its slivers (the original's SliversIPv6Prefix accessor): on the primary interface, each sliver gets <prefix> + 0x10000 + its xid, changed live (networks.md). A node's --ipv6-prefix overrides it"},
	{Name: GENIAuthority, Category: "site/geni", Kind: Text,
		Doc: "the URN of the GENI slice authority whose slices this site stands in for (the GENI aggregate creates the site on the authority's first slice, see docs/geni.md)"},
	{Name: GENIUser, Category: "person/geni", Kind: Text,
		Doc: "the URN of the GENI user of another authority this person stands in for (set by the GENI aggregate, see docs/geni.md)"},
	{Name: "isrootonsite", Category: "person/config", Kind: Text, Roles: []string{core.RolePI}, Doc: "person gets root on the nodes of their sites"},
	{Name: "columnconf", Category: "person/ui", Kind: Text, Roles: []string{core.RolePI, core.RoleUser, core.RoleTech}, Doc: "web UI column setup"},
	{Name: "showconf", Category: "person/ui", Kind: Text, Roles: []string{core.RolePI, core.RoleUser, core.RoleTech}, Doc: "web UI settings"},
	{Name: "advanced", Category: "person/ui", Kind: Text, Roles: []string{core.RolePI, core.RoleUser, core.RoleTech}, Doc: "web UI advanced mode"},
	{Name: "disabled_registration", Category: "site/config", Kind: Text, Roles: []string{core.RolePI}, Doc: "site refuses registrations"},
	{Name: Country, Category: "site/location", Kind: Text, Roles: []string{core.RolePI}, Doc: "ISO 3166-1 alpha-2 code of the site's country (US, JP, BR): the planet table's country column"},
}

// rlimits are the original's per-sliver rlimit tags (<name>_{min,soft,hard});
// those the node reads are in the table above.
var rlimits = []string{"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "sigpending", "stack"}

// bandwidth are the original's bandwidth tags not (yet) applied by nodes.
var bandwidth = []string{"net_i2_min_rate", "net_i2_max_rate", "net_share", "net_i2_share",
	"net_i2_max_kbyte", "net_i2_thresh_kbyte"}

var byName = map[string]*Tag{}

func init() {
	for _, r := range rlimits {
		for _, k := range []string{"min", "soft", "hard"} {
			n := r + "_" + k
			if !known(n) {
				table = append(table, Tag{Name: n, Category: "slice/rlimit", Kind: Text, Doc: "per-sliver rlimit " + r + " (" + k + ")"})
			}
		}
	}
	for _, n := range bandwidth {
		table = append(table, Tag{Name: n, Category: "slice/rspec", Kind: Text, Doc: "bandwidth limit " + n + " of the original"})
	}
	for i := range table {
		t := &table[i]
		if byName[t.Name] != nil {
			panic("tags: " + t.Name + " listed twice")
		}
		byName[t.Name] = t
	}
	for i := range table {
		if t := &table[i]; t.Alias != "" {
			a := byName[t.Alias]
			t.Min, t.Max, t.ZeroMeans, t.Unit = a.Min, a.Max, a.ZeroMeans, a.Unit
		}
	}
}

func known(name string) bool {
	for _, t := range table {
		if t.Name == name {
			return true
		}
	}
	return false
}

// All returns every known tag, in the order of the documentation.
func All() []Tag {
	out := make([]Tag, len(table))
	copy(out, table)
	return out
}

// Lookup returns the tag called name.
func Lookup(name string) (Tag, bool) {
	t, ok := byName[name]
	if !ok {
		return Tag{}, false
	}
	return *t, true
}

// Check validates value as a value of the tag called name. The error, an
// Invalid *core.Error, names the tag and says what is wrong. Unknown tags
// accept anything.
func Check(name, value string) error {
	t, ok := byName[name]
	if !ok {
		return nil
	}
	return t.Check(value)
}

// Check validates value as a value of t.
func (t Tag) Check(value string) error {
	if strings.ContainsRune(value, 0) {
		return core.FieldErrorf(t.Name, "value contains NUL")
	}
	switch t.Kind {
	case Int:
		_, err := t.Int(value)
		return err
	case Ports:
		if _, err := ports.Parse(value); err != nil {
			return core.FieldErrorf(t.Name, "%v", err)
		}
	case Host:
		if _, err := ParseRoute(value); err != nil {
			return err
		}
	case Topology:
		if _, err := vlinks.Parse(value); err != nil {
			return err
		}
	case VsysOp:
		if _, err := ParseVsysGrant(value); err != nil {
			return err
		}
	case IPv6Prefix:
		if _, err := ParsePrefix6(value); err != nil {
			return err
		}
	case Image:
		if v := strings.TrimSpace(value); !imageName.MatchString(v) {
			return core.FieldErrorf(t.Name, "%q is not an image name: want 1-64 of [A-Za-z0-9._-], starting with a letter or digit", v)
		}
	case Enum:
		if v := strings.TrimSpace(value); !slices.Contains(t.Values, v) {
			return core.FieldErrorf(t.Name, "unknown value %q: want one of %s", v, strings.Join(t.Values, ", "))
		}
	}
	return nil
}

var imageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Int parses and checks the value of an Int tag.
func (t Tag) Int(value string) (int64, error) {
	if t.Kind != Int {
		return 0, fmt.Errorf("tags: %s is not an integer tag", t.Name)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	if err != nil {
		return 0, core.FieldErrorf(t.Name, "%q is not an integer", value)
	}
	return n, t.CheckInt(n)
}

// CheckInt checks n against t's range.
func (t Tag) CheckInt(n int64) error {
	if n == 0 && t.ZeroMeans != "" {
		return nil
	}
	if n < t.Min || n > t.Max {
		if t.ZeroMeans != "" && n > 0 && n < t.Min {
			return core.FieldErrorf(t.Name, "%d is below the minimum of %d (0 = %s)", n, t.Min, t.ZeroMeans)
		}
		return core.FieldErrorf(t.Name, "%d is out of range %d..%d", n, t.Min, t.Max)
	}
	return nil
}

// MustLookup returns a tag the code relies on; it panics when the table
// lacks it (a programming error caught by any test).
func MustLookup(name string) Tag {
	t, ok := Lookup(name)
	if !ok {
		panic("tags: unknown tag " + name)
	}
	return t
}

// DefaultInt returns the default of an Int tag.
func DefaultInt(name string) int64 {
	t := MustLookup(name)
	n, err := strconv.ParseInt(t.Default, 10, 64)
	if err != nil {
		panic("tags: " + name + " has no integer default")
	}
	return n
}
