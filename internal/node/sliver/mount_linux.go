package sliver

// Hand-written syscall code, kept here and small: user namespace handles,
// the idmapped overlay root, and mount-table queries.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/mountinfo"
)

// holderBin is what the short-lived process that creates a user namespace
// runs; it only has to live until the parent has opened its namespace.
var holderBin = func() string {
	for _, p := range []string{"/bin/sleep", "/usr/bin/sleep", "/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "sleep"
}()

// newNamespaces starts a short-lived child in new namespaces (a user
// namespace mapping 0..UIDCount-1 to uidBase.., plus extra clone flags) and
// returns open descriptors of its user and, when asked, network namespace.
func newNamespaces(uidBase uint32, withNet bool) (userFD, netFD int, err error) {
	args := []string{holderBin, "60"}
	if strings.HasSuffix(holderBin, "busybox") {
		args = []string{holderBin, "sleep", "60"}
	}
	cmd := exec.Command(args[0], args[1:]...) // hostdeps: sleep /bin/busybox
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uidBase), Size: UIDCount}}
	flags := uintptr(syscall.CLONE_NEWUSER)
	if withNet {
		flags |= syscall.CLONE_NEWNET
	}
	// Setgroups must stay allowed: slivers joining this namespace run su,
	// sshd, package managers and the like, which call setgroups(2).
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, UidMappings: m, GidMappings: m,
		GidMappingsEnableSetgroups: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -1, -1, fmt.Errorf("create user namespace: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	userFD, err = unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("open user namespace: %w", err)
	}
	netFD = -1
	if withNet {
		netFD, err = unix.Open(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(userFD)
			return -1, -1, fmt.Errorf("open network namespace: %w", err)
		}
	}
	return userFD, netFD, nil
}

// NewNetNS creates a network namespace for a sliver at path (a bind mount
// of the namespace; the file is created if missing), owned by a new user
// namespace with the sliver's uid mapping. A sliver joining it gets root's
// network capabilities (CAP_NET_RAW: ping, traceroute, sniffers) inside it
// and nowhere else. netcfg should create sliver namespaces with this so
// raw sockets work; Apply joins the owning user namespace automatically.
// Its loopback is up. It is idempotent: an existing namespace at path is
// kept.
func NewNetNS(path string, uidBase uint32) error {
	if isNsfsMount(path) {
		return nil
	}
	userFD, netFD, err := newNamespaces(uidBase, true)
	if err != nil {
		return err
	}
	defer unix.Close(userFD)
	defer unix.Close(netFD)
	h, err := netlink.NewHandleAt(netns.NsHandle(netFD))
	if err != nil {
		return fmt.Errorf("netlink in new network namespace: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("loopback up in new network namespace: %w", err)
	}
	return bindNS(netFD, path)
}

// bindNS keeps the namespace behind fd alive by bind-mounting it at path.
func bindNS(fd int, path string) error {
	if isNsfsMount(path) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("namespace file: %w", err)
	}
	f.Close()
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind namespace at %s: %w", path, err)
	}
	return nil
}

// netnsOwner opens the user namespace owning the network namespace at
// path. It returns -1 when that is the runtime's own user namespace.
func netnsOwner(path string) (int, error) {
	nfd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, core.FieldErrorf("netns", "network namespace %s: %v", path, err)
	}
	defer unix.Close(nfd)
	ufd, err := unix.IoctlRetInt(nfd, unix.NS_GET_USERNS)
	if err != nil {
		return -1, core.FieldErrorf("netns", "%s is not a network namespace: %v", path, err)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(ufd, &a); err != nil {
		unix.Close(ufd)
		return -1, err
	}
	if err := unix.Stat("/proc/self/ns/user", &b); err != nil {
		unix.Close(ufd)
		return -1, err
	}
	if a.Ino == b.Ino && a.Dev == b.Dev {
		unix.Close(ufd)
		return -1, nil
	}
	return ufd, nil
}

// mountOverlay mounts at target an overlay whose lower layer is lower
// idmapped through the user namespace userFD (so files owned by host uid
// 0 appear owned by the sliver's root) and whose upper and work
// directories are given. The idmapped layer is a detached mount handed to
// overlayfs by descriptor: it never appears in the mount table.
func mountOverlay(lower, upper, work, target string, userFD int) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, lower, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", lower, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NODEV, Userns_fd: uint64(userFD)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return core.Errorf(core.Unimplemented, "idmapped mounts are not supported for %s on this kernel/filesystem: %v", lower, err)
		}
		return fmt.Errorf("idmap %s: %w", lower, err)
	}
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigSetFd(fs, "lowerdir+", tree); err != nil {
		return core.Errorf(core.Unimplemented, "overlayfs cannot take an idmapped lower layer by descriptor (needs Linux 6.13+): %v", err)
	}
	if err := unix.FsconfigSetString(fs, "upperdir", upper); err != nil {
		return fmt.Errorf("overlay upperdir: %w", err)
	}
	if err := unix.FsconfigSetString(fs, "workdir", work); err != nil {
		return fmt.Errorf("overlay workdir: %w", err)
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return fmt.Errorf("create overlay for %s: %w", target, err)
	}
	m, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(m)
	if err := unix.MoveMount(m, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach overlay at %s: %w", target, err)
	}
	return nil
}

// mounts returns the mount table of the node manager's mount namespace
// (mountTable: tests give recorded tables).
func mounts() ([]mountinfo.Mount, error) { return mountTable() }

var mountTable = mountinfo.Read

func isMountType(path, fstype string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	switch fstype {
	case "overlay":
		return st.Type == unix.OVERLAYFS_SUPER_MAGIC
	case "nsfs":
		return st.Type == unix.NSFS_MAGIC
	case "xfs":
		return st.Type == unix.XFS_SUPER_MAGIC
	}
	return false
}

func isNsfsMount(path string) bool { return isMountType(path, "nsfs") }

// isMountPoint reports whether path is the root of a mount.
func isMountPoint(path string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(path, &a) != nil || unix.Lstat(path+"/..", &b) != nil {
		return false
	}
	if a.Dev != b.Dev {
		return true
	}
	ms, err := mounts()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Target == path {
			return true
		}
	}
	return false
}

// unmountAll unmounts everything mounted at path (stacked mounts too).
func unmountAll(path string) error {
	for i := 0; i < 16; i++ {
		err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil // not a mount point (any more)
		}
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted", path)
}
