package cli

import (
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
}

var peerCols = []string{"peer_id", "peername", "peer_url", "max_slices", "last_refresh", "node_ids", "slice_ids", "refresh_error"}

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
	cmd.AddCommand(add, update, rm, refresh, refuse, admit, key,
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
