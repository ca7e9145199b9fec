// Package mountinfo reads the mount table of the calling process from
// /proc/self/mountinfo (proc(5)): what the sliver runtime checks before it
// mounts and what `pl dev down` unmounts.
package mountinfo

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of the table, reduced to what callers use.
type Mount struct {
	Target string // mount point
	FSType string // filesystem type (overlay, tmpfs, ext4, ...)
	Source string // mount source ("none", a device, ...)
	Super  string // super options, comma-separated (for cgroup v1: its controllers)
}

// IsCgroup reports whether m is a cgroup file system (v1 or v2).
func (m Mount) IsCgroup() bool { return m.FSType == "cgroup" || m.FSType == "cgroup2" }

// Read returns the mount table of the calling process, in the kernel's
// order (parents before children).
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads a table in the format of /proc/<pid>/mountinfo; lines it
// cannot read are skipped.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 2 {
			continue
		}
		m := Mount{Target: unescape(a[4]), FSType: b[0], Source: unescape(b[1])}
		if len(b) > 2 {
			m.Super = b[2]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescape undoes the octal escapes of the table (\040 for a space, \011
// for a tab, \012 for a newline, \134 for a backslash).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
