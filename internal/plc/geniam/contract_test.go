package geniam_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/amclient"
	"github.com/planetlab/pl/internal/plc/geniam"
	"github.com/planetlab/pl/internal/sfa"
	"github.com/planetlab/pl/internal/xmlrpc"
)

const sliceURN = "urn:publicid:IDN+plc.test+slice+pr_geni"

// call fails the test on a transport error and returns the answer.
func call(t *testing.T) func(*amclient.Result, error) *amclient.Result {
	return func(r *amclient.Result, err error) *amclient.Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func want(t *testing.T, r *amclient.Result, code geni.Code, text string) *amclient.Result {
	t.Helper()
	if r.Code != code || !strings.Contains(r.Output, text) {
		t.Fatalf("answer %s %q; want %s with %q", r.Code, r.Output, code, text)
	}
	return r
}

func ok(t *testing.T, r *amclient.Result) *amclient.Result {
	t.Helper()
	return want(t, r, geni.Success, "")
}

// xmllint validates an RSpec against the schemas of package rspec.
func xmllint(t *testing.T, schema, doc string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	xsd := filepath.Join("..", "..", "geni", "rspec", "testdata", "schema", schema)
	if out, err := exec.Command("xmllint", "--noout", "--nonet", "--schema", xsd, p).CombinedOutput(); err != nil { // hostdeps: xmllint
		t.Fatalf("xmllint %s: %v\n%s\n%s", schema, err, out, doc)
	}
}

func sliverStates(t *testing.T, v any) map[string][2]string {
	t.Helper()
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case map[string]any:
		list, _ = x["geni_slivers"].([]any)
	}
	out := map[string][2]string{}
	for _, s := range list {
		m := s.(map[string]any)
		out[m["geni_sliver_urn"].(string)] = [2]string{m["geni_allocation_status"].(string), m["geni_operational_status"].(string)}
	}
	return out
}

func sliver(e *env, host string) string {
	return "urn:publicid:IDN+plc.test+sliver+pr_geni." + itoa64(e.nodes[host])
}

func itoa64(n int64) string { return strings.TrimLeft(itoa(int(n)), "0") }

func sshPub(t *testing.T) string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func request(nodes ...string) string {
	var b strings.Builder
	b.WriteString(`<rspec xmlns="http://www.geni.net/resources/rspec/3" type="request">`)
	for i, n := range nodes {
		b.WriteString(`<node client_id="c` + itoa(i) + `"`)
		if n != "" {
			b.WriteString(` component_id="urn:publicid:IDN+plc.test+node+` + n + `"`)
		}
		b.WriteString(`><sliver_type name="pl-container"/></node>`)
	}
	b.WriteString(`</rspec>`)
	return b.String()
}

