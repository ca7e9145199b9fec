// Package dev implements `pl dev`: an emulated planet on one machine. It
// builds a virtual wide-area network (package wan) with one network
// namespace per node, starts a real PLC (`pl plc`) on the host and a real
// node manager (`pl node`) inside every node namespace, joins them with the
// normal join flow, creates demo data and a demo slice, and removes all of
// it on exit or with `pl dev down` (also after a killed run). It also
// implements `pl bench planet`.
package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/cmdtree"
	"github.com/planetlab/pl/internal/dev/wan"
)

// Attach adds this package's commands to the pl command tree.
func Attach(root *cobra.Command) {
	root.AddCommand(devCmd())
	bench := cmdtree.Sub(root, "bench", "Benchmarks of the running system")
	bench.AddCommand(benchPlanetCmd())
}

// flags shared by pl dev and pl bench planet.
type planetFlags struct {
	cfg     Config
	wan     string
	verbose bool
}

func (f *planetFlags) add(c *cobra.Command, nodes int) {
	fl := c.Flags()
	fl.IntVar(&f.cfg.Nodes, "nodes", nodes, "number of emulated nodes")
	fl.StringVar(&f.cfg.DataDir, "data", "", "data directory (default: a fresh temporary directory, removed on exit)")
	fl.StringVar(&f.cfg.ID, "id", "", "instance id (0-4 of [a-z0-9]) to run several planets at once")
	fl.StringVar(&f.wan, "wan", wan.DefaultPrefix.String(), "IPv4 /16 for the emulated WAN")
	fl.DurationVar(&f.cfg.Overhead, "overhead", 2*time.Millisecond, "fixed one-way delay added between places")
	fl.Float64Var(&f.cfg.Loss, "loss", 0, "packet loss probability on each site uplink (0..1)")
	fl.Uint64Var(&f.cfg.RateKbit, "rate", 0, "rate limit of each site uplink in kbit/s (0 = none)")
	fl.IntVar(&f.cfg.PLCPort, "plc-port", 8443, "PLC's port on the host's WAN address")
	fl.IntVar(&f.cfg.GENIPort, "geni-port", DefaultGENIPort, "the GENI aggregate's port on the host's WAN address (docs/geni.md)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log progress")
}

func (f *planetFlags) config(stderr io.Writer) (Config, error) {
	cfg := f.cfg
	pfx, err := netip.ParsePrefix(f.wan)
	if err != nil {
		return cfg, fmt.Errorf("--wan %q: %w", f.wan, err)
	}
	cfg.WAN = pfx
	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

func devCmd() *cobra.Command {
	var f planetFlags
	var plcs int
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run an emulated planet on this machine (root): PLC, nodes on a virtual WAN, a demo slice",
		Long: `pl dev brings up, with no configuration, a PLC on this host and N nodes, each a
real node manager in its own network namespace on a virtual wide-area network
with latencies derived from the sites' coordinates; joins them to PLC, creates
demo sites, users and a demo slice on every node, prints how to use them, and
waits. Ctrl-C removes everything it created. See docs/dev.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			// Cleanup must run whatever happens to stdout and stderr: with
			// `make demo 2>&1 | tee log`, Ctrl-C kills tee too, and the
			// next write would kill us with SIGPIPE (Go's default for fds
			// 1 and 2). Ignored, writes fail with EPIPE instead, and the
			// output is best effort. A hangup (the terminal, or sudo's
			// pty, going away) stops the planet like Ctrl-C.
			signal.Ignore(syscall.SIGPIPE)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			stderr := cmd.ErrOrStderr()
			var p interface{ Close() error }
			switch plcs {
			case 1:
				fmt.Fprintf(stderr, "pl dev: starting PLC and %d node(s)...\n", cfg.Nodes)
				planet, err := Up(ctx, cfg)
				if err != nil {
					return err
				}
				planet.PrintSummary(cmd.OutOrStdout())
				p = planet
			case 2:
				if cfg.Reservable {
					return fmt.Errorf("--reservable: not with --plcs 2")
				}
				fmt.Fprintf(stderr, "pl dev: starting two peered PLCs with %d node(s) each...\n", cfg.Nodes)
				fed, err := UpFederation(ctx, cfg)
				if err != nil {
					return err
				}
				fed.PrintSummary(cmd.OutOrStdout())
				p = fed
			default:
				return fmt.Errorf("--plcs %d: want 1 or 2", plcs)
			}
			<-ctx.Done()
			stop()
			// During cleanup, hangups are ignored (they follow Ctrl-C when
			// the pipe's reader or sudo dies); a second SIGINT or SIGTERM
			// exits at once and leaves the rest to `pl dev down`.
			signal.Ignore(syscall.SIGHUP)
			again := make(chan os.Signal, 1)
			signal.Notify(again, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(again)
			go func() {
				if _, ok := <-again; ok {
					fmt.Fprintf(stderr, "pl dev: second signal: exiting before the cleanup finished; run `%s dev down` to finish it\n", cfg.Binary)
					os.Exit(130)
				}
			}()
			fmt.Fprintln(stderr, "pl dev: stopping and cleaning up...")
			if err := p.Close(); err != nil {
				return fmt.Errorf("cleanup: %w (run `pl dev down` to retry)", err)
			}
			fmt.Fprintln(stderr, "pl dev: host clean")
			return nil
		},
	}
	f.add(c, DefaultNodes)
	c.Flags().BoolVar(&f.cfg.Reservable, "reservable", false, "make the last node reservable once the demo runs: slivers there freeze until their slice holds a lease (pl lease add; docs/dev.md)")
	c.Flags().IntVar(&plcs, "plcs", 1, "1, or 2: two peered PLCs, each with its own sites and --nodes nodes, and a demo slice of the first on the nodes of both (docs/federation.md)")
	c.AddCommand(downCmd(), controlCmd("stop"), controlCmd("start"), controlCmd("status"))
	return c
}

// controlCmd is `pl dev stop|start|status`, sent to a running pl dev over
// its control socket.
func controlCmd(op string) *cobra.Command {
	var id string
	use, short, args := op+" <plc|node>", "", cobra.ExactArgs(1)
	switch op {
	case "stop":
		short = "Stop PLC or a node manager of the running pl dev (to try an outage); it stays stopped until started"
	case "start":
		short = "Start again PLC or a node manager stopped with pl dev stop"
	case "status":
		use, short, args = "status [plc|node]", "Show PLC and the node managers of the running pl dev: state, pid, restarts", cobra.MaximumNArgs(1)
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

pl dev supervises its pl plc and pl node processes: one that exits without
being asked to is restarted after a backoff (0.5 s doubling up to 30 s) and
the restart is reported on pl dev's stderr. Names are "plc" and the nodes'
names (n1, n2, ...) as in pl dev's summary. See docs/dev.md.`,
		Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() != 0 {
				return errors.New("pl dev " + op + " needs root (the control socket of pl dev is root's)")
			}
			req := ControlRequest{Op: op}
			if len(args) > 0 {
				req.Name = args[0]
			}
			resp, err := Control(id, req)
			if err != nil {
				return err
			}
			PrintStatus(cmd.OutOrStdout(), resp.Status)
			return nil
		},
	}
	c.Flags().StringVar(&id, "id", "", "instance id given to pl dev --id")
	return c
}

