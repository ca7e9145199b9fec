package cli

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/slicedir"
	"github.com/spf13/cobra"
)

var sliceFieldFlags = []fieldFlag{
	{"url", "url", "slice web page (needed to renew)", kString},
	{"description", "description", "what the slice does (needed to renew)", kString},
	{"instantiation", "instantiation", "plc-instantiated (default), delegated, nm-controller, not-instantiated", kString},
	{"max-nodes", "max_nodes", "maximum number of nodes", kInt},
}

var sliceCols = []string{"slice_id", "name", "instantiation", "expires", "node_ids", "person_ids"}

func sliceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "slice", Short: "Slices: named sets of slivers across nodes"}
	create := &cobra.Command{
		Use:   "create <site>_<name> [--url U --description D]",
		Short: "Create a slice (admin, pi); it expires in 2 weeks unless renewed",
		Args:  cobra.ExactArgs(1),
	}
	cf := addFieldFlags(create, sliceFieldFlags...)
	create.RunE = func(cmd *cobra.Command, args []string) error {
		rec, err := cf.record(cmd)
		if err != nil {
			return err
		}
		rec["name"] = args[0]
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		id, err := e.cl.Add(e.ctx, nil, core.Slice, rec)
		if err != nil {
			return err
		}
		return e.created(core.Slice, args[0], id)
	}
	update := &cobra.Command{Use: "update <slice> [flags]", Short: "Change fields of a slice", Args: cobra.ExactArgs(1)}
	update.RunE = updateRunE(core.Slice, addFieldFlags(update, sliceFieldFlags...))

	cmd.AddCommand(create, update, sliceRenewCmd(), sliceShowCmd(), sliceSetCmd(), sliceUnsetCmd(),
		listCmd("list", "List slices", core.Slice, sliceCols, "site_id"),
		deleteCmd(core.Slice, "<slice>"),
		sliceAddNodesCmd(), sliceNodesCmd(), sliceSuspendCmd(false), sliceSuspendCmd(true), sliceLinksCmd(),
		membersCmd("remove-nodes", "Remove nodes from a slice", core.SliceNode, core.Node, false, "<slice> <node>..."),
		membersCmd("add-users", "Add users to a slice (admin, pi)", core.SlicePerson, core.Person, true, "<slice> <person>..."),
		membersCmd("remove-users", "Remove users from a slice (admin, pi)", core.SlicePerson, core.Person, false, "<slice> <person>..."),
	)
	return cmd
}

func membersCmd(use, short string, rel core.Relation, member core.Class, add bool, argsUse string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " " + argsUse,
		Short: short,
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return linkAll(cmd, rel, core.Slice, member, args[0], args[1:], add)
		},
	}
}

func sliceRenewCmd() *cobra.Command {
	var days int
	var until string
	cmd := &cobra.Command{
		Use:   "renew <slice> [--days N | --until TIME]",
		Short: "Extend a slice's expiry (non-admins: at most 8 weeks ahead); prints the expiry granted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var expires int64
			switch {
			case until != "" && cmd.Flags().Changed("days"):
				return usagef("give --days or --until, not both")
			case until != "":
				if n, err := strconv.ParseInt(until, 10, 64); err == nil {
					expires = n
				} else if t, err := time.Parse(time.RFC3339, until); err == nil {
					expires = t.Unix()
				} else if t, err := time.Parse("2006-01-02", until); err == nil {
					expires = t.Unix()
				} else {
					return usagef("--until %q: want UNIX seconds, RFC 3339 or YYYY-MM-DD", until)
				}
			default:
				if days <= 0 {
					return usagef("--days must be positive")
				}
				expires = time.Now().Add(time.Duration(days) * 24 * time.Hour).Unix()
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			id, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			got, err := e.cl.RenewSlice(e.ctx, nil, id, expires)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, map[string]any{"slice_id": id, "expires": got})
			}
			fmt.Fprintf(e.out, "slice %s now expires %s\n", args[0], formatValue("expires", got))
			return nil
		},
	}
	cmd.Flags().IntVar(&days, "days", 28, "renew for this many days from now")
	cmd.Flags().StringVar(&until, "until", "", "renew until this time (UNIX seconds, RFC 3339 or YYYY-MM-DD)")
	return cmd
}

func sliceShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show <slice>",
		Short: "Show a slice with its attributes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			rec, err := e.get(core.Slice, args[0])
			if err != nil {
				return err
			}
			id, _ := rec["slice_id"].(int64)
			tags, err := e.cl.Get(e.ctx, nil, core.SliceTag, &core.Filter{Terms: []core.Term{{Field: "slice_id", Op: core.Eq, Value: id}}}, nil)
			if err != nil {
				return err
			}
			// The slivers as their nodes report them (the planet table):
			// state, IPv6 address, error.
			slivers := []core.SliverRow{}
			rows, lerr := e.cl.TopSlices(e.ctx, nil, core.TopQuery{Where: fmt.Sprintf("slice_id == %d", id)})
			if lerr == nil && len(rows) == 1 {
				slivers = rows[0].Slivers
			}
			if e.json {
				if tags == nil {
					tags = []core.Record{}
				}
				rec["tags"] = tags
				rec["slivers"] = slivers
				return printJSON(e.out, rec)
			}
			if err := printRecord(e.out, rec); err != nil {
				return err
			}
			if len(tags) > 0 {
				fmt.Fprintln(e.out, "\nattributes:")
				if err := printTable(e.out, tags, []string{"slice_tag_id", "tagname", "value", "node_id", "nodegroup_id"}); err != nil {
					return err
				}
			}
			return printSlivers(e.out, slivers, lerr)
		},
	}
}

// tagScope resolves --node / --nodegroup into the slice tag scope fields.
func (e *env) tagScope(node, nodegroup string) (core.Record, error) {
	scope := core.Record{"node_id": nil, "nodegroup_id": nil}
	if node != "" && nodegroup != "" {
		return nil, usagef("give --node or --nodegroup, not both")
	}
	if node != "" {
		id, err := e.resolve(core.Node, node)
		if err != nil {
			return nil, err
		}
		scope["node_id"] = id
	}
	if nodegroup != "" {
		id, err := e.resolve(core.NodeGroup, nodegroup)
		if err != nil {
			return nil, err
		}
		scope["nodegroup_id"] = id
	}
	return scope, nil
}

// scopedTags returns the slice's tags of tagname in exactly the given scope.
func (e *env) scopedTags(sliceID int64, tagname string, scope core.Record) ([]core.Record, error) {
	tags, err := e.cl.Get(e.ctx, nil, core.SliceTag, &core.Filter{Terms: []core.Term{
		{Field: "slice_id", Op: core.Eq, Value: sliceID},
		{Field: "tagname", Op: core.Eq, Value: tagname},
	}}, nil)
	if err != nil {
		return nil, err
	}
	var out []core.Record
	for _, t := range tags {
		if sameID(t["node_id"], scope["node_id"]) && sameID(t["nodegroup_id"], scope["nodegroup_id"]) {
			out = append(out, t)
		}
	}
	return out, nil
}

func sameID(a, b any) bool {
	norm := func(v any) int64 {
		if n, ok := v.(int64); ok {
			return n
		}
		return 0
	}
	return norm(a) == norm(b)
}

