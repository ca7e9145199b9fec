package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// BuildOptions say what goes into the built-in image.
type BuildOptions struct {
	// Busybox is a statically linked busybox (Debian package
	// busybox-static). Default /bin/busybox.
	Busybox string
	// Extra are host executables copied into the image at the same path,
	// together with the shared libraries and dynamic loader that ldd
	// reports for them. Missing optional ones are skipped (see Optional).
	Extra []string
	// Optional are like Extra but silently skipped when absent on the host.
	Optional []string
}

// DefaultBuildOptions are the options of the built-in "default" image:
// busybox, rsync, OpenSSH's sftp-server (scp, sftp and pl copy need it)
// and coreutils' nohup (busybox has none). scripts/deps.sh installs each;
// cmd/pl/hostdeps_test.go checks that it does.
func DefaultBuildOptions() BuildOptions {
	return BuildOptions{
		Busybox: "/bin/busybox",
		Extra:   []string{"/usr/bin/rsync", "/usr/lib/openssh/sftp-server", "/usr/bin/nohup"},
	}
}

// EnsureDefault builds the built-in image "default" if it does not exist.
func (s *Store) EnsureDefault(ctx context.Context) error {
	if _, err := s.Rootfs(Default); err == nil {
		return nil
	}
	err := s.Build(ctx, Default, DefaultBuildOptions())
	if core.ErrorCode(err) == core.Conflict {
		return nil // built concurrently
	}
	return err
}

// Build creates image name as a small busybox system: applet links, the
// files listed in opts, /etc/passwd, group and shadow with root (empty
// password), nobody and the groups a sliver account needs, and the usual
// directories.
func (s *Store) Build(ctx context.Context, name string, opts BuildOptions) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if opts.Busybox == "" {
		opts.Busybox = "/bin/busybox"
	}
	tmp, err := s.stage()
	if err != nil {
		return err
	}
	if err := build(ctx, filepath.Join(tmp, "rootfs"), opts); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("build image %q: %w", name, err)
	}
	return s.commit(tmp, name)
}

func build(ctx context.Context, root string, opts BuildOptions) error {
	dirs := []struct {
		p    string
		mode os.FileMode
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"etc", 0o755}, {"root", 0o700}, {"home", 0o755}, {"tmp", 0o1777},
		{"var/log", 0o755}, {"var/run", 0o755}, {"var/tmp", 0o1777}, {"run", 0o755},
		{"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}, {"mnt", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.p)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	// busybox is setuid root (sliver root, through the user namespace):
	// su is the slice account's way to become sliver root (root has an
	// empty password inside the sliver) and ping/traceroute need raw
	// sockets. Debian's busybox is built with FEATURE_SUID, so every other
	// applet drops the privilege at once. A separate setuid copy would not
	// do: busybox sh runs applets by re-executing itself, never the copy.
	if err := copyFile(filepath.Join(root, "bin/busybox"), opts.Busybox, 0o4755); err != nil {
		return fmt.Errorf("busybox: %w", err)
	}
	out, err := exec.CommandContext(ctx, opts.Busybox, "--list-full").Output() // hostdeps: /bin/busybox
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", opts.Busybox, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rel := strings.TrimSpace(sc.Text())
		if rel == "" || rel == "bin/busybox" || strings.Contains(rel, "..") {
			continue
		}
		target := "/bin/busybox"
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, p); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
		// Sliver root has an empty password: `su` from the slice account
		// is the "weaker root" of the original vservers.
		"etc/shadow":        "root::0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n",
		"etc/shells":        "/bin/sh\n/bin/ash\n",
		"etc/hosts":         "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
		"etc/profile":       "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\u@\\h:\\w\\$ '\n",
		"etc/os-release":    "NAME=\"PlanetLab busybox\"\nID=pl-busybox\n",
	}
	for rel, body := range files {
		mode := os.FileMode(0o644)
		if rel == "etc/shadow" {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(root, rel), []byte(body), mode); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(root, rel), mode); err != nil {
			return err
		}
	}
	for _, p := range opts.Extra {
		if err := copyWithLibs(ctx, root, p); err != nil {
			return err
		}
	}
	for _, p := range opts.Optional {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := copyWithLibs(ctx, root, p); err != nil {
			return err
		}
	}
	return nil
}

// copyWithLibs copies host executable p into root at the same path, plus
// the shared objects ldd lists for it (at the paths ldd reports, which is
// where the dynamic loader looks).
func copyWithLibs(ctx context.Context, root, p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("extra file (scripts/deps.sh installs it): %w", err)
	}
	if err := copyFile(filepath.Join(root, p), p, st.Mode().Perm()); err != nil {
		return err
	}
	libs, err := lddDeps(ctx, p)
	if err != nil {
		return err
	}
	for _, l := range libs {
		lst, err := os.Stat(l)
		if err != nil {
			return fmt.Errorf("library of %s: %w", p, err)
		}
		dst := filepath.Join(root, l)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := copyFile(dst, l, lst.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// lddDeps returns the absolute paths of the shared objects p needs; a
// static executable has none.
func lddDeps(ctx context.Context, p string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", p).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", p, err, bytes.TrimSpace(out))
	}
	return parseLdd(string(out))
}

// parseLdd extracts library paths from ldd output lines such as
// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and
// "/lib64/ld-linux-x86-64.so.2 (0x...)".
func parseLdd(out string) ([]string, error) {
	var libs []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "linux-vdso") || strings.HasPrefix(line, "statically linked") {
			continue
		}
		if strings.Contains(line, "=> not found") {
			return nil, fmt.Errorf("ldd: missing library: %s", line)
		}
		f := line
		if _, after, ok := strings.Cut(line, "=> "); ok {
			f = after
		}
		f, _, _ = strings.Cut(f, " (")
		f = strings.TrimSpace(f)
		if strings.HasPrefix(f, "/") && !strings.Contains(f, "..") {
			libs = append(libs, f)
		}
	}
	return libs, nil
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	perm := mode.Perm()
	if mode&os.ModeSetuid != 0 || mode&0o4000 != 0 {
		perm |= os.ModeSetuid
	}
	return os.Chmod(dst, perm)
}
