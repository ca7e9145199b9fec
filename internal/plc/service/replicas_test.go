package service

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/planet"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

// replica opens a second Service on the database of dsn (where e runs),
// sharing e's clock, and logs its admin in.
func (e *env) replica(dsn string) *env {
	e.t.Helper()
	db, err := store.Open(e.ctx, dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	s := New(db, Options{Now: e.clock.Now, PasswordCost: bcrypt.MinCost, Logins: LoginPolicy{PairFree: 5, SourceFree: 8}})
	e.t.Cleanup(func() { s.Close() })
	r := &env{t: e.t, ctx: e.ctx, s: s, clock: e.clock}
	r.admin = r.login(adminEmail, adminPass)
	return r
}

// runChanges starts RunChanges and waits until its listener is connected.
func (e *env) runChanges() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.s.RunChanges(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("RunChanges: %v", err)
		}
	})
	waitFor(e.t, 10*time.Second, "the change listener to connect", func() bool { return e.s.ReplicaStats().Reconnects >= 1 })
}

func waitFor(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReplicaWatch: a change committed through replica 1 wakes the
// watcher of an affected node on replica 2 (within the bound of a local
// change, 1 s here as in TestWatch), and not the watcher of an unaffected
// node; a global change wakes everyone.
func TestReplicaWatch(t *testing.T) {
	dsn := pgtest.DSN(t)
	e1 := newEnv(t, dsn)
	e2 := e1.replica(dsn)
	e1.runChanges()
	e2.runChanges()
	site := e1.site("rw", 10)
	n1, n2 := e1.node(site, "n1.rw.org"), e1.node(site, "n2.rw.org")
	sl := e1.slice(e1.admin, "rw_one")
	// The connect of RunChanges woke every watcher once; settle first.
	time.Sleep(50 * time.Millisecond)
	nc1, nc2 := e2.nodeCaller(n1), e2.nodeCaller(n2)
	v1, v2 := e2.state(n1).Version, e2.state(n2).Version
	w1, err := e2.s.WatchNodeState(e2.ctx, nc1, n1, v1)
	e2.must(err)
	w2, err := e2.s.WatchNodeState(e2.ctx, nc2, n2, v2)
	e2.must(err)
	start := time.Now()
	e1.must(e1.s.Link(e1.ctx, e1.admin, core.SliceNode, sl, n1, nil))
	if !waitClosed(w1, time.Second) {
		t.Fatal("watcher on replica 2 not woken by a change through replica 1")
	}
	t.Logf("change at replica 1 -> watcher woken at replica 2: %v", time.Since(start))
	if waitClosed(w2, 200*time.Millisecond) {
		t.Fatal("unaffected watcher on replica 2 woken")
	}
	if e2.state(n1).Version == v1 {
		t.Fatal("replica 2 serves the old state after the change")
	}
	e1.add(e1.admin, core.InitScriptClass, core.Record{"name": "i", "script": "x"})
	if !waitClosed(w2, time.Second) {
		t.Fatal("global change through replica 1 did not wake replica 2's watcher")
	}
	if st := e2.s.ReplicaStats(); st.Received == 0 || st.Bad != 0 {
		t.Fatalf("replica 2 stats %+v", st)
	}
	// A replica skips its own notifications (it woke its watchers itself).
	if st := e1.s.ReplicaStats(); st.Received != 0 {
		t.Fatalf("replica 1 counted its own notifications: %+v", st)
	}
}

// TestReplicaListenerLost: when the listening connection is killed, the
// replica reconnects and wakes every watcher (they fetch their state
// again, so a change made while it was not listening is not lost).
func TestReplicaListenerLost(t *testing.T) {
	old := store.MaxListenBackoff
	store.MaxListenBackoff = 200 * time.Millisecond
	defer func() { store.MaxListenBackoff = old }()
	dsn := pgtest.DSN(t)
	e1 := newEnv(t, dsn)
	e2 := e1.replica(dsn)
	e2.runChanges()
	site := e1.site("rl", 10)
	n := e1.node(site, "n.rl.org")
	time.Sleep(50 * time.Millisecond)
	nc := e2.nodeCaller(n)
	w, err := e2.s.WatchNodeState(e2.ctx, nc, n, e2.state(n).Version)
	e2.must(err)
	var killed int64
	e1.must(e1.s.db.Write(e1.ctx, func(tx *store.Tx) error {
		var err error
		killed, err = tx.Int(e1.ctx, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ? AND datname = current_database()", store.ListenAppName)
		return err
	}))
	if killed != 1 {
		t.Fatalf("terminated %d listening connections, want 1", killed)
	}
	if !waitClosed(w, 5*time.Second) {
		t.Fatal("watcher not woken after the listener lost its connection")
	}
	waitFor(t, 5*time.Second, "the listener to reconnect", func() bool { return e2.s.ReplicaStats().Reconnects >= 2 })
	// And it listens again.
	v := e2.state(n).Version
	w, err = e2.s.WatchNodeState(e2.ctx, nc, n, v)
	e2.must(err)
	sl := e1.slice(e1.admin, "rl_s")
	e1.must(e1.s.Link(e1.ctx, e1.admin, core.SliceNode, sl, n, nil))
	if !waitClosed(w, time.Second) {
		t.Fatal("watcher not woken by a change after the reconnect")
	}
}

// TestReplicaStorm: 100,000 change notifications (each naming another
// node) reach a replica within seconds; none is lost at the listener
// (Received counts them all), the pending set never holds more than its
// bound (it folds into "every node"), and the watchers are woken.
func TestReplicaStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("storm: -short")
	}
	dsn := pgtest.DSN(t)
	e1 := newEnv(t, dsn)
	e2 := e1.replica(dsn)
	e2.s.repl.pend = newPending(1000)
	e2.runChanges()
	site := e1.site("rs", 10)
	n := e1.node(site, "n.rs.org")
	time.Sleep(50 * time.Millisecond)
	w, err := e2.s.WatchNodeState(e2.ctx, e2.nodeCaller(n), n, e2.state(n).Version)
	e2.must(err)
	before, reconnects := e2.s.ReplicaStats().Received, e2.s.ReplicaStats().Reconnects
	const total, perTx = 100_000, 1000
	start := time.Now()
	for i := 0; i < total; i += perTx {
		e1.must(e1.s.db.Write(e1.ctx, func(tx *store.Tx) error {
			for j := i; j < i+perTx; j++ {
				// Distinct payloads (PostgreSQL folds identical ones in a
				// transaction), node ids beyond the real ones.
				if err := tx.Notify(e1.ctx, fmt.Sprintf("storm;%d", 1_000_000+j)); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	sent := time.Since(start)
	waitFor(t, 60*time.Second, "all storm notifications", func() bool { return e2.s.ReplicaStats().Received-before >= total })
	got := e2.s.ReplicaStats()
	t.Logf("storm: %d notifications sent in %v, all received after %v; folds %d, peak pending %d nodes",
		total, sent, time.Since(start), got.Folds, e2.s.repl.pend.peak.Load())
	if got.Received-before != total {
		t.Fatalf("received %d notifications, want %d", got.Received-before, total)
	}
	if p := e2.s.repl.pend.peak.Load(); p > 1000 {
		t.Fatalf("pending set reached %d nodes, bound 1000", p)
	}
	// The storm named other nodes only: it wakes the watcher when it was
	// folded into "every node" (or the listener reconnected, which wakes
	// all), and must not otherwise. Then a change of the watched node
	// reaches it: the listener survived the storm.
	if got.Folds > 0 || got.Reconnects > reconnects {
		if !waitClosed(w, time.Second) {
			t.Fatal("watcher not woken by the folded storm")
		}
	} else {
		if waitClosed(w, 100*time.Millisecond) {
			t.Fatal("watcher woken by a storm of other nodes' changes that was never folded")
		}
		e1.must(e1.s.db.Write(e1.ctx, func(tx *store.Tx) error { return tx.Notify(e1.ctx, fmt.Sprintf("storm;%d", n)) }))
		if !waitClosed(w, 5*time.Second) {
			t.Fatal("watcher not woken by its node's change after the storm")
		}
	}
}

func TestChangesCodec(t *testing.T) {
	for _, c := range []changes{{all: true}, {nodes: map[int64]bool{1: true}}, {nodes: map[int64]bool{3: true, 99: true, 1 << 40: true}}} {
		p := encodeChanges("abc", c)
		o, got, err := decodeChanges(p)
		if err != nil || o != "abc" || got.all != c.all || len(got.nodes) != len(c.nodes) {
			t.Fatalf("%q: %q %+v %v", p, o, got, err)
		}
		for id := range c.nodes {
			if !got.nodes[id] {
				t.Fatalf("%q lost node %d", p, id)
			}
		}
	}
	if encodeChanges("o", changes{}) != "" {
		t.Fatal("no change encoded as a notification")
	}
	big := changes{}
	for i := range int64(5000) {
		big.addNodes(i + 1)
	}
	if p := encodeChanges("o", big); p != "o;*" {
		t.Fatalf("5,000 nodes encoded as %d bytes, want o;*", len(p))
	}
	for _, bad := range []string{"", "x", ";1", "o;", "o;1,,2", "o;-1", "o;0", "o;a", "o;1;2", "o;99999999999999999999"} {
		if _, _, err := decodeChanges(bad); err == nil {
			t.Errorf("decodeChanges(%q) accepted", bad)
		} else if !strings.Contains(err.Error(), "change notification") {
			t.Errorf("decodeChanges(%q): imprecise error %v", bad, err)
		}
	}
}

func TestPendingFolds(t *testing.T) {
	p := newPending(3)
	p.add(changes{nodes: map[int64]bool{1: true, 2: true}})
	p.add(changes{nodes: map[int64]bool{2: true, 3: true}})
	if c := p.take(); c.all || len(c.nodes) != 3 {
		t.Fatalf("take = %+v, want nodes 1-3", c)
	}
	if c := p.take(); c.all || len(c.nodes) != 0 {
		t.Fatalf("second take = %+v, want nothing", c)
	}
	for i := range int64(10) {
		p.add(changes{nodes: map[int64]bool{i + 1: true}})
	}
	if c := p.take(); !c.all || c.nodes != nil {
		t.Fatalf("overflow: %+v, want all", c)
	}
	if p.folds.Load() != 1 || p.peak.Load() > 3 {
		t.Fatalf("folds %d peak %d", p.folds.Load(), p.peak.Load())
	}
	select {
	case <-p.wake:
	default:
		t.Fatal("add did not signal the dispatcher")
	}
}

func FuzzDecodeChanges(f *testing.F) {
	for _, s := range []string{"o;*", "o;1,2,3", "", ";", "o;1,,", "o;-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		o, ch, err := decodeChanges(p)
		if err != nil {
			return
		}
		if o == "" || (!ch.all && len(ch.nodes) == 0) {
			t.Fatalf("%q: accepted as origin %q changes %+v", p, o, ch)
		}
		for id := range ch.nodes {
			if id <= 0 {
				t.Fatalf("%q: node id %d", p, id)
			}
		}
		if q := encodeChanges(o, ch); len(q) <= store.MaxNotifyPayload {
			if _, again, err := decodeChanges(q); err != nil || again.all != ch.all || len(again.nodes) != len(ch.nodes) {
				t.Fatalf("%q re-encoded as %q: %+v %v", p, q, again, err)
			}
		}
	})
}

// countingSender records every message it is handed.
type countingSender struct {
	mu   sync.Mutex
	sent map[string]int
}

func (c *countingSender) Send(_ context.Context, m mail.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = map[string]int{}
	}
	c.sent[strings.Join(m.To, ",")+"|"+m.Subject]++
	return nil
}

func (c *countingSender) total() (n int, dup string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.sent {
		n += v
		if v > 1 {
			dup = k
		}
	}
	return n, dup
}

// TestReplicaJobsOnce: with two replicas running the monitor and the mail
// job, exactly one runs each (one holder of each lock, the other replica
// runs no pass), every queued message goes out once, and when the
// holder stops the other replica takes over.
func TestReplicaJobsOnce(t *testing.T) {
	oldRetry := store.JobRetry
	store.JobRetry = 100 * time.Millisecond
	defer func() { store.JobRetry = oldRetry }()
	dsn := pgtest.DSN(t)
	e1 := newEnv(t, dsn)
	mk := func() *Service {
		db, err := store.Open(e1.ctx, dsn)
		e1.must(err)
		t.Cleanup(func() { db.Close() })
		s := New(db, Options{Now: e1.clock.Now, PasswordCost: bcrypt.MinCost, Monitor: planet.Policy{DownAfter: 4 * time.Second}})
		t.Cleanup(func() { s.Close() })
		return s
	}
	r := [2]*Service{mk(), mk()}
	var sender countingSender
	var cancels [2]context.CancelFunc
	var wg sync.WaitGroup
	for i, s := range r {
		ctx, cancel := context.WithCancel(e1.ctx)
		cancels[i] = cancel
		wg.Add(2)
		go func() { defer wg.Done(); s.RunMonitor(ctx) }()
		go func() { defer wg.Done(); s.RunMail(ctx, &sender, 100*time.Millisecond) }()
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	site := e1.site("jo", 10)
	for i := range 5 {
		e1.person(fmt.Sprintf("p%d@jo.org", i), site, core.RolePI)
	}
	waitFor(t, 10*time.Second, "the jobs to run", func() bool {
		m0, a0 := r[0].JobPasses()
		m1, a1 := r[1].JobPasses()
		return m0+m1 >= 2 && a0+a1 >= 5
	})
	time.Sleep(500 * time.Millisecond)
	m0, a0 := r[0].JobPasses()
	m1, a1 := r[1].JobPasses()
	t.Logf("monitor passes %d / %d, mail passes %d / %d", m0, m1, a0, a1)
	if (m0 == 0) == (m1 == 0) {
		t.Fatalf("monitor passes %d and %d: want exactly one replica running it", m0, m1)
	}
	if (a0 == 0) == (a1 == 0) {
		t.Fatalf("mail passes %d and %d: want exactly one replica running it", a0, a1)
	}
	for _, job := range []string{"monitor", "mail"} {
		if n, err := r[0].db.JobHolders(e1.ctx, job); err != nil || n != 1 {
			t.Fatalf("%s lock holders: %d %v", job, n, err)
		}
	}
	var queued int64
	e1.must(e1.s.db.Read(e1.ctx, func(tx *store.Tx) error {
		var err error
		queued, err = tx.Int(e1.ctx, "SELECT COUNT(*) FROM outbox")
		return err
	}))
	waitFor(t, 10*time.Second, "the outbox to be delivered", func() bool { n, _ := sender.total(); return int64(n) >= queued })
	if n, dup := sender.total(); dup != "" || int64(n) != queued {
		t.Fatalf("delivered %d messages for %d queued, duplicate %q", n, queued, dup)
	}
	// The monitor's holder stops: the other replica takes over.
	lead, other := 0, 1
	if m1 > 0 {
		lead, other = 1, 0
	}
	cancels[lead]()
	mo, _ := r[other].JobPasses()
	waitFor(t, 5*time.Second, "the other replica to take the monitor over", func() bool { m, _ := r[other].JobPasses(); return m > mo })
}

// TestReplicaLoginBackoff: failed logins count wherever they land: three
// at each of two replicas exceed the pair's five free failures, and both
// replicas then refuse even the right password; a success after the wait
// clears the pair at both.
func TestReplicaLoginBackoff(t *testing.T) {
	dsn := pgtest.DSN(t)
	e1 := newEnv(t, dsn)
	e2 := e1.replica(dsn)
	ctx := WithRemoteAddr(e1.ctx, "192.0.2.7")
	try := func(e *env, pw string) error {
		_, err := e.s.Authenticate(ctx, core.Credentials{Method: "password", Username: adminEmail, Password: pw}, nil)
		return err
	}
	for i := range 6 {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		err := try(e, "wrong")
		wantCode(t, err, core.Unauthenticated, fmt.Sprintf("wrong password %d", i+1))
	}
	for i, e := range []*env{e1, e2} {
		wantCode(t, try(e, adminPass), core.RateLimited, fmt.Sprintf("right password at replica %d after 6 failures spread over both", i+1))
	}
	e1.clock.Add(2 * time.Second)
	if err := try(e2, adminPass); err != nil {
		t.Fatalf("right password after the wait: %v", err)
	}
	var rows int64
	e1.must(e1.s.db.Read(e1.ctx, func(tx *store.Tx) error {
		var err error
		rows, err = tx.Int(e1.ctx, "SELECT COUNT(*) FROM login_backoff WHERE key LIKE 'p%'")
		return err
	}))
	if rows != 0 {
		t.Fatalf("%d pair records left after a success", rows)
	}
}

// TestReplicaSignupLimit: sign-ups from one address count across
// replicas: after the free ones (DefaultSignupsFree) spread over two
// replicas, the next is refused at either; another address is not, and
// the sign-ups did not count as failed logins from the address.
func TestReplicaSignupLimit(t *testing.T) {
	dsn := pgtest.DSN(t)
	e1 := newEnv(t, dsn)
	e2 := e1.replica(dsn)
	e1.site("su", 10)
	anon, err := e1.s.Authenticate(e1.ctx, core.Credentials{Method: "anonymous"}, nil)
	e1.must(err)
	from := func(addr string) context.Context { return WithRemoteAddr(e1.ctx, addr) }
	reg := func(e *env, ctx context.Context, i int) error {
		_, err := e.s.RegisterPerson(ctx, anon, core.Registration{FirstName: "A", LastName: "B", Email: fmt.Sprintf("u%d@su.org", i), Site: "su", Password: "long-enough"})
		return err
	}
	for i := range DefaultSignupsFree {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		e.must(reg(e, from("198.51.100.9"), i))
	}
	for i, e := range []*env{e1, e2} {
		err := reg(e, from("198.51.100.9"), 100+i)
		wantCode(t, err, core.RateLimited, fmt.Sprintf("sign-up %d from one address at replica %d", DefaultSignupsFree+1, i+1))
		if !strings.Contains(err.Error(), "too many sign-ups") {
			t.Fatalf("message: %v", err)
		}
	}
	e2.must(reg(e2, from("198.51.100.10"), 20))
	var logins, signups int64
	e1.must(e1.s.db.Read(e1.ctx, func(tx *store.Tx) error {
		var err error
		if logins, err = tx.Int(e1.ctx, "SELECT COUNT(*) FROM login_backoff WHERE key NOT LIKE 'signup/%'"); err != nil {
			return err
		}
		signups, err = tx.Int(e1.ctx, "SELECT COUNT(*) FROM login_backoff WHERE key LIKE 'signup/%'")
		return err
	}))
	if logins != 0 || signups == 0 {
		t.Fatalf("backoff records: %d of logins (want none: sign-ups are not failed logins), %d of sign-ups", logins, signups)
	}
}
