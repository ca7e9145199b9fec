package cli

import (
	"fmt"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var peerFieldFlags = []fieldFlag{
	{"url", "peer_url", "the peer PLC's base URL (https://host:port/)", kString},
	{"key", "key", "the peer PLC's public key (ed25519:...; 'pl peer key' at the peer)", kString},
	{"cacert", "cacert", "SHA-256 fingerprint of the peer's TLS certificate (default: any certificate; the signatures authenticate)", kString},
	{"shortname", "shortname", "short name", kString},
	{"hrn-root", "hrn_root", "root of the peer's names in a hierarchical namespace", kString},
	{"max-slices", "max_slices", "at most this many of the peer's slices on this PLC's nodes", kInt},
	{"max-slivers-per-node", "max_slivers_per_node", "at most this many of the peer's slivers on one node of this PLC (--set max_slivers_per_node=null: no cap)", kInt},
	{"cap-cpu-share", "cap_cpu_share", "each of the peer's slivers here gets at most this cpu_share", kInt},
	{"cap-cpu-pct", "cap_cpu_pct", "... at most this cpu_pct (guaranteed %)", kInt},
	{"cap-net-min-rate", "cap_net_min_rate", "... at most this net_min_rate (kbit/s)", kInt},
	{"cap-net-max-rate", "cap_net_max_rate", "... at most this net_max_rate (kbit/s)", kInt},
	{"cap-mem-max", "cap_mem_max", "... at most this mem_max (KiB); --set cap_<resource>=null: no cap", kInt},
}

var peerCols = []string{"peer_id", "peername", "peer_url", "max_slices", "max_slivers_per_node", "last_refresh", "node_ids", "slice_ids", "refresh_error"}

func peerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "peer", Short: "Peer PLCs: federation (docs/federation.md)"}
	add := &cobra.Command{
		Use:   "add <peername> --url URL --key KEY [flags]",
		Short: "Peer with another PLC (admin; its admin adds this PLC the same way)",
		Args:  cobra.ExactArgs(1),
	}
	addFields := addFieldFlags(add, peerFieldFlags...)
	add.RunE = func(cmd *cobra.Command, args []string) error {
		rec, err := addFields.record(cmd)
		if err != nil {
			return err
		}
		rec["peername"] = args[0]
		e, err := newEnv(cmd)
		if err != nil {
			return err
		}
		id, err := e.cl.Add(e.ctx, nil, core.Peer, rec)
		if err != nil {
			return err
		}
		return e.created(core.Peer, args[0], id)
	}
	update := &cobra.Command{Use: "update <peer> [flags]", Short: "Change a peer (admin)", Args: cobra.ExactArgs(1)}
	update.RunE = updateRunE(core.Peer, addFieldFlags(update, append(peerFieldFlags, fieldFlag{"name", "peername", "the peer's name here", kString})...))
	rm := deleteCmd(core.Peer, "<peer>")
	rm.Use, rm.Aliases, rm.Short = "rm <peer>", []string{"delete"}, "Stop peering: delete the peer and every object it is authoritative for (admin)"
	refresh := &cobra.Command{
		Use:   "refresh <peer>",
		Short: "Fetch the peer's data now (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			id, err := e.resolve(core.Peer, args[0])
			if err != nil {
				return err
			}
			r, err := e.cl.RefreshPeer(e.ctx, nil, id)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, r)
			}
			return printRecord(e.out, r)
		},
	}
	var reason string
	refuse := &cobra.Command{
		Use:   "refuse <slice> --reason TEXT",
		Short: "Refuse a peer's slice on this PLC's nodes (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return refusal(cmd, args[0], true, reason)
		},
	}
	refuse.Flags().StringVar(&reason, "reason", "", "why (kept with the refusal)")
	admit := &cobra.Command{
		Use:   "admit <slice>",
		Short: "Admit a refused peer's slice again (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return refusal(cmd, args[0], false, "")
		},
	}
	key := &cobra.Command{
		Use:   "key",
		Short: "Show this PLC's public peer key (give it, with this PLC's URL, to the peer's admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			k, err := e.cl.PeerKey(e.ctx)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, map[string]string{"key": k, "url": e.plc.URL + "/"})
			}
			_, err = e.out.Write([]byte("url: " + e.plc.URL + "/\nkey: " + k + "\n"))
			return err
		},
	}
	var remoteID int64
	bind := &cobra.Command{
		Use:   "bind <peer> <site|person|key|node|slice> <object> [--remote-id N]",
		Short: "Mark a local object as the peer's, read-only here (admin; the original's BindObjectToPeer)",
		Long: "Mark a local object as the peer's (its id there: --remote-id, 0 if unknown). It is read-only here from then on,\n" +
			"and the peer's next refresh updates it from the peer's object of that id, or deletes it if the peer has none.",
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, peer, class, id, err := peerObjectArgs(cmd, args)
			if err != nil {
				return err
			}
			if err := e.cl.BindObjectToPeer(e.ctx, nil, class, id, peer, remoteID); err != nil {
				return err
			}
			return e.done(args[1] + " " + args[2] + " is now peer " + args[0] + "'s")
		},
	}
	bind.Flags().Int64Var(&remoteID, "remote-id", 0, "the object's id at the peer (0: unknown)")
	unbind := &cobra.Command{
		Use:   "unbind <peer> <site|person|key|node|slice> <object>",
		Short: "Make the peer's object local again (admin; the original's UnBindObjectFromPeer)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, peer, class, id, err := peerObjectArgs(cmd, args)
			if err != nil {
				return err
			}
			if err := e.cl.UnBindObjectFromPeer(e.ctx, nil, class, id, peer); err != nil {
				return err
			}
			return e.done(args[1] + " " + args[2] + " is local (if it was peer " + args[0] + "'s)")
		},
	}
	clearCmd := &cobra.Command{
		Use:   "clear <peer>",
		Short: "Delete every object of the peer here and keep the peer (admin; the original's DeleteAllPeerEntries)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			id, err := e.resolve(core.Peer, args[0])
			if err != nil {
				return err
			}
			if err := e.cl.DeleteAllPeerEntries(e.ctx, nil, id); err != nil {
				return err
			}
			return e.done("every object of peer " + args[0] + " deleted here; its next refresh fetches them anew")
		},
	}
	name := &cobra.Command{
		Use:   "name",
		Short: "Show this PLC's name (the original's GetPeerName)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			n, err := e.cl.GetPeerName(e.ctx, nil)
			if err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, map[string]string{"peername": n})
			}
			_, err = e.out.Write([]byte(n + "\n"))
			return err
		},
	}
	cmd.AddCommand(add, update, rm, refresh, refuse, admit, key, bind, unbind, clearCmd, name,
		listCmd("list", "List peers", core.Peer, peerCols, ""),
		showCmd(core.Peer, "<peer>"),
	)
	return cmd
}

func refusal(cmd *cobra.Command, slice string, refuse bool, reason string) error {
	e, err := newEnv(cmd)
	if err != nil {
		return err
	}
	id, err := e.resolve(core.Slice, slice)
	if err != nil {
		return err
	}
	if err := e.cl.RefuseSlice(e.ctx, nil, id, refuse, reason); err != nil {
		return err
	}
	if refuse {
		return e.done("slice " + slice + " refused on this PLC's nodes")
	}
	return e.done("slice " + slice + " admitted again")
}

// peerObjectArgs reads <peer> <class> <object> of bind and unbind.
func peerObjectArgs(cmd *cobra.Command, args []string) (e *env, peer int64, class core.Class, id int64, err error) {
	if e, err = newEnv(cmd); err != nil {
		return
	}
	if peer, err = e.resolve(core.Peer, args[0]); err != nil {
		return
	}
	class = core.Class(strings.ToLower(args[1]))
	switch class {
	case core.Site, core.Person, core.Key, core.Node, core.Slice:
	default:
		err = usageErr(fmt.Errorf("object type %q: want site, person, key, node or slice", args[1]))
		return
	}
	id, err = e.resolve(class, args[2])
	return
}
