package sliver

import (
	"fmt"
	"regexp"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/node/nmapi"
)

// Inside every sliver.
const (
	accountUID  = 1000         // the slice account's uid and gid
	initPath    = "/.pl-init"  // the host's static init (tini), bind-mounted read-only
	rcPath      = "/etc/pl/rc" // run by init: starts the initscript, then idles
	initctl     = "/etc/pl/initctl"
	initscript  = "/etc/pl/initscript"
	defaultPATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

	cpuPeriod = 100000 // CFS period in µs for CPU caps

	defaultNoFileSoft = 1024
	defaultNoFileHard = 524288
)

// capabilities is sliver root's capability set (bounding, permitted,
// effective), all relative to the sliver's own user namespace. It is the
// set vserver root had in practice (Docker's default set is the same
// list), plus CAP_NET_RAW which PlanetLab gave slices through VNET's safe
// raw sockets: ping, traceroute and sniffers work in the sliver's own
// network namespace. Never included: SYS_ADMIN (mount), SYS_MODULE,
// SYS_TIME, NET_ADMIN, SYS_BOOT, SYS_RAWIO, SYS_RESOURCE, DAC_READ_SEARCH,
// SYSLOG, MAC_*, BPF, PERFMON.
var capabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
	"CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// ValidName checks a sliver (slice) name: it is a container id, a hostname
// and a Unix login, so it is 1-32 characters of [a-z0-9_] starting with a
// letter.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return core.FieldErrorf("name", "invalid sliver name %q: want 1-32 of [a-z0-9_], starting with a letter", name)
	}
	return nil
}

// Validate checks a spec before anything is done with it.
func (s Spec) Validate() error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if s.XID < 1 || s.XID > 4094 {
		return core.FieldErrorf("xid", "sliver %q: xid %d out of range 1..4094", s.Name, s.XID)
	}
	if s.UIDBase == 0 || s.UIDBase%UIDCount != 0 || uint64(s.UIDBase)+UIDCount > 1<<32-1 {
		return core.FieldErrorf("uid_base", "sliver %q: uid base %d must be a non-zero multiple of %d below 2^32", s.Name, s.UIDBase, UIDCount)
	}
	for i, k := range s.Keys {
		if strings.ContainsAny(k, "\n\r\x00") {
			return core.FieldErrorf("keys", "sliver %q: key %d contains a line break or NUL", s.Name, i)
		}
	}
	if strings.ContainsRune(s.InitScript, 0) {
		return core.FieldErrorf("initscript", "sliver %q: initscript contains NUL", s.Name)
	}
	if err := s.Resources.validate(); err != nil {
		e := err.(*core.Error)
		return core.FieldErrorf(e.Field, "sliver %q: %s", s.Name, e.Message)
	}
	if s.Hostname != "" && !validHostname(s.Hostname) {
		return core.FieldErrorf("hostname", "sliver %q: host name %q: want at most 64 letters, digits, '-' and '.' in dot-separated labels", s.Name, s.Hostname)
	}
	if s.Runtime != RuntimeRunc && s.Runtime != RuntimeGVisor {
		return core.FieldErrorf("runtime", "sliver %q: unknown runtime %q: want \"\" (runc) or %q", s.Name, s.Runtime, RuntimeGVisor)
	}
	if s.NetNS != "" && !strings.HasPrefix(s.NetNS, "/") {
		return core.FieldErrorf("netns", "sliver %q: network namespace %q is not an absolute path", s.Name, s.NetNS)
	}
	return nil
}

// validate checks the limits against the slice tags they come from
// (package core/tags), so that the runtime refuses exactly what PLC and
// the node manager refuse. Errors are Invalid *core.Error naming the tag.
func (r Resources) validate() error {
	if r.CPUShares > tags.MaxKernelShares {
		return core.FieldErrorf(tags.CPUShare, "cpu shares %d above %d", r.CPUShares, tags.MaxKernelShares)
	}
	for _, c := range []struct {
		tag  string
		n    int64
		skip bool
	}{
		{tags.CPUCapPct, int64(r.CPUCapPct), false},
		{tags.MemMax, kib(r.MemoryBytes), false},
		{tags.NProc, r.Pids, false},
		{tags.NoFile, int64(min(r.NoFile, 1<<62)), r.NoFile == 0}, // 0: the runtime's default
		{tags.DiskMax, kib(r.DiskBytes), false},
	} {
		if c.skip {
			continue
		}
		if err := tags.MustLookup(c.tag).CheckInt(c.n); err != nil {
			return err
		}
	}
	return nil
}

