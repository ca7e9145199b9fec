package cli

import (
	"bytes"
	"encoding/json"

	"github.com/planetlab/pl/internal/core"
)

// parseFilterFlag parses a --filter JSON value with core.ParseFilter.
func parseFilterFlag(s string) (*core.Filter, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, usagef("--filter: %v", err)
	}
	f, err := core.ParseFilter(v)
	if err != nil {
		return nil, usageErr(err)
	}
	return f, nil
}
