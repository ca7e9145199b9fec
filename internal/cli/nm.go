package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/node/nmapi"
)

// nmCmd is `pl nm <Method> [args]`: one call of the node manager's local
// API (docs/brokering.md), from the node or from a sliver whose slice
// has nm_api=1 (where the node's pl is /run/pl/pl).
func nmCmd() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "nm <Method> [{json} | key=value ...]",
		Short: "Call the node manager's local API (on a node, or in a sliver with nm_api=1); no PLC needed",
		Long: `Call one method of the node manager's local API and print its JSON answer.
The node manager knows the caller by its uid: a sliver acts as its slice,
the node's root as root. 'pl nm Help' lists the methods.

The arguments are one JSON object, or key=value pairs: a dotted key names
a field of an object, and a value that is JSON (a number, true, a quoted
string) is taken as such, anything else as a string:

  pl nm GetRecord
  pl nm Acquire slice=pl_a amount.cpu_share=2 amount.net_max_rate=1000
  pl nm Bind rcap=rcap1.… slice=pl_b
  pl nm SetLoans '{"slice":"pl_a","loans":[{"to":"pl_b","amount":{"cpu_share":1},"until":1900000000}]}'

In a sliver the socket is /run/pl/api.sock and this program /run/pl/pl.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := nmapi.ArgsFromCLI(args[1:])
			if err != nil {
				return usageErr(err)
			}
			var out json.RawMessage
			if err := nmapi.Call(cmd.Context(), socket, args[0], raw, &out); err != nil {
				return err
			}
			var v any
			if err := json.Unmarshal(out, &v); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), v)
		}}
	cmd.Flags().StringVar(&socket, "socket", nmapi.LocalSocket(), "the node manager's local API socket (default: the sliver's if there is one, else the node's)")
	return cmd
}
