package sliver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func validSpec() Spec {
	return Spec{Name: "princeton_codeen", XID: 7, UIDBase: 1<<28 + 7*UIDCount, Enabled: true}
}

func TestValidate(t *testing.T) {
	if err := validSpec().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(*Spec){
		"name":       func(s *Spec) { s.Name = "Bad-Name" },
		"long name":  func(s *Spec) { s.Name = strings.Repeat("a", 33) },
		"xid":        func(s *Spec) { s.XID = 4095 },
		"uid_base":   func(s *Spec) { s.UIDBase = 12345 },
		"zero base":  func(s *Spec) { s.UIDBase = 0 },
		"key":        func(s *Spec) { s.Keys = []string{"ssh-rsa AAA\nssh-rsa BBB"} },
		"cpu_cap":    func(s *Spec) { s.Resources.CPUCapPct = -1 },
		"memory":     func(s *Spec) { s.Resources.MemoryBytes = 1 },
		"pids":       func(s *Spec) { s.Resources.Pids = -5 },
		"nofile":     func(s *Spec) { s.Resources.NoFile = 10 },
		"disk_max":   func(s *Spec) { s.Resources.DiskBytes = -1 },
		"netns":      func(s *Spec) { s.NetNS = "relative/path" },
		"initscript": func(s *Spec) { s.InitScript = "a\x00b" },
		"hostname":   func(s *Spec) { s.Hostname = "node one.example.org" },
		"long host":  func(s *Spec) { s.Hostname = strings.Repeat("a", 60) + ".example.org" },
		"dot host":   func(s *Spec) { s.Hostname = "planetlab1..org" },
		"dash host":  func(s *Spec) { s.Hostname = "-planetlab1.org" },
	}
	for _, h := range []string{"planetlab1.cs.princeton.edu", "node1", "PLANETLAB-2.example.org", strings.Repeat("a", 63)} {
		s := validSpec()
		s.Hostname = h
		if err := s.Validate(); err != nil {
			t.Errorf("host name %q: %v", h, err)
		}
	}
	for what, mutate := range bad {
		s := validSpec()
		mutate(&s)
		err := s.Validate()
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) == "" {
			t.Errorf("%s: err = %v", what, err)
		}
	}
}

func TestLinuxResources(t *testing.T) {
	r := linuxResources(Resources{CPUShares: 512, CPUCapPct: 150, MemoryBytes: 64 << 20, Pids: 100}, true)
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.Memory.Limit != 64<<20 ||
		*r.Memory.Swap != 64<<20 || *r.Pids.Limit != 100+LoginReserve {
		t.Errorf("limits: %+v %+v %+v", *r.CPU, *r.Memory, *r.Pids)
	}
	r = linuxResources(Resources{}, false)
	if *r.CPU.Shares != 1024 || *r.CPU.Quota != -1 || *r.Memory.Limit != -1 || r.Memory.Swap != nil || *r.Pids.Limit != -1 {
		t.Errorf("no limits: %+v %+v %+v", *r.CPU, *r.Memory, *r.Pids)
	}
}

func TestNoFile(t *testing.T) {
	if s, h := noFile(Resources{}, 20000); s != 1024 || h != 20000 {
		t.Errorf("default capped = %d %d", s, h)
	}
	if s, h := noFile(Resources{}, 1<<20); s != 1024 || h != 524288 {
		t.Errorf("default = %d %d", s, h)
	}
	if s, h := noFile(Resources{NoFile: 4096}, 1024); s != 4096 || h != 4096 {
		t.Errorf("explicit = %d %d", s, h)
	}
}

