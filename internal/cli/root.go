// Package cli implements the `pl` command tree's registry side: the
// commands users and admins run against PLC (login, site, person, key,
// node register, slice, tagtype, initscript). The server itself (`pl plc`)
// attaches from internal/plc/plccmd, so this package does not link it.
// Commands talk to PLC through internal/client, print human tables or
// --json, and exit with the codes listed by `pl help exit-codes`.
package cli

import (
	"github.com/planetlab/pl/internal/cmdtree"
	"github.com/spf13/cobra"
)

// NewRoot returns the root `pl` command with the registry commands
// attached; the server (`pl plc`, package plc/plccmd), the node manager,
// ssh and pl dev attach their own.
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
		loginCmd(), logoutCmd(), whoamiCmd(),
		siteCmd(), personCmd(), keyCmd(),
		sliceCmd(), tagTypeCmd(), initScriptCmd(), topCmd(), monitorCmd(), auditCmd(), geniCmd(), peerCmd(), ticketCmd(), leaseCmd(), nmCmd(),
		exitCodesTopic(),
	)
	node := cmdtree.Sub(root, "node", "Nodes: register, list, show, state (and the node manager itself)")
	addNodeCommands(node)
	addCompletion(root)
	return root
}
