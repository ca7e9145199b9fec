package plcbench

import (
	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/cmdtree"
)

// Attach adds `pl bench plcapi` to the pl command tree.
func Attach(root *cobra.Command) {
	bench := cmdtree.Sub(root, "bench", "Benchmarks of the running system")
	var o Options
	cmd := &cobra.Command{
		Use:   "plcapi",
		Short: "PLCAPI with password auth and one client: our PLC beside the original",
		Long: `Start our PLC in this process (plain HTTP on 127.0.0.1) and, with --original,
the original Python PLCAPI (its start script, start-plcref.sh: needs root,
PostgreSQL and python3-lxml), populate both with the same registry through
the same XML-RPC calls, and time AuthCheck, GetNodes (100 and all nodes,
every field) and GetSlices (every field) with password authentication and
one sequential client. Prints p50, p99 and calls/s side by side, and a floor:
the same client against a canned answer. With SQLite, ours runs twice: with
its read cache (the repeated calls are served from it) and without
("no-cache": every call reads the store).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			return Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", 1000, "nodes in the registry")
	f.IntVar(&o.Slices, "slices", 20, "slices in the registry (50 nodes each)")
	f.DurationVar(&o.Duration, "duration", 3e9, "time per case and server")
	f.IntVar(&o.MinCalls, "min-calls", 10, "at least this many timed calls per case and server")
	f.StringVar(&o.DB, "db", "", "our store: postgres://... DSN (default: SQLite in a temporary directory)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the timed calls (our server and the client) to this file")
	f.StringVar(&o.Original, "original", "", "path of the original's start-plcref.sh (default: measure ours only)")
	bench.AddCommand(cmd)
}
