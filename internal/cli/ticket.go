package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/node/nmapi"
)

// ticketCmd is `pl ticket get|show|redeem` (docs/brokering.md).
func ticketCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ticket", Short: "Signed tickets: resources on nodes a node manager grants without asking PLC"}
	var nodes []string
	var dur time.Duration
	var rs rspec.RSpec
	get := &cobra.Command{
		Use:   "get <slice> [--node host]... [--duration 24h] [--cpu-pct N ...]",
		Short: "Ask PLC for a ticket for the slice (GetSliceTicket); prints the ticket",
		Long: `Ask PLC for a ticket granting the slice its rspec on nodes (default: the
slice's nodes), valid from now for --duration (default a day, never past
the slice's expiry). The rspec is the slice's tags on the first node;
admins may set it with the resource flags. The ticket is printed on one
line: give it to 'pl ticket redeem' on a node, or to a broker.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			req := ticket.Request{SliceID: sid, Duration: dur}
			for _, n := range nodes {
				id, err := e.resolve(core.Node, n)
				if err != nil {
					return err
				}
				req.NodeIDs = append(req.NodeIDs, id)
			}
			for _, n := range rspec.Names {
				if cmd.Flags().Changed(strings.ReplaceAll(n, "_", "-")) {
					req.RSpec = &rs
				}
			}
			w, err := e.cl.SliceTicket(e.ctx, nil, req)
			if err != nil {
				return err
			}
			if e.json {
				t, _, _, err := ticket.Decode(w)
				if err != nil {
					return err
				}
				return printJSON(e.out, map[string]any{"ticket": w, "grant": t})
			}
			_, err = fmt.Fprintln(e.out, w)
			return err
		}}
	get.Flags().StringSliceVar(&nodes, "node", nil, "a node (hostname or id) the ticket is for; repeatable (default: the slice's nodes)")
	get.Flags().DurationVar(&dur, "duration", 0, "validity from now (default 24h, at most 720h)")
	get.Flags().Int64Var(&rs.CPUShare, "cpu-share", 1, "rspec: CPU weight (admins)")
	get.Flags().Int64Var(&rs.CPUPct, "cpu-pct", 0, "rspec: guaranteed % of the node's CPU (admins)")
	get.Flags().Int64Var(&rs.NetMinKbit, "net-min-rate", 0, "rspec: guaranteed kbit/s (admins)")
	get.Flags().Int64Var(&rs.NetMaxKbit, "net-max-rate", 0, "rspec: ceiling kbit/s, 0 = the node cap (admins)")
	get.Flags().Int64Var(&rs.MemKiB, "mem-max", 0, "rspec: memory limit in KiB, 0 = none (admins)")

	show := &cobra.Command{
		Use:   "show [file|-]",
		Short: "Decode a ticket (without checking its signature) and print what it grants",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := readTicket(cmd, args)
			if err != nil {
				return err
			}
			t, _, _, err := ticket.Decode(w)
			if err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), t)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "slice:   %s (%d, %s)\nnodes:   %v\nvalid:   %s .. %s\nrspec:   %s\nsigner:  %s\nnonce:   %s\n",
				t.Sliver.Name, t.Sliver.SliceID, t.Sliver.Instantiation, t.Nodes,
				time.Unix(t.NotBefore, 0).UTC().Format(time.RFC3339), time.Unix(t.NotAfter, 0).UTC().Format(time.RFC3339),
				t.RSpec, t.Key, t.Nonce)
			return nil
		}}

	var socket string
	redeem := &cobra.Command{
		Use:   "redeem [file|-] [--socket path]",
		Short: "Redeem a ticket at this node's node manager (its local API socket); no PLC needed",
		Long: `Give a ticket to the node manager of this node (or of the sliver it runs
in, when the slice may use the local API). The node manager verifies the
signature with the keys PLC distributed, checks node, validity, that the
ticket was never redeemed here and that the node can still promise its
rspec, and creates the slice's sliver until the ticket ends.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := readTicket(cmd, args)
			if err != nil {
				return err
			}
			var res struct {
				Slice    string      `json:"slice"`
				NotAfter int64       `json:"not_after"`
				RSpec    rspec.RSpec `json:"rspec"`
			}
			if err := nmapi.Call(cmd.Context(), socket, "Ticket", map[string]string{"ticket": w}, &res); err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), res)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "redeemed: sliver %s until %s (%s)\n", res.Slice, time.Unix(res.NotAfter, 0).UTC().Format(time.RFC3339), res.RSpec)
			return err
		}}
	redeem.Flags().StringVar(&socket, "socket", nmapi.LocalSocket(), "the node manager's local API socket (default: the sliver's if there is one, else the node's)")
	cmd.AddCommand(get, show, redeem)
	return cmd
}

// readTicket reads a ticket from the file named by args[0], or stdin.
func readTicket(cmd *cobra.Command, args []string) (string, error) {
	var r io.Reader = cmd.InOrStdin()
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, ticket.MaxSize+1))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
