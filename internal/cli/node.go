package cli

import (
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/spf13/cobra"
)

var nodeCols = []string{"node_id", "hostname", "site_id", "node_type", "boot_state", "run_level", "last_contact", "slice_ids"}

// addNodeCommands adds the registry subcommands to `pl node` (created with
// cmdtree.Sub: the node manager attaches its own behaviour to it).
func addNodeCommands(node *cobra.Command) {
	node.AddCommand(nodeRegisterCmd(), nodeTokenCmd(), nodeStateCmd(),
		listCmd("list", "List nodes", core.Node, nodeCols, "site_id"),
		nodeShowCmd(),
		deleteCmd(core.Node, "<node>"),
	)
	update := &cobra.Command{Use: "update <node> [flags]", Short: "Change fields of a node", Args: cobra.ExactArgs(1),
		Long: `Change fields of a node.

--ipv6-prefix sets the prefix its slivers' IPv6 addresses come from: the
interface tag sliversipv6prefix of its primary interface (PLCAPI's
SetInterfaceSliversIPv6Prefix), a /64 or shorter of 2000::/3 or
fc00::/7. The node re-addresses its slivers at once; "none" removes it
(slivers become IPv4-only). A node started with its own --ipv6-prefix
keeps that one.`}
	fs := addFieldFlags(update,
		fieldFlag{"boot-state", "boot_state", "boot, safeboot, reinstall, disabled, failboot", kString},
		fieldFlag{"model", "model", "hardware model", kString},
		fieldFlag{"node-type", "node_type", "regular or reservable", kString},
	)
	var prefix6 string
	update.Flags().StringVar(&prefix6, "ipv6-prefix", "", `IPv6 prefix of the node's slivers (e.g. 2001:db8:7::/64; "none" removes it)`)
	fields := updateRunE(core.Node, fs)
	update.RunE = func(cmd *cobra.Command, args []string) error {
		if !cmd.Flags().Changed("ipv6-prefix") {
			return fields(cmd, args)
		}
		rec, err := fs.record(cmd)
		if err != nil {
			return err
		}
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		if err := e.setIPv6Prefix(args[0], prefix6); err != nil {
			return err
		}
		if len(rec) == 0 {
			return e.done("node " + args[0] + " updated")
		}
		return fields(cmd, args)
	}
	node.AddCommand(update)
}

// setIPv6Prefix sets (or with "none" or "" removes) the sliversipv6prefix
// tag of the node's primary interface.
func (e *env) setIPv6Prefix(node, prefix string) error {
	nid, err := e.resolve(core.Node, node)
	if err != nil {
		return err
	}
	iface, _, err := e.primaryInterface(nid)
	if err != nil {
		return err
	}
	var v any = strings.TrimSpace(prefix)
	if v == "none" || v == "" {
		v = nil
	}
	return e.cl.Update(e.ctx, nil, core.Interface, iface, core.Record{tags.SliversIPv6Prefix: v})
}

// primaryInterface returns the id of a node's primary interface (else its
// first) and its slivers' IPv6 prefix ("" = none).
func (e *env) primaryInterface(nid int64) (int64, string, error) {
	ifs, err := e.cl.Get(e.ctx, nil, core.Interface, &core.Filter{Terms: []core.Term{{Field: "node_id", Op: core.Eq, Value: nid}}},
		[]string{"interface_id", "is_primary", tags.SliversIPv6Prefix})
	if err != nil {
		return 0, "", err
	}
	if len(ifs) == 0 {
		return 0, "", core.Errorf(core.NotFound, "node %d has no interface", nid)
	}
	best := ifs[0]
	for _, r := range ifs {
		if r["is_primary"] == true {
			best = r
			break
		}
	}
	id, _ := core.AsInt(best["interface_id"])
	p, _ := best[tags.SliversIPv6Prefix].(string)
	return id, p, nil
}

