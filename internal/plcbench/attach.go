package plcbench

import (
	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/cmdtree"
)

// Attach adds `pl bench plcapi` and `pl bench scale` to the pl command
// tree.
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

	var so ScaleOptions
	scale := &cobra.Command{
		Use:   "scale",
		Short: "PLC serving N simulated nodes (watch + report over HTTPS): 1 replica on SQLite beside 2 on PostgreSQL",
		Long: `Start PLC in this process (HTTPS on 127.0.0.1) with --nodes joined nodes and
--slices slices of --nodes-per-slice nodes, and run the nodes in a child
process (pl bench scale-nodes): each fetches its state and holds a watch
(long poll) for good. Then measure, while every watch is held: node-state
fetch p50/p99 (2,000 fetches, 32 in flight), change-to-notification
p50/p99 at the affected watchers (--changes slice renewals, each reaching
its slice's nodes, then one change reaching every node), report ingest
(2,000 nodes report once, 64 in flight), and PLC's heap and stacks per
watching node. Once with 1 replica on SQLite and, with --db, once with 2
replicas on that PostgreSQL database (changes are made through replica 1;
half the nodes watch at replica 2). Fetches and the change reaching every
node are measured twice: without the node-state cache, then with it.

With --kill-replica (and --db), instead: 2 replicas, every node watching
and reporting, renewals through replica 2, which is killed mid-run; prints
the nodes' fail-over time (p50/p99) and the number of acknowledged reports
and renewals missing from the database afterwards (must be 0). See
docs/replicas.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			so.Out = cmd.OutOrStdout()
			_, err := Scale(cmd.Context(), so)
			return err
		},
	}
	sf := scale.Flags()
	sf.IntVar(&so.Nodes, "nodes", 1000, "simulated nodes")
	sf.IntVar(&so.Slices, "slices", 1000, "slices")
	sf.IntVar(&so.NodesPerSlice, "nodes-per-slice", 10, "nodes of each slice")
	sf.IntVar(&so.Changes, "changes", 10, "slice changes timed")
	sf.StringVar(&so.DB, "db", "", "PostgreSQL DSN (an empty database) for the 2-replica case")
	sf.BoolVar(&so.NoSQLite, "no-sqlite", false, "skip the 1-replica SQLite case")
	sf.BoolVar(&so.KillReplica, "kill-replica", false, "instead: 2 replicas on --db, reports and changes flowing, replica 2 killed mid-run; prints fail-over time and the loss count (must be 0)")
	bench.AddCommand(scale)
	bench.AddCommand(&cobra.Command{
		Use:    "scale-nodes SPEC",
		Short:  "The simulated nodes of pl bench scale (its child process)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ScaleNodes(cmd.Context(), args[0], cmd.InOrStdin(), cmd.OutOrStdout())
		},
	})
}