func sliceSetCmd() *cobra.Command {
	var node, nodegroup string
	var multi bool
	cmd := &cobra.Command{
		Use:   "set <slice> <tagname> <value> [--node N | --nodegroup G]",
		Short: "Set a slice attribute (tag), for all nodes or scoped to a node or nodegroup",
		Long: `Set a slice attribute. Without --add, an existing value of the tag in the
same scope is replaced; with --add another value is added (multi-valued tags
such as vsys). Precedence on a node: --node over --nodegroup over global.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			ttid, err := e.resolve(core.TagType, args[1])
			if err != nil {
				return err
			}
			scope, err := e.tagScope(node, nodegroup)
			if err != nil {
				return err
			}
			if !multi {
				existing, err := e.scopedTags(sid, args[1], scope)
				if err != nil {
					return err
				}
				if len(existing) == 1 {
					tid, _ := existing[0]["slice_tag_id"].(int64)
					if err := e.cl.Update(e.ctx, nil, core.SliceTag, tid, core.Record{"value": args[2]}); err != nil {
						return err
					}
					return e.done(fmt.Sprintf("%s %s = %s", args[0], args[1], args[2]))
				}
				if len(existing) > 1 {
					return core.Errorf(core.Conflict, "%s has %d values of %s in this scope; use --add, or unset it first", args[0], len(existing), args[1])
				}
			}
			rec := core.Record{"slice_id": sid, "tag_type_id": ttid, "value": args[2]}
			for k, v := range scope {
				if v != nil {
					rec[k] = v
				}
			}
			if _, err := e.cl.Add(e.ctx, nil, core.SliceTag, rec); err != nil {
				return err
			}
			return e.done(fmt.Sprintf("%s %s = %s", args[0], args[1], args[2]))
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "only on this node (sliver attribute)")
	cmd.Flags().StringVar(&nodegroup, "nodegroup", "", "only on nodes of this nodegroup (admin)")
	cmd.Flags().BoolVar(&multi, "add", false, "add another value instead of replacing")
	return cmd
}

func sliceUnsetCmd() *cobra.Command {
	var node, nodegroup, value string
	cmd := &cobra.Command{
		Use:   "unset <slice> <tagname> [--value V] [--node N | --nodegroup G]",
		Short: "Remove a slice attribute in a scope (every value, or only --value)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			if _, err := e.resolve(core.TagType, args[1]); err != nil {
				return err
			}
			scope, err := e.tagScope(node, nodegroup)
			if err != nil {
				return err
			}
			tags, err := e.scopedTags(sid, args[1], scope)
			if err != nil {
				return err
			}
			n := 0
			for _, t := range tags {
				if cmd.Flags().Changed("value") && t["value"] != value {
					continue
				}
				tid, _ := t["slice_tag_id"].(int64)
				if err := e.cl.Delete(e.ctx, nil, core.SliceTag, tid); err != nil {
					return err
				}
				n++
			}
			if n == 0 {
				return core.Errorf(core.NotFound, "slice %s has no %s attribute in that scope", args[0], args[1])
			}
			return e.done(fmt.Sprintf("%s removed from %s", pluralize(n, args[1]+" value"), args[0]))
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the value scoped to this node")
	cmd.Flags().StringVar(&nodegroup, "nodegroup", "", "the value scoped to this nodegroup")
	cmd.Flags().StringVar(&value, "value", "", "only this value")
	return cmd
}

// sliceNodesCmd lists where a slice's slivers are: each node's host name
// and address (its primary interface's IP, as `pl ssh` dials it). Tools
// that talk to every sliver (tracerouteclnt --slice) read its --json.
func sliceNodesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "nodes <slice>",
		Short: "List the nodes of a slice with their addresses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			nodes, err := slicedir.RegistryDirectory{Reg: e.cl}.SliceNodes(e.ctx, args[0])
			if err != nil {
				return err
			}
			recs := make([]core.Record, 0, len(nodes))
			for _, n := range nodes {
				host, _, err := net.SplitHostPort(n.Addr)
				if err != nil {
					host = n.Addr
				}
				recs = append(recs, core.Record{"hostname": n.Hostname, "address": host})
			}
			if e.json {
				return printJSON(e.out, recs)
			}
			return printTable(e.out, recs, []string{"hostname", "address"})
		},
	}
}

// printSlivers prints a slice's slivers as `pl slice show` does: node,
// state, IPv6 address and error, as the nodes report them.
func printSlivers(w io.Writer, slivers []core.SliverRow, err error) error {
	if err != nil {
		_, err = fmt.Fprintf(w, "\nslivers: not shown (%v)\n", err)
		return err
	}
	if len(slivers) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nslivers (as their nodes report them):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tIPV6\tERROR")
	for _, s := range slivers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Hostname, s.State, orDash(s.IPv6), orDash(s.Error))
	}
	return tw.Flush()
}
