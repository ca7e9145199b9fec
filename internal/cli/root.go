// Package cli implements the `pl` command tree's PLC side: the central
// server (`pl plc`) and the registry commands users and admins run.
package cli

import (
	"fmt"
	"os"

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
	return root
}

// Execute runs the command tree and returns the process exit code.
func Execute(root *cobra.Command) int {
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pl:", err)
		return 1
	}
	return 0
}
