package sliver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
)

// runcCLI runs an OCI runtime's command line (runc, or runsc which takes
// the same commands) with the node's state root for that runtime.
type runcCLI struct {
	bin   string
	root  string
	name  string   // "runc" or "runsc": in errors
	flags []string // global flags after --root (runsc: --platform, ...)
	// idSuffix follows the sliver's name in its container id. runsc
	// takes an id that is the prefix of another as ambiguous even when
	// one matches exactly ("bench_s1" and "bench_s10": every command on
	// the first fails), so its ids end with a character no sliver name
	// has, and none is then the prefix of another.
	idSuffix string
}

// gvisorIDSuffix is runsc's idSuffix.
const gvisorIDSuffix = "-pl"

// cid is the container id of the sliver name.
func (r *runcCLI) cid(name string) string { return name + r.idSuffix }

// gvisor says whether this is runsc.
func (r *runcCLI) gvisor() bool { return r.name == "runsc" }

func (r *runcCLI) args(args ...string) []string {
	return append(append([]string{"--root", r.root}, r.flags...), args...)
}

// runc container states as `runc state` reports them.
const (
	stCreated = "created"
	stRunning = "running"
	stPaused  = "paused"
	stStopped = "stopped"
)

type runcState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

func (r *runcCLI) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.bin, r.args(args...)...) // hostdeps: runc runsc
}

// runTimeout bounds every runc command but exec: none should take long,
// and a stuck one must not block a sliver forever.
const runTimeout = 2 * time.Minute

func (r *runcCLI) run(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	c := r.cmd(ctx, args...)
	c.WaitDelay = time.Second
	var out, errb capped
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errb
	if err := c.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %v: %s", r.name, args[0], err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// capped keeps the first 1 MiB written to it and discards the rest: runc
// exec output comes from inside slivers.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := 1<<20 - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// state returns the container's state, or "" when runc does not know it.
func (r *runcCLI) state(ctx context.Context, name string) (runcState, error) {
	id := r.cid(name)
	// runc keeps a directory per container; runsc keeps files named
	// after the container and its sandbox.
	if m, _ := filepath.Glob(filepath.Join(r.root, id+"*")); len(m) == 0 {
		return runcState{}, nil
	}
	out, err := r.run(ctx, nil, "state", id)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return runcState{}, nil
		}
		return runcState{}, err
	}
	var st runcState
	if err := json.Unmarshal(out, &st); err != nil {
		return runcState{}, fmt.Errorf("%s state %s: %w", r.name, id, err)
	}
	return st, nil
}

func (r *runcCLI) list(ctx context.Context) ([]runcState, error) {
	// runc keeps one directory per container under its root, runsc a
	// state file: with neither, spare the fork and exec (the agent lists
	// before every pass).
	ents, err := os.ReadDir(r.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err == nil && !slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.IsDir() || strings.HasSuffix(e.Name(), ".state") }) {
		return nil, nil
	}
	out, err := r.run(ctx, nil, "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var l []runcState
	if s := bytes.TrimSpace(out); len(s) > 0 && !bytes.Equal(s, []byte("null")) {
		if err := json.Unmarshal(s, &l); err != nil {
			return nil, fmt.Errorf("%s list: %w", r.name, err)
		}
	}
	for i := range l {
		l[i].ID = strings.TrimSuffix(l[i].ID, r.idSuffix)
	}
	return l, nil
}

// create runs `runc create`. The container's init inherits runc's stdio,
// so it gets /dev/null; runc's own errors go to logFile.
func (r *runcCLI) create(ctx context.Context, name, bundle, logFile string, o startOpts) error {
	return r.start(ctx, logFile, o, "create", "--bundle", bundle, r.cid(name))
}

// runDetached runs `runc run --detach`: create and start in one runc
// process, one fork and exec fewer than create then start.
func (r *runcCLI) runDetached(ctx context.Context, name, bundle, logFile string, o startOpts) error {
	return r.start(ctx, logFile, o, "run", "--detach", "--bundle", bundle, r.cid(name))
}

// startOpts are what starting one container takes beyond its bundle.
type startOpts struct {
	flags []string // more global flags (runsc's --network)
}

// start runs a command that starts a container.
func (r *runcCLI) start(ctx context.Context, logFile string, o startOpts, args ...string) error {
	os.Remove(logFile)
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, r.bin, r.args(append(append(o.flags, "--log", logFile, "--log-format", "json"), args...)...)...) // hostdeps: runc runsc
	if err := c.Run(); err != nil {
		msg := lastLogError(logFile)
		if r.gvisor() && strings.Contains(msg, gvisorRootNetNS) {
			return core.Errorf(core.Unimplemented, "%s %s %s: %s: this runsc (%s) is too old for this kernel: it takes every network namespace for the host's "+
				"(it looks for /proc/sys/net/core/rmem_default, which Linux 6.x shows in every namespace); scripts/deps.sh builds one that works into %s",
				r.name, args[0], args[len(args)-1], msg, r.bin, DefaultRunsc)
		}
		return fmt.Errorf("%s %s %s: %v: %s", r.name, args[0], args[len(args)-1], err, msg)
	}
	return nil
}

// gvisorRootNetNS is runsc's refusal to bring its network stack up in
// what it takes for the host's network namespace: what Debian's runsc
// 0.0~20221219 says for every namespace on Linux 6.x.
const gvisorRootNetNS = "cannot run with network enabled in root network namespace"

// lastLogError returns the last error message of a runc json log.
func lastLogError(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	msg := ""
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e struct{ Level, Msg string }
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			msg = e.Msg
		}
	}
	return msg
}

func (r *runcCLI) update(ctx context.Context, name string, res *specs.LinuxResources) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = r.run(ctx, bytes.NewReader(b), "update", "-r", "-", r.cid(name))
	return err
}

func (r *runcCLI) simple(ctx context.Context, verb, name string) error {
	_, err := r.run(ctx, nil, verb, r.cid(name))
	return err
}

// remove kills and deletes the container; a missing one is not an error.
// A running container is killed and awaited here (pidfd) before a plain
// delete: `runc delete --force` sleeps 100 ms before its first check.
func (r *runcCLI) remove(ctx context.Context, name string) error {
	id := r.cid(name)
	if st, err := r.state(ctx, name); err == nil && st.Status == stRunning && st.Pid > 0 {
		if fd, err := unix.PidfdOpen(st.Pid, 0); err == nil {
			_, kerr := r.run(ctx, nil, "kill", id, "KILL")
			if kerr == nil {
				unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10000)
			}
			unix.Close(fd)
			if _, err := r.run(ctx, nil, "delete", id); err == nil {
				return nil
			}
		}
	}
	_, err := r.run(ctx, nil, "delete", "--force", id)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	return err
}
