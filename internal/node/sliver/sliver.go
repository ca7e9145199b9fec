// Package sliver runs slivers: OCI containers started by runc over an
// overlayfs root whose lower layer is a shared, read-only reference image.
//
// This file is the contract the node agent and the SSH gateway rely on; the
// runc implementation lives beside it.
package sliver

import (
	"context"
	"os/exec"

	"github.com/planetlab/pl/internal/node/nmapi"
)

// UIDCount is the size of each sliver's host uid/gid range.
const UIDCount = 65536

// Spec is the complete desired configuration of one sliver, computed by the
// node agent from PLC's desired state. It is a plain value: Apply(spec)
// makes the host match it.
//
// Every field's diff tag (package fielddiff) names it in plans and says
// what a change of it takes on an existing sliver (change.go); the agent's
// plan and the runtime's update both derive "what changed" from them.
type Spec struct {
	Name       string    `diff:"name,identity"`    // slice name: container id, login name, /etc/slicename
	XID        int       `diff:"xid,recreate"`     // per-node sliver number, 1..4094, stable for the sliver's life
	Image      string    `diff:"image,recreate"`   // reference image name (slice tag vref; "" = default image)
	UIDBase    uint32    `diff:"uidbase,recreate"` // host uid (and gid) that sliver root maps to; range of UIDCount
	Keys       []string  `diff:"keys,files"`       // authorized_keys lines of the slice account
	InitScript string    `diff:"initscript,files"` // initscript code ("" = none); re-run when it changes
	Enabled    bool      `diff:"enabled,freezer"`  // false: frozen (cgroup freezer), logins refused
	Resources  Resources `diff:",inline"`
	// NetNS is the path of the network namespace the sliver joins
	// (prepared by netcfg); "" = a new namespace with only loopback. When
	// the namespace is owned by a user namespace mapping root to UIDBase
	// (create it with NewNetNS), the sliver joins that user namespace and
	// its root has CAP_NET_RAW there (ping, traceroute, sniffing its own
	// traffic); a namespace owned by the host's user namespace is joined
	// as is and sliver root has no network capability in it.
	NetNS string `diff:"netns,restart"`
	// Hostname is what hostname and uname -n print inside: the node's host
	// name, as in PlanetLab, so that a service can tell where it runs
	// (/etc/slicename says the slice). "" = the slice name. Changed live.
	Hostname string `diff:"hostname,uts"`
	// Runtime is the OCI runtime that runs the sliver: "" (runc: a
	// container on the node's kernel) or RuntimeGVisor (runsc: gVisor's
	// user-space kernel in front of the node's). A change re-creates the
	// sliver under the other runtime. Slice tag "runtime".
	Runtime string `diff:"runtime,recreate"`
	// APISocket is the host path of the node manager's local API socket
	// (package nmapi), bound into the sliver at APISocketPath; "" = none
	// (slice tags nm_api, vsys). A change restarts the sliver in a new
	// container, its files kept.
	APISocket string `diff:"api_socket,restart"`
	// APIClient is the host path of a static pl binary bound read-only
	// at nmapi.SliverClient beside the socket, the sliver's client of the
	// local API (`/run/pl/pl nm <Method>`); "" = none. Only with
	// APISocket. A change restarts the sliver, its files kept.
	APIClient string `diff:"api_client,restart"`
	// Datasets gives the sliver a directory at DatasetsPath that receives
	// the mounts the node makes later in the host directory DatasetDir
	// (a shared mount on the host, bound read-only and as a slave into
	// the sliver): privileged operations (package vsys) attach read-only
	// datasets there. A change restarts the sliver, its files kept.
	// Ignored under gVisor.
	Datasets bool `diff:"datasets,restart"`

	// NetAdmin gives sliver root CAP_NET_ADMIN, relative to its user
	// namespace: it then configures its own network namespace (addresses,
	// routes, the interfaces of its virtual links: routing daemons) and
	// nothing of the node's, whose namespace that user namespace does not
	// own. The agent sets it for slivers with virtual links (vlinks tag)
	// only: it also opens the kernel's netfilter and traffic-control code
	// to the sliver, a larger attack surface than other slivers get.
	NetAdmin bool `diff:"net_admin,restart"`
}

// APISocketPath is where a sliver allowed the local API finds its socket.
const APISocketPath = nmapi.SliverSocket

// DatasetsPath is where a sliver with Datasets sees the datasets attached
// to it.
const DatasetsPath = "/run/pl/datasets"

// The OCI runtimes a sliver can run under (Spec.Runtime).
const (
	RuntimeRunc   = ""      // runc, the default
	RuntimeGVisor = "runsc" // gVisor
)

// Resources are the enforced limits of a sliver; zero means "no limit" except
// where noted. CPU guarantees (cpu_pct) are turned into shares and caps by
// the agent before they reach here. All are changed live.
type Resources struct {
	CPUShares   uint64 `diff:"cpu_shares,cgroup"` // relative weight; cpu_share 1 = 1024 (cgroup v1 cpu.shares; mapped to cpu.weight on v2)
	CPUCapPct   int    `diff:"cpu_cap,cgroup"`    // cap in percent of one CPU (200 = two CPUs); 0 = uncapped
	MemoryBytes int64  `diff:"memory,cgroup"`     // memory limit
	Pids        int64  `diff:"pids,cgroup"`       // process limit
	NoFile      uint64 `diff:"nofile,rlimit"`     // RLIMIT_NOFILE soft and hard; 0 = 1024 soft, 524288 hard (capped by the agent's own hard limit)
	DiskBytes   int64  `diff:"disk,quota"`        // disk quota of the sliver's writable layer (btrfs qgroup limit)
}

// Status is what exists on the host for one sliver.
type Status struct {
	Name    string
	XID     int
	Running bool  // init process alive
	Frozen  bool  // cgroup frozen
	Spec    *Spec // the last spec applied successfully (persisted), nil if unknown
}

// Process describes a command to run inside a sliver.
type Process struct {
	Args []string // empty: the account's login shell
	Env  []string // KEY=VALUE, added to a minimal login environment
	Root bool     // run as sliver root instead of the slice account
	TTY  bool     // the caller provides a terminal on stdin/stdout/stderr
	Dir  string   // working directory; "" = the account's home
}

// Runtime manages the slivers of one node.
type Runtime interface {
	// Apply makes the sliver exist, run and match spec. It is idempotent
	// and safe to repeat after a crash at any step; resource changes are
	// applied live without restarting the sliver.
	Apply(ctx context.Context, spec Spec) error
	// Destroy stops the sliver and removes every trace of it on the host
	// (processes, cgroups, mounts, state, directories). Idempotent.
	Destroy(ctx context.Context, name string) error
	// List reports the slivers that exist on the host.
	List(ctx context.Context) ([]Status, error)
	// Command returns a command that, when started, runs p inside the
	// sliver's namespaces and cgroup. The caller wires its stdio.
	Command(ctx context.Context, name string, p Process) (*exec.Cmd, error)
}
