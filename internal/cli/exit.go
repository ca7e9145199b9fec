package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on (`pl help exit-codes`).
const (
	ExitOK       = 0 // success
	ExitError    = 1 // any other failure: PLC unreachable, internal error, ...
	ExitUsage    = 2 // bad command line: unknown command or flag, wrong arguments
	ExitNotFound = 3 // an object named on the command line does not exist
	ExitAuth     = 4 // not logged in, bad credentials, or not allowed
	ExitInvalid  = 5 // PLC refused the input: invalid value or conflict (duplicate, ...)
)

const exitCodesHelp = `Exit codes of pl commands:

  0  success
  1  other failure (PLC unreachable, internal error, interrupted)
  2  usage error: unknown command or flag, wrong number of arguments
  3  not found: an object named on the command line does not exist
  4  not authenticated (log in again), not allowed (forbidden), or too
     many failed logins (wait the time the message says)
  5  invalid input or conflict: PLC refused a value, a duplicate name, ...

With --json, errors are printed to stderr as
  {"error":{"code":"invalid","field":"email","message":"..."}}
`

func exitCodesTopic() *cobra.Command {
	return &cobra.Command{Use: "exit-codes", Short: "Exit codes pl commands return", Long: exitCodesHelp}
}

type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return usageError{err} }

// usagef returns a usage error.
func usagef(format string, args ...any) error { return usageErr(fmt.Errorf(format, args...)) }

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	var ce *core.Error
	if !errors.As(err, &ce) {
		return ExitError
	}
	switch ce.Code {
	case core.NotFound:
		return ExitNotFound
	case core.Unauthenticated, core.Forbidden, core.RateLimited:
		return ExitAuth
	case core.Invalid, core.Conflict:
		return ExitInvalid
	}
	return ExitError
}

func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "requires exactly", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// Execute runs the command tree and returns the process exit code.
func Execute(root *cobra.Command) int {
	c, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	asJSON, _ := root.PersistentFlags().GetBool("json")
	if asJSON {
		writeJSONError(os.Stderr, err)
	} else {
		fmt.Fprintln(os.Stderr, "pl:", err)
		if code == ExitUsage && c != nil {
			fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", c.CommandPath())
		}
		if code == ExitAuth && core.ErrorCode(err) == core.Unauthenticated {
			fmt.Fprintln(os.Stderr, "(log in with: pl login <plc-url> --email <you>)")
		}
	}
	return code
}
