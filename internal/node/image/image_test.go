package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func mkTar(t testing.TB, gz bool, entries ...tarEntry) []byte {
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			w.Write([]byte(e.body))
		}
	}
	w.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"default", "bookworm", "f8-i386", "a.b_c"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".tmp", "../x", "A", "x/y", strings.Repeat("a", 65)} {
		if ValidName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"./etc/passwd": "etc/passwd", "/bin/sh": "bin/sh", "./": "", "a//b/": "a/b"} {
		if got, err := cleanName(in); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"../x", "a/../../x", "a/..", "x\x00y"} {
		if _, err := cleanName(bad); err == nil {
			t.Errorf("cleanName(%q) accepted", bad)
		}
	}
}

func TestParseLdd(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f8)\n"
	got, err := parseLdd(out)
	if err != nil || strings.Join(got, ",") != "/lib/x86_64-linux-gnu/libc.so.6,/lib64/ld-linux-x86-64.so.2" {
		t.Errorf("parseLdd = %v, %v", got, err)
	}
	if _, err := parseLdd("\tlibfoo.so => not found\n"); err == nil {
		t.Error("missing library accepted")
	}
}

func TestImportTarAndRemove(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, gz := range []bool{false, true} {
		name := "plain"
		if gz {
			name = "gz"
		}
		data := mkTar(t, gz,
			tarEntry{name: "./", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "./etc/", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "./etc/hostname", typ: tar.TypeReg, body: "x\n"},
			tarEntry{name: "./bin/su", typ: tar.TypeReg, body: "elf", mode: 0o4755},
			tarEntry{name: "./bin/sh", typ: tar.TypeSymlink, link: "/bin/busybox"},
			tarEntry{name: "./etc/hn2", typ: tar.TypeLink, link: "./etc/hostname"},
			tarEntry{name: "./dev/null", typ: tar.TypeChar},
		)
		if err := s.ImportTar(ctx, name, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		root, err := s.Rootfs(name)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "etc/hn2")); string(b) != "x\n" {
			t.Errorf("hard link content %q", b)
		}
		if st, err := os.Stat(filepath.Join(root, "bin/su")); err != nil || st.Mode()&os.ModeSetuid == 0 {
			t.Errorf("setuid lost: %v %v", st.Mode(), err)
		}
		if l, _ := os.Readlink(filepath.Join(root, "bin/sh")); l != "/bin/busybox" {
			t.Errorf("symlink = %q", l)
		}
		if _, err := os.Lstat(filepath.Join(root, "dev/null")); err == nil {
			t.Error("device node imported")
		}
	}
	if err := s.ImportTar(ctx, "gz", bytes.NewReader(mkTar(t, false, tarEntry{name: "a", typ: tar.TypeReg}))); core.ErrorCode(err) != core.Conflict {
		t.Errorf("duplicate import: %v", err)
	}
	if err := s.Acquire("gz", "slice1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("gz"); core.ErrorCode(err) != core.Conflict {
		t.Errorf("remove of used image: %v", err)
	}
	if err := s.Release("gz", "slice1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("gz"); err != nil {
		t.Fatal(err)
	}
	l, _ := s.List()
	if len(l) != 1 || l[0].Name != "plain" {
		t.Errorf("List = %+v", l)
	}
}

func TestImportTarRejectsEscapes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	cases := map[string][]tarEntry{
		"dotdot":   {{name: "../evil", typ: tar.TypeReg, body: "x"}},
		"symlink":  {{name: "lnk", typ: tar.TypeSymlink, link: outside}, {name: "lnk/evil", typ: tar.TypeReg, body: "x"}},
		"hardlink": {{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}},
	}
	for name, entries := range cases {
		err := s.ImportTar(context.Background(), "bad-"+name, bytes.NewReader(mkTar(t, false, entries...)))
		if core.ErrorCode(err) != core.Invalid {
			t.Errorf("%s: err = %v", name, err)
		}
		if _, err := s.Rootfs("bad-" + name); err == nil {
			t.Errorf("%s: image exists after failed import", name)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside the image: %v", ents)
	}
	if ents, _ := os.ReadDir(s.Dir()); len(ents) != 0 {
		t.Errorf("staging left behind: %v", ents)
	}
}

func TestImportDirAndBuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: keeps file owners")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs busybox-static")
	}
	if err := s.EnsureDefault(context.Background()); err != nil {
		t.Fatal(err)
	}
	root, _ := s.Rootfs(Default)
	for _, p := range []string{"bin/sh", "bin/su", "usr/bin/wget", "etc/passwd", "usr/bin/rsync"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("default image lacks %s", p)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "bin/busybox")); err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("busybox not setuid")
	}
	// A copy of the directory tree is the same image.
	if err := s.ImportDir(context.Background(), "copy", root); err != nil {
		t.Fatal(err)
	}
	croot, _ := s.Rootfs("copy")
	if l, _ := os.Readlink(filepath.Join(croot, "bin/su")); l != "/bin/busybox" {
		t.Errorf("copied symlink = %q", l)
	}
	if st, err := os.Stat(filepath.Join(croot, "bin/busybox")); err != nil || st.Mode()&os.ModeSetuid == 0 {
		t.Errorf("copy lost setuid")
	}
}

func FuzzImportTar(f *testing.F) {
	f.Add(mkTar(f, false, tarEntry{name: "a/b", typ: tar.TypeReg, body: "x"}))
	f.Add(mkTar(f, true, tarEntry{name: "l", typ: tar.TypeSymlink, link: "/"}, tarEntry{name: "l/x", typ: tar.TypeReg}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		s, err := Open(filepath.Join(dir, "images"))
		if err != nil {
			t.Fatal(err)
		}
		s.ImportTar(context.Background(), "fuzz", bytes.NewReader(data))
		// Nothing may appear outside the store.
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("entries outside the store: %v", ents)
		}
		ents, _ = os.ReadDir(s.Dir())
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				t.Fatalf("staging left behind: %s", e.Name())
			}
		}
	})
}
