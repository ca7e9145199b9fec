package geniam_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/planetlab/pl/internal/geni/amclient"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// FuzzCall feeds the aggregate XML-RPC calls: whatever the arguments,
// the answer is a well-formed AM API struct with a geni_code, never a
// panic.
func FuzzCall(f *testing.F) {
	e := newEnv(f, 2)
	alice := e.people["alice@pr.test"]
	sc := amclient.Creds(e.cred(alice, "pr_geni"))
	v3 := map[string]any{"geni_rspec_version": amclient.V3()}
	seed := func(method string, args ...any) {
		b, err := xmlrpc.EncodeCall(method, args...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed("GetVersion", map[string]any{})
	seed("ListResources", sc, map[string]any{"geni_rspec_version": amclient.V3(), "geni_compressed": true})
	seed("Allocate", sliceURN, sc, request(""), map[string]any{"geni_end_time": "2030-01-01T00:00:00Z"})
	seed("Allocate", sliceURN, sc, linkRequest(`capacity="100" latency="5" packet_loss="0.01"`), map[string]any{})
	seed("Allocate", "urn:publicid:IDN+fed.test+slice+Exp-1", sc, request(""), map[string]any{})
	seed("Status", amclient.Strs("urn:publicid:IDN+plc.test+sliver+pr_geni.link.link0"), sc, map[string]any{})
	seed("Provision", amclient.Strs(sliceURN), sc, map[string]any{"geni_rspec_version": amclient.V3(), "geni_users": []any{map[string]any{"urn": "u", "keys": []any{"k"}}}})
	seed("Renew", amclient.Strs(sliceURN), sc, "2030-01-01T00:00:00Z", map[string]any{"geni_extend_alap": true})
	seed("PerformOperationalAction", amclient.Strs(sliceURN), sc, "geni_stop", map[string]any{})
	seed("Status", amclient.Strs("urn:publicid:IDN+plc.test+sliver+pr_geni.1"), sc, map[string]any{})
	seed("Describe", amclient.Strs(sliceURN), sc, v3)
	seed("Delete", amclient.Strs(sliceURN), []any{"not a credential"}, map[string]any{})
	seed("Shutdown", sliceURN, []any{}, map[string]any{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		call, err := xmlrpc.DecodeCall(bytes.NewReader(body), xmlrpc.Limits{MaxBytes: 1 << 20})
		if err != nil {
			return
		}
		res := e.agg.Call(ctx, alice.cert, call.Method, call.Params)
		code, ok := res["code"].(map[string]any)
		if !ok {
			t.Fatalf("answer without code: %v", res)
		}
		if _, ok := code["geni_code"].(int); !ok {
			t.Fatalf("geni_code %T", code["geni_code"])
		}
		if _, err := xmlrpc.EncodeResponse(res); err != nil {
			t.Fatalf("answer cannot be encoded: %v", err)
		}
	})
}
