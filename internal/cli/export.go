package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// Helpers for the packages that attach their own commands to the pl tree
// (internal/plc/plccmd, internal/sshcli), so that every command reads
// passwords, prints JSON and reports usage errors the same way.

// ReadPassword reads a password from file (its first line), else from the
// environment variable envVar, else from the terminal with prompt.
func ReadPassword(file, envVar, prompt string) (string, error) {
	return readPassword(file, envVar, prompt)
}

// JSONFlag reports whether --json was given.
func JSONFlag(cmd *cobra.Command) bool { return jsonFlag(cmd) }

// PrintJSON prints v as indented JSON.
func PrintJSON(w io.Writer, v any) error { return printJSON(w, v) }

// Usagef returns a usage error (exit code ExitUsage).
func Usagef(format string, args ...any) error { return usagef(format, args...) }
