package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

// topCmd is `pl top nodes|slices`: the planet table (docs/monitoring.md).
func topCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "top", Short: "The planet table: every node's health and load, every slice's usage"}
	var nq, sq core.TopQuery
	flags := func(c *cobra.Command, q *core.TopQuery, sortDefault string) {
		c.Flags().StringVar(&q.Where, "where", "", `query, e.g. 'load < 2 && disk_free_gb > 5 && country in ["JP","BR"]'`)
		c.Flags().StringVar(&q.Sort, "sort", sortDefault, "columns to sort by, comma-separated; -col descends")
		c.Flags().IntVar(&q.Limit, "limit", 0, "at most this many rows (0 = all)")
	}
	nodes := &cobra.Command{Use: "nodes", Short: "One row per node (public)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			rows, err := e.cl.TopNodes(e.ctx, nil, nq)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, nonNilSlice(rows))
			}
			return printNodeRows(e.out, rows, time.Now())
		}}
	flags(nodes, &nq, "hostname")
	slices := &cobra.Command{Use: "slices", Short: "One row per slice you may read (members, the site's PIs, admins)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			rows, err := e.cl.TopSlices(e.ctx, nil, sq)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, nonNilSlice(rows))
			}
			return printSliceRows(e.out, rows)
		}}
	flags(slices, &sq, "-cpu_cores,name")
	cmd.AddCommand(nodes, slices)
	return cmd
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func ago(now time.Time, t int64) string {
	if t == 0 {
		return "never"
	}
	d := now.Sub(time.Unix(t, 0)).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func printNodeRows(w io.Writer, rows []core.NodeRow, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOSTNAME\tSITE\tCC\tSTATUS\tCONTACT\tLOAD\tCPU%\tMEM%\tDISK_FREE_GB\tSLIVERS\tSSH\tTOP_CPU\tTOP_BW\tCLOCK_MS\tVERSION")
	for _, r := range rows {
		clock := "-"
		if r.ClockKnown {
			clock = strconv.FormatInt(r.ClockOffsetMs, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.0f\t%.0f\t%.1f\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Hostname, orDash(r.Site), orDash(r.Country),
			r.Status, ago(now, r.LastContact), r.Load, r.CPUPct, r.MemPct, r.DiskFreeGB, r.Slivers, r.SSH,
			orDash(strings.Join(r.TopCPU, ",")), orDash(strings.Join(r.TopBW, ",")), clock, orDash(r.Version))
	}
	return tw.Flush()
}

func printSliceRows(w io.Writer, rows []core.SliceRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLICE\tNODES\tRUNNING\tCPU_CORES\tMAX_CPU%\tMEM_GB\tRX_KBPS\tTX_KBPS\tERRORS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%.2f\t%.0f\t%.0f\t%d\n", r.Name, r.Nodes, r.Running, r.CPUCores, r.MaxCPU, r.MemGB, r.RxKbps, r.TxKbps, r.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		for _, s := range r.Slivers {
			if s.Error != "" {
				fmt.Fprintf(w, "error: %s on %s: %s\n", r.Name, s.Hostname, s.Error)
			}
		}
	}
	return nil
}

