package sliver

// Disk limits: every sliver's writable layer (overlay upper and work
// directories) lives in its own btrfs subvolume, and disk_max is the
// referenced-bytes limit of that subvolume's qgroup. Changing it is one
// ioctl, live, up or down. This is the fit the original LXC node manager
// planned (one btrfs subvolume per sliver) and left as a TODO.
//
// Why not XFS/ext4 project quotas: this kernel has neither XFS quota nor
// the ext4 quota format (CONFIG_XFS_QUOTA/QFMT_V2), and btrfs qgroups need
// no quota config at all. When the state directory is not on btrfs, the
// runtime creates one sparse btrfs image file and loop-mounts it once per
// node (the mount outlives the agent). Needs btrfs-progs (mkfs.btrfs,
// btrfs) for that one-time setup only; per-sliver operations are ioctls.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	btrfsIoctlMagic = 0x94
	btrfsSuperMagic = 0x9123683e
	// BTRFS_QGROUP_LIMIT_MAX_RFER; a value of ^0 clears the limit.
	qgroupLimitMaxRfer = 1
)

// ioctl numbers from <linux/btrfs.h>.
var (
	iocSubvolCreate = iow(btrfsIoctlMagic, 14, unsafe.Sizeof(volArgs{}))
	iocSnapDestroy  = iow(btrfsIoctlMagic, 15, unsafe.Sizeof(volArgs{}))
	iocInoLookup    = iowr(btrfsIoctlMagic, 18, unsafe.Sizeof(inoLookupArgs{}))
	iocQgroupLimit  = ior(btrfsIoctlMagic, 43, unsafe.Sizeof(qgroupLimitArgs{}))
)

func ioc(dir, typ, nr, size uintptr) uintptr { return dir<<30 | size<<16 | typ<<8 | nr }
func iow(t, nr, size uintptr) uintptr        { return ioc(1, t, nr, size) }
func ior(t, nr, size uintptr) uintptr        { return ioc(2, t, nr, size) }
func iowr(t, nr, size uintptr) uintptr       { return ioc(3, t, nr, size) }

type volArgs struct {
	Fd   int64
	Name [4088]byte
}

type inoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [4080]byte
}

type qgroupLimitArgs struct {
	QgroupID uint64
	Flags    uint64
	MaxRfer  uint64
	MaxExcl  uint64
	RsvRfer  uint64
	RsvExcl  uint64
}

func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p)); e != 0 {
		return e
	}
	return nil
}

