package sensors

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/mountinfo"
)

// The parsers below read the kernel's text files. Each takes the file's
// bytes and returns what it found or an error naming the file and line;
// none panics on any input (FuzzParsers).

// parseLoadavg reads /proc/loadavg: "0.52 0.58 0.59 2/1021 12345".
func parseLoadavg(b []byte) (l1, l5, l15 float64, err error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, 0, 0, fmt.Errorf("/proc/loadavg: want 3 load averages, got %q", trim(b))
	}
	var v [3]float64
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i], 64); err != nil || v[i] < 0 || v[i] > 1e6 {
			return 0, 0, 0, fmt.Errorf("/proc/loadavg: field %d: bad load %q", i+1, f[i])
		}
	}
	return v[0], v[1], v[2], nil
}

// cpuTimes is the aggregate "cpu" line of /proc/stat, in clock ticks.
type cpuTimes struct {
	busy, total uint64
	cpus        int // cpuN lines
}

// parseStat reads /proc/stat's cpu lines. Busy time is everything but
// idle and iowait; guest time is already counted in user and nice.
func parseStat(b []byte) (cpuTimes, error) {
	var t cpuTimes
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			if _, err := strconv.Atoi(f[0][3:]); err == nil {
				t.cpus++
			}
			continue
		}
		if len(f) < 5 {
			return t, fmt.Errorf("/proc/stat line %d: want at least 4 times on the cpu line", n)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice
		for i, s := range f[1:min(len(f), 9)] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return t, fmt.Errorf("/proc/stat line %d: field %d: %q is not a count", n, i+2, s)
			}
			t.total += v
			if i != 3 && i != 4 {
				t.busy += v
			}
		}
		found = true
	}
	if !found {
		return t, fmt.Errorf("/proc/stat: no cpu line")
	}
	return t, nil
}

// meminfo holds the /proc/meminfo fields used, in bytes.
type meminfo struct {
	total, available, swapTotal, swapFree uint64
}

// parseMeminfo reads /proc/meminfo ("MemTotal:  16314000 kB").
func parseMeminfo(b []byte) (meminfo, error) {
	var m meminfo
	want := map[string]*uint64{"MemTotal": &m.total, "MemAvailable": &m.available, "SwapTotal": &m.swapTotal, "SwapFree": &m.swapFree}
	got := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		p := want[key]
		if !ok || p == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || len(f) > 2 || len(f) == 2 && f[1] != "kB" {
			return m, fmt.Errorf("/proc/meminfo line %d: want \"<n> kB\" for %s", n, key)
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || v > 1<<50 {
			return m, fmt.Errorf("/proc/meminfo line %d: %s: bad size %q", n, key, f[0])
		}
		*p = v * 1024
		got++
	}
	if m.total == 0 {
		return m, fmt.Errorf("/proc/meminfo: no MemTotal")
	}
	m.available = min(m.available, m.total)
	m.swapFree = min(m.swapFree, m.swapTotal)
	return m, nil
}

// parseUptime reads /proc/uptime: "12345.67 23456.78".
func parseUptime(b []byte) (float64, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || !(v >= 0 && v < 1e10) {
		return 0, fmt.Errorf("/proc/uptime: bad uptime %q", f[0])
	}
	return v, nil
}

// Link is one network interface's counters, as seen from the node.
type Link struct {
	Name      string
	Alias     string // the sliver name, for sliver veths
	RxBytes   uint64
	TxBytes   uint64
	RxPackets uint64
	TxPackets uint64
	RxDrops   uint64
	TxDrops   uint64
}

// parseNetDev reads /proc/net/dev: two header lines, then
// "  eth0: rxbytes rxpackets errs drop fifo frame compressed multicast
// txbytes txpackets errs drop ...".
func parseNetDev(b []byte) ([]Link, error) {
	var out []Link
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || n <= 2 {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("/proc/net/dev line %d: want 16 counters, got %d", n, len(f))
		}
		var v [16]uint64
		for i := range v {
			var err error
			if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				return nil, fmt.Errorf("/proc/net/dev line %d: field %d: %q is not a count", n, i+1, f[i])
			}
		}
		out = append(out, Link{Name: strings.TrimSpace(name), RxBytes: v[0], RxPackets: v[1], RxDrops: v[3], TxBytes: v[8], TxPackets: v[9], TxDrops: v[11]})
	}
	return out, nil
}

// parseCgroupMounts reads /proc/self/mountinfo and returns the mount
// point of each cgroup v1 controller ("cpuacct", "memory", "pids",
// "freezer") and of the v2 hierarchy (key "").
func parseCgroupMounts(b []byte) map[string]string {
	ms, _ := mountinfo.Parse(bytes.NewReader(b)) // lines it cannot read are skipped
	l := mountinfo.CgroupLayout(ms)
	out := map[string]string{}
	if l.Unified != "" {
		out[""] = l.Unified
	}
	for _, c := range []string{"cpuacct", "memory", "pids", "freezer"} {
		if m, ok := l.V1[c]; ok {
			out[c] = m
		}
	}
	return out
}

// parseUint reads a file holding one unsigned number ("max" reads as 0,
// no limit, for cgroup v2 limits).
func parseUint(name string, b []byte) (uint64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", name, trim(b))
	}
	return v, nil
}

// parseKeyed reads "key value" lines (cgroup v2 cpu.stat) and returns
// the value of key.
func parseKeyed(name string, b []byte, key string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %q is not a number", name, key, f[1])
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", name, key)
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
