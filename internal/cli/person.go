package cli

import (
	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var personFieldFlags = []fieldFlag{
	{"first", "first_name", "first name", kString},
	{"last", "last_name", "last name", kString},
	{"title", "title", "title", kString},
	{"phone", "phone", "phone number", kString},
	{"url", "url", "home page", kString},
	{"bio", "bio", "short biography", kString},
}

var personCols = []string{"person_id", "email", "first_name", "last_name", "enabled", "roles", "site_ids"}

func personCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "person", Short: "Persons: accounts, roles and site membership"}
	cmd.AddCommand(personAddCmd(), personUpdateCmd(),
		listCmd("list", "List persons", core.Person, personCols, "site_ids"),
		showCmd(core.Person, "<person>"),
		deleteCmd(core.Person, "<person>"),
		setFieldCmd("enable", "Enable a person's account (admin, or pi of a shared site)", core.Person, "enabled", true),
		setFieldCmd("disable", "Disable a person's account", core.Person, "enabled", false),
		relationCmd("role", "Grant or revoke roles", core.PersonRole, core.Person, core.Role, "<person> <role>"),
		personSiteCmd(),
	)
	return cmd
}

// personAddCmd is "pl person add".
func personAddCmd() *cobra.Command {
	var passwordFile string
	var sites, roles []string
	add := &cobra.Command{
		Use:   "add <email> --first F --last L [--site S]... [--role R]...",
		Short: "Create a person (admin, pi); new accounts are disabled until enabled",
		Args:  cobra.ExactArgs(1),
	}
	addFields := addFieldFlags(add, personFieldFlags...)
	add.Flags().StringVar(&passwordFile, "password-file", "", "initial password from this file (first line)")
	add.Flags().StringArrayVar(&sites, "site", nil, "add the person to this site (first = primary); repeatable")
	add.Flags().StringArrayVar(&roles, "role", nil, "grant this role (user, tech, pi, admin); repeatable")
	add.RunE = func(cmd *cobra.Command, args []string) error {
		rec, err := addFields.record(cmd)
		if err != nil {
			return err
		}
		rec["email"] = args[0]
		if passwordFile != "" {
			pw, err := readPassword(passwordFile, "", "")
			if err != nil {
				return err
			}
			rec["password"] = pw
		}
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		// Resolve every reference first so a typo leaves nothing behind.
		siteIDs := make([]int64, len(sites))
		for i, s := range sites {
			if siteIDs[i], err = e.resolve(core.Site, s); err != nil {
				return err
			}
		}
		roleIDs := make([]int64, len(roles))
		for i, r := range roles {
			if roleIDs[i], err = e.resolve(core.Role, r); err != nil {
				return err
			}
		}
		id, err := e.cl.Add(e.ctx, nil, core.Person, rec)
		if err != nil {
			return err
		}
		// A PI's new person already belongs to the PI's primary site.
		have := map[int64]bool{}
		if len(siteIDs) > 0 {
			recs, err := e.cl.Get(e.ctx, nil, core.Person, &core.Filter{IsList: true, IDs: []int64{id}}, []string{"site_ids"})
			if err != nil {
				return err
			}
			if len(recs) == 1 {
				sids, _ := recs[0]["site_ids"].([]int64)
				for _, sid := range sids {
					have[sid] = true
				}
			}
		}
		for _, sid := range siteIDs {
			if have[sid] {
				continue
			}
			if err := e.cl.Link(e.ctx, nil, core.PersonSite, id, sid, nil); err != nil {
				return err
			}
		}
		for _, rid := range roleIDs {
			if err := e.cl.Link(e.ctx, nil, core.PersonRole, id, rid, nil); err != nil {
				return err
			}
		}
		return e.created(core.Person, args[0], id)
	}
	return add
}

// personUpdateCmd is "pl person update", with --password-file.
func personUpdateCmd() *cobra.Command {
	update := &cobra.Command{Use: "update <person> [flags]", Short: "Change fields of a person", Args: cobra.ExactArgs(1)}
	updFields := addFieldFlags(update, append(personFieldFlags, fieldFlag{"email", "email", "new email", kString})...)
	var newPasswordFile string
	update.Flags().StringVar(&newPasswordFile, "password-file", "", "set the password from this file (first line)")
	update.RunE = func(cmd *cobra.Command, args []string) error {
		if newPasswordFile != "" {
			pw, err := readPassword(newPasswordFile, "", "")
			if err != nil {
				return err
			}
			updFields.set = append(updFields.set, "password="+jsonString(pw))
		}
		return updateRunE(core.Person, updFields)(cmd, args)
	}
	return update
}

// setFieldCmd sets one field of an object to a fixed value.
func setFieldCmd(use, short string, class core.Class, field string, value any) *cobra.Command {
	return &cobra.Command{
		Use:   use + " <" + string(class) + ">",
		Short: short,
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
			if err := e.cl.Update(e.ctx, nil, class, id, core.Record{field: value}); err != nil {
				return err
			}
			return e.done(string(class) + " " + args[0] + " " + use + "d")
		},
	}
}

// relationCmd builds "<name> add|remove <a> <b>..." for a relation.
func relationCmd(name, short string, rel core.Relation, a, b core.Class, argsUse string) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short}
	for _, verb := range []string{"add", "remove"} {
		cmd.AddCommand(&cobra.Command{
			Use:   verb + " " + argsUse + "...",
			Short: verb + " " + string(b) + "s",
			Args:  cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				return linkAll(cmd, rel, a, b, args[0], args[1:], verb == "add")
			},
		})
	}
	return cmd
}

// linkAll adds or removes members of a relation, resolving every name first.
func linkAll(cmd *cobra.Command, rel core.Relation, a, b core.Class, aRef string, bRefs []string, add bool) error {
	e, err := newEnv(cmd)
	if err != nil {
		return err
	}
	aid, err := e.resolve(a, aRef)
	if err != nil {
		return err
	}
	bids := make([]int64, len(bRefs))
	for i, r := range bRefs {
		if bids[i], err = e.resolve(b, r); err != nil {
			return err
		}
	}
	for _, bid := range bids {
		if add {
			err = e.cl.Link(e.ctx, nil, rel, aid, bid, nil)
		} else {
			err = e.cl.Unlink(e.ctx, nil, rel, aid, bid)
		}
		if err != nil {
			return err
		}
	}
	verb := "removed from"
	if add {
		verb = "added to"
	}
	return e.done(pluralize(len(bRefs), string(b)) + " " + verb + " " + string(a) + " " + aRef)
}

func personSiteCmd() *cobra.Command {
	cmd := relationCmd("site", "Add or remove site membership, or set the primary site", core.PersonSite, core.Person, core.Site, "<person> <site>")
	cmd.AddCommand(&cobra.Command{
		Use:   "primary <person> <site>",
		Short: "Make a site the person's primary site",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			pid, err := e.resolve(core.Person, args[0])
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Site, args[1])
			if err != nil {
				return err
			}
			if err := e.cl.SetPersonPrimarySite(e.ctx, nil, pid, sid); err != nil {
				return err
			}
			return e.done("primary site of " + args[0] + " is now " + args[1])
		},
	})
	return cmd
}