func openDir(p string) (int, error) {
	return unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// createSubvol creates subvolume name in dir unless it exists.
func createSubvol(dir, name string) error {
	if isSubvol(filepath.Join(dir, name)) {
		return nil
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var a volArgs
	copy(a.Name[:], name)
	if err := ioctlPtr(fd, iocSubvolCreate, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("create subvolume %s/%s: %w", dir, name, err)
	}
	return nil
}

// isSubvol reports whether p is the root of a btrfs subvolume.
func isSubvol(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Ino == 256 && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// subvolID returns the id of the subvolume rooted at p.
func subvolID(p string) (uint64, error) {
	fd, err := openDir(p)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	a := inoLookupArgs{ObjectID: 256}
	if err := ioctlPtr(fd, iocInoLookup, unsafe.Pointer(&a)); err != nil {
		return 0, fmt.Errorf("subvolume id of %s: %w", p, err)
	}
	return a.TreeID, nil
}

// deleteSubvol removes subvolume name of dir with everything in it.
func deleteSubvol(dir, name string) error {
	p := filepath.Join(dir, name)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if !isSubvol(p) {
		return os.RemoveAll(p)
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var a volArgs
	copy(a.Name[:], name)
	if err := ioctlPtr(fd, iocSnapDestroy, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", p, err)
	}
	return nil
}

// setDiskLimit sets the referenced-bytes limit of the subvolume at p;
// 0 removes the limit.
func setDiskLimit(p string, bytes int64) error {
	fd, err := openDir(p)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	a := qgroupLimitArgs{Flags: qgroupLimitMaxRfer, MaxRfer: ^uint64(0)}
	if bytes > 0 {
		a.MaxRfer = uint64(bytes)
	}
	if err := ioctlPtr(fd, iocQgroupLimit, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("set disk limit of %s: %w", p, err)
	}
	return nil
}

// diskUsage returns the referenced bytes and limit (0 = none) of the
// subvolume at p, from sysfs.
func diskUsage(p string) (used, limit int64, err error) {
	id, err := subvolID(p)
	if err != nil {
		return 0, 0, err
	}
	dir, err := qgroupSysfs(p, id)
	if err != nil {
		return 0, 0, err
	}
	read := func(f string) (int64, error) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if v > 1<<62 {
			return 0, err
		}
		return int64(v), err
	}
	if used, err = read("referenced"); err != nil {
		return 0, 0, err
	}
	limit, err = read("max_referenced")
	return used, limit, err
}

// qgroupSysfs returns /sys/fs/btrfs/<fsid>/qgroups/0_<id> for the
// filesystem holding p.
func qgroupSysfs(p string, id uint64) (string, error) {
	fsid, err := btrfsFSID(p)
	if err != nil {
		return "", err
	}
	return filepath.Join("/sys/fs/btrfs", fsid, "qgroups", "0_"+strconv.FormatUint(id, 10)), nil
}

type fsInfoArgs struct {
	MaxID, NumDevices uint64
	FSID              [16]byte
	NodeSize          uint32
	SectorSize        uint32
	CloneAlignment    uint32
	CsumType          uint16
	CsumSize          uint16
	Flags             uint64
	Generation        uint64
	MetadataUUID      [16]byte
	_                 [944]byte
}

var iocFSInfo = ior(btrfsIoctlMagic, 31, unsafe.Sizeof(fsInfoArgs{}))

// btrfsFSID returns the UUID naming the filesystem of p in /sys/fs/btrfs.
func btrfsFSID(p string) (string, error) {
	fd, err := openDir(p)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var a fsInfoArgs
	if err := ioctlPtr(fd, iocFSInfo, unsafe.Pointer(&a)); err != nil {
		return "", fmt.Errorf("btrfs fs info of %s: %w", p, err)
	}
	u := a.FSID
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

func isBtrfs(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && st.Type == btrfsSuperMagic
}

// ensureDisk makes dir a btrfs filesystem (or a directory on one) with
// quotas enabled: dir's own filesystem when it is btrfs, else the sparse
// image img of size bytes, created with mkfs.btrfs on first use and
// loop-mounted at dir.
func ensureDisk(ctx context.Context, dir, img string, size int64) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	if !isBtrfs(dir) {
		if isMountPoint(dir) {
			return fmt.Errorf("sliver disk %s is mounted but is not btrfs", dir)
		}
		if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) {
			if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
				return fmt.Errorf("sliver disk: mkfs.btrfs not found (install btrfs-progs): %w", err)
			}
			tmp := img + ".tmp"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			err = f.Truncate(size)
			f.Close()
			if err != nil {
				return err
			}
			if out, err := exec.CommandContext(ctx, "mkfs.btrfs", "-q", tmp).CombinedOutput(); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("mkfs.btrfs %s: %v: %s", tmp, err, out)
			}
			if err := os.Rename(tmp, img); err != nil {
				return err
			}
		}
		out, err := exec.CommandContext(ctx, "mount", "-t", "btrfs", "-o", "loop,nodev", img, dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mount %s at %s: %v: %s", img, dir, err, out)
		}
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	if !quotaEnabled(dir) {
		if out, err := exec.CommandContext(ctx, "btrfs", "quota", "enable", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("btrfs quota enable %s: %v: %s", dir, err, out)
		}
	}
	return nil
}

// quotaEnabled reports whether qgroups are on for the filesystem of dir.
func quotaEnabled(dir string) bool {
	fsid, err := btrfsFSID(dir)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join("/sys/fs/btrfs", fsid, "qgroups"))
	return err == nil
}

// DiskUsage returns the bytes used by sliver name's writable layer and its
// quota (0 = none), from its btrfs qgroup; an error when the sliver has
// no subvolume (not created, or quotas unavailable).
func (r *Runc) DiskUsage(name string) (used, quota uint64, err error) {
	if err := ValidName(name); err != nil {
		return 0, 0, err
	}
	u, l, err := diskUsage(r.diskDir(name))
	if err != nil {
		return 0, 0, err
	}
	if l >= 1<<62 {
		l = 0
	}
	return uint64(max(u, 0)), uint64(max(l, 0)), nil
}

// Store returns the directory holding the slivers' writable layers (the
// btrfs filesystem whose size and use are the node's disk figures).
func (r *Runc) Store() string { return r.cfg.DiskDir }