// interfaceRecord builds the primary interface of a new node from --ip
// (address or CIDR) and friends; no --ip means DHCP.
func interfaceRecord(ip, gateway, dns, mac string, bwlimit int64) (core.Record, error) {
	rec := core.Record{"type": "ipv4", "is_primary": true}
	if mac != "" {
		rec["mac"] = mac
	}
	if bwlimit > 0 {
		rec["bwlimit"] = bwlimit
	}
	if ip == "" {
		rec["method"] = "dhcp"
		return rec, nil
	}
	rec["method"] = "static"
	addr := net.ParseIP(ip)
	var ipnet *net.IPNet
	if strings.Contains(ip, "/") {
		var err error
		addr, ipnet, err = net.ParseCIDR(ip)
		if err != nil {
			return nil, core.FieldErrorf("ip", "%q is not an address or CIDR", ip)
		}
	}
	if addr == nil || addr.To4() == nil {
		return nil, core.FieldErrorf("ip", "%q is not an IPv4 address", ip)
	}
	rec["ip"] = addr.String()
	if ipnet == nil {
		ipnet = &net.IPNet{IP: addr.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}
	}
	bcast := make(net.IP, 4)
	for i := range 4 {
		bcast[i] = ipnet.IP.To4()[i] | ^ipnet.Mask[i]
	}
	rec["network"] = ipnet.IP.String()
	rec["netmask"] = net.IP(ipnet.Mask).String()
	rec["broadcast"] = bcast.String()
	if gateway == "" {
		gw := make(net.IP, 4)
		copy(gw, ipnet.IP.To4())
		gw[3] |= 1
		gateway = gw.String()
	}
	rec["gateway"] = gateway
	if dns == "" {
		dns = gateway
	}
	rec["dns1"] = dns
	return rec, nil
}

