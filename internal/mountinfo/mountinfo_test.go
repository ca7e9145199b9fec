package mountinfo

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	table := `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
36 22 0:32 / /tmp/a\040b\011c rw,nosuid master:3 shared:7 - tmpfs none\134x rw
37 22 0:33 / /x rw - overlay
bad line
39 22 0:35 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
38 22 0:34 / /var/lib/pl/slivers/s1/rootfs rw,relatime - overlay overlay rw,lowerdir=/a
`
	got, err := Parse(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Target: "/", FSType: "ext4", Source: "/dev/sda1", Super: "rw"},
		{Target: "/tmp/a b\tc", FSType: "tmpfs", Source: `none\x`, Super: "rw"},
		{Target: "/sys/fs/cgroup/cpu,cpuacct", FSType: "cgroup", Source: "cgroup", Super: "rw,cpu,cpuacct"},
		{Target: "/var/lib/pl/slivers/s1/rootfs", FSType: "overlay", Source: "overlay", Super: "rw,lowerdir=/a"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	var cg []string
	for _, m := range got {
		if m.IsCgroup() {
			cg = append(cg, m.Target)
		}
	}
	if !reflect.DeepEqual(cg, []string{"/sys/fs/cgroup/cpu,cpuacct"}) {
		t.Errorf("cgroup mounts %q", cg)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:        "/plain",
		`/a\040b`:       "/a b",
		`/end\04`:       `/end\04`, // too short: kept
		`/not\999octal`: `/not\999octal`,
		`\134\040\012`:  "\\ \n",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRead(t *testing.T) {
	ms, err := Read()
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	for _, m := range ms {
		if m.Target == "/" {
			return
		}
	}
	t.Errorf("no root mount in %+v", ms)
}
