package store

import (
	"fmt"
	"strings"
)

// TagTypeSeed is a tag type every PLC starts with.
type TagTypeSeed struct {
	Name, Category, Description string
	Roles                       []string // non-admin roles that may write it (admin always may)
}

// PortsTag is the slice tag reserving ports on the slice's nodes: one tag
// per reservation, value "tcp/8080", "udp/5000-5010". PLC refuses a
// reservation colliding with another live slice's on a shared node.
const PortsTag = "ports"

var rlimits = []string{"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "sigpending", "stack"}

// TagTypeSeeds lists the seeded tag types: the slice tags of reference
// plcapi.md §4 (with their write roles), the accessor tags and "ports".
func TagTypeSeeds() []TagTypeSeed {
	var all = []string{"pi", "user", "tech", "node"}
	s := []TagTypeSeed{
		{"vref", "slice/config", "sliver reference image", []string{"pi", "user", "node"}},
		{"arch", "slice/config", "architecture (slices and nodes)", all},
		{"pldistro", "slice/config", "PlanetLab distribution", all},
		{"fcdistro", "slice/config", "Fedora or Debian distribution", all},
		{"initscript", "slice/config", "name of an InitScript run at sliver start", []string{"pi", "user"}},
		{"initscript_code", "slice/config", "literal init script (overrides initscript)", []string{"pi", "user"}},
		{"enabled", "slice/rspec", "1 = running, 0 = suspended", nil},
		{"system", "slice/general", "1 = system slice, present on every node", nil},
		{"cpu_pct", "slice/rspec", "reserved CPU percent", nil},
		{"cpu_share", "slice/rspec", "proportional CPU shares", nil},
		{"cpu_cores", "slice/rspec", "reserved cores, <n>[b]", nil},
		{"cpu_freezable", "slice/rspec", "freeze when cpu_cores is 0", nil},
		{"disk_max", "slice/rspec", "disk quota in 1k blocks", nil},
		{"capabilities", "slice/rspec", "extra capabilities, comma-separated", nil},
		{"ip_addresses", "slice/rspec", "extra IP addresses of the sliver", nil},
		{"vsys", "slice/vsys", "one vsys script per tag", []string{"pi", "user", "tech"}},
		{"vsys_vnet", "slice/vsys", "vnet subnet", nil},
		{"codemux", "slice/network", "codemux host and port", nil},
		{"delegations", "slice/config", "delegated slice names", []string{"pi", "user"}},
		{"rawdisk", "slice/config", "raw disk access", []string{"pi"}},
		{"isolate_loopback", "slice/network", "private loopback", nil},
		{"drl", "slice/network", "distributed rate limiting", nil},
		{"interface", "slice/network", "a dedicated network interface", nil},
		{"exempt_slice_until", "slice/general", "exempt from policing until", nil},
		{"type", "slice/config", "sliver class", nil},
		{"hrn", "general", "human readable name (SFA)", nil},
		{"sfa_created", "general", "created by SFA", nil},
		{"omf_control", "slice/config", "OMF resource controller", []string{"pi", "user"}},
		{"enable_hmac", "slice/config", "create an HMAC for the sliver", []string{"pi", "user"}},
		{"hmac", "slice/config", "sliver HMAC", nil},
		{"ssh_key", "slice/config", "sliver ssh key", nil},
		{"ipv6_address", "slice/network", "sliver IPv6 address", nil},
		// Resource limits of this implementation's node manager
		// (internal/node/agent attrs.go), beside the original names.
		{"cpu_cap_pct", "slice/rspec", "CPU cap in percent of one CPU (200 = two CPUs)", nil},
		{"mem_max", "slice/rspec", "memory limit in KiB", nil},
		{"nproc", "slice/rspec", "process limit", nil},
		{"nofile", "slice/rspec", "open file limit", nil},
		{PortsTag, "slice/network", "reserved port or range on the slice's nodes: tcp/8080, udp/5000-5010", []string{"pi", "user"}},
		// Node, interface, person and site accessor tags.
		{"ssh_port", "node/config", "port of the node's slice ssh gateway (default 22)", []string{"pi", "tech"}},
		{"virt", "node/config", "virtualisation of the node", []string{"pi", "tech"}},
		{"deployment", "node/deployment", "deployment of the node", []string{"pi", "tech"}},
		{"extensions", "node/config", "node extensions", []string{"pi", "tech"}},
		{"ifname", "interface/config", "interface name", []string{"pi", "tech"}},
		{"driver", "interface/config", "interface driver", []string{"pi", "tech"}},
		{"alias", "interface/config", "interface alias", []string{"pi", "tech"}},
		{"isrootonsite", "person/config", "person gets root on the nodes of their sites", []string{"pi"}},
		{"columnconf", "person/ui", "web UI column setup", []string{"pi", "user", "tech"}},
		{"showconf", "person/ui", "web UI settings", []string{"pi", "user", "tech"}},
		{"advanced", "person/ui", "web UI advanced mode", []string{"pi", "user", "tech"}},
		{"disabled_registration", "site/config", "site refuses registrations", []string{"pi"}},
	}
	for _, r := range rlimits {
		for _, k := range []string{"min", "soft", "hard"} {
			s = append(s, TagTypeSeed{r + "_" + k, "slice/rlimit", "per-sliver rlimit " + r + " (" + k + ")", nil})
		}
	}
	for _, n := range []string{"net_min_rate", "net_max_rate", "net_i2_min_rate", "net_i2_max_rate", "net_share", "net_i2_share",
		"net_max_kbyte", "net_thresh_kbyte", "net_i2_max_kbyte", "net_i2_thresh_kbyte"} {
		s = append(s, TagTypeSeed{n, "slice/rspec", "bandwidth limit " + n, nil})
	}
	return s
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func seedSQL() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+";\n", args...) }
	for name, id := range map[string]int{"admin": 10, "pi": 20, "user": 30, "tech": 40, "node": 50} {
		w("INSERT INTO roles (role_id, name) VALUES (%d, %s)", id, q(name))
	}
	for _, v := range []string{"boot", "safeboot", "reinstall", "disabled", "failboot", "install", "upgrade"} {
		w("INSERT INTO boot_states (boot_state) VALUES (%s)", q(v))
	}
	for _, v := range []string{"regular", "reservable"} {
		w("INSERT INTO node_types (node_type) VALUES (%s)", q(v))
	}
	w("INSERT INTO network_types (type) VALUES ('ipv4')")
	for _, v := range []string{"static", "dhcp", "proxy", "tap", "ipmi", "unknown"} {
		w("INSERT INTO network_methods (method) VALUES (%s)", q(v))
	}
	for _, v := range []string{"not-instantiated", "plc-instantiated", "delegated", "nm-controller"} {
		w("INSERT INTO slice_instantiations (instantiation) VALUES (%s)", q(v))
	}
	w("INSERT INTO key_types (key_type) VALUES ('ssh')")
	for _, v := range []string{"Personal", "Shipping", "Billing"} {
		w("INSERT INTO address_types (name, description) VALUES (%s, %s)", q(v), q(v+" address"))
	}
	roleID := map[string]int{"pi": 20, "user": 30, "tech": 40, "node": 50}
	for _, t := range TagTypeSeeds() {
		w("INSERT INTO tag_types (tagname, category, description) VALUES (%s, %s, %s)", q(t.Name), q(t.Category), q(t.Description))
		w("INSERT INTO tag_type_role (tag_type_id, role_id) SELECT tag_type_id, 10 FROM tag_types WHERE tagname = %s", q(t.Name))
		for _, r := range t.Roles {
			w("INSERT INTO tag_type_role (tag_type_id, role_id) SELECT tag_type_id, %d FROM tag_types WHERE tagname = %s", roleID[r], q(t.Name))
		}
	}
	return b.String()
}

// The seed is migration 2; the upgrades of migrations.go follow it.
func init() { migrations = append(append(migrations, seedSQL()), upgrades...) }
