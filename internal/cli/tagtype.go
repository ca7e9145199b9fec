package cli

import (
	"os"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var tagTypeCols = []string{"tag_type_id", "tagname", "category", "roles", "description"}

func tagTypeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tagtype", Short: "Tag types: the attribute names slices, nodes, ... may carry"}
	var roles []string
	add := &cobra.Command{Use: "add <tagname> [--description D] [--category C] [--role R]...", Short: "Create a tag type (admin)", Args: cobra.ExactArgs(1)}
	fs := addFieldFlags(add,
		fieldFlag{"description", "description", "what the tag means", kString},
		fieldFlag{"category", "category", "free-text category, e.g. slice/config", kString},
	)
	add.Flags().StringArrayVar(&roles, "role", nil, "a non-admin role allowed to write the tag (pi, user, tech, node); repeatable")
	add.RunE = func(cmd *cobra.Command, args []string) error {
		rec, err := fs.record(cmd)
		if err != nil {
			return err
		}
		rec["tagname"] = args[0]
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		rids := make([]int64, len(roles))
		for i, r := range roles {
			if rids[i], err = e.resolve(core.Role, r); err != nil {
				return err
			}
		}
		id, err := e.cl.Add(e.ctx, nil, core.TagType, rec)
		if err != nil {
			return err
		}
		for _, rid := range rids {
			if err := e.cl.Link(e.ctx, nil, core.TagTypeRole, id, rid, nil); err != nil {
				return err
			}
		}
		return e.created(core.TagType, args[0], id)
	}
	update := &cobra.Command{Use: "update <tagname> [flags]", Short: "Change a tag type", Args: cobra.ExactArgs(1)}
	update.RunE = updateRunE(core.TagType, addFieldFlags(update,
		fieldFlag{"description", "description", "what the tag means", kString},
		fieldFlag{"category", "category", "category", kString}))
	cmd.AddCommand(add, update,
		listCmd("list", "List tag types", core.TagType, tagTypeCols, ""),
		showCmd(core.TagType, "<tagname>"),
		deleteCmd(core.TagType, "<tagname>"),
		relationCmd("role", "Allow or disallow a role to write the tag", core.TagTypeRole, core.TagType, core.Role, "<tagname> <role>"),
	)
	return cmd
}

var initScriptCols = []string{"initscript_id", "name", "enabled"}

func initScriptCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "initscript", Short: "Init scripts slivers run at start (slice attribute initscript)"}
	var file string
	add := &cobra.Command{Use: "add <name> --file SCRIPT", Short: "Create an init script (admin)", Args: cobra.ExactArgs(1)}
	fs := addFieldFlags(add, fieldFlag{"enabled", "enabled", "enabled (default true)", kBool})
	add.Flags().StringVar(&file, "file", "", "the script")
	add.RunE = func(cmd *cobra.Command, args []string) error {
		rec, err := fs.record(cmd)
		if err != nil {
			return err
		}
		if file == "" {
			return usagef("--file is required")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return core.FieldErrorf("script", "%v", err)
		}
		rec["name"], rec["script"] = args[0], string(b)
		if _, ok := rec["enabled"]; !ok {
			rec["enabled"] = true
		}
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		id, err := e.cl.Add(e.ctx, nil, core.InitScriptClass, rec)
		if err != nil {
			return err
		}
		return e.created(core.InitScriptClass, args[0], id)
	}
	cmd.AddCommand(add,
		listCmd("list", "List init scripts", core.InitScriptClass, initScriptCols, ""),
		showCmd(core.InitScriptClass, "<name>"),
		deleteCmd(core.InitScriptClass, "<name>"),
		setFieldCmd("enable", "Enable an init script", core.InitScriptClass, "enabled", true),
		setFieldCmd("disable", "Disable an init script", core.InitScriptClass, "enabled", false),
	)
	return cmd
}