// TestContract walks every method, state transition and error code of
// the AM API v3 over HTTPS with client certificates.
func TestContract(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	alice, bob := e.people["alice@pr.test"], e.people["bob@pr.test"]
	sc := amclient.Creds(e.cred(alice, "pr_geni"))
	uc := amclient.Creds(e.cred(alice, ""))
	v3 := func(extra ...any) map[string]any {
		o := map[string]any{"geni_rspec_version": amclient.V3()}
		for i := 0; i+1 < len(extra); i += 2 {
			o[extra[i].(string)] = extra[i+1]
		}
		return o
	}

	t.Run("GetVersion", func(t *testing.T) {
		r := ok(t, call(t)(alice.am.GetVersion(ctx)))
		v := r.Map()
		if r.Raw["geni_api"] != int64(3) || v["geni_api"] != int64(3) || v["geni_allocate"] != "geni_many" {
			t.Fatalf("GetVersion %v", r.Raw)
		}
		if rv := v["geni_request_rspec_versions"].([]any)[0].(map[string]any); rv["type"] != "GENI" || rv["version"] != "3" {
			t.Fatalf("request rspec versions %v", rv)
		}
		if ct := v["geni_credential_types"].([]any)[0].(map[string]any); ct["geni_type"] != "geni_sfa" {
			t.Fatalf("credential types %v", ct)
		}
		want(t, call(t)(alice.am.Call(ctx, "NoSuchMethod")), geni.Unsupported, "NoSuchMethod")
	})

	t.Run("ListResources", func(t *testing.T) {
		want(t, call(t)(alice.am.ListResources(ctx, uc, map[string]any{})), geni.BadArgs, "geni_rspec_version is required")
		want(t, call(t)(alice.am.ListResources(ctx, uc, map[string]any{"geni_rspec_version": map[string]any{"type": "GENI", "version": "2"}})), geni.BadVersion, "only GENI 3")
		want(t, call(t)(alice.am.Call(ctx, "ListResources", "not-an-array", v3())), geni.BadArgs, "credentials: want an array")
		want(t, call(t)(alice.am.ListResources(ctx, []any{}, v3())), geni.Forbidden, "no geni_sfa credential")
		want(t, call(t)(bob.am.ListResources(ctx, uc, v3())), geni.Forbidden, "not by the caller")
		want(t, call(t)(alice.am.ListResources(ctx, uc, v3("geni_available", "yes"))), geni.BadArgs, "geni_available")
		ad := ok(t, call(t)(alice.am.ListResources(ctx, uc, v3()))).Value.(string)
		xmllint(t, "ad.xsd", ad)
		if strings.Count(ad, "<node ") != 3 || !strings.Contains(ad, `latitude="40.35"`) || !strings.Contains(ad, `<available now="false">`) {
			t.Fatalf("advertisement:\n%s", ad)
		}
		avail := ok(t, call(t)(alice.am.ListResources(ctx, sc, v3("geni_available", true)))).Value.(string)
		if strings.Count(avail, "<node ") != 2 || strings.Contains(avail, "node0003") {
			t.Fatalf("geni_available:\n%s", avail)
		}
		z := ok(t, call(t)(alice.am.ListResources(ctx, uc, v3("geni_compressed", true)))).Value.(string)
		raw, err := base64.StdEncoding.DecodeString(z)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if strings.Count(string(plain), "<node ") != 3 {
			t.Fatalf("geni_compressed: %.300s", plain)
		}
	})

	n1, n2 := sliver(e, nodeName(1)), sliver(e, nodeName(2))
	t.Run("Allocate refusals", func(t *testing.T) {
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, "<rspec", map[string]any{})), geni.BadArgs, "not well-formed")
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request("nosuch.pr.test"), map[string]any{})), geni.SearchFailed, "no node")
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request("", "", ""), map[string]any{})), geni.TooBig, "only 2")
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(nodeName(3)), map[string]any{})), geni.Unavailable, "not available")
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, strings.Repeat(" ", 2<<20), map[string]any{})), geni.TooBig, "bytes")
		// Another authority's slice: the credential for pr_geni is not one for it.
		want(t, call(t)(alice.am.Allocate(ctx, "urn:publicid:IDN+other.test+slice+x", sc, request(""), map[string]any{})), geni.Forbidden, "not urn:publicid:IDN+other.test+slice+x")
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, uc, request(""), map[string]any{})), geni.Forbidden, "is for")
		want(t, call(t)(bob.am.Allocate(ctx, sliceURN, sc, request(""), map[string]any{})), geni.Forbidden, "not by the caller")
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(""), map[string]any{"geni_end_time": "yesterday"})), geni.BadArgs, "geni_end_time")
		want(t, call(t)(alice.am.Call(ctx, "Allocate", sliceURN, sc)), geni.BadArgs, "want 4 arguments")
		// Nothing changed.
		ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc)))
		if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); len(st) != 0 {
			t.Fatalf("refused allocations left slivers: %v", st)
		}
	})

	t.Run("Allocate", func(t *testing.T) {
		r := ok(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(nodeName(1), ""), map[string]any{})))
		st := sliverStates(t, r.Value)
		if st[n1] != [2]string{geni.Allocated, geni.PendingAllocation} || st[n2] != [2]string{geni.Allocated, geni.PendingAllocation} {
			t.Fatalf("allocated %v", st)
		}
		man := r.Map()["geni_rspec"].(string)
		xmllint(t, "manifest.xsd", man)
		if !strings.Contains(man, `client_id="c0000"`) || !strings.Contains(man, `sliver_id="`+n1+`"`) {
			t.Fatalf("manifest:\n%s", man)
		}
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(nodeName(1)), map[string]any{})), geni.AlreadyExists, "already has a sliver")
		exp := r.Map()["geni_slivers"].([]any)[0].(map[string]any)["geni_expires"].(string)
		if got, _ := time.Parse(time.RFC3339, exp); got.Sub(e.clock.Now()) > 10*time.Minute+time.Second {
			t.Fatalf("allocation expires %s: later than the allocation TTL", exp)
		}
		// Nothing is at the nodes yet.
		if ns, _ := e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)]); hasSliver(ns, "pr_geni") {
			t.Fatal("an allocated sliver is already in the node's state")
		}
	})

	key := sshPub(t)
	t.Run("Provision", func(t *testing.T) {
		want(t, call(t)(alice.am.Provision(ctx, []string{sliceURN}, sc, map[string]any{})), geni.BadArgs, "geni_rspec_version")
		bad := v3("geni_users", []any{map[string]any{"urn": alice.cert.URN, "keys": []any{"ssh-rsa garbage"}}})
		want(t, call(t)(alice.am.Provision(ctx, []string{sliceURN}, sc, bad)), geni.BadArgs, "not an ssh public key")
		want(t, call(t)(alice.am.Provision(ctx, []string{"urn:publicid:IDN+plc.test+sliver+pr_geni.999"}, sc, v3())), geni.SearchFailed, "no sliver")
		// Refused after the nodes were added (the end time): undone.
		past := e.clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		want(t, call(t)(alice.am.Provision(ctx, []string{sliceURN}, sc, v3("geni_end_time", past))), geni.BadArgs, "not in the future")
		if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); st[n1][0] != geni.Allocated || st[n2][0] != geni.Allocated {
			t.Fatalf("a refused Provision left %v", st)
		}
		if recs, _ := e.svc.Get(ctx, e.admin, core.Slice, &core.Filter{IsList: true, IDs: []int64{e.slice}}, []string{"node_ids"}); len(recs[0]["node_ids"].([]int64)) != 0 {
			t.Fatalf("a refused Provision left nodes in the slice: %v", recs[0]["node_ids"])
		}
		users := v3("geni_users", []any{map[string]any{"urn": alice.cert.URN, "keys": []any{key}}})
		r := ok(t, call(t)(alice.am.Provision(ctx, []string{sliceURN}, sc, users)))
		st := sliverStates(t, r.Value)
		if st[n1] != [2]string{geni.Provisioned, geni.Ready} || st[n2] != [2]string{geni.Provisioned, geni.Ready} {
			t.Fatalf("provisioned %v", st)
		}
		man := r.Map()["geni_rspec"].(string)
		xmllint(t, "manifest.xsd", man)
		if !strings.Contains(man, `<login authentication="ssh-keys" hostname="`+nodeName(1)+`" port="22" username="pr_geni">`) {
			t.Fatalf("manifest without the ssh login:\n%s", man)
		}
		ns, err := e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)])
		e.must(err)
		if !hasSliver(ns, "pr_geni") || !hasKey(ns, "pr_geni", key) {
			t.Fatalf("node state lacks the sliver or the geni_users key: %+v", ns.Slivers)
		}
	})

	t.Run("Status and Describe", func(t *testing.T) {
		r := ok(t, call(t)(alice.am.Status(ctx, []string{n1}, sc)))
		if r.Map()["geni_urn"] != sliceURN || len(sliverStates(t, r.Value)) != 1 {
			t.Fatalf("status %v", r.Value)
		}
		want(t, call(t)(alice.am.Describe(ctx, []string{sliceURN}, sc, map[string]any{})), geni.BadArgs, "geni_rspec_version")
		d := ok(t, call(t)(alice.am.Describe(ctx, []string{sliceURN}, sc, v3())))
		xmllint(t, "manifest.xsd", d.Map()["geni_rspec"].(string))
		e.addAs(e.people["pi@pr.test"].caller, core.Slice, core.Record{"name": "pr_other", "url": "http://x.test", "description": "d"})
		want(t, call(t)(alice.am.Status(ctx, []string{sliceURN, "urn:publicid:IDN+plc.test+sliver+pr_other.1"}, sc)), geni.BadArgs, "two slices")
		want(t, call(t)(alice.am.Status(ctx, []string{sliceURN, "urn:publicid:IDN+plc.test+sliver+nosuch.1"}, sc)), geni.SearchFailed, "no sliver")
		want(t, call(t)(alice.am.Status(ctx, []string{"urn:publicid:IDN+plc.test+node+x"}, sc)), geni.BadArgs, "neither")
	})

	t.Run("PerformOperationalAction", func(t *testing.T) {
		r := ok(t, call(t)(alice.am.PerformOperationalAction(ctx, []string{n1}, sc, geni.ActionStop, map[string]any{})))
		if st := sliverStates(t, r.Value); st[n1][1] != geni.NotReady {
			t.Fatalf("after geni_stop %v", st)
		}
		ns, _ := e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)])
		if attr(ns, "pr_geni", "enabled") != "0" {
			t.Fatalf("geni_stop did not reach the node's state: %+v", ns.Slivers)
		}
		if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); st[n2][1] != geni.Ready {
			t.Fatalf("geni_stop of one sliver stopped another: %v", st)
		}
		r = ok(t, call(t)(alice.am.PerformOperationalAction(ctx, []string{n1}, sc, geni.ActionStart, map[string]any{})))
		if st := sliverStates(t, r.Value); st[n1][1] != geni.Ready {
			t.Fatalf("after geni_start %v", st)
		}
		// geni_restart: stopped (the node sees enabled=0), geni_stopping
		// until the hold passes (no planet table here), then started.
		r = ok(t, call(t)(alice.am.PerformOperationalAction(ctx, []string{n1}, sc, geni.ActionRestart, map[string]any{})))
		if st := sliverStates(t, r.Value); st[n1][1] != geni.Stopping {
			t.Fatalf("after geni_restart %v", st)
		}
		ns, _ = e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)])
		if attr(ns, "pr_geni", "enabled") != "0" {
			t.Fatalf("geni_restart did not stop the sliver at the node: %+v", ns.Slivers)
		}
		if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); st[n1][1] != geni.Stopping || st[n2][1] != geni.Ready {
			t.Fatalf("during geni_restart %v", st)
		}
		e.clock.Add(geniam.DefaultRestartHold)
		if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); st[n1][1] != geni.Ready {
			t.Fatalf("after the restart hold %v", st)
		}
		ns, _ = e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)])
		if attr(ns, "pr_geni", "enabled") == "0" {
			t.Fatalf("geni_restart did not start the sliver again: %+v", ns.Slivers)
		}
		want(t, call(t)(alice.am.PerformOperationalAction(ctx, []string{n1}, sc, "geni_dance", map[string]any{})), geni.Unsupported, "geni_dance")
		want(t, call(t)(alice.am.PerformOperationalAction(ctx, []string{n1}, sc, geni.ActionUpdateUsers, map[string]any{})), geni.BadArgs, "geni_users is required")
		key2 := sshPub(t)
		ok(t, call(t)(alice.am.PerformOperationalAction(ctx, []string{sliceURN}, sc, geni.ActionUpdateUsers,
			map[string]any{"geni_users": []any{map[string]any{"urn": alice.cert.URN, "keys": []any{key2}}}})))
		ns, _ = e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(2)])
		if !hasKey(ns, "pr_geni", key2) || hasKey(ns, "pr_geni", key) {
			t.Fatalf("geni_update_users: keys %+v", ns.Slivers)
		}
	})

	t.Run("Renew", func(t *testing.T) {
		c, err := (&sfa.Verifier{Roots: sfa.NewRoots(e.sa.Cert), Now: e.clock.Now}).Verify(ctx, []byte(sc[0].(map[string]any)["geni_value"].(string)), nil, "")
		e.must(err)
		now := e.clock.Now()
		want(t, call(t)(alice.am.Renew(ctx, []string{sliceURN}, sc, now.Add(-time.Hour), map[string]any{})), geni.BadArgs, "not in the future")
		want(t, call(t)(alice.am.Renew(ctx, []string{sliceURN}, sc, now.Add(365*24*time.Hour), map[string]any{})), geni.Refused, "geni_extend_alap")
		// expiration_time as an XML-RPC dateTime, as some clients send it.
		ok(t, call(t)(alice.am.Call(ctx, "Renew", amclient.Strs(sliceURN), sc, xmlrpc.DateTime(now.Add(25*time.Hour).UTC().Format("20060102T15:04:05")), map[string]any{})))
		r := ok(t, call(t)(alice.am.Renew(ctx, []string{sliceURN}, sc, now.Add(24*time.Hour), map[string]any{})))
		exp := r.List()[0].(map[string]any)["geni_expires"].(string)
		if exp != now.Add(24*time.Hour).UTC().Format(time.RFC3339) {
			t.Fatalf("renewed to %s", exp)
		}
		r = ok(t, call(t)(alice.am.Renew(ctx, []string{sliceURN}, sc, now.Add(365*24*time.Hour), map[string]any{"geni_extend_alap": true})))
		exp = r.List()[0].(map[string]any)["geni_expires"].(string)
		if exp != c.Expires.UTC().Format(time.RFC3339) {
			t.Fatalf("geni_extend_alap renewed to %s; the credential expires %s", exp, c.Expires)
		}
		recs, _ := e.svc.Get(ctx, e.admin, core.Slice, &core.Filter{IsList: true, IDs: []int64{e.slice}}, []string{"expires"})
		if recs[0]["expires"].(int64) != c.Expires.Unix() {
			t.Fatalf("the PlanetLab slice expires %v", recs[0]["expires"])
		}
	})

	t.Run("delegated credential", func(t *testing.T) {
		del, err := sfa.Delegate(ctx, "", []byte(sc[0].(map[string]any)["geni_value"].(string)), bob.cert.Raw, alice.key, alice.cert,
			e.clock.Now().Add(time.Hour), []sfa.Privilege{{Name: "info"}})
		e.must(err)
		r := ok(t, call(t)(bob.am.Status(ctx, []string{sliceURN}, amclient.Creds(string(del)))))
		if len(sliverStates(t, r.Value)) != 2 {
			t.Fatalf("bob's status %v", r.Value)
		}
		want(t, call(t)(bob.am.Delete(ctx, []string{n1}, amclient.Creds(string(del)))), geni.Forbidden, "grants none of")
	})

	t.Run("Delete", func(t *testing.T) {
		r := ok(t, call(t)(alice.am.Delete(ctx, []string{n1}, sc)))
		if st := sliverStates(t, r.Value); st[n1][0] != geni.Unallocated {
			t.Fatalf("deleted %v", st)
		}
		if ns, _ := e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)]); hasSliver(ns, "pr_geni") {
			t.Fatal("the deleted sliver is still in the node's state")
		}
		want(t, call(t)(alice.am.Status(ctx, []string{n1}, sc)), geni.SearchFailed, "no sliver")
	})

	t.Run("allocation expiry", func(t *testing.T) {
		r := ok(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(nodeName(1)), map[string]any{})))
		if len(sliverStates(t, r.Value)) != 1 {
			t.Fatal(r.Value)
		}
		e.clock.Add(11 * time.Minute)
		want(t, call(t)(alice.am.Provision(ctx, []string{n1}, sc, v3())), geni.SearchFailed, "no sliver")
	})

	t.Run("Shutdown", func(t *testing.T) {
		want(t, call(t)(alice.am.Shutdown(ctx, sliceURN, uc)), geni.Forbidden, "")
		r := ok(t, call(t)(alice.am.Shutdown(ctx, sliceURN, sc)))
		if r.Value != true {
			t.Fatalf("Shutdown answered %v", r.Value)
		}
		if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); st[n2][1] != geni.NotReady {
			t.Fatalf("after Shutdown %v", st)
		}
		ns, _ := e.svc.NodeState(ctx, e.admin, e.nodes[nodeName(2)])
		if attr(ns, "pr_geni", "enabled") != "0" {
			t.Fatalf("Shutdown did not stop the sliver at the node: %+v", ns.Slivers)
		}
		want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(nodeName(1)), map[string]any{})), geni.Refused, "shut down")
	})

	t.Run("untrusted client certificate", func(t *testing.T) {
		other, _, _ := sfa.NewAuthority(host, time.Hour)
		k := alice.key
		der, err := other.IssueCert(sfa.URN{Authority: host, Type: "user", Name: "alice_at_pr.test"}, "", k.Public(), time.Hour)
		e.must(err)
		want(t, call(t)(e.client(der, k).GetVersion(ctx)), geni.Forbidden, "does not chain to a trusted root")
	})
}

