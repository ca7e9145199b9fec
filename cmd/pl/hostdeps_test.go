package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/node/image"
)

// TestHostDepsDeclared checks that every host program the Go code runs
// (exec.Command, exec.CommandContext, exec.LookPath) or copies into the
// built-in image is named in scripts/deps.sh's table, and, where dpkg
// exists, that the package named there is the one that ships it. A call
// whose program is not a string literal must say what it runs in a
// "hostdeps:" comment on its line or the line above ("self" is pl or the
// test binary itself, "go" the toolchain deps.sh checks separately,
// "operator" a program the node's operator supplies, such as a vsys
// script, which the project neither ships nor installs);
// a hostdeps comment elsewhere declares a host file used otherwise (the
// sliver init, bind-mounted). Programs used only by tests (in _test.go
// files or test-helper packages) may come from `deps.sh --list test`.
func TestHostDepsDeclared(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	runProgs, testProgs, problems := scanHostPrograms(t, root)
	for _, p := range problems {
		t.Error(p)
	}
	def := image.DefaultBuildOptions()
	for _, p := range append(append([]string{def.Busybox}, def.Extra...), def.Optional...) {
		runProgs[p] = append(runProgs[p], "internal/node/image: DefaultBuildOptions")
	}
	if len(runProgs) < 10 {
		t.Fatalf("found only %d programs the code runs: the scan is broken", len(runProgs))
	}
	runList := depsList(t, root)
	testList := depsList(t, root, "test")
	check := func(progs map[string][]string, list []depsEntry, flag string) {
		for prog, where := range progs {
			if prog == "self" || prog == "go" || prog == "operator" {
				continue
			}
			e, ok := findEntry(list, prog)
			if !ok {
				t.Errorf("%s (run at %s) is not in `scripts/deps.sh --list%s`: add it beside the Debian package that ships it", prog, strings.Join(where, ", "), flag)
				continue
			}
			checkDpkg(t, prog, e)
		}
	}
	check(runProgs, runList, "")
	check(testProgs, testList, " test")
}

// depsEntry is one line of `deps.sh --list`: a package and the programs
// and files the project uses from it.
type depsEntry struct {
	pkg   string
	progs []string
}

func depsList(t *testing.T, root string, args ...string) []depsEntry {
	t.Helper()
	out, err := exec.Command("bash", append([]string{filepath.Join(root, "scripts/deps.sh"), "--list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("scripts/deps.sh --list %v: %v", args, err)
	}
	var list []depsEntry
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		list = append(list, depsEntry{pkg: f[0], progs: f[1:]})
	}
	return list
}

// findEntry finds the entry declaring prog: the same name or path, a bare
// name matching a listed path's base name or the other way round, or a
// listed glob.
func findEntry(list []depsEntry, prog string) (depsEntry, bool) {
	for _, e := range list {
		for _, d := range e.progs {
			if d == prog || path.Base(d) == prog || (!strings.Contains(d, "/") && path.Base(prog) == d) {
				return e, true
			}
			if ok, _ := path.Match(d, prog); ok {
				return e, true
			}
		}
	}
	return depsEntry{}, false
}

// checkDpkg checks with dpkg -S that prog, as installed here, belongs to
// e's package or to a package it depends on (postgresql ->
// postgresql-15). Skipped where dpkg does not exist. A build:<dir> entry
// is checked by checkBuilt instead.
func checkDpkg(t *testing.T, prog string, e depsEntry) {
	t.Helper()
	if dir, ok := strings.CutPrefix(e.pkg, "build:"); ok {
		checkBuilt(t, prog, dir, e)
		return
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		return
	}
	var paths []string
	switch {
	case strings.ContainsAny(prog, "*?["):
		paths, _ = filepath.Glob(prog)
	case strings.HasPrefix(prog, "/"):
		if _, err := os.Stat(prog); err == nil {
			paths = []string{prog}
		}
	default:
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
			if _, err := os.Stat(filepath.Join(d, prog)); err == nil {
				paths = append(paths, filepath.Join(d, prog))
				break
			}
		}
	}
	if len(paths) == 0 {
		t.Errorf("%s (package %s) is not installed on this machine: run scripts/deps.sh test", prog, e.pkg)
		return
	}
	want := map[string]bool{e.pkg: true}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Pre-Depends},${Depends}", e.pkg).Output(); err == nil {
		for _, alt := range strings.FieldsFunc(string(out), func(r rune) bool { return r == ',' || r == '|' }) {
			if f := strings.Fields(alt); len(f) > 0 {
				want[strings.Split(f[0], ":")[0]] = true
			}
		}
	}
	p := paths[0]
	var owners []string
	for _, cand := range dpkgCandidates(p) {
		for _, o := range dpkgOwners(cand) {
			if want[o] {
				return
			}
			owners = append(owners, o)
		}
	}
	t.Errorf("%s: scripts/deps.sh says package %s, but dpkg -S %s says %v", prog, e.pkg, p, owners)
}

