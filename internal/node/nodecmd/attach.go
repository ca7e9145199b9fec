// Package nodecmd holds the node-side commands of pl: `pl node` (the node
// manager daemon), `pl node join`, `pl node image ...` and `pl bench
// sliver`. Node (node.go) assembles agent, sliver runtime, networking and
// SSH gateway so tests and `pl dev` can run a whole node in-process.
package nodecmd

import (
	"context"
	"fmt"
	"github.com/planetlab/pl/internal/node/sensors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/cmdtree"
	"github.com/planetlab/pl/internal/node/image"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Attach adds this package's commands to the pl command tree.
func Attach(root *cobra.Command) {
	node := cmdtree.Sub(root, "node", "Node manager and nodes")
	attachDaemon(node)
	node.AddCommand(joinCmd(), imageCmd(), gatewayCmd())
	bench := cmdtree.Sub(root, "bench", "Benchmarks")
	bench.AddCommand(benchSliverCmd(), benchReconnectCmd())
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// signalContext cancels on the first SIGINT/SIGTERM; a second one exits
// at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "pl: second signal, exiting now")
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

func attachDaemon(node *cobra.Command) {
	var o Options
	var logLevel string
	node.Long = `Without a subcommand, run the node manager: follow PLC's desired state for
this node, create, update and destroy slivers to match, and serve ssh into
slivers. Run as root. Join the node first with 'pl node join'.

Stopping the node manager leaves slivers running; the next start adopts them.`
	f := node.Flags()
	f.StringVar(&o.State, "state", DefaultStateDir, "state directory (identity, cache, images, slivers)")
	f.StringVar(&o.SSHListen, "ssh-listen", ":22", "SSH gateway listen address (\"-\" = no gateway)")
	f.StringVar(&o.Uplink, "uplink", "", "uplink interface (default: the default route's)")
	f.StringVar(&o.NodeAddr, "node-addr", "", "public IPv4 address (default: the uplink's first)")
	f.StringVar(&o.Prefix, "prefix", "", "sliver address space (default 10.42.0.0/16)")
	f.StringVar(&o.Prefix6, "ipv6-prefix", "", "IPv6 prefix routed to this node: each sliver gets <prefix>::1:<xid in hex> (at most a /111; default none: slivers are IPv4-only)")
	f.Int64Var(&o.CapKbit, "node-cap-kbit", 0, "node-wide egress cap in kbit/s (default 1 Gbit/s)")
	f.StringVar(&o.NetNS, "netns", "", "the node's network namespace path (default: this process's)")
	f.StringVar(&o.NFTable, "nft-table", "", "nftables table owned by the node manager (default pl)")
	f.StringVar(&o.VethPrefix, "veth-prefix", "", "prefix of node-side veth names (default plv)")
	f.StringVar(&o.CgroupParent, "cgroup-parent", "", "cgroup under which slivers live (default /pl)")
	f.StringVar(&o.DiskDir, "disk-dir", "", "btrfs directory for sliver writable layers with qgroup quotas (default: a loop-mounted btrfs image in the state directory)")
	f.IntVar(&o.Parallel, "parallel", 8, "sliver operations run concurrently")
	f.StringVar(&o.APIClient, "api-client", "", "static pl binary bound read-only at /run/pl/pl in slivers with nm_api=1, their client of the local API (default: this program if statically linked; \"-\" = none)")
	f.StringVar(&o.APISocket, "api-socket", "", "the node manager's local API socket (default <state>/api.sock; \"-\" = none; docs/brokering.md)")
	f.StringVar(&o.VsysDir, "vsys-dir", "", "directory of the operator's scripts of privileged operations, one executable per operation, root's and writable by nobody else (docs/brokering.md; default none)")
	f.StringVar(&o.DatasetDir, "vsys-datasets", "", "directory of the node's datasets, one directory each, that slices granted vsys dataset may attach read-only (default none)")
	f.DurationVar(&o.VsysTimeout, "vsys-timeout", 30*time.Second, "how long an operator script may run before it is killed")
	f.StringVar(&o.SensorAddr, "sensor-addr", sensors.DefaultAddr, "sensor server address: JSON sensors, SSE streams, Prometheus /metrics (\"-\" = none)")
	f.StringVar((*string)(&o.SensorSlivers), "sensor-slivers", string(sensors.Local), "who may read per-sliver figures on the sensor server: local (loopback clients) or public")
	f.Int64Var(&o.DailyKByte, "net-max-kbyte", 0, "daily egress budget in KiB of slices without the net_max_kbyte tag (0 = 10546875, as the original; -1 = none)")
	f.DurationVar(&o.BwmonInterval, "bwmon-interval", 30*time.Second, "how often bwmon reads the slivers' byte counters against their daily budgets, 1s..1h")
	f.BoolVar(&o.NoFlows, "no-flows", false, "do not record flows (the accountability log, docs/audit.md); PLC then cannot tell which slice sent what from this node")
	f.BoolVar(&o.Codemux, "codemux", false, "share the node's ports 80 and 443 among slices by host name (codemux slice tag, docs/networks.md); no slice may then reserve them")
	f.StringVar(&o.CodemuxHTTP, "codemux-http", ":80", "address of codemux's HTTP listener (Host header)")
	f.StringVar(&o.CodemuxTLS, "codemux-tls", ":443", "address of codemux's TLS listener (server name, passed through)")
	f.DurationVar(&o.ReportInterval, "report-interval", 15*time.Second, "period of the reports to PLC (run level, sliver errors, sensor figures), 1s..1h")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	node.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for \"pl node\"", args[0])
		}
		log, err := newLogger(logLevel)
		if err != nil {
			return err
		}
		o.Logger = log
		// The SSH gateway runs as `pl node sshgw`, supervised (gateway.go).
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.GatewayCommand = []string{exe, "node", "sshgw", "--log-level", logLevel}
		ctx, stop := signalContext()
		defer stop()
		n, err := NewNode(ctx, o)
		if err != nil {
			return err
		}
		defer n.Close()
		log.Info("node manager starting", "version", Version, "state", o.State)
		err = n.Run(ctx)
		log.Info("node manager stopped; slivers keep running")
		return err
	}
}

