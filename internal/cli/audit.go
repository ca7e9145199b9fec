package cli

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/core"
)

// auditCmd is `pl audit who` (which slice sent packets to an address, and
// who answers for it) and `pl audit slice` (docs/audit.md).
func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Accountability: which slice exchanged traffic with an address, and who answers for it"}
	var port, proto, since, until string
	var limit int
	who := &cobra.Command{
		Use:   "who <address> [--port N] [--proto tcp|udp|icmp|N] [--since 2h|<RFC 3339>] [--until ...]",
		Short: "Flows with an outside address on every node, with their slice, site and PIs",
		Long: `Ask every node for the flows it recorded with the address (as destination
or source), in the window (default: the last 24 hours). Each flow is shown
with its node, slice, site and the site's PIs; nodes that did not answer are
listed. Admins see every flow, PIs their sites' slices and nodes, other
users their own slices'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := url.Values{"addr": {args[0]}}
			for k, s := range map[string]string{"port": port, "proto": proto, "since": since, "until": until} {
				if s != "" {
					v.Set(k, s)
				}
			}
			if limit != 0 {
				v.Set("limit", fmt.Sprint(limit))
			}
			q, err := core.ParseFlowQuery(v, time.Now())
			if err != nil {
				return err
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			ans, err := e.cl.AuditWho(e.ctx, nil, q)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, ans)
			}
			return printAudit(e.out, ans)
		}}
	who.Flags().StringVar(&port, "port", "", "the remote port")
	who.Flags().StringVar(&proto, "proto", "", "protocol: tcp, udp, icmp, icmpv6, sctp or a number")
	who.Flags().StringVar(&since, "since", "", "start of the window: a duration before now (2h, 30m, 7d) or a time (RFC 3339); default 24h")
	who.Flags().StringVar(&until, "until", "", "end of the window (same forms); default now")
	who.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("at most this many flows (default %d, at most %d)", core.FlowLimitDefault, core.FlowLimitMax))
	cmd.AddCommand(who, auditSliceCmd())
	return cmd
}

// auditSliceCmd is `pl audit slice`: a slice's traffic summary.
func auditSliceCmd() *cobra.Command {
	var since, until string
	var top int
	c := &cobra.Command{
		Use:   "slice <slice> [--since 24h|<RFC 3339>] [--until ...] [--top N]",
		Short: "A slice's traffic on every node: bytes per day and top destinations",
		Long: `Ask every node for the slice's flows in the window (default: the last 24
hours) and sum them: per UTC day of the flows' start, per destination (the
top N by bytes) and per node. Nodes that did not answer are listed. For the
slice's members, its site's PIs and admins.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := url.Values{"slice": {args[0]}}
			for k, s := range map[string]string{"since": since, "until": until} {
				if s != "" {
					v.Set(k, s)
				}
			}
			if top != 0 {
				v.Set("top", fmt.Sprint(top))
			}
			q, err := core.ParseTrafficQuery(v, time.Now())
			if err != nil {
				return err
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			ans, err := e.cl.AuditSlice(e.ctx, nil, q)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, ans)
			}
			return printTraffic(e.out, ans)
		}}
	c.Flags().StringVar(&since, "since", "", "start of the window: a duration before now (24h, 7d) or a time (RFC 3339); default 24h")
	c.Flags().StringVar(&until, "until", "", "end of the window (same forms); default now")
	c.Flags().IntVar(&top, "top", 0, fmt.Sprintf("destinations listed (default %d, at most %d)", core.TrafficTopDefault, core.TrafficTopMax))
	return c
}

func printTraffic(w io.Writer, a *core.SliceTraffic) error {
	fmt.Fprintf(w, "Slice %s, %s to %s: %d flows, %d bytes sent, %d received\n", a.Slice,
		a.Since.Local().Format("2006-01-02 15:04"), a.Until.Local().Format("2006-01-02 15:04"), a.Total.Flows, a.Total.BytesSent, a.Total.BytesReceived)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDAY (UTC)\tFLOWS\tSENT\tRECEIVED")
	for _, d := range a.Days {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", d.Day, d.Flows, d.BytesSent, d.BytesReceived)
	}
	fmt.Fprintln(tw, "\nDESTINATION\tFLOWS\tSENT\tRECEIVED")
	for _, d := range a.Top {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", d.Remote, d.Flows, d.BytesSent, d.BytesReceived)
	}
	fmt.Fprintln(tw, "\nNODE\tFLOWS\tSENT\tRECEIVED")
	for _, n := range a.Nodes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", n.Hostname, n.Flows, n.BytesSent, n.BytesReceived)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d nodes asked", a.Asked)
	if a.Partial {
		fmt.Fprint(w, "; partial: a node had more records in the window than it reads for a summary (narrow the window)")
	}
	fmt.Fprintln(w)
	for _, n := range a.NotAnswering {
		fmt.Fprintf(w, "not answering: %s: %s\n", n.Hostname, n.Error)
	}
	return nil
}

var protoName = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}

func printAudit(w io.Writer, a *core.AuditAnswer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tEND\tNODE\tSLICE\tPROTO\tDIR\tINSIDE\tPUBLIC\tREMOTE\tSENT\tRECEIVED\tSITE\tPIS")
	for _, f := range a.Flows {
		slice := f.Slice
		switch {
		case f.XID == 0:
			slice = "(node itself)"
		case slice == "":
			slice = fmt.Sprintf("(xid %d)", f.XID)
		case f.SliceGone:
			slice += " (deleted)"
		}
		end := f.End.Local().Format("15:04:05")
		if f.Open {
			end = "open"
		}
		pr := protoName[f.Proto]
		if pr == "" {
			pr = fmt.Sprint(f.Proto)
		}
		pis := make([]string, len(f.PIs))
		for i, p := range f.PIs {
			pis[i] = fmt.Sprintf("%s <%s>", p.Name, p.Email)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d B/%d p\t%d B/%d p\t%s\t%s\n",
			f.Start.Local().Format("2006-01-02 15:04:05"), end, f.Hostname, slice, pr, f.Dir, f.Inside, f.Public, f.Remote,
			f.BytesSent, f.PacketsSent, f.BytesReceived, f.PacketsReceived, orDash(f.SiteName), orDash(strings.Join(pis, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d flows from %d nodes asked", len(a.Flows), a.Asked)
	if a.More {
		fmt.Fprint(w, "; more match: narrow the window or raise --limit")
	}
	fmt.Fprintln(w)
	for _, n := range a.NotAnswering {
		fmt.Fprintf(w, "not answering: %s: %s\n", n.Hostname, n.Error)
	}
	return nil
}
