package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// timeFields are record fields holding UNIX seconds.
var timeFields = map[string]bool{
	"expires": true, "created": true, "date_created": true, "last_updated": true, "last_contact": true,
	"last_boot": true, "last_download": true, "t_from": true, "t_until": true, "verification_expires": true,
}

// formatValue renders a record value for humans.
func formatValue(field string, v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case int64:
		if timeFields[field] && x > 0 {
			return time.Unix(x, 0).UTC().Format("2006-01-02 15:04 UTC")
		}
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []int64:
		s := make([]string, len(x))
		for i, n := range x {
			s[i] = strconv.FormatInt(n, 10)
		}
		return orDash(strings.Join(s, ","))
	case []string:
		return orDash(strings.Join(x, ","))
	case []any:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = formatValue("", e)
		}
		return orDash(strings.Join(s, ","))
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printJSON prints v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable prints records as a table of the given columns.
func printTable(w io.Writer, recs []core.Record, cols []string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range recs {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = formatValue(c, r[c])
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

// printRecord prints one record as "field: value" lines, fields sorted.
func printRecord(w io.Writer, r core.Record) error {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s:\t%s\n", k, formatValue(k, r[k]))
	}
	return tw.Flush()
}

// writeJSONError prints err as the REST API's error body.
func writeJSONError(w io.Writer, err error) {
	code := core.ErrorCode(err)
	var d restapi.ErrorDetail
	if ExitCode(err) == ExitUsage {
		d = restapi.ErrorDetail{Code: "usage", Message: err.Error()}
	} else {
		d = restapi.ErrorDetail{Code: code, Field: core.ErrorField(err), Message: err.Error()}
	}
	b, _ := json.Marshal(restapi.ErrorBody{Error: d})
	fmt.Fprintln(w, string(b))
}