func TestNodeHostname(t *testing.T) {
	long := strings.Repeat("x", 60) + ".cs.princeton.edu"
	for in, want := range map[string]string{
		"planetlab1.cs.princeton.edu": "planetlab1.cs.princeton.edu",
		long:                          strings.Repeat("x", 60),
		"":                            "",
		"bad name.org":                "",
	} {
		if got := NodeHostname(in); got != want {
			t.Errorf("NodeHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOCIConfig(t *testing.T) {
	s := validSpec()
	c := ociConfig(s, ociParams{Rootfs: "rootfs", Init: "/usr/bin/tini-static", CgroupParent: "/pl/", OwnNetNS: true})
	if c.Hostname != s.Name || c.Linux.CgroupsPath != "/pl/"+s.Name {
		t.Errorf("hostname %q cgroups %q", c.Hostname, c.Linux.CgroupsPath)
	}
	s.Hostname = "planetlab1.cs.princeton.edu"
	if c := ociConfig(s, ociParams{Rootfs: "rootfs", CgroupParent: "/pl/"}); c.Hostname != s.Hostname {
		t.Errorf("with Hostname set: hostname %q, want the node's %q", c.Hostname, s.Hostname)
	}
	if m := c.Linux.UIDMappings[0]; m.HostID != s.UIDBase || m.Size != UIDCount || m.ContainerID != 0 {
		t.Errorf("uid map %+v", m)
	}
	for _, capName := range c.Process.Capabilities.Bounding {
		switch capName {
		case "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_NET_ADMIN", "CAP_SYS_BOOT":
			t.Errorf("sliver root gets %s", capName)
		}
	}
	s.NetAdmin = true // a sliver with virtual links configures its own network
	if caps := ociConfig(s, ociParams{Rootfs: "rootfs", CgroupParent: "/pl/", OwnNetNS: true}).Process.Capabilities; !slices.Contains(caps.Bounding, "CAP_NET_ADMIN") || !slices.Contains(caps.Effective, "CAP_NET_ADMIN") {
		t.Errorf("NetAdmin: capabilities %v", caps.Bounding)
	}
	s.NetAdmin = false
	if c.Process.NoNewPrivileges || len(c.Process.Capabilities.Ambient) != 0 || len(c.Process.Capabilities.Inheritable) != 0 {
		t.Error("no_new_privs set or ambient/inheritable capabilities given")
	}
	types := map[string]string{}
	for _, n := range c.Linux.Namespaces {
		types[string(n.Type)] = n.Path
	}
	for _, want := range []string{"pid", "ipc", "uts", "mount", "cgroup", "user", "network"} {
		if _, ok := types[want]; !ok {
			t.Errorf("no %s namespace", want)
		}
	}
	// A network namespace owned by the host: /sys is bound, not mounted.
	c = ociConfig(s, ociParams{Rootfs: "rootfs", CgroupParent: "/pl", UserNS: "/x/userns"})
	for _, m := range c.Mounts {
		if m.Destination == "/sys" && m.Type != "none" {
			t.Errorf("/sys mount %+v", m)
		}
	}
	if types := c.Linux.Namespaces; types[5].Path != "/x/userns" {
		t.Errorf("user namespace path %+v", types[5])
	}
	// The local API: the socket (noexec) and the client (executable,
	// never setuid), both read-only; the client only with the socket.
	mounts := func(s Spec) map[string][]string {
		out := map[string][]string{}
		for _, m := range ociConfig(s, ociParams{Rootfs: "rootfs", CgroupParent: "/pl"}).Mounts {
			if strings.HasPrefix(m.Destination, "/run/pl") {
				out[m.Destination] = m.Options
			}
		}
		return out
	}
	s.APIClient = "/usr/bin/pl"
	if m := mounts(s); len(m) != 0 {
		t.Errorf("a client without the socket: %v", m)
	}
	s.APISocket = "/var/lib/pl/node/api.sock"
	m := mounts(s)
	if o := m[APISocketPath]; !slices.Contains(o, "ro") || !slices.Contains(o, "noexec") {
		t.Errorf("socket mount %v", o)
	}
	if o := m["/run/pl/pl"]; !slices.Contains(o, "ro") || !slices.Contains(o, "nosuid") || slices.Contains(o, "noexec") {
		t.Errorf("client mount %v", o)
	}
}

// The datasets directory: a read-only slave bind of the host directory,
// only with Spec.Datasets, never under gVisor.
func TestOCIConfigDatasets(t *testing.T) {
	for _, tc := range []struct {
		datasets bool
		runtime  string
		want     bool
	}{{true, RuntimeRunc, true}, {false, RuntimeRunc, false}, {true, RuntimeGVisor, false}} {
		s := validSpec()
		s.Datasets, s.Runtime = tc.datasets, tc.runtime
		c := ociConfig(s, ociParams{Rootfs: "rootfs", CgroupParent: "/pl", Datasets: "/b/datasets"})
		got := false
		for _, m := range c.Mounts {
			if m.Destination == DatasetsPath {
				got = true
				if m.Source != "/b/datasets" || !slices.Equal(m.Options, []string{"rbind", "rslave", "ro", "nosuid", "nodev"}) {
					t.Errorf("datasets mount %+v", m)
				}
			}
		}
		if got != tc.want {
			t.Errorf("datasets %v runtime %q: mount %v, want %v", tc.datasets, tc.runtime, got, tc.want)
		}
	}
}

func TestAccountFiles(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\nolduser:x:1000:1000::/home/old:/bin/sh\nslice1:x:5:5::/:/bin/false\n"
	got := passwdFile(passwd, "slice1")
	if strings.Contains(got, "olduser") || strings.Count(got, "\nslice1:") != 1 ||
		!strings.Contains(got, "slice1:x:1000:1000:slice1 slice:/home/slice1:/bin/sh\n") || !strings.HasPrefix(got, "root:x:0:0") {
		t.Errorf("passwd:\n%s", got)
	}
	if passwdFile(got, "slice1") != got {
		t.Error("passwd merge is not idempotent")
	}
	if got := passwdFile("", "s"); !strings.HasPrefix(got, "root:") {
		t.Errorf("root not added: %q", got)
	}
	shadow := shadowFile("root:$6$hash:19000:0:99999:7:::\nslice1:old:1::::::\n", "slice1")
	if !strings.HasPrefix(shadow, "root::19000:") || !strings.Contains(shadow, "slice1:!:") || strings.Contains(shadow, "old") {
		t.Errorf("shadow:\n%s", shadow)
	}
	group := groupFile("root:x:0:\nusers:x:1000:\n", "slice1")
	if strings.Contains(group, "users") || !strings.Contains(group, "slice1:x:1000:") {
		t.Errorf("group:\n%s", group)
	}
	keys := authorizedKeys([]string{" ssh-ed25519 AAA a@b ", "", "ssh-rsa BBB"})
	if !strings.HasSuffix(keys, "ssh-ed25519 AAA a@b\nssh-rsa BBB\n") {
		t.Errorf("keys: %q", keys)
	}
}

// FuzzAccountFiles: the sliver's root controls /etc/passwd, group and
// shadow; merging never panics and always yields exactly one slice entry
// and a root entry.
func FuzzAccountFiles(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh\n")
	f.Add("::::\n\n:x:1000\nslice1")
	f.Fuzz(func(t *testing.T, cur string) {
		for _, gen := range []func(string, string) string{passwdFile, groupFile, shadowFile} {
			out := gen(cur, "slice1")
			n := 0
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "slice1:") {
					n++
				}
			}
			if n != 1 || !hasEntry(out, "root") {
				t.Fatalf("%q -> %q", cur, out)
			}
		}
	})
}

// TestRlimits: every sliver gets RLIMIT_NOFILE; a gVisor sliver with a
// process limit also gets it as RLIMIT_NPROC (its cgroup holds the
// sandbox, not its processes), a runc sliver never (its cgroup counts).
func TestRlimits(t *testing.T) {
	for _, c := range []struct {
		runtime string
		pids    int64
		want    string
	}{
		{RuntimeRunc, 100, "RLIMIT_NOFILE 10/20"},
		{RuntimeGVisor, 100, "RLIMIT_NOFILE 10/20, RLIMIT_NPROC 100/100"},
		{RuntimeGVisor, 0, "RLIMIT_NOFILE 10/20"},
	} {
		var got []string
		for _, l := range rlimits(Spec{Runtime: c.runtime, Resources: Resources{Pids: c.pids}}, 10, 20) {
			got = append(got, fmt.Sprintf("%s %d/%d", l.Type, l.Soft, l.Hard))
		}
		if g := strings.Join(got, ", "); g != c.want {
			t.Errorf("runtime %q pids %d: %s, want %s", c.runtime, c.pids, g, c.want)
		}
	}
}