// kib converts a byte count to the KiB of a tag value, rounding down but
// keeping a positive count positive.
func kib(b int64) int64 {
	if b > 0 {
		return max(1, b/1024)
	}
	return b
}

// linuxResources maps Resources to the cgroup settings runc applies at
// create and `runc update`. Zero values become explicit "unlimited" so an
// update can lift a limit. swap says whether the host accounts swap.
func linuxResources(r Resources, swap bool) *specs.LinuxResources {
	shares := r.CPUShares
	if shares == 0 {
		shares = 1024
	}
	period := uint64(cpuPeriod)
	quota := int64(-1)
	if r.CPUCapPct > 0 {
		quota = int64(r.CPUCapPct) * cpuPeriod / 100
	}
	mem := int64(-1)
	if r.MemoryBytes > 0 {
		mem = r.MemoryBytes
	}
	pids := int64(-1)
	if r.Pids > 0 {
		pids = r.Pids + LoginReserve // the workload's own limit is on its child cgroup
	}
	out := &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period},
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}
	if swap {
		sw := mem // memory+swap = memory: slivers do not swap
		out.Memory.Swap = &sw
	}
	return out
}

// noFile returns the RLIMIT_NOFILE of a sliver; the default hard limit is
// capped by max, the runtime's own hard limit (raising above it needs
// CAP_SYS_RESOURCE).
func noFile(r Resources, max uint64) (soft, hard uint64) {
	if r.NoFile == 0 {
		hard = defaultNoFileHard
		if max > 0 && hard > max {
			hard = max
		}
		return min(defaultNoFileSoft, hard), hard
	}
	return r.NoFile, r.NoFile
}

// layout is what the host-side structures of a sliver were built for;
// changing any of it means rebuilding them.
type layout struct {
	Image   string `json:"image"`
	UIDBase uint32 `json:"uid_base"`
	NetNS   string `json:"netns"`
	XID     int    `json:"xid"`
	Runtime string `json:"runtime,omitempty"` // Spec.Runtime
}

// hostnameRE is a host name the kernel takes as a UTS name (at most 64
// bytes: HOST_NAME_MAX) made of RFC 1123 labels.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validHostname(h string) bool { return len(h) <= 64 && hostnameRE.MatchString(h) }

// NodeHostname returns the Spec.Hostname for slivers of a node named h:
// h itself when the kernel takes it as a host name, else its first label
// (a UTS name holds 64 bytes; PLC allows longer names), else "" (the
// slice name).
func NodeHostname(h string) string {
	if validHostname(h) {
		return h
	}
	if first, _, _ := strings.Cut(h, "."); validHostname(first) {
		return first
	}
	return ""
}

// utsName is the host name a sliver of s sees.
func (s Spec) utsName() string {
	if s.Hostname != "" {
		return s.Hostname
	}
	return s.Name
}

// ociParams are the inputs of ociConfig beyond the spec.
type ociParams struct {
	Rootfs       string
	Init         string // host path of the static init
	CgroupParent string
	UserNS       string // path of a user namespace to join ("" = new one)
	OwnNetNS     bool   // the network namespace belongs to the sliver's user namespace
	Swap         bool
	NoFileMax    uint64 // the runtime's own RLIMIT_NOFILE hard limit
	Datasets     string // host path of the sliver's datasets directory (Spec.Datasets)
}

// ociResources are the cgroup settings of a sliver's container. Under
// gVisor the cgroup holds the sandbox (the sentry's and the gofer's host
// threads), not the sliver's processes, so it gets no process limit.
func ociResources(s Spec, swap bool) *specs.LinuxResources {
	r := linuxResources(s.Resources, swap)
	if s.Runtime == RuntimeGVisor {
		r.Pids = nil
	}
	return r
}

