package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
)

// ImportTar creates image name from a tar stream (plain or gzip-compressed,
// detected from the content) of a root filesystem. Entry names must stay
// inside the root: absolute names are taken as relative to it, and names
// containing ".." or passing through a symlink are refused. Device nodes
// are skipped (the sliver's /dev is its own tmpfs); ownership, modes
// (including setuid bits), times and extended attributes (for example file
// capabilities) are kept.
func (s *Store) ImportTar(ctx context.Context, name string, r io.Reader) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(s.dir, name)); err == nil {
		return core.Errorf(core.Conflict, "image %q already exists", name)
	}
	tmp, err := s.stage()
	if err != nil {
		return err
	}
	if err := extractTar(ctx, filepath.Join(tmp, "rootfs"), r); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("import image %q: %w", name, err)
	}
	return s.commit(tmp, name)
}

// ImportFile imports a .tar or .tar.gz file (see ImportTar) or, when path
// is a directory, a copy of that directory tree (see ImportDir).
func (s *Store) ImportFile(ctx context.Context, name, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return core.FieldErrorf("source", "%v", err)
	}
	if st.IsDir() {
		return s.ImportDir(ctx, name, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return core.FieldErrorf("source", "%v", err)
	}
	defer f.Close()
	return s.ImportTar(ctx, name, f)
}

// ImportDir creates image name as a copy of the directory tree at src.
// Symlinks are copied as symlinks (never followed), hard links are kept,
// device nodes and sockets are skipped.
func (s *Store) ImportDir(ctx context.Context, name, src string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(s.dir, name)); err == nil {
		return core.Errorf(core.Conflict, "image %q already exists", name)
	}
	src, err := filepath.Abs(src)
	if err != nil {
		return core.FieldErrorf("source", "%v", err)
	}
	tmp, err := s.stage()
	if err != nil {
		return err
	}
	if err := copyTree(ctx, filepath.Join(tmp, "rootfs"), src); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("import image %q from %s: %w", name, src, err)
	}
	return s.commit(tmp, name)
}

// entry is one file to create in a tree being written.
type entry struct {
	Name     string // slash-separated path relative to the root
	Type     byte   // a tar.Type* constant
	Mode     fs.FileMode
	UID, GID int
	ModTime  time.Time
	Link     string // symlink target, or hard link source (tree path)
	Xattrs   map[string]string
	Body     io.Reader // regular files
}

// tree writes entries below root, refusing any that would land outside it.
type tree struct {
	root string
	dirs []entry // directory times are set last
}

// cleanName validates an entry name and returns it cleaned and relative;
// "" is the root itself.
func cleanName(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q: NUL in name", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("entry %q: \"..\" not allowed", name)
		}
	}
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	return n, nil
}

// parent checks that every directory above rel is a real directory (no
// symlink on the way) and creates missing ones.
func (t *tree) parent(rel string) (string, error) {
	dir := t.root
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, c)
		st, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(dir, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case st.Mode()&fs.ModeSymlink != 0:
			return "", fmt.Errorf("entry %q: passes through symlink %q", rel, strings.TrimPrefix(dir, t.root+"/"))
		case !st.IsDir():
			return "", fmt.Errorf("entry %q: %q is not a directory", rel, strings.TrimPrefix(dir, t.root+"/"))
		}
	}
	return filepath.Join(t.root, rel), nil
}

