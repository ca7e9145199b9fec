package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/core"
)

// leaseCmd is `pl lease add|list|rm`: reservations of reservable nodes
// (docs/brokering.md). PLC rounds times to its lease granularity and
// refuses overlapping leases.
func leaseCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "lease", Short: "Leases: reserve reservable nodes for a slice for a time window"}
	var from, until string
	add := &cobra.Command{
		Use:   "add <slice> <node>... --from T --until T",
		Short: "Reserve nodes for a slice (AddLeases); T: UNIX seconds, RFC 3339, 'YYYY-MM-DD HH:MM:SS' UTC, or +duration from now",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			tf, err := parseWhen("from", from, now)
			if err != nil {
				return err
			}
			tu, err := parseWhen("until", until, now)
			if err != nil {
				return err
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			var nodes []int64
			for _, n := range args[1:] {
				id, err := e.resolve(core.Node, n)
				if err != nil {
					return err
				}
				nodes = append(nodes, id)
			}
			ids, errs, err := e.cl.AddLeases(e.ctx, nil, nodes, sid, tf, tu)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, map[string]any{"new_ids": ids, "errors": errs})
			}
			for _, id := range ids {
				fmt.Fprintf(e.out, "lease %d\n", id)
			}
			for _, m := range errs {
				fmt.Fprintf(e.out, "refused: %s\n", m)
			}
			if len(errs) > 0 {
				return core.Errorf(core.Conflict, "%d of %d nodes refused", len(errs), len(nodes))
			}
			return nil
		}}
	add.Flags().StringVar(&from, "from", "", "start (required)")
	add.Flags().StringVar(&until, "until", "", "end (required)")
	add.MarkFlagRequired("from")
	add.MarkFlagRequired("until")

	var slice, node string
	list := &cobra.Command{
		Use:   "list [--slice S] [--node N]",
		Short: "List leases (current and future)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			f := &core.Filter{}
			if slice != "" {
				id, err := e.resolve(core.Slice, slice)
				if err != nil {
					return err
				}
				f.Terms = append(f.Terms, core.Term{Field: "slice_id", Op: core.Eq, Value: id})
			}
			if node != "" {
				id, err := e.resolve(core.Node, node)
				if err != nil {
					return err
				}
				f.Terms = append(f.Terms, core.Term{Field: "node_id", Op: core.Eq, Value: id})
			}
			recs, err := e.cl.Get(e.ctx, nil, core.Lease, f, []string{"lease_id", "name", "hostname", "t_from", "t_until"})
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, recs)
			}
			for _, r := range recs {
				for _, k := range []string{"t_from", "t_until"} {
					if v, ok := r[k].(int64); ok {
						r[k] = time.Unix(v, 0).UTC().Format("2006-01-02 15:04:05")
					}
				}
			}
			return printTable(e.out, recs, []string{"lease_id", "name", "hostname", "t_from", "t_until"})
		}}
	list.Flags().StringVar(&slice, "slice", "", "only this slice's")
	list.Flags().StringVar(&node, "node", "", "only this node's")

	rm := &cobra.Command{
		Use:   "rm <lease_id>...",
		Short: "Delete leases",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			for _, a := range args {
				id, err := strconv.ParseInt(a, 10, 64)
				if err != nil {
					return core.FieldErrorf("lease_id", "%q is not a lease id", a)
				}
				if err := e.cl.Delete(e.ctx, nil, core.Lease, id); err != nil {
					return err
				}
			}
			return nil
		}}
	cmd.AddCommand(add, list, rm)
	return cmd
}

// parseWhen reads a lease time: UNIX seconds, RFC 3339, "YYYY-MM-DD
// HH:MM:SS" (UTC) or +duration from now.
func parseWhen(field, s string, now time.Time) (int64, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil {
			return 0, core.FieldErrorf(field, "%q: %v", s, err)
		}
		return now.Add(dur).Unix(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, core.FieldErrorf(field, "%q is not a time (UNIX seconds, RFC 3339, 'YYYY-MM-DD HH:MM:SS' UTC or +duration)", s)
}
