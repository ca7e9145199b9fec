package cli

import (
	"fmt"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
	"github.com/spf13/cobra"
)

// fieldKind is the type of a field flag.
type fieldKind int

const (
	kString fieldKind = iota
	kInt
	kFloat
	kBool
)

// fieldFlag binds a command-line flag to a record field.
type fieldFlag struct {
	flag, field, usage string
	kind               fieldKind
}

// fieldSet registers field flags on a command and builds the record of the
// flags given (only those: an update changes nothing else).
type fieldSet struct {
	flags []fieldFlag
	set   []string
}

func addFieldFlags(cmd *cobra.Command, flags ...fieldFlag) *fieldSet {
	fs := &fieldSet{flags: flags}
	for _, f := range flags {
		switch f.kind {
		case kString:
			cmd.Flags().String(f.flag, "", f.usage)
		case kInt:
			cmd.Flags().Int64(f.flag, 0, f.usage)
		case kFloat:
			cmd.Flags().Float64(f.flag, 0, f.usage)
		case kBool:
			cmd.Flags().Bool(f.flag, false, f.usage)
		}
	}
	cmd.Flags().StringArrayVar(&fs.set, "set", nil, "set any field: field=value (value as JSON if it parses, else a string); repeatable")
	return fs
}

// record returns the fields of the flags given on the command line.
func (fs *fieldSet) record(cmd *cobra.Command) (core.Record, error) {
	rec := core.Record{}
	for _, f := range fs.flags {
		if !cmd.Flags().Changed(f.flag) {
			continue
		}
		var v any
		var err error
		switch f.kind {
		case kString:
			v, err = cmd.Flags().GetString(f.flag)
		case kInt:
			v, err = cmd.Flags().GetInt64(f.flag)
		case kFloat:
			v, err = cmd.Flags().GetFloat64(f.flag)
		case kBool:
			v, err = cmd.Flags().GetBool(f.flag)
		}
		if err != nil {
			return nil, usageErr(err)
		}
		rec[f.field] = v
	}
	for _, s := range fs.set {
		k, val, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usagef("--set %q: want field=value", s)
		}
		if _, dup := rec[k]; dup {
			return nil, usagef("field %q given twice", k)
		}
		rec[k] = parseSetValue(val)
	}
	return rec, nil
}

// parseSetValue reads a --set value: JSON when it parses as JSON, else the
// literal string.
func parseSetValue(s string) any {
	r, err := restapi.DecodeRecord([]byte(fmt.Sprintf(`{"v":%s}`, s)))
	if err != nil || len(r) != 1 || strings.TrimSpace(s) == "" {
		return s
	}
	return r["v"]
}