func (t *tree) add(e entry) error {
	rel, err := cleanName(e.Name)
	if err != nil {
		return err
	}
	var p string
	if rel == "" {
		if e.Type != tar.TypeDir {
			return fmt.Errorf("entry %q: the root must be a directory", e.Name)
		}
		p = t.root
	} else if p, err = t.parent(rel); err != nil {
		return err
	}
	if rel != "" {
		if st, err := os.Lstat(p); err == nil && !(st.IsDir() && e.Type == tar.TypeDir) {
			// A later entry replaces an earlier one, as tar does.
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	perm := uint32(e.Mode.Perm())
	if e.Mode&fs.ModeSetuid != 0 {
		perm |= unix.S_ISUID
	}
	if e.Mode&fs.ModeSetgid != 0 {
		perm |= unix.S_ISGID
	}
	if e.Mode&fs.ModeSticky != 0 {
		perm |= unix.S_ISVTX
	}
	switch e.Type {
	case tar.TypeDir:
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		t.dirs = append(t.dirs, entry{Name: p, ModTime: e.ModTime})
	case tar.TypeReg:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if e.Body != nil {
			if _, err := io.Copy(f, e.Body); err != nil {
				f.Close()
				return fmt.Errorf("entry %q: %w", rel, err)
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if strings.ContainsRune(e.Link, 0) {
			return fmt.Errorf("entry %q: NUL in link target", rel)
		}
		return t.finish(p, e, perm, os.Symlink(e.Link, p))
	case tar.TypeLink:
		src, err := cleanName(e.Link)
		if err != nil || src == "" {
			return fmt.Errorf("entry %q: bad hard link target %q", rel, e.Link)
		}
		sp, err := t.parent(src)
		if err != nil {
			return err
		}
		st, err := os.Lstat(sp)
		if err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("entry %q: hard link target %q is not a regular file in the image", rel, e.Link)
		}
		return os.Link(sp, p) // shares owner and mode with its target
	case tar.TypeFifo:
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return err
		}
	default:
		return nil // devices, sockets: skipped
	}
	return t.finish(p, e, perm, nil)
}

// finish applies owner, mode, xattrs and time; chmod follows chown because
// chown clears setuid bits.
func (t *tree) finish(p string, e entry, perm uint32, err error) error {
	if err != nil {
		return err
	}
	if e.UID < 0 || e.GID < 0 {
		return fmt.Errorf("entry %q: negative owner %d:%d", e.Name, e.UID, e.GID)
	}
	if err := os.Lchown(p, e.UID, e.GID); err != nil {
		return err
	}
	for k, v := range e.Xattrs {
		if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("entry %q: xattr %s: %w", e.Name, k, err)
		}
	}
	if e.Type == tar.TypeSymlink {
		ts := []unix.Timespec{unix.NsecToTimespec(e.ModTime.UnixNano()), unix.NsecToTimespec(e.ModTime.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err := unix.Chmod(p, perm); err != nil {
		return err
	}
	if e.Type != tar.TypeDir {
		return os.Chtimes(p, e.ModTime, e.ModTime)
	}
	return nil
}

// done sets directory times, deepest first.
func (t *tree) done() error {
	for i := len(t.dirs) - 1; i >= 0; i-- {
		d := t.dirs[i]
		if err := os.Chtimes(d.Name, d.ModTime, d.ModTime); err != nil {
			return err
		}
	}
	return nil
}

func extractTar(ctx context.Context, root string, r io.Reader) error {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return core.FieldErrorf("source", "bad gzip stream: %v", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	tr := tar.NewReader(r)
	t := &tree{root: root}
	n := 0
	for {
		if n++; n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return core.FieldErrorf("source", "bad tar stream after %d entries: %v", n-1, err)
		}
		// tar.Reader reports the old regular-file flag '\x00' as TypeReg.
		switch h.Typeflag {
		case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			continue
		}
		e := entry{Name: h.Name, Type: h.Typeflag, Mode: h.FileInfo().Mode(), UID: h.Uid, GID: h.Gid,
			ModTime: h.ModTime, Link: h.Linkname, Body: tr}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[x] = v
			}
		}
		if err := t.add(e); err != nil {
			return core.FieldErrorf("source", "%v", err)
		}
	}
	if n == 1 {
		return core.FieldErrorf("source", "empty tar archive")
	}
	return t.done()
}

func copyTree(ctx context.Context, dst, src string) error {
	st, err := os.Stat(src)
	if err != nil || !st.IsDir() {
		return core.FieldErrorf("source", "%s is not a directory", src)
	}
	t := &tree{root: dst}
	type ino struct{ dev, ino uint64 }
	seen := map[ino]string{}
	n := 0
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sys := fi.Sys().(*syscall.Stat_t)
		e := entry{Name: rel, Mode: fi.Mode(), UID: int(sys.Uid), GID: int(sys.Gid), ModTime: fi.ModTime()}
		e.Xattrs = listXattrs(p)
		switch {
		case fi.IsDir():
			e.Type = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = tar.TypeSymlink
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			k := ino{uint64(sys.Dev), sys.Ino}
			if first, ok := seen[k]; ok && sys.Nlink > 1 {
				return t.add(entry{Name: rel, Type: tar.TypeLink, Link: first})
			}
			seen[k] = rel
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			e.Type, e.Body = tar.TypeReg, f
		case fi.Mode()&fs.ModeNamedPipe != 0:
			e.Type = tar.TypeFifo
		default:
			return nil
		}
		return t.add(e)
	})
	if err != nil {
		return err
	}
	return t.done()
}

func listXattrs(p string) map[string]string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz <= 0 {
		return nil
	}
	buf := make([]byte, sz)
	if sz, err = unix.Llistxattr(p, buf); err != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range strings.Split(string(buf[:sz]), "\x00") {
		if k == "" {
			continue
		}
		v := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, k, v)
		if err == nil {
			out[k] = string(v[:n])
		}
	}
	return out
}