// checkBuilt checks an entry deps.sh builds from the Go module in dir
// (relative to the repository root) rather than installs with apt: the
// module exists, pins what it builds, and the program installed at the
// path the entry names reports that version (what deps.sh installs is
// what the code runs). Only runsc is built so far.
func checkBuilt(t *testing.T, prog, dir string, e depsEntry) {
	t.Helper()
	if len(e.progs) != 1 || !strings.HasPrefix(e.progs[0], "/") {
		t.Errorf("deps.sh entry %s must name one absolute path (where it is installed): %v", e.pkg, e.progs)
		return
	}
	mod, err := os.ReadFile(filepath.Join("../..", dir, "go.mod"))
	if err != nil {
		t.Errorf("%s: %v", e.pkg, err)
		return
	}
	if _, err := os.Stat(filepath.Join("../..", dir, "go.sum")); err != nil {
		t.Errorf("%s: the module has no go.sum: %v", e.pkg, err)
	}
	var module, version string
	switch dir {
	case "third_party/runsc":
		module = "gvisor.dev/gvisor"
	default:
		t.Errorf("deps.sh entry %s: this test does not know what it builds", e.pkg)
		return
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == module {
			version = f[1]
		}
	}
	if version == "" {
		t.Errorf("%s/go.mod does not require %s", dir, module)
		return
	}
	dest := e.progs[0]
	if _, err := os.Stat(dest); err != nil {
		t.Errorf("%s (built from %s) is not installed at %s: run scripts/deps.sh", prog, dir, dest)
		return
	}
	out, err := exec.Command(dest, "--version").Output() // hostdeps: /usr/local/bin/runsc
	if err != nil {
		t.Errorf("%s --version: %v", dest, err)
		return
	}
	if first, _, _ := strings.Cut(string(out), "\n"); first != "runsc version "+version {
		t.Errorf("%s reports %q, but %s/go.mod pins %s %s: run scripts/deps.sh", dest, first, dir, module, version)
	}
}

// dpkgCandidates are the names dpkg may know p by: itself, its target
// and their twins across the /usr merge (/bin/ip is /usr/bin/ip).
func dpkgCandidates(p string) []string {
	c := []string{p}
	if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
		c = append(c, r)
	}
	for _, x := range append([]string(nil), c...) {
		if rest, ok := strings.CutPrefix(x, "/usr/"); ok {
			c = append(c, "/"+rest)
		} else {
			c = append(c, "/usr"+x)
		}
	}
	return c
}

// dpkgOwners parses `dpkg -S path`: lines "pkg[, pkg2][:arch]: path",
// skipping diversion notes.
func dpkgOwners(p string) []string {
	out, _ := exec.Command("dpkg", "-S", p).Output()
	var owners []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "diversion ") {
			continue
		}
		pkgs, file, ok := strings.Cut(line, ": ")
		if !ok || file != p {
			continue
		}
		for _, o := range strings.Split(pkgs, ", ") {
			owners = append(owners, strings.Split(o, ":")[0])
		}
	}
	return owners
}

// scanHostPrograms parses every Go file under root and returns the
// programs run by non-test and by test code, each with where it is run,
// and the calls that name no program.
func scanHostPrograms(t *testing.T, root string) (run, test map[string][]string, problems []string) {
	t.Helper()
	run, test = map[string][]string{}, map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && p != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		dst := run
		if strings.HasSuffix(p, "_test.go") || strings.HasSuffix(filepath.Dir(p), "test") {
			dst = test
		}
		// hostdeps comments, by line.
		decl := map[int][]string{}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				text := strings.TrimSpace(strings.TrimPrefix(c.Text, "//"))
				if after, ok := strings.CutPrefix(text, "hostdeps:"); ok {
					line := fset.Position(c.Pos()).Line
					words := strings.Fields(after)
					decl[line] = append(decl[line], words...)
					for _, w := range words {
						dst[w] = append(dst[w], rel+":"+strconv.Itoa(line))
					}
				}
			}
		}
		if !bytes.Contains(src, []byte(`"os/exec"`)) {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "exec" {
				return true
			}
			arg := 0
			switch sel.Sel.Name {
			case "Command", "LookPath":
			case "CommandContext":
				arg = 1
			default:
				return true
			}
			if len(call.Args) <= arg {
				return true
			}
			line := fset.Position(call.Pos()).Line
			where := rel + ":" + strconv.Itoa(line)
			if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				prog, err := strconv.Unquote(lit.Value)
				if err == nil {
					dst[prog] = append(dst[prog], where)
					return true
				}
			}
			if len(decl[line]) == 0 && len(decl[line-1]) == 0 {
				problems = append(problems, where+": exec."+sel.Sel.Name+" of a program that is not a string literal: say what it runs in a `// hostdeps: prog ...` comment on the line or the line above, and list it in scripts/deps.sh")
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return run, test, problems
}
