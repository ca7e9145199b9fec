package sshcli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Runner runs one operation on many slivers of a slice in parallel: what
// pssh, vxargs and CoDeploy did for PlanetLab users.
type Runner struct {
	Slice    string
	Auth     []ssh.AuthMethod
	Parallel int           // concurrent nodes (default 32)
	Timeout  time.Duration // per node, connection included (default 30 s)
	Group    bool          // print each node's output as one block when it ends
	Out, Err io.Writer     // shared outputs; lines are never interleaved

	mu sync.Mutex // serializes writes to Out and Err
}

// Outcome classifies a node's result.
type Outcome string

// Outcomes.
const (
	OK       Outcome = "ok"
	Failed   Outcome = "failed"
	TimedOut Outcome = "timed out"
)

// Result is what happened on one node.
type Result struct {
	Node    string
	Outcome Outcome
	Detail  string // exit status or error; "" for OK
}

// Summary is the result of an operation on all nodes.
type Summary struct {
	Results []Result // sorted by node
}

// Count returns how many nodes had outcome o.
func (s Summary) Count(o Outcome) int {
	n := 0
	for _, r := range s.Results {
		if r.Outcome == o {
			n++
		}
	}
	return n
}

// ExitCode is 0 when every node succeeded and 1 otherwise.
func (s Summary) ExitCode() int {
	if s.Count(OK) == len(s.Results) {
		return 0
	}
	return 1
}

// Print writes the summary: one line per failed node and a total.
func (s Summary) Print(w io.Writer) {
	for _, r := range s.Results {
		if r.Outcome != OK {
			fmt.Fprintf(w, "%s: %s: %s\n", r.Node, r.Outcome, r.Detail)
		}
	}
	fmt.Fprintf(w, "%d ok, %d failed, %d timed out (of %d nodes)\n",
		s.Count(OK), s.Count(Failed), s.Count(TimedOut), len(s.Results))
}

// Exec runs command on every node.
func (r *Runner) Exec(ctx context.Context, nodes []Node, command string) Summary {
	return r.each(ctx, nodes, func(ctx context.Context, c *ssh.Client, n Node, out, errw io.Writer) (string, error) {
		s, err := c.NewSession()
		if err != nil {
			return "", err
		}
		defer s.Close()
		s.Stdout, s.Stderr = out, errw
		err = s.Run(command)
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			if ee.Signal() != "" {
				return fmt.Sprintf("killed by signal %s", ee.Signal()), errExit
			}
			return fmt.Sprintf("exit status %d", ee.ExitStatus()), errExit
		}
		var em *ssh.ExitMissingError
		if errors.As(err, &em) {
			return "connection ended without an exit status", errExit
		}
		return "", err
	})
}

// Copy pushes the local file or directory src to dst on every node over
// SFTP. A dst that is an existing directory or ends in "/" receives src
// under its base name; relative paths are relative to the slice's home.
func (r *Runner) Copy(ctx context.Context, nodes []Node, src, dst string) Summary {
	return r.each(ctx, nodes, func(ctx context.Context, c *ssh.Client, n Node, out, errw io.Writer) (string, error) {
		sc, err := sftp.NewClient(c, sftp.UseConcurrentWrites(true))
		if err != nil {
			return "", fmt.Errorf("sftp: %w", err)
		}
		defer sc.Close()
		files, bytes, err := push(sc, src, dst)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(out, "copied %d files, %d bytes\n", files, bytes)
		return "", nil
	})
}

// errExit marks a remote command that ran and failed.
var errExit = errors.New("remote command failed")

type nodeFunc func(ctx context.Context, c *ssh.Client, n Node, out, errw io.Writer) (detail string, err error)

func (r *Runner) each(ctx context.Context, nodes []Node, fn nodeFunc) Summary {
	par := r.Parallel
	if par <= 0 {
		par = 32
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	results := make([]Result, len(nodes))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Node: n.Hostname, Outcome: Failed, Detail: "cancelled"}
				return
			}
			defer func() { <-sem }()
			results[i] = r.one(ctx, n, timeout, fn)
		}()
	}
	wg.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].Node < results[j].Node })
	return Summary{Results: results}
}