// ociConfig builds the runc config.json of a sliver. It is pure.
func ociConfig(s Spec, p ociParams) *specs.Spec {
	soft, hard := noFile(s.Resources, p.NoFileMax)
	caps := append([]string(nil), capabilities...)
	if s.NetAdmin {
		caps = append(caps, "CAP_NET_ADMIN")
	}
	uid := []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.UIDBase, Size: UIDCount}}
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
		{Type: specs.UserNamespace, Path: userNSPath(s, p)},
		{Type: specs.NetworkNamespace, Path: s.NetNS},
	}
	sys := specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
	if !p.OwnNetNS {
		// sysfs can only be mounted by the owner of the network
		// namespace; otherwise show the host's read-only, as rootless
		// runc does.
		sys = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		sys,
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: initPath, Type: "none", Source: p.Init, Options: []string{"bind", "ro", "nosuid", "nodev"}},
	}
	if s.APISocket != "" {
		// The directory is a tmpfs of the sliver's own; the socket is
		// bound read-only (connecting needs no write access to the
		// mount, only to the socket's inode, mode 0666).
		mounts = append(mounts,
			specs.Mount{Destination: "/run/pl", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "nodev", "mode=755", "size=64k"}},
			specs.Mount{Destination: APISocketPath, Type: "none", Source: s.APISocket, Options: []string{"bind", "ro", "nosuid", "noexec", "nodev"}})
		if s.APIClient != "" {
			// The node's static pl, executable (a mount of its own: the
			// tmpfs's noexec does not apply), never setuid.
			mounts = append(mounts, specs.Mount{Destination: nmapi.SliverClient, Type: "none", Source: s.APIClient, Options: []string{"bind", "ro", "nosuid", "nodev"}})
		}
	}
	if s.Datasets && s.Runtime != RuntimeGVisor && p.Datasets != "" {
		// A slave of the host's shared directory: what the node mounts
		// there later appears here (read-only mounts stay read-only, and
		// sliver root cannot lift that: they are locked in its user
		// namespace); nothing mounted here reaches the host.
		mounts = append(mounts, specs.Mount{Destination: DatasetsPath, Type: "none", Source: p.Datasets,
			Options: []string{"rbind", "rslave", "ro", "nosuid", "nodev"}})
	}
	return &specs.Spec{
		Version:  "1.0.2",
		Hostname: s.utsName(),
		Root:     &specs.Root{Path: p.Rootfs},
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: []string{initPath, "--", "/bin/sh", rcPath},
			Env:  []string{defaultPATH, "HOME=/root", "container=pl"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         rlimits(s, soft, hard),
			NoNewPrivileges: false, // setuid su is the way to sliver root
			OOMScoreAdj:     intp(500),
		},
		Mounts:      mounts,
		Annotations: map[string]string{"org.planetlab.xid": fmt.Sprint(s.XID)},
		Linux: &specs.Linux{
			UIDMappings: uid,
			GIDMappings: uid,
			Namespaces:  ns,
			CgroupsPath: strings.TrimSuffix(p.CgroupParent, "/") + "/" + s.Name,
			Resources: func() *specs.LinuxResources {
				r := ociResources(s, p.Swap)
				r.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
				return r
			}(),
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Seccomp:       seccomp(),
		},
	}
}

func intp(i int) *int { return &i }

// rlimits are the resource limits of the sliver's init (and, under
// gVisor, of every process started in it). A gVisor sliver's cgroup holds
// the sandbox, not the sliver's processes, so its process limit is
// RLIMIT_NPROC instead, which the sentry enforces per user (sliver root
// included: it lacks CAP_SYS_ADMIN and CAP_SYS_RESOURCE).
func rlimits(s Spec, nofileSoft, nofileHard uint64) []specs.POSIXRlimit {
	l := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: nofileSoft, Hard: nofileHard}}
	if s.Runtime == RuntimeGVisor && s.Resources.Pids > 0 {
		l = append(l, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Soft: uint64(s.Resources.Pids), Hard: uint64(s.Resources.Pids)})
	}
	return l
}

// userNSPath is the user namespace a sliver's container joins ("" = a new
// one with the spec's mappings). runsc cannot join one by path (its gofer,
// a Go program, fails setns of a user namespace with EINVAL): a gVisor
// sliver gets a new one with the same mappings.
func userNSPath(s Spec, p ociParams) string {
	if s.Runtime == RuntimeGVisor {
		return ""
	}
	return p.UserNS
}

// seccomp is a small deny list on top of the capability set, for kernel
// interfaces that user namespaces do not contain: keyrings are not
// namespaced; nested user namespaces would hand sliver processes
// CAP_SYS_ADMIN over new namespaces, the door to most container escapes
// (clone3 answers ENOSYS so that libc falls back to clone, whose flags can
// be checked); module, kexec, bpf, userfaultfd and open_by_handle_at are
// refused outright. Everything else is allowed.
func seccomp() *specs.LinuxSeccomp {
	const newUser = 0x10000000 // CLONE_NEWUSER
	eperm, enosys := uint(1), uint(38)
	userArg := []specs.LinuxSeccompArg{{Index: 0, Value: newUser, ValueTwo: newUser, Op: specs.OpMaskedEqual}}
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"add_key", "keyctl", "request_key", "init_module", "finit_module", "delete_module",
				"kexec_load", "kexec_file_load", "bpf", "userfaultfd", "open_by_handle_at"},
				Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"unshare", "clone"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: userArg},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
}