func nodeRegisterCmd() *cobra.Command {
	var ip, gateway, dns, mac, nodeType, model, prefix6 string
	var bwlimit int64
	cmd := &cobra.Command{
		Use:   "register <site> <hostname> [--ip ADDR[/LEN]]",
		Short: "Register a node and print its one-time join command",
		Long: `Register a node at a site with its primary interface (static with --ip,
DHCP otherwise), issue a one-time join token (valid 24 h) and print the
command to run on the node: pl node join <plc-url> <token>.

With --ip ADDR/LEN the network, netmask and broadcast address are derived;
the gateway defaults to the network's first address and DNS to the gateway.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			iface, err := interfaceRecord(ip, gateway, dns, mac, bwlimit)
			if err != nil {
				return err
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Site, args[0])
			if err != nil {
				return err
			}
			rec := core.Record{"site_id": sid, "hostname": args[1]}
			if nodeType != "" {
				rec["node_type"] = nodeType
			}
			if model != "" {
				rec["model"] = model
			}
			nid, err := e.cl.Add(e.ctx, nil, core.Node, rec)
			if err != nil {
				return err
			}
			iface["node_id"] = nid
			if prefix6 != "" {
				iface[tags.SliversIPv6Prefix] = prefix6
			}
			if _, err := e.cl.Add(e.ctx, nil, core.Interface, iface); err != nil {
				// Leave nothing half-done: a node without its interface goes.
				if derr := e.cl.Delete(e.ctx, nil, core.Node, nid); derr != nil {
					return fmt.Errorf("interface refused (%w); deleting node %d also failed: %v", err, nid, derr)
				}
				return fmt.Errorf("node %s not registered: %w", args[1], err)
			}
			return e.printJoin(nid, args[1])
		},
	}
	cmd.Flags().StringVar(&ip, "ip", "", "primary IPv4 address, optionally with /prefix (default: DHCP)")
	cmd.Flags().StringVar(&gateway, "gateway", "", "gateway of a static interface")
	cmd.Flags().StringVar(&dns, "dns", "", "DNS server of a static interface")
	cmd.Flags().StringVar(&mac, "mac", "", "MAC address of the primary interface")
	cmd.Flags().Int64Var(&bwlimit, "bwlimit", 0, "bandwidth limit of the primary interface (bits/s)")
	cmd.Flags().StringVar(&nodeType, "node-type", "", "regular (default) or reservable")
	cmd.Flags().StringVar(&model, "model", "", "hardware model")
	cmd.Flags().StringVar(&prefix6, "ipv6-prefix", "", "IPv6 prefix routed to the node for its slivers (interface tag sliversipv6prefix; a /64 or shorter)")
	return cmd
}

// printJoin issues a join token and prints the join command.
func (e *env) printJoin(nid int64, hostname string) error {
	tok, err := e.cl.JoinToken(e.ctx, nid)
	if err != nil {
		return err
	}
	command := fmt.Sprintf("pl node join %s %s", e.plc.URL, tok.Token)
	if e.json {
		return printJSON(e.out, map[string]any{"node_id": nid, "hostname": hostname, "token": tok.Token, "url": e.plc.URL, "command": command})
	}
	fmt.Fprintf(e.out, "node %s registered with id %d\nOn the node, as root, run (once, within 24 hours):\n\n  %s\n\n", hostname, nid, command)
	return nil
}

func nodeTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "token <node>",
		Short: "Issue a new one-time join token for a node (invalidates earlier ones)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			nid, err := e.resolve(core.Node, args[0])
			if err != nil {
				return err
			}
			return e.printJoin(nid, args[0])
		},
	}
}

func nodeStateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "state <node>",
		Short: "Show a node's desired state as the node sees it (GetSlivers; admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			nid, err := e.resolve(core.Node, args[0])
			if err != nil {
				return err
			}
			st, err := e.cl.NodeState(e.ctx, nil, nid)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, st)
			}
			fmt.Fprintf(e.out, "node %s (id %d)  version %s\n", st.Hostname, st.NodeID, st.Version)
			fmt.Fprintf(e.out, "groups: %s\ninitscripts: %d  conf files: %d  leases: %d\n",
				orDash(strings.Join(st.Groups, ",")), len(st.InitScripts), len(st.ConfFiles), len(st.Leases))
			for _, a := range st.Accounts {
				fmt.Fprintf(e.out, "account %s: %d keys\n", a.Name, len(a.Keys))
			}
			fmt.Fprintf(e.out, "slivers: %d\n", len(st.Slivers))
			for _, s := range st.Slivers {
				fmt.Fprintf(e.out, "  %s (slice %d, %s, expires %s, %d keys)\n", s.Name, s.SliceID, s.Instantiation, formatValue("expires", s.Expires), len(s.Keys))
				for _, a := range s.Attributes {
					fmt.Fprintf(e.out, "    %s = %s\n", a.TagName, a.Value)
				}
			}
			return nil
		},
	}
}

// nodeShowCmd is `pl node show <node>`: the registry record and, below it,
// the node's live row of the planet table (status, last contact, load,
// CPU, memory, disk, slivers, version; docs/monitoring.md). With --json
// the record carries the row as "live" (null when PLC has no row).
func nodeShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show <node>",
		Short: "Show one node, with its live figures from the planet table",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			rec, err := e.get(core.Node, args[0])
			if err != nil {
				return err
			}
			id, ok := core.AsInt(rec["node_id"])
			if !ok {
				return fmt.Errorf("node %s: record without node_id", args[0])
			}
			rows, err := e.cl.TopNodes(e.ctx, nil, core.TopQuery{Where: fmt.Sprintf("node_id == %d", id)})
			if err != nil {
				return err
			}
			var live *core.NodeRow
			if len(rows) == 1 {
				live = &rows[0]
			}
			var prefix6 string
			if ids, ok := rec["interface_ids"].([]int64); ok && len(ids) > 0 {
				if _, prefix6, err = e.primaryInterface(id); err != nil {
					return err
				}
			}
			if e.json {
				out := core.Record{}
				for k, v := range rec {
					out[k] = v
				}
				out["live"] = live
				out["ipv6_prefix"] = prefix6
				return printJSON(e.out, out)
			}
			if err := printRecord(e.out, rec); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "\nslivers' IPv6 prefix: %s\n", orDash(prefix6))
			return printNodeLive(e.out, live, time.Now())
		},
	}
}

// printNodeLive prints a node's planet-table row as `pl node show` does.
func printNodeLive(w io.Writer, r *core.NodeRow, now time.Time) error {
	fmt.Fprintln(w, "\nlive (planet table):")
	if r == nil {
		_, err := fmt.Fprintln(w, "  no row: PLC has not seen this node yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s:\t"+format+"\n", append([]any{k}, args...)...)
	}
	line("status", "%s", r.Status)
	line("last contact", "%s ago", ago(now, r.LastContact))
	if r.LastReport == 0 {
		line("figures", "none reported yet")
		line("version", "%s", orDash(r.Version))
		return tw.Flush()
	}
	line("last report", "%s ago", ago(now, r.LastReport))
	line("load", "%.2f (5 min %.2f, %d CPUs)", r.Load, r.Load5, r.CPUs)
	line("cpu busy", "%.0f%%", r.CPUPct)
	line("memory", "%.0f%% used, %.1f GB free (swap %.0f%% used)", r.MemPct, r.MemFreeGB, r.SwapPct)
	line("disk free", "%.1f GB (%.0f%% used)", r.DiskFreeGB, r.DiskPct)
	line("network", "%.0f kbit/s in, %.0f kbit/s out, %d drops", r.RxKbps, r.TxKbps, r.Drops)
	line("slivers", "%d (%d with errors)", r.Slivers, r.Errors)
	line("ssh gateway", "%s", r.SSH)
	line("top cpu", "%s", orDash(strings.Join(r.TopCPU, ", ")))
	line("top bandwidth", "%s", orDash(strings.Join(r.TopBW, ", ")))
	clock := "not measured"
	if r.ClockKnown {
		clock = fmt.Sprintf("%d ms", r.ClockOffsetMs)
	}
	line("clock offset", "%s", clock)
	line("uptime", "%.1f h", r.UptimeHours)
	line("version", "%s", orDash(r.Version))
	return tw.Flush()
}
