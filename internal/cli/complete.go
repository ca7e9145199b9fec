package cli

import (
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

// nameFields are the name fields offered by shell completion per class.
var nameFields = map[core.Class]string{
	core.Site: "login_base", core.Person: "email", core.Node: "hostname", core.Slice: "name",
	core.TagType: "tagname", core.InitScriptClass: "name", core.NodeGroup: "groupname", core.Role: "name",
}

// completeNames completes the first argument with names of class, asking
// the PLC the user is logged into (nothing when that fails).
func completeNames(class core.Class) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(cmd, class, prefix), cobra.ShellCompDirectiveNoFileComp
	}
}

func names(cmd *cobra.Command, class core.Class, prefix string) []string {
	field := nameFields[class]
	if field == "" {
		return nil
	}
	e, err := newEnv(cmd)
	if err != nil {
		return nil
	}
	var f *core.Filter
	if prefix != "" && !strings.ContainsAny(prefix, "*%") {
		f = &core.Filter{Terms: []core.Term{{Field: field, Op: core.Eq, Value: prefix + "*"}}, Limit: 200}
	}
	recs, err := e.cl.Get(e.ctx, nil, class, f, []string{field})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range recs {
		if s, ok := r[field].(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// addCompletion walks the tree and sets name completion on commands whose
// first argument is an object of a known class (by their usage line).
func addCompletion(c *cobra.Command) {
	for _, sub := range c.Commands() {
		addCompletion(sub)
	}
	if c.ValidArgsFunction != nil {
		return
	}
	use := c.Use
	for class, arg := range map[core.Class]string{
		core.Site: "<site>", core.Person: "<person>", core.Node: "<node>", core.Slice: "<slice>",
		core.TagType: "<tagname>", core.InitScriptClass: "<initscript>",
	} {
		if _, rest, ok := strings.Cut(use, " "); ok && strings.HasPrefix(rest, arg) {
			c.ValidArgsFunction = completeNames(class)
			return
		}
	}
	if strings.HasPrefix(use, "show <name>") || strings.HasPrefix(use, "delete <name>") {
		if p := c.Parent(); p != nil && p.Name() == "initscript" {
			c.ValidArgsFunction = completeNames(core.InitScriptClass)
		}
	}
}
