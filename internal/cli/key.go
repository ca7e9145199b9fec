package cli

import (
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

var keyCols = []string{"key_id", "person_id", "key_type", "key"}

func keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "SSH public keys of persons"}
	var keyType string
	add := &cobra.Command{
		Use:   "add <person> <public-key-file|->",
		Short: "Add an ssh public key (ed25519, ecdsa, rsa >= 2048) to a person",
		Args:  cobra.ExactArgs(2),
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
			return e.created(core.Key, "for "+args[0], id)
		},
	}
	add.Flags().StringVar(&keyType, "type", "ssh", "key type")
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
			}
			return printTable(e.out, recs, keyCols)
		},
	}
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
	cmd.AddCommand(add, list, blacklist, deleteCmd(core.Key, "<key_id>"))
	return cmd
}
