package dev

import "github.com/spf13/cobra"

// Attach adds this package's commands to the pl command tree.
func Attach(root *cobra.Command) {}
