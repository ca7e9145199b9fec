package plcapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/xmlrpc"
)

func TestBootAuthMessageFixed(t *testing.T) {
	for _, tt := range []struct {
		args []any
		want string
	}{
		{nil, "[]"},
		{[]any{map[string]any{}}, "[]"},
		{[]any{nil, true, false, int64(10), 1.0, "b", "a"}, "[1.010FalseNoneTrueab]"},
		{[]any{[]any{int64(2), []any{"x"}}, map[string]any{"k": 1e16}}, "[1e+162x]"},
	} {
		if got := BootAuthMessage(tt.args); got != tt.want {
			t.Errorf("BootAuthMessage(%v) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// TestBootAuthPythonVectors checks the canonicalisation and HMAC against
// the original node manager's Python code, over the XML-RPC wire format
// Python's xmlrpc.client produces.
func TestBootAuthPythonVectors(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: cannot compute reference vectors")
	}
	out, err := exec.Command(py, "testdata/bootauth_vectors.py").Output() // hostdeps: python3
	if err != nil {
		t.Fatal(err)
	}
	var vec struct {
		Key   string
		Cases []struct{ XML, Msg, HMAC string }
	}
	if err := json.Unmarshal(out, &vec); err != nil {
		t.Fatal(err)
	}
	if len(vec.Cases) < 10 {
		t.Fatalf("only %d vectors", len(vec.Cases))
	}
	for _, c := range vec.Cases {
		call, err := xmlrpc.DecodeCall(strings.NewReader(c.XML), xmlrpc.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		msg := BootAuthMessage(call.Params[1:])
		if msg != c.Msg {
			t.Errorf("message %q, python %q", msg, c.Msg)
			continue
		}
		m := hmac.New(sha1.New, []byte(vec.Key))
		m.Write([]byte(msg))
		if got := hex.EncodeToString(m.Sum(nil)); got != c.HMAC || got != call.Params[0].(map[string]any)["value"] {
			t.Errorf("hmac %s, python %s", got, c.HMAC)
		}
	}
}
