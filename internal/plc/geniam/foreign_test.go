package geniam_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/amclient"
	"github.com/planetlab/pl/internal/plc/geniam"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/sfa"
)

// requestAt is request for the aggregate of host.
func requestAt(host string, nodes ...string) string {
	return strings.ReplaceAll(request(nodes...), "+plc.test+node+", "+"+host+"+node+")
}

// standIn is what PLC B holds for a GENI slice of another authority.
type standIn struct {
	site, slice, person int64
	name                string
	expires             int64
	members             []int64
}

func lookupStandIn(t *testing.T, e *env, auth, sliceURN, userURN string) standIn {
	t.Helper()
	var s standIn
	tagged := func(class core.Class, field, tag, value string) int64 {
		recs, err := e.svc.Get(e.ctx, e.admin, class, &core.Filter{Terms: []core.Term{{Field: "tagname", Op: core.Eq, Value: tag}, {Field: "value", Op: core.Eq, Value: value}}}, []string{field})
		e.must(err)
		if len(recs) != 1 {
			t.Fatalf("%d %s tags %s=%s", len(recs), class, tag, value)
		}
		return recs[0][field].(int64)
	}
	s.site = tagged(core.SiteTag, "site_id", "geni_authority", "urn:publicid:IDN+"+auth+"+authority+sa")
	s.slice = tagged(core.SliceTag, "slice_id", "geni_slice", sliceURN)
	s.person = tagged(core.PersonTag, "person_id", "geni_user", userURN)
	recs, err := e.svc.Get(e.ctx, e.admin, core.Slice, &core.Filter{IsList: true, IDs: []int64{s.slice}}, []string{"name", "expires", "person_ids", "site_id"})
	e.must(err)
	s.name, s.expires, s.members = recs[0]["name"].(string), recs[0]["expires"].(int64), recs[0]["person_ids"].([]int64)
	if recs[0]["site_id"].(int64) != s.site {
		t.Fatalf("slice %s is not at the authority's site", s.name)
	}
	return s
}