// gatewayFlags binds the gateway process's flags to o.
func gatewayFlags(f *pflag.FlagSet, o *GatewayOptions) {
	f.StringVar(&o.State, "state", DefaultStateDir, "the node manager's state directory")
	f.StringVar(&o.Listen, "listen", ":22", "listen address")
	f.StringVar(&o.CgroupParent, "cgroup-parent", "", "the slivers' cgroup parent (default /pl); the gateway runs in <parent>/pl-sshgw")
}

func gatewayCmd() *cobra.Command {
	var o GatewayOptions
	var logLevel string
	c := &cobra.Command{
		Use:   "sshgw",
		Short: "Run the SSH gateway process (started and supervised by the node manager)",
		Long: `Serve ssh into slivers from <state>/sshgw/slices.json, which the node manager
keeps up to date. The node manager starts this process, restarts it when it
dies and adopts it across its own restarts, so that logins survive the node
manager being down; there is no need to run it by hand.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			o.Logger = log
			ctx, stop := signalContext()
			defer stop()
			return RunGateway(ctx, o)
		},
	}
	gatewayFlags(c.Flags(), &o)
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return c
}

func joinCmd() *cobra.Command {
	var state string
	c := &cobra.Command{
		Use:   "join <plc-url> <token>",
		Short: "Join this node to PLC with a one-time token from 'pl node register'",
		Long: `Exchange the one-time token printed by 'pl node register' for this node's
permanent key. PLC's certificate is pinned by the fingerprint in the token.
Writes <state>/node.json (mode 0600) and creates the node's SSH host key
<state>/ssh_host_ed25519_key if absent; its public key is sent to PLC.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			nf, err := Join(ctx, state, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "joined %s as node %d (%s); identity in %s\n", nf.PLCURL, nf.NodeID, nf.Hostname, state)
			return nil
		},
	}
	c.Flags().StringVar(&state, "state", DefaultStateDir, "state directory")
	return c
}

func imageCmd() *cobra.Command {
	var state string
	c := &cobra.Command{
		Use:   "image",
		Short: "Manage the node's reference images (slice tag vref)",
	}
	c.PersistentFlags().StringVar(&state, "state", DefaultStateDir, "state directory")
	open := func() (*image.Store, error) {
		return image.Open(state + "/images")
	}
	c.AddCommand(&cobra.Command{
		Use:   "import <name> <rootfs.tar[.gz]|directory>",
		Short: "Import a reference image from a root filesystem tarball or directory",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			fi, err := os.Stat(args[1])
			if err != nil {
				return err
			}
			if fi.IsDir() {
				err = s.ImportDir(cmd.Context(), args[0], args[1])
			} else {
				err = s.ImportFile(cmd.Context(), args[0], args[1])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported image %s\n", args[0])
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "build-default",
		Short: "Build the built-in busybox image \"default\" if it does not exist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			return s.EnsureDefault(cmd.Context())
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List reference images and the slivers using them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			infos, err := s.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tCREATED\tSLIVERS")
			for _, in := range infos {
				fmt.Fprintf(w, "%s\t%s\t%d\n", in.Name, in.Created.UTC().Format(time.RFC3339), len(in.Users))
			}
			return w.Flush()
		},
	})
	c.AddCommand(&cobra.Command{
		Use:     "rm <name>",
		Aliases: []string{"remove"},
		Short:   "Remove a reference image no sliver uses",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			return s.Remove(args[0])
		},
	})
	return c
}
