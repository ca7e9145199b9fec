package sensors

import "golang.org/x/sys/unix"

// statfs returns the size and used bytes of the filesystem holding dir
// (used = total - free, so it includes the root reserve).
func statfs(dir string) (total, used uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	total = st.Blocks * bs
	return total, total - min(total, st.Bfree*bs), nil
}