func (r *Runner) one(ctx context.Context, n Node, timeout time.Duration, fn nodeFunc) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, errw := r.outputs(n.Hostname)
	detail, err := r.connectAndRun(ctx, n, fn, out, errw)
	out.Flush()
	errw.Flush()
	res := Result{Node: n.Hostname, Outcome: OK}
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded:
		res.Outcome, res.Detail = TimedOut, "no result within "+timeout.String()
	case err == errExit:
		res.Outcome, res.Detail = Failed, detail
	case err != nil:
		res.Outcome, res.Detail = Failed, err.Error()
	}
	if r.Group {
		r.printGroup(n.Hostname, res, out.buf.Bytes(), errw.buf.Bytes())
	}
	return res
}

func (r *Runner) connectAndRun(ctx context.Context, n Node, fn nodeFunc, out, errw io.Writer) (string, error) {
	cb, err := hostKeyCallback(n)
	if err != nil {
		return "", err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", n.Addr)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	// The deadline covers everything; cancellation closes the connection.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()
	cc, chans, reqs, err := ssh.NewClientConn(nc, n.Addr, &ssh.ClientConfig{
		User:            r.Slice,
		Auth:            r.Auth,
		HostKeyCallback: cb,
	})
	if err != nil {
		return "", fmt.Errorf("ssh: %w", err)
	}
	c := ssh.NewClient(cc, chans, reqs)
	defer c.Close()
	return fn(ctx, c, n, out, errw)
}

// outputs returns the writers for one node's stdout and stderr: prefixed
// lines on the shared outputs, or buffers for grouped output.
func (r *Runner) outputs(node string) (out, errw *lineWriter) {
	if r.Group {
		return &lineWriter{}, &lineWriter{}
	}
	return &lineWriter{r: r, w: r.Out, prefix: node + ": "}, &lineWriter{r: r, w: r.Err, prefix: node + ": "}
}

func (r *Runner) printGroup(node string, res Result, out, errb []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	status := string(res.Outcome)
	if res.Detail != "" {
		status += ": " + res.Detail
	}
	fmt.Fprintf(r.Out, "=== %s (%s)\n", node, status)
	r.Out.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		fmt.Fprintln(r.Out)
	}
	if len(errb) > 0 {
		r.Err.Write(errb)
		if errb[len(errb)-1] != '\n' {
			fmt.Fprintln(r.Err)
		}
	}
}

// lineWriter writes complete lines with a prefix to a shared writer, or
// (w == nil) collects everything in buf.
type lineWriter struct {
	r      *Runner
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf.Write(p)
	if l.w == nil {
		return len(p), nil
	}
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := l.buf.Next(i + 1)
		l.r.mu.Lock()
		io.WriteString(l.w, l.prefix)
		l.w.Write(line)
		l.r.mu.Unlock()
	}
	return len(p), nil
}

// Flush writes a last unterminated line.
func (l *lineWriter) Flush() {
	if l.w == nil || l.buf.Len() == 0 {
		return
	}
	l.r.mu.Lock()
	fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.buf.Bytes())
	l.r.mu.Unlock()
	l.buf.Reset()
}

// push copies src to dst over sc and returns the files and bytes copied.
func push(sc *sftp.Client, src, dst string) (files int, n int64, err error) {
	st, err := os.Stat(src)
	if err != nil {
		return 0, 0, err
	}
	if strings.HasSuffix(dst, "/") {
		dst = path.Join(dst, filepath.Base(src))
	} else if rst, err := sc.Stat(dst); err == nil && rst.IsDir() {
		dst = path.Join(dst, filepath.Base(src))
	}
	if !st.IsDir() {
		n, err := pushFile(sc, src, dst, st.Mode().Perm())
		return 1, n, err
	}
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := sc.MkdirAll(target); err != nil {
				return fmt.Errorf("mkdir %s: %w", target, err)
			}
			return sc.Chmod(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			c, err := pushFile(sc, p, target, info.Mode().Perm())
			files++
			n += c
			return err
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			sc.Remove(target)
			return sc.Symlink(link, target)
		}
		return nil // sockets, devices: skipped
	})
	return files, n, err
}

func pushFile(sc *sftp.Client, src, dst string, mode os.FileMode) (int64, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := sc.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dst, err)
	}
	n, err := w.ReadFrom(f)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("write %s: %w", dst, err)
	}
	return n, sc.Chmod(dst, mode)
}
