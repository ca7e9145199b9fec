package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var keyCols = []string{"key_id", "person_id", "key_type", "key", "usable"}

func keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "SSH public keys of persons"}
	cmd.AddCommand(keyAddCmd(), keyListCmd(), keyBlacklistCmd(), deleteCmd(core.Key, "<key_id>"))
	return cmd
}

// keyAddCmd is "pl key add": it says why a stored key is not usable.
func keyAddCmd() *cobra.Command {
	var keyType string
	add := &cobra.Command{
		Use:   "add <person> <public-key-file|->",
		Short: "Add an ssh public key (ed25519, ecdsa, rsa >= 2048) to a person",
		Long: `Add an ssh public key to a person. Keys OpenSSH accepts (ed25519, ecdsa,
rsa of at least 2048 bits) are installed on the nodes of the person's slices.
Other ssh-rsa and ssh-dss lines that the original PLCAPI accepted (DSA, short
RSA, text that is not a key) are stored but never installed: the command says
why, and "pl key list" shows it.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b []byte
			var err error
			if args[1] == "-" {
				b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
			} else {
				b, err = os.ReadFile(args[1])
			}
			if err != nil {
				return core.FieldErrorf("key", "%v", err)
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			pid, err := e.resolve(core.Person, args[0])
			if err != nil {
				return err
			}
			id, err := e.cl.Add(e.ctx, nil, core.Key, core.Record{"person_id": pid, "key_type": keyType, "key": strings.TrimSpace(string(b))})
			if err != nil {
				return err
			}
			recs, err := e.cl.Get(e.ctx, nil, core.Key, &core.Filter{IsList: true, IDs: []int64{id}}, []string{"usable", "unusable_reason"})
			if err != nil {
				return err
			}
			if len(recs) == 1 && recs[0]["usable"] == false {
				warning := fmt.Sprintf("key %d is stored but not usable, so it is not installed on any node: %v", id, recs[0]["unusable_reason"])
				if e.json {
					return printJSON(e.out, map[string]any{"id": id, "key_id": id, "warnings": []string{warning}})
				}
				if err := e.created(core.Key, "for "+args[0], id); err != nil {
					return err
				}
				_, err := fmt.Fprintln(e.out, "warning: "+warning)
				return err
			}
			return e.created(core.Key, "for "+args[0], id)
		},
	}
	add.Flags().StringVar(&keyType, "type", "ssh", "key type")
	return add
}

// keyListCmd is "pl key list", with each key's usability and reason.
func keyListCmd() *cobra.Command {
	list := &cobra.Command{
		Use:   "list [<person>]",
		Short: "List keys (yours, or a person's)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			var f *core.Filter
			if len(args) == 1 {
				pid, err := e.resolve(core.Person, args[0])
				if err != nil {
					return err
				}
				f = &core.Filter{Terms: []core.Term{{Field: "person_id", Op: core.Eq, Value: pid}}}
			}
			recs, err := e.cl.Get(e.ctx, nil, core.Key, f, nil)
			if err != nil {
				return err
			}
			if e.json {
				if recs == nil {
					recs = []core.Record{}
				}
				return printJSON(e.out, recs)
			}
			for _, r := range recs { // keys are long: show type and comment only
				if k, ok := r["key"].(string); ok && len(k) > 60 {
					r["key"] = k[:30] + "..." + k[len(k)-25:]
				}
				if r["usable"] == false {
					r["usable"] = fmt.Sprintf("no: %v", r["unusable_reason"])
				} else {
					r["usable"] = "yes"
				}
			}
			return printTable(e.out, recs, keyCols)
		},
	}
	return list
}

// keyBlacklistCmd is "pl key blacklist" (admins).
func keyBlacklistCmd() *cobra.Command {
	blacklist := &cobra.Command{
		Use:   "blacklist <key_id>",
		Short: "Blacklist a key's material everywhere (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usagef("key id %q is not an integer", args[0])
			}
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			if err := e.cl.BlacklistKey(e.ctx, nil, id); err != nil {
				return err
			}
			return e.done("key " + args[0] + " blacklisted")
		},
	}
	return blacklist
}