func hasSliver(ns *core.NodeState, name string) bool {
	for _, s := range ns.Slivers {
		if s.Name == name {
			return true
		}
	}
	return false
}

func hasKey(ns *core.NodeState, name, key string) bool {
	for _, s := range ns.Slivers {
		for _, k := range s.Keys {
			if s.Name == name && k.Key == key {
				return true
			}
		}
	}
	return false
}

func attr(ns *core.NodeState, name, tag string) string {
	for _, s := range ns.Slivers {
		if s.Name != name {
			continue
		}
		for _, a := range s.Attributes {
			if a.TagName == tag {
				return a.Value
			}
		}
	}
	return ""
}

// TestForeignFederation: a user of another federation whose root the
// aggregate trusts may look (ListResources with their own authority's
// user credential) and allocate on their authority's slices; they get
// nothing on this PLC's slices without a credential for them.
func TestForeignFederation(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	fed, _, err := sfa.NewAuthority("fed.test", 24*time.Hour)
	e.must(err)
	agg := geniam.New(geniam.Config{Host: host, Registry: e.svc, Persons: e.svc,
		Verifier: &sfa.Verifier{Roots: sfa.NewRoots(e.sa.Cert, fed.Cert)}, Log: slog.New(slog.DiscardHandler)})
	srv := httptest.NewUnstartedServer(agg)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	e.must(err)
	der, err := fed.IssueCert(sfa.URN{Authority: "fed.test", Type: "user", Name: "carol"}, "carol@fed.test", k.Public(), time.Hour)
	e.must(err)
	sliceDER, err := fed.SliceCert(sfa.URN{Authority: "fed.test", Type: "slice", Name: "exp"}, time.Hour)
	e.must(err)
	userCred, err := fed.Credential(ctx, der, der, time.Now().Add(time.Hour), []sfa.Privilege{{Name: "info"}})
	e.must(err)
	sliceCred, err := fed.Credential(ctx, der, sliceDER, time.Now().Add(time.Hour), []sfa.Privilege{{Name: "*"}})
	e.must(err)
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}
	carol := amclient.New(srv.URL, tc)
	v3 := map[string]any{"geni_rspec_version": amclient.V3()}
	ad := ok(t, call(t)(carol.ListResources(ctx, amclient.Creds(string(userCred)), v3))).Value.(string)
	if strings.Count(ad, "<node ") != 2 {
		t.Fatalf("advertisement for a foreign user:\n%s", ad)
	}
	// Their own authority's slice is hosted here through stand-ins
	// (TestTwoAuthorities has the whole story).
	r := ok(t, call(t)(carol.Allocate(ctx, "urn:publicid:IDN+fed.test+slice+exp", amclient.Creds(string(sliceCred)), request(""), map[string]any{})))
	if st := sliverStates(t, r.Value); len(st) != 1 {
		t.Fatalf("allocated %v", st)
	}
	want(t, call(t)(carol.Allocate(ctx, sliceURN, amclient.Creds(string(sliceCred)), request(""), map[string]any{})),
		geni.Forbidden, "is for urn:publicid:IDN+fed.test+slice+exp")
	// The aggregate of env, which trusts only this PLC, refuses carol at once.
	other := e.client(der, k)
	want(t, call(t)(other.GetVersion(ctx)), geni.Forbidden, "does not chain to a trusted root")
}

