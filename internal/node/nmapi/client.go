package nmapi

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// SliverSocket is where the socket is in a sliver whose slice has
// nm_api=1 (sliver.APISocketPath).
const SliverSocket = "/run/pl/api.sock"

// SliverClient is where the node's own pl binary is in such a sliver,
// bound read-only so that the sliver has a client (`/run/pl/pl nm ...`).
const SliverClient = "/run/pl/pl"

// LocalSocket is the socket a client on this machine should call: the
// sliver's when it exists (a client in a sliver), else DefaultSocket.
func LocalSocket() string {
	if fi, err := os.Stat(SliverSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
		return SliverSocket
	}
	return DefaultSocket
}

var argKey = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// MaxCLIArgs bounds the key=value arguments ArgsFromCLI takes.
const MaxCLIArgs = 256

// ArgsFromCLI builds a method's JSON arguments from a command line (the
// `pl nm` command): nothing is {}; one argument starting with "{" is
// the JSON object itself; otherwise each argument is key=value, where a
// key with dots names a field of an object (amount.cpu_share=2 is
// {"amount":{"cpu_share":2}}) and a value that is JSON (a number, true,
// an array, a quoted string ...) is taken as such, anything else as a
// string (slice=pl_a). A key given twice, or as both a value and an
// object, is refused. Errors are Invalid and name the argument.
func ArgsFromCLI(args []string) (json.RawMessage, error) {
	if len(args) == 0 {
		return json.RawMessage("{}"), nil
	}
	if strings.HasPrefix(strings.TrimSpace(args[0]), "{") {
		if len(args) > 1 {
			return nil, core.Errorf(core.Invalid, "a JSON object is the only argument (got %d more)", len(args)-1)
		}
		return ReadArgs(strings.NewReader(args[0]))
	}
	if len(args) > MaxCLIArgs {
		return nil, core.Errorf(core.Invalid, "%d arguments, at most %d", len(args), MaxCLIArgs)
	}
	root := map[string]any{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, core.Errorf(core.Invalid, "argument %q is not key=value (or one JSON object)", a)
		}
		parts := strings.Split(k, ".")
		obj := root
		for i, p := range parts {
			if !argKey.MatchString(p) {
				return nil, core.Errorf(core.Invalid, "argument %q: key %q is not lower-case letters, digits and _ (dots between fields)", a, k)
			}
			if i == len(parts)-1 {
				if _, dup := obj[p]; dup {
					return nil, core.Errorf(core.Invalid, "argument %q: %s given twice", a, k)
				}
				var val any = v
				if json.Valid([]byte(v)) {
					val = json.RawMessage(v)
				}
				obj[p] = val
				break
			}
			next, exists := obj[p]
			if !exists {
				m := map[string]any{}
				obj[p] = m
				obj = m
				continue
			}
			m, isObj := next.(map[string]any)
			if !isObj {
				return nil, core.Errorf(core.Invalid, "argument %q: %s is both a value and an object", a, strings.Join(parts[:i+1], "."))
			}
			obj = m
		}
	}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, core.Errorf(core.Invalid, "arguments: %v", err)
	}
	return ReadArgs(strings.NewReader(string(b)))
}
