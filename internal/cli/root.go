// Package cli implements the `pl` command tree's PLC side: the central
// server (`pl plc`, `pl plc init`) and the registry commands users and
// admins run (login, site, person, key, node register, slice, tagtype,
// initscript). Commands talk to PLC through internal/client, print human
// tables or --json, and exit with the codes listed by `pl help exit-codes`.
package cli

import (
	"github.com/planetlab/pl/internal/cmdtree"
	"github.com/spf13/cobra"
)

// NewRoot returns the root `pl` command with the PLC commands attached.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "pl",
		Short:         "PlanetLab: a shared platform for planetary-scale network services",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().Bool("json", false, "print machine-readable JSON")
	root.PersistentFlags().String("plc", "", "PLC to talk to: a URL or host stored by 'pl login' (default: $PL_PLC or the last login)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr(err) })
	root.AddCommand(
		plcCmd(),
		loginCmd(), logoutCmd(), whoamiCmd(),
		siteCmd(), personCmd(), keyCmd(),
		sliceCmd(), tagTypeCmd(), initScriptCmd(),
		exitCodesTopic(),
	)
	node := cmdtree.Sub(root, "node", "Nodes: register, list, show, state (and the node manager itself)")
	addNodeCommands(node)
	addCompletion(root)
	return root
}
