package cli

import (
	"fmt"
	"net"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var nodeCols = []string{"node_id", "hostname", "site_id", "node_type", "boot_state", "run_level", "last_contact", "slice_ids"}

// addNodeCommands adds the registry subcommands to `pl node` (created with
// cmdtree.Sub: the node manager attaches its own behaviour to it).
func addNodeCommands(node *cobra.Command) {
	node.AddCommand(nodeRegisterCmd(), nodeTokenCmd(), nodeStateCmd(),
		listCmd("list", "List nodes", core.Node, nodeCols, "site_id"),
		showCmd(core.Node, "<node>"),
		deleteCmd(core.Node, "<node>"),
	)
	update := &cobra.Command{Use: "update <node> [flags]", Short: "Change fields of a node", Args: cobra.ExactArgs(1)}
	fs := addFieldFlags(update,
		fieldFlag{"boot-state", "boot_state", "boot, safeboot, reinstall, disabled, failboot", kString},
		fieldFlag{"model", "model", "hardware model", kString},
		fieldFlag{"node-type", "node_type", "regular or reservable", kString},
	)
	update.RunE = updateRunE(core.Node, fs)
	node.AddCommand(update)
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
	var ip, gateway, dns, mac, nodeType, model string
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
