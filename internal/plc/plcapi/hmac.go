package plcapi

import (
	"sort"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/xmlrpc"
)

// BootAuthMessage returns the message a PLCAPI BootAuth HMAC covers for a
// call whose arguments after the auth struct are args (reference
// plcapi.md §3, PLC/Auth.py BootAuth.canonicalize and the node manager's
// plcapi.py): the leaves of args, flattened (lists recurse, structs
// contribute their values only), each converted with Python's str(),
// sorted as strings and joined inside brackets: "[" + "".join(sorted) + "]".
func BootAuthMessage(args []any) string {
	leaves := canonicalize(nil, args)
	sort.Strings(leaves) // byte order of UTF-8 = code point order, as Python
	return "[" + strings.Join(leaves, "") + "]"
}

func canonicalize(out []string, args []any) []string {
	for _, a := range args {
		switch x := a.(type) {
		case []any:
			out = canonicalize(out, x)
		case map[string]any:
			vals := make([]any, 0, len(x))
			for _, v := range x {
				vals = append(vals, v) // order is irrelevant: the leaves are sorted
			}
			out = canonicalize(out, vals)
		default:
			out = append(out, pyStr(a))
		}
	}
	return out
}

// pyStr is Python 3's str() of a value decoded by xmlrpc.client.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return xmlrpc.PyRepr(x)
	case string:
		return x
	case xmlrpc.DateTime:
		return string(x) // str(xmlrpc.client.DateTime) is its value
	case []byte:
		// str(xmlrpc.client.Binary) decodes the bytes as latin-1
		var sb strings.Builder
		for _, c := range x {
			sb.WriteRune(rune(c))
		}
		return sb.String()
	}
	return ""
}