// sliceAddNodesCmd is `pl slice add-nodes`: named nodes, or nodes chosen
// by measurement (--where, --per-site, --count, --near).
func sliceAddNodesCmd() *cobra.Command {
	var sel core.NodeSelection
	cmd := &cobra.Command{
		Use:   "add-nodes <slice> (<node>... | --where <query> [--per-site N] [--count N] [--near <site>|<lat,lon>] [--dry-run])",
		Short: "Add nodes to a slice: by name, or chosen by what they measure",
		Long: `Add nodes to a slice. Name them, or let PLC choose from the planet table:
up nodes matching --where (the query language of 'pl top'), nearest to
--near first (great-circle distance; a site login_base or lat,lon) or else
least loaded, at most --per-site per site and --count in all.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			selecting := sel.Where != "" || sel.PerSite != 0 || sel.Count != 0 || sel.Near != "" || sel.DryRun
			if !selecting {
				if len(args) < 2 {
					return usageErr(fmt.Errorf("name nodes or choose them with --where, --per-site, --count or --near"))
				}
				return linkAll(cmd, core.SliceNode, core.Slice, core.Node, args[0], args[1:], true)
			}
			if len(args) > 1 {
				return usageErr(fmt.Errorf("name nodes or choose them with --where/--count/--near, not both"))
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			id, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			chosen, err := e.cl.SelectNodes(e.ctx, nil, id, sel)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, nonNilSlice(chosen))
			}
			tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOSTNAME\tSITE\tLOAD\tDISTANCE_KM")
			for _, c := range chosen {
				dist := "-"
				if sel.Near != "" {
					dist = fmt.Sprintf("%.0f", c.DistanceKm)
				}
				fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\n", c.Hostname, c.Site, c.Load, dist)
			}
			tw.Flush()
			verb := "added to"
			if sel.DryRun {
				verb = "would be added to"
			}
			_, err = fmt.Fprintf(e.out, "%s %s slice %s\n", pluralize(len(chosen), "node"), verb, args[0])
			return err
		},
	}
	cmd.Flags().StringVar(&sel.Where, "where", "", "query the nodes must match (see 'pl top nodes')")
	cmd.Flags().IntVar(&sel.PerSite, "per-site", 0, "at most this many nodes per site (0 = no limit)")
	cmd.Flags().IntVar(&sel.Count, "count", 0, "at most this many nodes (0 = every match)")
	cmd.Flags().StringVar(&sel.Near, "near", "", "prefer nodes near a site (login_base) or a point (lat,lon)")
	cmd.Flags().BoolVar(&sel.DryRun, "dry-run", false, "print the choice without adding")
	return cmd
}

// sliceSuspendCmd is `pl slice suspend|resume <slice> --reason R` (admin).
func sliceSuspendCmd(resume bool) *cobra.Command {
	var reason string
	use, short := "suspend", "Stop a slice on every node (admin), with a reason; recorded in the monitor's log"
	if resume {
		use, short = "resume", "Lift every suspension of a slice (admin), with a reason; recorded in the monitor's log"
	}
	cmd := &cobra.Command{Use: use + " <slice> --reason <text>", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			id, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			if resume {
				err = e.cl.ResumeSlice(e.ctx, nil, id, reason)
			} else {
				err = e.cl.SuspendSlice(e.ctx, nil, id, reason)
			}
			if err != nil {
				return err
			}
			return e.done("slice " + args[0] + " " + use + "d")
		}}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded)")
	return cmd
}

// monitorCmd is `pl monitor actions|notices`.
func monitorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "monitor", Short: "The monitor's log: actions (admin) and notices to sites"}
	var since int64
	var limit int
	actions := &cobra.Command{Use: "actions", Short: "Nodes marked down and up, site penalties, slice suspensions (admin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			acts, err := e.cl.MonitorActions(e.ctx, nil, since, limit)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, nonNilSlice(acts))
			}
			tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAT\tKIND\tNODE\tSITE\tSLICE\tLEVEL\tACTOR\tREASON")
			for _, a := range acts {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", a.ActionID, time.Unix(a.At, 0).UTC().Format(time.RFC3339), a.Kind, a.NodeID, a.SiteID, a.SliceID, a.Level, a.Actor, a.Reason)
			}
			return tw.Flush()
		}}
	notices := &cobra.Command{Use: "notices", Short: "Notices to sites' contacts (admin: all; pi, tech: your sites')", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			ns, err := e.cl.Notices(e.ctx, nil, since, limit)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, nonNilSlice(ns))
			}
			tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAT\tSITE\tTO\tSUBJECT")
			for _, n := range ns {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", n.NoticeID, time.Unix(n.At, 0).UTC().Format(time.RFC3339), n.SiteID, strings.Join(n.Recipients, ","), n.Subject)
			}
			return tw.Flush()
		}}
	for _, c := range []*cobra.Command{actions, notices} {
		c.Flags().Int64Var(&since, "since", 0, "only entries after this id")
		c.Flags().IntVar(&limit, "limit", 0, "at most this many (default and maximum 1000)")
	}
	cmd.AddCommand(actions, notices)
	return cmd
}