// TestTwoAuthorities: a user of PLC A (slice authority plc.test) takes
// the slice credential A's slice authority gives them (what `pl geni
// credential` asks A for) to the aggregate of PLC B (plc-b.test), which
// trusts A's root: B hosts A's slice on its nodes through stand-ins (a
// site for the authority, a slice, a person), answers with A's slice URN,
// caps and refuses per authority, and refuses forged, untrusted and
// expired credentials.
func TestTwoAuthorities(t *testing.T) {
	a := newEnv(t, 2)                              // PLC A: plc.test, the user's
	b := newEnvHost(t, 3, "plc-b.test", a.sa.Cert) // PLC B: plc-b.test, trusts A's root
	ctx := context.Background()
	alice := a.people["alice@pr.test"]
	credA := a.cred(alice, "pr_geni") // A's credential for A's slice pr_geni
	sc := amclient.Creds(credA)
	am := b.client(alice.cert.Raw, alice.key) // alice, at B's aggregate
	v3 := map[string]any{"geni_rspec_version": amclient.V3()}
	base := geni.ForeignLoginBase(host)
	local := base + "_pr_geni"
	bSliver := func(name string, node int64) string {
		return "urn:publicid:IDN+plc-b.test+sliver+" + name + "." + itoa64(node)
	}

	// Before the first Allocate B has nothing of A.
	want(t, call(t)(am.Status(ctx, []string{sliceURN}, sc)), geni.SearchFailed, "no slice of GENI authority urn:publicid:IDN+plc.test+authority+sa")
	// Allocate: a refused request (unknown node) makes no stand-in.
	want(t, call(t)(am.Allocate(ctx, sliceURN, sc, requestAt("plc-b.test", "nosuch.pr.test"), map[string]any{})), geni.SearchFailed, "no node")
	if recs, _ := b.svc.Get(ctx, b.admin, core.Site, &core.Filter{IsList: true, Names: []string{base}}, []string{"site_id"}); len(recs) != 0 {
		t.Fatalf("a refused Allocate made the authority's site: %v", recs)
	}
	r := ok(t, call(t)(am.Allocate(ctx, sliceURN, sc, requestAt("plc-b.test", nodeName(1)), map[string]any{})))
	xmllint(t, "manifest.xsd", r.Map()["geni_rspec"].(string))
	si := lookupStandIn(t, b, host, sliceURN, alice.cert.URN)
	if si.name != local || len(si.members) != 1 || si.members[0] != si.person {
		t.Fatalf("stand-in %+v; want slice %s with alice's stand-in as its member", si, local)
	}
	c, err := (&sfa.Verifier{Roots: sfa.NewRoots(a.sa.Cert), Now: a.clock.Now}).Verify(ctx, []byte(credA), nil, "")
	b.must(err)
	if si.expires > c.Expires.Unix() || si.expires > b.clock.Now().Add(14*24*time.Hour).Unix() {
		t.Fatalf("the stand-in slice expires %d: after the credential (%d) or a new slice's two weeks", si.expires, c.Expires.Unix())
	}
	sites, _ := b.svc.Get(ctx, b.admin, core.Site, &core.Filter{IsList: true, IDs: []int64{si.site}}, []string{"login_base", "enabled", "max_slices"})
	if sites[0]["login_base"] != base || sites[0]["enabled"] != true || sites[0]["max_slices"].(int64) != 10 {
		t.Fatalf("authority site %v", sites[0])
	}
	n1 := bSliver(local, b.nodes[nodeName(1)])
	if st := sliverStates(t, r.Value); st[n1] != [2]string{geni.Allocated, geni.PendingAllocation} {
		t.Fatalf("allocated %v", st)
	}

	// Provision with geni_users: alice's own keys become her stand-in's,
	// another user's a geni_user_key of the slice; both reach the node.
	own, other := sshPub(t), sshPub(t)
	users := map[string]any{"geni_rspec_version": amclient.V3(), "geni_users": []any{
		map[string]any{"urn": alice.cert.URN, "keys": []any{own}},
		map[string]any{"urn": "urn:publicid:IDN+plc.test+user+bob_at_pr.test", "keys": []any{other}}}}
	r = ok(t, call(t)(am.Provision(ctx, []string{sliceURN}, sc, users)))
	man := r.Map()["geni_rspec"].(string)
	xmllint(t, "manifest.xsd", man)
	if !strings.Contains(man, `username="`+local+`"`) || !strings.Contains(man, `client_id="c0000"`) {
		t.Fatalf("manifest:\n%s", man)
	}
	ns, err := b.svc.NodeState(ctx, b.admin, b.nodes[nodeName(1)])
	b.must(err)
	if !hasSliver(ns, local) || !hasKey(ns, local, own) || !hasKey(ns, local, other) {
		t.Fatalf("node state of B lacks the stand-in sliver or its keys: %+v", ns.Slivers)
	}
	keys, _ := b.svc.Get(ctx, b.admin, core.Key, &core.Filter{Terms: []core.Term{{Field: "person_id", Op: core.Eq, Value: si.person}}}, []string{"key"})
	if len(keys) != 1 || keys[0]["key"] != own {
		t.Fatalf("alice's stand-in has keys %v", keys)
	}

	// Status and Describe answer with A's slice URN; slivers are B's.
	st := ok(t, call(t)(am.Status(ctx, []string{sliceURN}, sc)))
	if st.Map()["geni_urn"] != sliceURN || sliverStates(t, st.Value)[n1] != [2]string{geni.Provisioned, geni.Ready} {
		t.Fatalf("status %v", st.Value)
	}
	d := ok(t, call(t)(am.Describe(ctx, []string{n1}, sc, v3)))
	if d.Map()["geni_urn"] != sliceURN {
		t.Fatalf("describe by sliver URN %v", d.Map()["geni_urn"])
	}
	// Renew: never beyond the credential.
	r = ok(t, call(t)(am.Renew(ctx, []string{sliceURN}, sc, b.clock.Now().Add(365*24*time.Hour), map[string]any{"geni_extend_alap": true})))
	if exp := r.List()[0].(map[string]any)["geni_expires"].(string); exp != c.Expires.UTC().Format(time.RFC3339) {
		t.Fatalf("renewed to %s; the credential expires %s", exp, c.Expires)
	}

	// B's own users do not reach A's slice with B's credentials.
	balice := b.people["alice@pr.test"]
	want(t, call(t)(balice.am.Status(ctx, []string{sliceURN}, amclient.Creds(b.cred(balice, "pr_geni")))), geni.Forbidden, "not "+sliceURN)

	// Per-authority cap: max_slices 1 refuses A's second slice.
	b.must(b.svc.Update(ctx, b.admin, core.Site, si.site, core.Record{"max_slices": 1}))
	two := a.addAs(a.people["pi@pr.test"].caller, core.Slice, core.Record{"name": "pr_two", "url": "http://x.test", "description": "d"})
	a.must(a.svc.Link(ctx, a.people["pi@pr.test"].caller, core.SlicePerson, two, alice.caller.PersonID, nil))
	twoURN := "urn:publicid:IDN+plc.test+slice+pr_two"
	sc2 := amclient.Creds(a.cred(alice, "pr_two"))
	want(t, call(t)(am.Allocate(ctx, twoURN, sc2, requestAt("plc-b.test", nodeName(2)), map[string]any{})), geni.Refused, "maximum number of slices (1)")
	b.must(b.svc.Update(ctx, b.admin, core.Site, si.site, core.Record{"max_slices": 10}))
	ok(t, call(t)(am.Allocate(ctx, twoURN, sc2, requestAt("plc-b.test", nodeName(2)), map[string]any{})))

	// Refusing the authority: its site disabled refuses every call.
	b.must(b.svc.Update(ctx, b.admin, core.Site, si.site, core.Record{"enabled": false}))
	want(t, call(t)(am.Status(ctx, []string{sliceURN}, sc)), geni.Refused, "GENI authority urn:publicid:IDN+plc.test+authority+sa is refused here")
	b.must(b.svc.Update(ctx, b.admin, core.Site, si.site, core.Record{"enabled": true}))
	ok(t, call(t)(am.Status(ctx, []string{sliceURN}, sc)))
	// ... or the aggregate's Refuse list, before or after first use.
	refusing := geniam.New(geniam.Config{Host: "plc-b.test", Registry: b.svc, Persons: b.svc, Refuse: []string{"PLC.test"},
		Verifier: &sfa.Verifier{Roots: sfa.NewRoots(b.sa.Cert, a.sa.Cert), Now: b.clock.Now}, Log: slog.New(slog.DiscardHandler), Now: b.clock.Now})
	srv := httptest.NewUnstartedServer(refusing)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{alice.cert.Raw}, PrivateKey: alice.key}}
	rc := amclient.New(srv.URL, tc)
	want(t, call(t)(rc.Status(ctx, []string{sliceURN}, sc)), geni.Refused, "refused by this aggregate's operators")

	// An admin disabling the stand-in person refuses that user.
	b.must(b.svc.Update(ctx, b.admin, core.Person, si.person, core.Record{"enabled": false}))
	want(t, call(t)(am.Status(ctx, []string{sliceURN}, sc)), geni.Forbidden, "")
	b.must(b.svc.Update(ctx, b.admin, core.Person, si.person, core.Record{"enabled": true}))

	t.Run("forged", func(t *testing.T) {
		// A root B trusts that names plc.test's slice and user: refused,
		// they are outside its namespace.
		evil, _, err := sfa.NewAuthority("evil.test", 24*time.Hour)
		b.must(err)
		evil.Host = "plc.test" // IssueCert now makes plc.test URNs under evil.test's root
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		der, err := evil.IssueCert(sfa.URN{Authority: "plc.test", Type: "user", Name: "alice_at_pr.test"}, "", k.Public(), time.Hour)
		b.must(err)
		sder, err := evil.SliceCert(sfa.URN{Authority: "plc.test", Type: "slice", Name: "pr_geni"}, time.Hour)
		b.must(err)
		cred, err := evil.Credential(ctx, der, sder, time.Now().Add(time.Hour), []sfa.Privilege{{Name: "*"}})
		b.must(err)
		trusting := newEnvHost(t, 1, "plc-c.test", a.sa.Cert, evil.Cert)
		want(t, call(t)(trusting.client(der, k).Status(ctx, []string{sliceURN}, amclient.Creds(string(cred)))), geni.Forbidden, "outside the namespace of its issuer urn:publicid:IDN+evil.test+authority+sa")
		// A credential of A tampered with (privileges widened).
		bad := strings.Replace(credA, "<name>*</name>", "<name>pi</name>", 1)
		want(t, call(t)(am.Status(ctx, []string{sliceURN}, amclient.Creds(bad))), geni.Forbidden, "does not verify")
	})
	t.Run("untrusted", func(t *testing.T) {
		// PLC C's user and slice credential: B does not trust C's root.
		cEnv := newEnvHost(t, 1, "plc-c.test")
		carl := cEnv.people["alice@pr.test"]
		want(t, call(t)(b.client(carl.cert.Raw, carl.key).Status(ctx, []string{"urn:publicid:IDN+plc-c.test+slice+pr_geni"}, amclient.Creds(cEnv.cred(carl, "pr_geni")))),
			geni.Forbidden, "does not chain to a trusted root")
	})
	t.Run("expired", func(t *testing.T) {
		owner := alice.cert.Raw
		sder, err := a.sa.SliceCert(sfa.URN{Authority: "plc.test", Type: "slice", Name: "pr_geni"}, time.Hour)
		b.must(err)
		short, err := a.sa.Credential(ctx, owner, sder, b.clock.Now().Add(30*time.Minute), []sfa.Privilege{{Name: "*"}})
		b.must(err)
		ok(t, call(t)(am.Status(ctx, []string{sliceURN}, amclient.Creds(string(short)))))
		b.clock.Add(time.Hour)
		want(t, call(t)(am.Status(ctx, []string{sliceURN}, amclient.Creds(string(short)))), geni.Forbidden, "expired")
	})

	// Delete: the node leaves the stand-in slice.
	ok(t, call(t)(am.Delete(ctx, []string{n1}, sc)))
	if ns, _ := b.svc.NodeState(ctx, b.admin, b.nodes[nodeName(1)]); hasSliver(ns, local) {
		t.Fatal("the deleted sliver is still in B's node state")
	}
}

