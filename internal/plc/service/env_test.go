package service

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const adminEmail, adminPass = "root@plc.test", "rootpass"

type env struct {
	t     testing.TB
	ctx   context.Context
	s     *Service
	clock *clock
	admin *core.Caller
}

// both runs f against SQLite and PostgreSQL (skipped without PostgreSQL).
func both(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, newEnv(t, filepath.Join(t.TempDir(), "plc.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, newEnv(t, pgtest.DSN(t)))
	})
}

func newEnv(t testing.TB, dsn string) *env {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	s := New(db, Options{Now: clk.Now, PasswordCost: bcrypt.MinCost, Logins: LoginPolicy{PairFree: 5, SourceFree: 8}})
	t.Cleanup(func() { s.Close() })
	if _, err := s.Init(ctx, adminEmail, adminPass); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, s: s, clock: clk}
	e.admin = e.login(adminEmail, adminPass)
	return e
}

func (e *env) login(email, pw string) *core.Caller {
	e.t.Helper()
	c, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "password", Username: email, Password: pw}, nil)
	if err != nil {
		e.t.Fatalf("login %s: %v", email, err)
	}
	return c
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) add(c *core.Caller, class core.Class, rec core.Record) int64 {
	e.t.Helper()
	id, err := e.s.Add(e.ctx, c, class, rec)
	if err != nil {
		e.t.Fatalf("add %s %v: %v", class, rec, err)
	}
	return id
}

func (e *env) site(lb string, maxSlices int64) int64 {
	e.t.Helper()
	return e.add(e.admin, core.Site, core.Record{"login_base": lb, "name": "Site " + lb, "abbreviated_name": lb, "max_slices": maxSlices})
}

// person adds an enabled person with roles at site and returns a caller.
func (e *env) person(email string, site int64, roles ...string) *core.Caller {
	e.t.Helper()
	id := e.add(e.admin, core.Person, core.Record{"email": email, "first_name": "F", "last_name": "L", "password": "pw-" + email})
	e.must(e.s.Update(e.ctx, e.admin, core.Person, id, core.Record{"enabled": true}))
	if site != 0 {
		e.must(e.s.Link(e.ctx, e.admin, core.PersonSite, id, site, nil))
	}
	for _, r := range roles {
		rid, _ := RoleID(r)
		e.must(e.s.Link(e.ctx, e.admin, core.PersonRole, id, rid, nil))
	}
	return e.login(email, "pw-"+email)
}

func (e *env) node(site int64, hostname string, extra ...any) int64 {
	e.t.Helper()
	rec := core.Record{"site_id": site, "hostname": hostname}
	for i := 0; i+1 < len(extra); i += 2 {
		rec[extra[i].(string)] = extra[i+1]
	}
	return e.add(e.admin, core.Node, rec)
}

func (e *env) nodeCaller(id int64) *core.Caller {
	e.t.Helper()
	var key string
	e.must(e.s.db.Read(e.ctx, func(tx *store.Tx) error {
		_, err := tx.QueryRow(e.ctx, "SELECT key FROM nodes WHERE node_id = ?", []any{id}, &key)
		return err
	}))
	c, err := e.s.Authenticate(e.ctx, core.Credentials{Method: "node_key", NodeID: id, NodeKey: key}, nil)
	e.must(err)
	return c
}

func (e *env) slice(c *core.Caller, name string, extra ...any) int64 {
	e.t.Helper()
	rec := core.Record{"name": name, "url": "http://x.test", "description": "d"}
	for i := 0; i+1 < len(extra); i += 2 {
		rec[extra[i].(string)] = extra[i+1]
	}
	return e.add(c, core.Slice, rec)
}

func (e *env) tag(c *core.Caller, slice int64, name, value string, scope ...any) int64 {
	e.t.Helper()
	rec := core.Record{"slice_id": slice, "tag_type_id": e.tagType(name), "value": value}
	for i := 0; i+1 < len(scope); i += 2 {
		rec[scope[i].(string)] = scope[i+1]
	}
	return e.add(c, core.SliceTag, rec)
}

func (e *env) tagType(name string) int64 {
	e.t.Helper()
	id, err := e.s.Resolve(e.ctx, e.admin, core.TagType, name)
	e.must(err)
	return id
}

func (e *env) state(node int64) *core.NodeState {
	e.t.Helper()
	st, err := e.s.NodeState(e.ctx, e.admin, node)
	e.must(err)
	return st
}

func sshKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(p))[:len(ssh.MarshalAuthorizedKey(p))-1] + " user@test"
}

// wantCode fails unless err has the code.
func wantCode(t testing.TB, err error, code core.Code, what string) {
	t.Helper()
	if core.ErrorCode(err) != code {
		t.Fatalf("%s: got %v (code %q), want %s", what, err, core.ErrorCode(err), code)
	}
}

func get(t testing.TB, e *env, c *core.Caller, class core.Class, filter any, fields ...string) []core.Record {
	t.Helper()
	f, err := core.ParseFilter(filter)
	if err != nil {
		t.Fatal(err)
	}
	var fl []string
	if len(fields) > 0 {
		fl = fields
	}
	recs, err := e.s.Get(e.ctx, c, class, f, fl)
	if err != nil {
		t.Fatalf("get %s %v: %v", class, filter, err)
	}
	return recs
}
