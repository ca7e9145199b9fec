package geniam_test

import (
	"context"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni/amclient"
	"github.com/planetlab/pl/internal/sfa"
)

// BenchmarkListResources1000: ListResources of 1,000 nodes over HTTPS with
// a client certificate, beside its parts measured in the same run: the
// registry reads it makes (the baseline), the whole call in-process, and
// the credential's first verification alone (an xmlsec1 run; the calls
// after the first find it in the verifier's cache).
func BenchmarkListResources1000(b *testing.B) {
	e := newEnv(b, 1000)
	ctx := context.Background()
	alice := e.people["alice@pr.test"]
	uc := e.cred(alice, "")
	opts := map[string]any{"geni_rspec_version": amclient.V3()}
	b.Run("registry-reads", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.svc.Get(ctx, &core.Caller{Kind: core.Anonymous}, core.Node, nil, []string{"node_id", "hostname", "site_id", "boot_state"}); err != nil {
				b.Fatal(err)
			}
			if _, err := e.svc.Get(ctx, &core.Caller{Kind: core.Anonymous}, core.Site, nil, []string{"site_id", "login_base", "latitude", "longitude"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify-credential-cold", func(b *testing.B) {
		for b.Loop() {
			v := &sfa.Verifier{Roots: sfa.NewRoots(e.sa.Cert), Now: e.clock.Now}
			if _, err := v.Verify(ctx, []byte(uc), alice.cert, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			r := e.agg.Call(ctx, alice.cert, "ListResources", []any{amclient.Creds(uc), opts})
			if r["output"] != "" {
				b.Fatal(r["output"])
			}
		}
	})
	b.Run("https", func(b *testing.B) {
		for b.Loop() {
			r, err := alice.am.ListResources(ctx, amclient.Creds(uc), opts)
			if err != nil || r.Err() != nil {
				b.Fatal(err, r.Err())
			}
			if n := strings.Count(r.Value.(string), "<node "); n != 1000 {
				b.Fatalf("%d nodes", n)
			}
		}
	})
}