func downCmd() *cobra.Command {
	var id string
	var all bool
	c := &cobra.Command{
		Use:   "down",
		Short: "Remove everything pl dev created, also after a killed run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("pl dev down needs root")
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			prefix := wan.NamePrefix + id + "-"
			if all {
				prefix = wan.NamePrefix
			}
			n, err := DownAll(prefix, log)
			fmt.Fprintf(cmd.OutOrStdout(), "pl dev down: removed %d instance(s)\n", n)
			return err
		},
	}
	c.Flags().StringVar(&id, "id", "", "instance id given to pl dev --id")
	c.Flags().BoolVar(&all, "all", false, "remove every instance")
	return c
}

// DownAll removes every instance whose prefix starts with prefix, then any
// namespaces, links and cgroups with such names that no record describes.
// Live instances are stopped too (their processes are killed).
func DownAll(prefix string, log *slog.Logger) (int, error) {
	recs, err := LoadRecords()
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, r := range recs {
		if len(r.Prefix) < len(prefix) || r.Prefix[:len(prefix)] != prefix {
			continue
		}
		if r.PID != os.Getpid() && procStart(r.PID) != 0 && isPlDev(r.PID) {
			// A live pl dev: ask it to clean up itself first.
			syscall.Kill(r.PID, syscall.SIGTERM)
			for i := 0; i < 600 && procStart(r.PID) != 0; i++ {
				time.Sleep(50 * time.Millisecond)
			}
		}
		n++
		errs = append(errs, Down(r, log))
	}
	errs = append(errs, removeOrphanCgroups(prefix), wan.Remove(prefix))
	return n, errors.Join(errs...)
}

// removeOrphanCgroups removes top-level cgroups named after prefix: the
// instance's own ("pldev-" -> "pldev") or, for a bare "pldev", every
// instance's.
func removeOrphanCgroups(prefix string) error {
	match := func(name string) bool {
		if strings.HasSuffix(prefix, "-") {
			return name == strings.TrimSuffix(prefix, "-")
		}
		return strings.HasPrefix(name, prefix)
	}
	var errs []error
	seen := map[string]bool{}
	for _, root := range cgroupDirs("/") {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() && match(e.Name()) && !seen[e.Name()] {
				seen[e.Name()] = true
				errs = append(errs, removeCgroups("/"+e.Name()))
			}
		}
	}
	return errors.Join(errs...)
}

// helper so tests and the bench can wait on a context with a deadline.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
