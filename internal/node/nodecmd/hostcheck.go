package nodecmd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/planetlab/pl/internal/mountinfo"
)

// Checks of the host a node manager starts on, so that a misplaced start
// fails at once with the reason and the fix rather than later, in runc, on
// every sliver.

// checkCgroupMounts fails when no cgroup file system is mounted in this
// mount namespace. mountinfo is the text of /proc/self/mountinfo.
func checkCgroupMounts(table string) error {
	ms, _ := mountinfo.Parse(strings.NewReader(table)) // lines it cannot read are skipped
	if slices.ContainsFunc(ms, mountinfo.Mount.IsCgroup) {
		return nil
	}
	return errors.New("no cgroup file system is mounted here (none in /proc/self/mountinfo), so slivers cannot be created. " +
		"`ip netns exec` remounts /sys and hides /sys/fs/cgroup: enter only the network namespace instead, " +
		"`nsenter --net=/run/netns/<ns> pl node ...`, or, under pl dev, `pl dev start <node>`; " +
		"on a host without cgroups mount them (e.g. `mount -t cgroup2 none /sys/fs/cgroup`)")
}

// CheckTraversable fails when a directory above dir lacks search
// permission for others: slivers' mapped root users must traverse it to
// reach their root file systems below dir.
func CheckTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if d == "/" {
			return nil
		}
		fi, err := os.Stat(d)
		if errors.Is(err, os.ErrNotExist) {
			continue // made later, searchable
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("state directory %s: its parent %s has mode %04o, which the slivers' unprivileged root users cannot traverse "+
				"(runc would fail with \"permission denied\" on every sliver's rootfs); "+
				"allow search with `chmod o+x %s` or choose a state directory whose parents are all searchable (mode o+x)",
				abs, d, fi.Mode().Perm(), d)
		}
	}
}
