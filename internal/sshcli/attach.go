// Package sshcli implements the slice access commands: `pl ssh`, `pl exec`
// and `pl copy`. They resolve slices and nodes at PLC (Directory), verify
// node host keys against what PLC recorded, and reach the node SSH gateways
// (internal/node/sshgw): `pl ssh` by running the user's own ssh, `pl exec`
// and `pl copy` with a built-in client on many nodes in parallel.
package sshcli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/planetlab/pl/internal/cli"
	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

// Attach adds this package's commands to the pl command tree.
func Attach(root *cobra.Command) {
	root.AddCommand(sshCmd(), execCmd(), copyCmd())
}

// directory connects to the PLC selected by --plc with the stored login.
func directory(cmd *cobra.Command) (Directory, error) {
	cl, _, err := cli.Connect(cmd)
	if err != nil {
		return nil, err
	}
	return RegistryDirectory{Reg: cl}, nil
}

func knownHostsPath() (string, error) {
	d, err := cli.ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, KnownHostsFile), nil
}

func sshCmd() *cobra.Command {
	var (
		opts    []string
		ident   []string
		forward []string
		port    int
		dryRun  bool
	)
	c := &cobra.Command{
		Use:   "ssh <slice>@<node> [command [args...]]",
		Short: "Log into a sliver with your ssh, verifying the node's host key from PLC",
		Long: `Log into the sliver of <slice> on <node> by running your own ssh.

The node's address, port (node tag ssh_port, default 22) and host key come
from PLC; the host key is written to known_hosts in the pl configuration
directory and ssh runs with StrictHostKeyChecking=yes against it. Your ssh
keys, agent and ~/.ssh/config work as usual.`,
		Example: `  pl ssh princeton_codeen@planetlab1.cs.princeton.edu
  pl ssh princeton_codeen@planetlab1.cs.princeton.edu uname -a
  pl ssh -L 8080:localhost:80 princeton_codeen@planetlab1.cs.princeton.edu`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			slice, host, ok := strings.Cut(args[0], "@")
			if !ok || slice == "" || host == "" {
				return fmt.Errorf("want <slice>@<node>, got %q", args[0])
			}
			dir, err := directory(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			n, err := dir.Node(ctx, host)
			if err != nil {
				return err
			}
			kh, err := knownHostsPath()
			if err != nil {
				return err
			}
			if err := WriteKnownHost(kh, n); err != nil {
				return err
			}
			var extra []string
			for _, o := range opts {
				extra = append(extra, "-o", o)
			}
			for _, i := range ident {
				extra = append(extra, "-i", i)
			}
			for _, l := range forward {
				extra = append(extra, "-L", l)
			}
			argv, err := SSHArgs(n, slice, kh, port, extra, args[1:])
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(argv, " "))
				return nil
			}
			bin, err := exec.LookPath("ssh")
			if err != nil {
				return fmt.Errorf("the OpenSSH client is needed: %w", err)
			}
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	c.Flags().SetInterspersed(false) // everything after <slice>@<node> is the remote command
	c.Flags().StringArrayVarP(&opts, "option", "o", nil, "ssh option (repeatable), passed as -o")
	c.Flags().StringArrayVarP(&ident, "identity", "i", nil, "identity file (repeatable), passed as -i")
	c.Flags().StringArrayVarP(&forward, "local-forward", "L", nil, "local port forwarding spec, passed as -L (repeatable)")
	c.Flags().IntVarP(&port, "port", "p", 0, "port of the node's ssh gateway (default: from PLC)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the ssh command instead of running it")
	return c
}

// SSHArgs is the ssh command line (argv, starting with "ssh") that logs
// into slice on n, trusting only the host key in knownHosts under the
// node's hostname. port overrides n's port when non-zero.
func SSHArgs(n Node, slice, knownHosts string, port int, extra, command []string) ([]string, error) {
	host, p, err := splitAddr(n.Addr)
	if err != nil {
		return nil, err
	}
	if port != 0 {
		p = port
	}
	argv := []string{"ssh",
		"-o", "UserKnownHostsFile=" + knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "HostKeyAlias=" + n.Hostname,
		"-p", strconv.Itoa(p)}
	argv = append(argv, extra...)
	argv = append(argv, slice+"@"+host)
	return append(argv, command...), nil
}

func splitAddr(addr string) (string, int, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("bad node address %q", addr)
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("bad node address %q", addr)
	}
	return strings.Trim(addr[:i], "[]"), p, nil
}

// runnerFlags are the flags shared by exec and copy.
type runnerFlags struct {
	nodes    []string
	parallel int
	timeout  time.Duration
	ident    []string
}

