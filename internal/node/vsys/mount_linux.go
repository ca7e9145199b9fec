package vsys

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/mountinfo"
)

// SysMounter is the host's Mounter. A dataset is cloned with open_tree,
// made read-only, nosuid and nodev with mount_setattr while it is still
// detached, then attached with move_mount: a mount made read-only after
// it was attached would have propagated writable.
type SysMounter struct{}

var _ Mounter = SysMounter{}

// BindReadOnly implements Mounter.
func (SysMounter) BindReadOnly(src, dst string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("mount_setattr %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", dst, err)
	}
	return nil
}

// Unmount implements Mounter.
func (SysMounter) Unmount(dst string) error {
	if err := unix.Unmount(dst, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
		return fmt.Errorf("unmount %s: %w", dst, err)
	}
	return nil
}

// Mounted implements Mounter.
func (SysMounter) Mounted(dir string) (bool, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if m.Target == dir {
			return true, nil
		}
	}
	return false, nil
}