// TestForeignNames: names that cannot be mapped are refused precisely,
// and a second URN that maps onto a live stand-in's name is refused.
func TestForeignNames(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	exp := e.clock.Now().Add(time.Hour)
	f := func(slice string) error {
		_, _, err := e.svc.GENIForeignSlice(ctx, core.GENIForeign{SliceURN: slice, UserURN: "urn:publicid:IDN+fed.test+user+carol", Expires: exp, Create: true})
		return err
	}
	if err := f("urn:publicid:IDN+fed.test+slice+Exp-1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		urn  string
		code core.Code
		msg  string
	}{
		{"urn:publicid:IDN+fed.test+slice+exp_1", core.Conflict, "maps onto the PlanetLab slice " + geni.ForeignLoginBase("fed.test") + "_exp_1, which stands in for urn:publicid:IDN+fed.test+slice+Exp-1"},
		{"urn:publicid:IDN+fed.test+slice+a.b", core.Invalid, "holds '.'"},
		{"urn:publicid:IDN+fed.test+slice+" + strings.Repeat("x", 30), core.Invalid, "too long"},
		{"urn:publicid:IDN+plc.test+slice+pr_geni", core.Invalid, "this PLC's own authority"},
	} {
		if err := f(tc.urn); core.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v; want %s with %q", tc.urn, err, tc.code, tc.msg)
		}
	}
}