func (f *runnerFlags) add(c *cobra.Command) {
	c.Flags().StringSliceVar(&f.nodes, "nodes", nil, "only these nodes (comma-separated hostnames; default: all nodes of the slice)")
	c.Flags().IntVar(&f.parallel, "parallel", 32, "nodes to work on at once")
	c.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "time limit per node, connection included")
	c.Flags().StringArrayVarP(&f.ident, "identity", "i", nil, "identity file (repeatable; default: ssh-agent and ~/.ssh/id_*)")
}

// runner resolves the slice's nodes and the user's keys.
func (f *runnerFlags) runner(cmd *cobra.Command, slice string) (*Runner, []Node, func(), error) {
	if f.parallel < 1 {
		return nil, nil, nil, core.FieldErrorf("parallel", "must be at least 1, got %d", f.parallel)
	}
	if f.timeout <= 0 {
		return nil, nil, nil, core.FieldErrorf("timeout", "must be positive, got %v", f.timeout)
	}
	dir, err := directory(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
	defer cancel()
	nodes, err := SelectNodes(ctx, dir, slice, f.nodes)
	if err != nil {
		return nil, nil, nil, err
	}
	auth, closeAuth, err := Auth(f.ident, func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "pl:", s) })
	if err != nil {
		return nil, nil, nil, err
	}
	r := &Runner{Slice: slice, Auth: auth, Parallel: f.parallel, Timeout: f.timeout,
		Out: cmd.OutOrStdout(), Err: cmd.ErrOrStderr()}
	return r, nodes, closeAuth, nil
}

// SelectNodes returns the slice's nodes, restricted to the named ones if
// any; naming a node the slice is not on is an error.
func SelectNodes(ctx context.Context, dir Directory, slice string, only []string) ([]Node, error) {
	all, err := dir.SliceNodes(ctx, slice)
	if err != nil {
		return nil, err
	}
	if len(only) == 0 {
		if len(all) == 0 {
			return nil, core.Errorf(core.NotFound, "slice %s has no nodes", slice)
		}
		return all, nil
	}
	byName := map[string]Node{}
	for _, n := range all {
		byName[n.Hostname] = n
	}
	var out []Node
	for _, h := range only {
		n, ok := byName[h]
		if !ok {
			return nil, core.FieldErrorf("nodes", "slice %s is not on node %q", slice, h)
		}
		out = append(out, n)
	}
	return out, nil
}

func execCmd() *cobra.Command {
	var f runnerFlags
	var group bool
	c := &cobra.Command{
		Use:   "exec <slice> [--nodes a,b] [--parallel N] [--timeout 30s] [--group] -- <command...>",
		Short: "Run a command on all (or some) slivers of a slice in parallel",
		Long: `Run a command in the slivers of a slice, on many nodes at once.

Output lines are prefixed with the node's name ("node: line"), or with
--group printed per node when it finishes. A summary of successes,
failures and timeouts goes to stderr; the exit status is non-zero if any
node failed or timed out.`,
		Example: `  pl exec princeton_codeen -- uptime
  pl exec princeton_codeen --nodes planetlab1.cs.princeton.edu,planetlab2.cs.princeton.edu --timeout 10s -- 'cd app && ./start'`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, nodes, closeAuth, err := f.runner(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeAuth()
			r.Group = group
			s := r.Exec(cmd.Context(), nodes, strings.Join(args[1:], " "))
			s.Print(cmd.ErrOrStderr())
			if s.ExitCode() != 0 {
				return fmt.Errorf("%d of %d nodes did not succeed", len(s.Results)-s.Count(OK), len(s.Results))
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVar(&group, "group", false, "print each node's output as one block when it finishes")
	return c
}

func copyCmd() *cobra.Command {
	var f runnerFlags
	c := &cobra.Command{
		Use:   "copy <slice> <local-path> <remote-path>",
		Short: "Push a file or directory to all (or some) slivers of a slice over SFTP",
		Long: `Copy a local file or directory tree to the slivers of a slice, on many
nodes at once. A remote path that is a directory (or ends in /) receives
the source under its own name; relative remote paths are relative to the
slice's home directory.`,
		Example: `  pl copy princeton_codeen ./app.tar.gz app.tar.gz
  pl copy princeton_codeen ./site/ www/ --nodes planetlab1.cs.princeton.edu`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[1]); err != nil {
				return core.FieldErrorf("local-path", "%v", err)
			}
			r, nodes, closeAuth, err := f.runner(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeAuth()
			s := r.Copy(cmd.Context(), nodes, args[1], args[2])
			s.Print(cmd.ErrOrStderr())
			if s.ExitCode() != 0 {
				return fmt.Errorf("%d of %d nodes did not succeed", len(s.Results)-s.Count(OK), len(s.Results))
			}
			return nil
		},
	}
	f.add(c)
	return c
}