// TestOperationalState: with the planet table, a provisioned sliver is
// geni_configuring until its node reports it, geni_ready once the node
// reports it running, geni_failed with the node's error.
func TestOperationalState(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	agg := geniam.New(geniam.Config{Host: host, Registry: e.svc, Persons: e.svc, Planet: e.svc,
		Verifier: &sfa.Verifier{Roots: sfa.NewRoots(e.sa.Cert), Now: e.clock.Now}, Log: slog.New(slog.DiscardHandler), Now: e.clock.Now})
	srv := httptest.NewUnstartedServer(agg)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	alice := e.people["alice@pr.test"]
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{alice.cert.Raw}, PrivateKey: alice.key}}
	am := amclient.New(srv.URL, tc)
	sc := amclient.Creds(e.cred(alice, "pr_geni"))
	ok(t, call(t)(am.Allocate(ctx, sliceURN, sc, request(nodeName(1)), map[string]any{})))
	ok(t, call(t)(am.Provision(ctx, []string{sliceURN}, sc, map[string]any{"geni_rspec_version": amclient.V3()})))
	n1 := sliver(e, nodeName(1))
	state := func() (string, string) {
		t.Helper()
		r := ok(t, call(t)(am.Status(ctx, []string{sliceURN}, sc)))
		s := r.Map()["geni_slivers"].([]any)[0].(map[string]any)
		if s["geni_sliver_urn"] != n1 {
			t.Fatalf("status %v", s)
		}
		return s["geni_operational_status"].(string), s["geni_error"].(string)
	}
	if op, _ := state(); op != geni.Configuring {
		t.Fatalf("before the node reports: %s", op)
	}
	node := e.nodes[nodeName(1)]
	secret, err := e.svc.IssueJoinToken(ctx, e.admin, node)
	e.must(err)
	key, err := e.svc.JoinNode(ctx, node, secret, sshPub(t))
	e.must(err)
	nc, err := e.svc.Authenticate(ctx, core.Credentials{Method: "node_key", NodeID: node, NodeKey: key}, nil)
	e.must(err)
	// The planet table learns new slices at the monitor's next step.
	e.must(e.svc.MonitorStep(ctx))
	report := func(r core.NodeReport) {
		t.Helper()
		e.must(e.svc.ReportNode(ctx, nc, node, r))
	}
	report(core.NodeReport{Figures: &core.NodeFigures{Time: e.clock.Now(), CPUs: 1, SliverCount: 1,
		Slivers: []core.SliverFigures{{Slice: "pr_geni", State: "running"}}}})
	if op, _ := state(); op != geni.Ready {
		t.Fatalf("reported running: %s", op)
	}
	// geni_restart: geni_stopping until the node reports the sliver
	// stopped, then started again (before the hold has passed).
	r := ok(t, call(t)(am.PerformOperationalAction(ctx, []string{n1}, sc, geni.ActionRestart, map[string]any{})))
	if s := r.Value.([]any)[0].(map[string]any); s["geni_operational_status"] != geni.Stopping {
		t.Fatalf("after geni_restart %v", s)
	}
	if op, _ := state(); op != geni.Stopping {
		t.Fatalf("geni_restart, the node still reports it running: %s", op)
	}
	report(core.NodeReport{Figures: &core.NodeFigures{Time: e.clock.Now(), CPUs: 1, SliverCount: 1,
		Slivers: []core.SliverFigures{{Slice: "pr_geni", State: "stopped"}}}})
	if op, _ := state(); op != geni.NotReady {
		t.Fatalf("geni_restart, the node reported it stopped: %s (want it started again, the node not yet running it)", op)
	}
	if ns, _ := e.svc.NodeState(ctx, e.admin, node); attr(ns, "pr_geni", "enabled") == "0" {
		t.Fatalf("geni_restart did not start the sliver again: %+v", ns.Slivers)
	}
	report(core.NodeReport{Figures: &core.NodeFigures{Time: e.clock.Now(), CPUs: 1, SliverCount: 1,
		Slivers: []core.SliverFigures{{Slice: "pr_geni", State: "running"}}}})
	if op, _ := state(); op != geni.Ready {
		t.Fatalf("geni_restart, running again: %s", op)
	}
	report(core.NodeReport{SliverErrors: map[string]string{"pr_geni": "image default: not found"},
		Figures: &core.NodeFigures{Time: e.clock.Now(), CPUs: 1}})
	if op, msg := state(); op != geni.Failed || !strings.Contains(msg, "not found") {
		t.Fatalf("reported an error: %s %q", op, msg)
	}
}