// TestRestartBetweenAllocateAndProvision: PLC restarts (a new store, service
// and aggregate on the same database) between Allocate and Provision; the
// allocated slivers and their client_ids are still there, and Provision
// works; an allocation that expired meanwhile is gone.
func TestRestartBetweenAllocateAndProvision(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	alice := e.people["alice@pr.test"]
	sc := amclient.Creds(e.cred(alice, "pr_geni"))
	ok(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, request(nodeName(1), nodeName(2)), map[string]any{})))

	// The restarted PLC.
	db, err := store.Open(ctx, e.dbPath)
	e.must(err)
	t.Cleanup(func() { db.Close() })
	svc := service.New(db, service.Options{Now: e.clock.Now, PasswordCost: bcrypt.MinCost, GENI: e.sa, Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { svc.Close() })
	agg := geniam.New(geniam.Config{Host: host, Registry: svc, Persons: svc, Verifier: &sfa.Verifier{Roots: sfa.NewRoots(e.sa.Cert), Now: e.clock.Now},
		Log: slog.New(slog.DiscardHandler), Now: e.clock.Now})
	srv := httptest.NewUnstartedServer(agg)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tc := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{alice.cert.Raw}, PrivateKey: alice.key}}
	am := amclient.New(srv.URL, tc)

	n1, n2 := sliver(e, nodeName(1)), sliver(e, nodeName(2))
	st := sliverStates(t, ok(t, call(t)(am.Status(ctx, []string{sliceURN}, sc))).Value)
	if st[n1] != [2]string{geni.Allocated, geni.PendingAllocation} || st[n2] != [2]string{geni.Allocated, geni.PendingAllocation} {
		t.Fatalf("after the restart %v", st)
	}
	r := ok(t, call(t)(am.Provision(ctx, []string{n1}, sc, map[string]any{"geni_rspec_version": amclient.V3()})))
	man := r.Map()["geni_rspec"].(string)
	xmllint(t, "manifest.xsd", man)
	if !strings.Contains(man, `client_id="c0000"`) || !strings.Contains(man, `sliver_id="`+n1+`"`) {
		t.Fatalf("manifest after the restart lost the client_id:\n%s", man)
	}
	if ns, _ := svc.NodeState(ctx, e.admin, e.nodes[nodeName(1)]); !hasSliver(ns, "pr_geni") {
		t.Fatal("Provision after the restart did not reach the node")
	}
	// The old aggregate (another replica, say) sees the same.
	d := ok(t, call(t)(alice.am.Describe(ctx, []string{sliceURN}, sc, map[string]any{"geni_rspec_version": amclient.V3()})))
	if man := d.Map()["geni_rspec"].(string); !strings.Contains(man, `client_id="c0000"`) || !strings.Contains(man, `client_id="c0001"`) {
		t.Fatalf("describe:\n%s", man)
	}
	// n2's allocation expires (10 minutes) while PLC is down.
	e.clock.Add(11 * time.Minute)
	want(t, call(t)(am.Provision(ctx, []string{n2}, sc, map[string]any{"geni_rspec_version": amclient.V3()})), geni.SearchFailed, "no sliver")
}
