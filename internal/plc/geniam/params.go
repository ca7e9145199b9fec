package geniam

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/sfa"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// params are a call's positional arguments.
type params []any

func (p params) want(n int, sig string) error {
	if len(p) != n {
		return geni.Errorf(geni.BadArgs, "want %d arguments (%s), got %d", n, sig, len(p))
	}
	return nil
}

func (p params) str(i int, name string) (string, error) {
	s, ok := p[i].(string)
	if !ok || s == "" {
		return "", geni.Errorf(geni.BadArgs, "%s: want a non-empty string", name)
	}
	return s, nil
}

func (p params) strs(i int, name string) ([]string, error) {
	arr, ok := p[i].([]any)
	if !ok {
		return nil, geni.Errorf(geni.BadArgs, "%s: want an array of strings", name)
	}
	out := make([]string, 0, len(arr))
	for j, v := range arr {
		s, ok := v.(string)
		if !ok {
			return nil, geni.Errorf(geni.BadArgs, "%s[%d]: want a string", name, j)
		}
		out = append(out, s)
	}
	return out, nil
}

func (p params) opts(i int) (map[string]any, error) {
	m, ok := p[i].(map[string]any)
	if !ok {
		return nil, geni.Errorf(geni.BadArgs, "options: want a struct")
	}
	return m, nil
}

// credentials reads the credentials argument: structs {geni_type,
// geni_version, geni_value} (AM API v3) or bare strings (v2 clients).
func (p params) credentials(i int) ([][]byte, error) {
	arr, ok := p[i].([]any)
	if !ok {
		return nil, geni.Errorf(geni.BadArgs, "credentials: want an array")
	}
	var out [][]byte
	for j, v := range arr {
		switch c := v.(type) {
		case string:
			out = append(out, []byte(c))
		case map[string]any:
			typ, _ := c["geni_type"].(string)
			val, _ := c["geni_value"].(string)
			if !strings.EqualFold(typ, geni.CredentialSFA) {
				continue // ABAC and others: not used here
			}
			if val == "" {
				return nil, geni.Errorf(geni.BadArgs, "credentials[%d]: no geni_value", j)
			}
			out = append(out, []byte(val))
		default:
			return nil, geni.Errorf(geni.BadArgs, "credentials[%d]: want a struct", j)
		}
	}
	return out, nil
}

func boolOpt(o map[string]any, name string) (bool, error) {
	v, ok := o[name]
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, geni.Errorf(geni.BadArgs, "options %s: want a boolean", name)
	}
	return b, nil
}

// timeOpt reads a time: a dateTime.iso8601 or an RFC 3339 string.
func timeArg(v any, name string) (time.Time, bool, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return time.Time{}, false, nil
	case string:
		s = x
	case xmlrpc.DateTime:
		s = string(x)
		if t, err := time.Parse("20060102T15:04:05", s); err == nil {
			return t.UTC(), true, nil
		}
	default:
		return time.Time{}, false, geni.Errorf(geni.BadArgs, "%s: want a time", name)
	}
	t, err := sfa.ParseTime(s)
	if err != nil {
		return time.Time{}, false, geni.Errorf(geni.BadArgs, "%s: %v", name, err)
	}
	return t, true, nil
}

// rspecVersion checks options' geni_rspec_version: required, GENI 3.
func rspecVersion(o map[string]any) error {
	v, ok := o["geni_rspec_version"]
	if !ok {
		return geni.Errorf(geni.BadArgs, "options: geni_rspec_version is required")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return geni.Errorf(geni.BadArgs, "options geni_rspec_version: want a struct {type, version}")
	}
	typ, _ := m["type"].(string)
	ver, _ := m["version"].(string)
	if !strings.EqualFold(typ, geni.RSpecType) || ver != geni.RSpecVersion {
		return geni.Errorf(geni.BadVersion, "RSpec %s %s is not served: only %s %s", typ, ver, geni.RSpecType, geni.RSpecVersion)
	}
	return nil
}

// compress is geni_compressed: zlib, then base64.
func compress(s string) string {
	var b bytes.Buffer
	z := zlib.NewWriter(&b)
	z.Write([]byte(s))
	z.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}
