package cli

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var siteFieldFlags = []fieldFlag{
	{"name", "name", "full name", kString},
	{"abbrev", "abbreviated_name", "abbreviated name", kString},
	{"url", "url", "web site", kString},
	{"max-slices", "max_slices", "maximum number of slices (admin)", kInt},
	{"max-slivers", "max_slivers", "maximum number of slivers (admin)", kInt},
	{"latitude", "latitude", "latitude (-90..90)", kFloat},
	{"longitude", "longitude", "longitude (-180..180)", kFloat},
	{"enabled", "enabled", "site enabled", kBool},
	{"public", "is_public", "site is public", kBool},
}

var siteCols = []string{"site_id", "login_base", "name", "enabled", "max_slices", "node_ids", "slice_ids"}

func siteCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "site", Short: "Sites: the institutions that host nodes and own slices"}
	add := &cobra.Command{
		Use:   "add <login_base> --name NAME [--abbrev ABBR] [flags]",
		Short: "Create a site (admin)",
		Args:  cobra.ExactArgs(1),
	}
	addFields := addFieldFlags(add, siteFieldFlags...)
	add.RunE = func(cmd *cobra.Command, args []string) error {
		rec, err := addFields.record(cmd)
		if err != nil {
			return err
		}
		rec["login_base"] = args[0]
		if _, ok := rec["abbreviated_name"]; !ok {
			if n, ok := rec["name"].(string); ok {
				rec["abbreviated_name"] = abbreviate(n)
			}
		}
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		id, err := e.cl.Add(e.ctx, nil, core.Site, rec)
		if err != nil {
			return err
		}
		return e.created(core.Site, args[0], id)
	}
	update := &cobra.Command{Use: "update <site> [flags]", Short: "Change fields of a site", Args: cobra.ExactArgs(1)}
	updFields := addFieldFlags(update, append(siteFieldFlags, fieldFlag{"login-base", "login_base", "login base (admin)", kString})...)
	update.RunE = updateRunE(core.Site, updFields)
	cmd.AddCommand(add, update,
		listCmd("list", "List sites", core.Site, siteCols, ""),
		showCmd(core.Site, "<site>"),
		deleteCmd(core.Site, "<site>"),
	)
	return cmd
}

// abbreviate derives a default abbreviated name (at most 50 bytes).
func abbreviate(name string) string {
	if len(name) <= 50 {
		return name
	}
	b := []byte(name[:50])
	for len(b) > 0 && b[len(b)-1]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		b = b[:len(b)-1]
	}
	if len(b) > 0 && b[len(b)-1] >= 0xC0 {
		b = b[:len(b)-1]
	}
	return string(b)
}

// listCmd lists a class, optionally filtered by --site.
func listCmd(use, short string, class core.Class, cols []string, siteField string) *cobra.Command {
	var site string
	var filter string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			f, err := e.siteFilter(site, siteField)
			if err != nil {
				return err
			}
			if filter != "" {
				if f != nil {
					return usagef("give --site or --filter, not both")
				}
				if f, err = parseFilterFlag(filter); err != nil {
					return err
				}
			}
			return e.list(class, f, cols)
		},
	}
	if siteField != "" {
		cmd.Flags().StringVar(&site, "site", "", "only objects of this site")
	}
	cmd.Flags().StringVar(&filter, "filter", "", `PLCAPI-style JSON filter, e.g. '{"enabled":true}'`)
	return cmd
}

func showCmd(class core.Class, arg string) *cobra.Command {
	return &cobra.Command{
		Use:   "show " + arg,
		Short: "Show one " + string(class),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			return e.show(class, args[0])
		},
	}
}

func deleteCmd(class core.Class, arg string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete " + arg,
		Short: "Delete a " + string(class),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			id, err := e.resolve(class, args[0])
			if err != nil {
				return err
			}
			if err := e.cl.Delete(e.ctx, nil, class, id); err != nil {
				return err
			}
			return e.done(string(class) + " " + args[0] + " deleted")
		},
	}
}

func updateRunE(class core.Class, fs *fieldSet) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		rec, err := fs.record(cmd)
		if err != nil {
			return err
		}
		if len(rec) == 0 {
			return usagef("nothing to change: give at least one field flag or --set")
		}
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		id, err := e.resolve(class, args[0])
		if err != nil {
			return err
		}
		if err := e.cl.Update(e.ctx, nil, class, id, rec); err != nil {
			return err
		}
		return e.done(string(class) + " " + args[0] + " updated")
	}
}
