package vsys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Operator scripts: <ScriptDir>/<op>, an executable the node's root
// owns and nobody else may write (nor the directory), run as root on the
// host with argv = the checked arguments (no shell), stdin empty, the
// environment below, working directory /, in a process group of its own
// that is killed at the timeout.
//
// Processes the script leaves in its group are killed when it ends.
//
// Environment: PATH, LANG=C, PL_SLICE (the calling slice), PL_XID (its
// sliver's number on this node), PL_VSYS_OP (the operation).

// script returns the operation of the script called name.
func (r *Registry) script(name string) (Op, error) {
	unknown := core.Errorf(core.NotFound, "unknown operation %s: no built-in (%v) and no script of that name on this node", name, r.Builtins())
	if r.cfg.ScriptDir == "" {
		return Op{}, unknown
	}
	path := filepath.Join(r.cfg.ScriptDir, name)
	if err := trusted(r.cfg.ScriptDir, true); err != nil {
		r.cfg.Log.Error("vsys script directory refused", "dir", r.cfg.ScriptDir, "err", err)
		return Op{}, core.Errorf(core.Unavailable, "the node's script directory is unsafe (see the node's log)")
	}
	if err := trusted(path, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Op{}, unknown
		}
		r.cfg.Log.Error("vsys script refused", "path", path, "err", err)
		return Op{}, core.Errorf(core.Unavailable, "script %s is unsafe and not run (see the node's log)", name)
	}
	return Op{
		Name:  name,
		Help:  "operator script " + path + ": any checked arguments",
		Check: func(args []string) (string, error) { return firstArg(args), nil },
		Run: func(ctx context.Context, c Caller, args []string) (Result, error) {
			return r.runScript(ctx, c, name, path, args)
		},
	}, nil
}

// firstArg is a script's scoped argument: its first (op:scope grants
// restrict it).
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// trusted checks that path (a directory when dir) is root's (the node
// manager's own uid) and that neither group nor others may write it; a
// script must be a regular executable file, not a symbolic link.
func trusted(path string, dir bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner", path)
	}
	switch {
	case dir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%v)", path, fi.Mode().Type())
	case !dir && fi.Mode().Perm()&0o100 == 0:
		return fmt.Errorf("%s is not executable by its owner", path)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s is owned by uid %d, not %d", path, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others (%v)", path, fi.Mode().Perm())
	}
	return nil
}

// capped keeps the first max bytes written to it and counts the rest.
type capped struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int
}

func (w *capped) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	room := w.max - len(w.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		w.buf = append(w.buf, p[:room]...)
	}
	w.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (r *Registry) runScript(ctx context.Context, c Caller, name, path string, args []string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...) // hostdeps: operator
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C",
		"PL_SLICE=" + c.Slice, "PL_XID=" + strconv.Itoa(c.XID), "PL_VSYS_OP=" + name}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second // a child that keeps the pipes open
	stdout, stderr := &capped{max: r.cfg.MaxOutput}, &capped{max: r.cfg.MaxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if cmd.Process != nil {
		// What the script left behind in its group goes with it (the
		// group outlives its leader while a member lives, so its id
		// cannot have been reused).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	res := Result{Stdout: string(stdout.buf), Stderr: string(stderr.buf), Truncated: stdout.dropped+stderr.dropped > 0}
	if ctx.Err() == context.DeadlineExceeded {
		return res, core.Errorf(core.Unavailable, "script %s did not finish within %v: killed", name, r.cfg.Timeout)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Exit = ee.ExitCode()
		if res.Exit < 0 {
			res.Exit = 128 // killed by a signal
		}
	case err != nil:
		return res, core.Errorf(core.Internal, "script %s: %v", name, err)
	}
	return res, nil
}
