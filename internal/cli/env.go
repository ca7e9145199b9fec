package cli

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

// env is what a registry command runs with.
type env struct {
	ctx  context.Context
	cl   *client.Client
	plc  *PLCEntry
	out  io.Writer
	json bool
}

func jsonFlag(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

// Connect returns a client of the PLC that the command's --plc flag
// selects (or the current one), with the session stored by `pl login`.
func Connect(cmd *cobra.Command) (*client.Client, *PLCEntry, error) {
	cfg, err := LoadConfig()
	if err != nil {
		return nil, nil, err
	}
	sel, _ := cmd.Flags().GetString("plc")
	e, err := cfg.Select(sel)
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.New(e.URL, client.Options{Token: e.Token, Fingerprint: e.Fingerprint, CAFile: e.CAFile})
	if err != nil {
		return nil, nil, err
	}
	return cl, e, nil
}

// newEnv connects to the selected PLC with the stored session.
func newEnv(cmd *cobra.Command) (*env, error) {
	cl, e, err := Connect(cmd)
	if err != nil {
		return nil, err
	}
	return &env{ctx: cmd.Context(), cl: cl, plc: e, out: cmd.OutOrStdout(), json: jsonFlag(cmd)}, nil
}

// ref parses a command-line object reference: digits are an id, anything
// else a name.
func ref(s string) any {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			return id
		}
	}
	return s
}

// resolve turns a command-line reference into an id.
func (e *env) resolve(class core.Class, s string) (int64, error) {
	return e.cl.Resolve(e.ctx, nil, class, ref(s))
}

// get fetches one object by reference.
func (e *env) get(class core.Class, s string) (core.Record, error) {
	id, err := e.resolve(class, s)
	if err != nil {
		return nil, err
	}
	recs, err := e.cl.Get(e.ctx, nil, class, &core.Filter{IsList: true, IDs: []int64{id}}, nil)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, core.Errorf(core.NotFound, "no such %s %q", class, s)
	}
	return recs[0], nil
}

// list prints objects matching f with the given table columns.
func (e *env) list(class core.Class, f *core.Filter, cols []string) error {
	recs, err := e.cl.Get(e.ctx, nil, class, f, nil)
	if err != nil {
		return err
	}
	if e.json {
		if recs == nil {
			recs = []core.Record{}
		}
		return printJSON(e.out, recs)
	}
	return printTable(e.out, recs, cols)
}

// show prints one object.
func (e *env) show(class core.Class, s string) error {
	rec, err := e.get(class, s)
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.out, rec)
	}
	return printRecord(e.out, rec)
}

// created reports a new object's id.
func (e *env) created(class core.Class, name string, id int64) error {
	if e.json {
		return printJSON(e.out, map[string]any{"id": id, string(class) + "_id": id})
	}
	_, err := io.WriteString(e.out, string(class)+" "+name+" created with id "+strconv.FormatInt(id, 10)+"\n")
	return err
}

// done reports a successful change.
func (e *env) done(msg string) error {
	if e.json {
		return printJSON(e.out, map[string]any{"ok": true})
	}
	_, err := io.WriteString(e.out, msg+"\n")
	return err
}

// siteFilter returns a filter on the site field for --site, or nil.
func (e *env) siteFilter(site, field string) (*core.Filter, error) {
	if site == "" {
		return nil, nil
	}
	id, err := e.resolve(core.Site, site)
	if err != nil {
		return nil, err
	}
	if field == "site_ids" {
		return &core.Filter{Terms: []core.Term{{Field: field, Op: core.ContainsAny, Value: []any{id}}}}, nil
	}
	return &core.Filter{Terms: []core.Term{{Field: field, Op: core.Eq, Value: id}}}, nil
}
