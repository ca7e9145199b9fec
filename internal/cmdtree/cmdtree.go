// Package cmdtree assembles the one `pl` command tree from the parts each
// subsystem contributes, so subsystems can share a parent command such as
// `pl node` or `pl bench` without knowing about each other.
package cmdtree

import "github.com/spf13/cobra"

// Sub returns the direct subcommand of parent named name, creating a
// grouping command with the given short help if there is none yet.
func Sub(parent *cobra.Command, name, short string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	c := &cobra.Command{Use: name, Short: short}
	parent.AddCommand(c)
	return c
}
