package geniam_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni/amclient"
	"github.com/planetlab/pl/internal/plc/geniam"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/sfa"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a PLC service with a slice authority, an aggregate over it served
// by an HTTPS test server, and a site with nodes, a slice and persons.
type env struct {
	t      testing.TB
	host   string // the slice authority's and the aggregate's
	dbPath string
	ctx    context.Context
	svc    *service.Service
	sa     *sfa.Authority
	agg    *geniam.Aggregate
	srv    *httptest.Server
	clock  *clock
	admin  *core.Caller
	site   int64
	slice  int64
	nodes  map[string]int64
	people map[string]*user
}

// user is a person with a GENI key and certificate and an AM client.
type user struct {
	caller *core.Caller
	key    *rsa.PrivateKey
	cert   *sfa.Cert
	pem    string
	am     *amclient.Client
}

const host = "plc.test"

func newEnv(t testing.TB, nodes int) *env { t.Helper(); return newEnvHost(t, nodes, host) }

// newEnvHost is newEnv for a PLC of slice authority host whose aggregate
// also trusts the roots given (other PLCs' slice authorities).
func newEnvHost(t testing.TB, nodes int, host string, roots ...*sfa.Cert) *env {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "plc.db")
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sa, _, err := sfa.NewAuthority(host, 24*time.Hour*365)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	sa.Now = clk.Now
	log := slog.New(slog.DiscardHandler)
	svc := service.New(db, service.Options{Now: clk.Now, PasswordCost: bcrypt.MinCost, GENI: sa, Log: log})
	t.Cleanup(func() { svc.Close() })
	if _, err := svc.Init(ctx, "root@plc.test", "rootpass"); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, host: host, dbPath: dbPath, ctx: ctx, svc: svc, sa: sa, clock: clk, nodes: map[string]int64{}, people: map[string]*user{}}
	e.admin, err = svc.Authenticate(ctx, core.Credentials{Method: "password", Username: "root@plc.test", Password: "rootpass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.site = e.add(core.Site, core.Record{"login_base": "pr", "name": "Princeton", "abbreviated_name": "pr", "max_slices": 10, "latitude": 40.35, "longitude": -74.66})
	for i := 1; i <= nodes; i++ {
		h := nodeName(i)
		id := e.add(core.Node, core.Record{"site_id": e.site, "hostname": h})
		if i <= 2 || i > 3 {
			e.must(svc.Update(ctx, e.admin, core.Node, id, core.Record{"boot_state": "boot"}))
		}
		e.nodes[h] = id
	}
	e.agg = geniam.New(geniam.Config{Host: host, Registry: svc, Persons: svc, Verifier: &sfa.Verifier{Roots: sfa.NewRoots(append([]*sfa.Cert{sa.Cert}, roots...)...), Now: clk.Now},
		Log: log, Now: clk.Now})
	e.srv = httptest.NewUnstartedServer(e.agg)
	e.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	pi := e.person("pi@pr.test", core.RolePI)
	e.slice = e.addAs(pi.caller, core.Slice, core.Record{"name": "pr_geni", "url": "http://x.test", "description": "d"})
	alice := e.person("alice@pr.test", core.RoleUser)
	e.must(svc.Link(ctx, pi.caller, core.SlicePerson, e.slice, alice.caller.PersonID, nil))
	e.person("bob@pr.test", core.RoleUser)
	return e
}

func nodeName(i int) string { return "node" + itoa(i) + ".pr.test" }

func itoa(i int) string {
	return string(rune('0'+i/1000%10)) + string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) add(class core.Class, rec core.Record) int64 { return e.addAs(e.admin, class, rec) }

func (e *env) addAs(c *core.Caller, class core.Class, rec core.Record) int64 {
	e.t.Helper()
	id, err := e.svc.Add(e.ctx, c, class, rec)
	e.must(err)
	return id
}

// person adds an enabled person at the site with a GENI certificate and a
// client of the aggregate presenting it.
func (e *env) person(email, role string) *user {
	e.t.Helper()
	id := e.add(core.Person, core.Record{"email": email, "first_name": "F", "last_name": "L", "password": "pw-" + email})
	e.must(e.svc.Update(e.ctx, e.admin, core.Person, id, core.Record{"enabled": true}))
	e.must(e.svc.Link(e.ctx, e.admin, core.PersonSite, id, e.site, nil))
	rid := map[string]int64{core.RolePI: 20, core.RoleUser: 30}[role]
	e.must(e.svc.Link(e.ctx, e.admin, core.PersonRole, id, rid, nil))
	c, err := e.svc.Authenticate(e.ctx, core.Credentials{Method: "password", Username: email, Password: "pw-" + email}, nil)
	e.must(err)
	u := &user{caller: c}
	u.key, err = rsa.GenerateKey(rand.Reader, 2048)
	e.must(err)
	der, _ := x509.MarshalPKIXPublicKey(u.key.Public())
	u.pem, err = e.svc.GENICertificate(e.ctx, c, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	e.must(err)
	chain, err := sfa.ParseChain(u.pem)
	e.must(err)
	u.cert = chain[0]
	u.am = e.client(chain[0].Raw, u.key)
	e.people[email] = u
	return u
}

// client is an AM client presenting the certificate cert with key.
func (e *env) client(cert []byte, key *rsa.PrivateKey) *amclient.Client {
	tc := e.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{cert}, PrivateKey: key}}
	c := amclient.New(e.srv.URL, tc)
	return c
}

// cred is a credential from the slice authority: for slice, or the user's.
func (e *env) cred(u *user, slice string) string {
	e.t.Helper()
	c, err := e.svc.GENICredential(e.ctx, u.caller, u.pem, slice)
	e.must(err)
	return c
}
