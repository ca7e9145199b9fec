package sliver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// rootFS edits files inside a sliver's root from the host. The sliver's
// root can replace any path by a symlink, so every path is resolved with
// openat2(RESOLVE_IN_ROOT): links are followed as the sliver sees them and
// can never lead out of its root. Files are replaced by rename, never
// written in place, so hard links cannot redirect a write either, and
// reads never block (O_NONBLOCK, regular files only) on a planted FIFO.
type rootFS struct {
	fd      int    // O_PATH descriptor of the sliver's root
	uidBase uint32 // host uid of sliver root
	warn    func(msg string, args ...any)
}

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

func openRootFS(dir string, uidBase uint32) (*rootFS, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open sliver root: %w", err)
	}
	return &rootFS{fd: fd, uidBase: uidBase, warn: func(string, ...any) {}}, nil
}

func (r *rootFS) Close() error { return unix.Close(r.fd) }

func (r *rootFS) open(rel string, flags int) (int, error) {
	return unix.Openat2(r.fd, strings.TrimPrefix(rel, "/"), &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags})
}

// readFile returns the content of rel, or "" if it does not exist.
func (r *rootFS) readFile(rel string) (string, error) {
	fd, err := r.open(rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		return "", nil // absent, or a symlink the write will replace
	}
	if err != nil {
		return "", fmt.Errorf("read %s in sliver: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", nil // a FIFO or device planted by sliver root: replaced
	}
	b, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return "", fmt.Errorf("read %s in sliver: %w", rel, err)
	}
	return string(b), nil
}

// mkdirAll creates the directories of rel that are missing, owned by the
// sliver uid/gid id, with mode; existing ones are left alone.
func (r *rootFS) mkdirAll(rel string, mode uint32, id uint32) error {
	rel = path.Clean("/" + rel)
	if rel == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(rel, "/"), "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fd, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("mkdir %s in sliver: %w", p, err)
		}
		pfd, err := r.open("/"+strings.Join(parts[:i], "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("mkdir %s in sliver: %w", p, err)
		}
		err = unix.Mkdirat(pfd, parts[i], mode)
		if err == nil {
			err = unix.Fchownat(pfd, parts[i], int(r.uidBase+id), int(r.uidBase+id), unix.AT_SYMLINK_NOFOLLOW)
		}
		if err == nil {
			err = unix.Fchmodat(pfd, parts[i], mode, 0)
		}
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s in sliver: %w", p, err)
		}
	}
	return nil
}

// writeFile makes rel contain data, owned by sliver uid/gid id with mode,
// replacing it atomically; it does nothing when content, owner and mode
// already match. It reports whether it wrote.
func (r *rootFS) writeFile(rel string, data string, mode uint32, id uint32) (bool, error) {
	rel = path.Clean("/" + rel)
	dir, base := path.Split(rel)
	if fd, err := r.open(rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK); err == nil {
		f := os.NewFile(uintptr(fd), rel) // owns fd from here on
		var st unix.Stat_t
		same := unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o7777 == mode && st.Uid == r.uidBase+id && st.Gid == r.uidBase+id &&
			st.Size == int64(len(data))
		if same {
			b := make([]byte, len(data)+1)
			n, _ := io.ReadFull(f, b)
			same = n == len(data) && bytes.Equal(b[:n], []byte(data))
		}
		f.Close()
		if same {
			return false, nil
		}
	}
	dfd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false, fmt.Errorf("write %s in sliver: %w", rel, err)
	}
	defer unix.Close(dfd)
	tmp := ".pl-tmp-" + base
	unix.Unlinkat(dfd, tmp, 0)
	fd, err := unix.Openat(dfd, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, fmt.Errorf("write %s in sliver: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Chown(int(r.uidBase+id), int(r.uidBase+id))
	}
	if err == nil {
		err = unix.Fchmod(fd, mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, base)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return false, fmt.Errorf("write %s in sliver: %w", rel, err)
	}
	return true, nil
}

// remove deletes the file rel if it exists and reports whether it did.
func (r *rootFS) remove(rel string) (bool, error) {
	rel = path.Clean("/" + rel)
	dir, base := path.Split(rel)
	dfd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s in sliver: %w", rel, err)
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, base, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s in sliver: %w", rel, err)
	}
	return true, nil
}

// exists reports whether rel exists (as the sliver resolves it).
func (r *rootFS) exists(rel string) bool {
	fd, err := r.open(rel, unix.O_PATH)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// syncFiles makes the runtime-managed files of the sliver match s. It
// reports whether the initscript changed.
func (r *rootFS) syncFiles(s Spec) (initChanged bool, err error) {
	defer func() {
		if err != nil {
			initChanged = false
		}
	}()
	root := uint32(0)
	for _, d := range []string{"/etc/pl", "/var/log", "/var/run", "/home", "/tmp"} {
		if err := r.mkdirAll(d, 0o755, root); err != nil {
			return false, err
		}
	}
	for _, f := range []struct {
		rel, gen string
		mode     uint32
	}{
		{"/etc/passwd", "passwd", 0o644}, {"/etc/group", "group", 0o644}, {"/etc/shadow", "shadow", 0o640},
	} {
		cur, err := r.readFile(f.rel)
		if err != nil {
			return false, err
		}
		var want string
		switch f.gen {
		case "passwd":
			want = passwdFile(cur, s.Name)
		case "group":
			want = groupFile(cur, s.Name)
		default:
			want = shadowFile(cur, s.Name)
		}
		if _, err := r.writeFile(f.rel, want, f.mode, root); err != nil {
			return false, err
		}
	}
	if r.exists("/etc/sudoers.d") {
		if _, err := r.writeFile("/etc/sudoers.d/pl-slice", s.Name+" ALL=(ALL) NOPASSWD: ALL\n", 0o440, root); err != nil {
			return false, err
		}
	}
	files := []struct {
		rel, data string
		mode      uint32
	}{
		{"/etc/slicename", s.Name + "\n", 0o644},
		{rcPath, rcScript, 0o755},
		{initctl, initctlScript, 0o755},
	}
	for _, f := range files {
		if _, err := r.writeFile(f.rel, f.data, f.mode, root); err != nil {
			return false, err
		}
	}
	// The account's home belongs to the slice: if its owner broke it
	// (say, .ssh is a dangling symlink) that is theirs to fix, and the
	// SSH gateway does not read the file; report it and carry on.
	home := "/home/" + s.Name
	err = r.mkdirAll(home, 0o755, accountUID)
	if err == nil {
		err = r.mkdirAll(home+"/.ssh", 0o700, accountUID)
	}
	if err == nil {
		_, err = r.writeFile(home+"/.ssh/authorized_keys", authorizedKeys(s.Keys), 0o600, accountUID)
	}
	if err != nil {
		r.warn("cannot update the slice account's authorized_keys", "sliver", s.Name, "err", err)
	}
	if s.InitScript == "" {
		return r.remove(initscript)
	}
	return r.writeFile(initscript, s.InitScript, 0o755, root)
}
