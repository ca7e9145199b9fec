// Package service implements core.Registry: PlanetLab Central's registry
// with the original's policy and authorization (reference plcapi.md §1-§4),
// over the SQL store. Every call runs in one store transaction, so a failed
// call leaves nothing behind; after a committed change the watch hub wakes
// the node watchers whose desired state the change may affect.
//
// Authorization happens in two layers, both here: the role gate of the
// PLCAPI method (policy.go, one table) and the ownership rules of each
// object (own site, own slice, own keys; objects.go, slices.go).
//
// The watch hub is in-process; on PostgreSQL, several PLC processes
// ("replicas") tell each other their changes with NOTIFY (replicas.go,
// RunChanges; docs/replicas.md).
package service

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/planet"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/sfa"
)

// Options configure a Service; zero values are the defaults.
type Options struct {
	Log *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// PasswordCost is the bcrypt cost; default bcrypt.DefaultCost.
	PasswordCost int
	// GENI is the slice authority of GENICertificate and GENICredential
	// (nil: they are refused as not supported).
	GENI *sfa.Authority
	// HRNRoot prefixes hrn tags (PLC_HRN_ROOT); default "plc".
	HRNRoot string
	// LeaseGranularity in seconds; default 3600.
	LeaseGranularity int64
	// VsysDefaults are vsys tags every new slice gets (PLC_VSYS_DEFAULTS).
	VsysDefaults []string
	// Logins is the backoff of failed logins (zero fields: defaults).
	Logins LoginPolicy
	// Signups is the backoff of sign-ups (RegisterPerson) by source
	// address: every sign-up counts; after PairFree+1 of them (default:
	// DefaultSignupsFree) within an hour, each next one waits double the
	// last (1 s, 2 s, ... 15 min; signup.go).
	Signups LoginPolicy
	// PasswordCacheTTL and PasswordCacheSize bound the cache of recent
	// successful password verifications (authcache.go); defaults 10 min
	// and 10,000 entries; a negative TTL disables the cache.
	PasswordCacheTTL  time.Duration
	PasswordCacheSize int
	// ReadCacheSize and ReadCacheBytes bound the cache of Get answers
	// (readcache.go) in entries and approximate bytes; defaults 1,024
	// entries and 64 MiB; a negative size disables the cache. It only ever
	// holds answers with a SQLite store (store.DB.Generation).
	ReadCacheSize  int
	ReadCacheBytes int64
	// StateCacheTTL bounds how long a cached node state, or a part shared
	// by every node's state, answers without a change heard by the watch
	// hub (statecache.go); default DefaultStateCacheTTL (5 s); negative:
	// no cache.
	StateCacheTTL time.Duration
	// Monitor is the monitor's policy (zero fields: planet's defaults).
	Monitor planet.Policy
	// Notifier is also handed every notice once recorded (nil: none; the
	// notices' mail goes through the outbox either way: outbox.go).
	Notifier Notifier
	// ExpiryWarnings are the lead times of slice expiry warnings (nil:
	// DefaultExpiryWarnings, 7 days and 1 day; empty: none).
	ExpiryWarnings []time.Duration
	// Audit configures how PLC asks nodes for flows (audit.go).
	Audit AuditOptions
	// PortalURL prefixes the portal paths of mailed links (tokens.go),
	// e.g. https://plc.example.org; "" leaves them relative.
	PortalURL string
	// HistoryEvery is how often the monitor adds a whole-planet sample to
	// the history (0: HistoryEvery); HistorySize bounds it (0:
	// planet.DefaultHistorySize, a day of minutes).
	HistoryEvery time.Duration
	HistorySize  int
	// TicketKey signs slice tickets (tickets.go); nil: GetSliceTicket is
	// refused as not supported.
	TicketKey ed25519.PrivateKey
	// TicketBrokers are other signers whose tickets nodes honour; they
	// are distributed with every node's state.
	TicketBrokers []core.TicketKey
	// OpenOutbox lets every caller, anonymous too, read the mail outbox
	// (Outbox): `pl dev`'s mailbox, where mail only goes to the log. Off,
	// only admins may.
	OpenOutbox bool
	// SupportEmail is where NotifySupport mails ("": NotifySupport is
	// refused).
	SupportEmail string
	// Name is this PLC's name, GetPeerName's answer ("": DefaultPLCName).
	Name string
	// PeerKey is this PLC's peering signing key (nil: peering is off;
	// peerrun.go, docs/federation.md).
	PeerKey ed25519.PrivateKey
}

// Service is the PLC registry.
type Service struct {
	db   *store.DB
	opts Options
	log  *slog.Logger
	hub  *hub
	// origin names this replica in its change notifications; repl is
	// RunChanges' state (replicas.go).
	origin string
	repl   replicaState
	// jobs counts the passes of the background jobs (replicas.go).
	jobs    jobCounts
	limiter *limiter
	signups *limiter // sign-ups per source address (signup.go)
	// mailPoke wakes RunMail when a message is queued (outbox.go).
	mailPoke chan struct{}
	pwCache  *passwordCache
	rcache   *readCache  // nil: disabled
	scache   *stateCache // node states and their shared parts (statecache.go)
	// checkPassword is the bcrypt verification (tests count its calls).
	checkPassword func(hash, pw string) bool

	// contactMu batches last_contact writes.
	contactMu sync.Mutex
	contacts  map[int64]int64

	expiry expiry

	// planet is the planet table; monMu serialises monitor steps.
	planet  *planet.Table
	history *planet.History // whole-planet samples for the overview (planet.go)
	monMu   sync.Mutex
	mon     *planet.Monitor
	monWake chan struct{}

	peers *peerRunner
}

var _ core.Registry = (*Service)(nil)

// New returns a Service over an open store.
func New(db *store.DB, opts Options) *Service {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PasswordCost == 0 {
		opts.PasswordCost = 10
	}
	if opts.HRNRoot == "" {
		opts.HRNRoot = "plc"
	}
	if opts.LeaseGranularity <= 0 {
		opts.LeaseGranularity = 3600
	}
	s := &Service{db: db, opts: opts, log: opts.Log.With("subsystem", "plc-service")}
	s.scache = newStateCache(opts.StateCacheTTL, opts.Now)
	s.hub = newHub(s.scache.bump)
	s.origin = newOrigin()
	s.repl.pend = newPending(MaxPendingNodes)
	s.limiter = newLimiter(opts.Logins, opts.Now)
	s.signups = newLimiter(opts.Signups.signupDefaults(), opts.Now)
	if db.Dialect == store.Postgres {
		// Replicas share the counts (docs/replicas.md).
		s.limiter.db, s.limiter.log = db, s.log
		s.signups.db, s.signups.log, s.signups.ns = db, s.log, "signup/"
	}
	s.mailPoke = make(chan struct{}, 1)
	s.checkPassword = checkPassword
	s.pwCache = newPasswordCache(opts.PasswordCacheTTL, opts.PasswordCacheSize, opts.Now)
	s.contacts = map[int64]int64{}
	if db.Dialect == store.SQLite {
		s.rcache = newReadCache(opts.ReadCacheSize, opts.ReadCacheBytes)
	}
	s.armExpiry(context.Background())
	s.planet = planet.NewTable()
	s.history = planet.NewHistory(opts.HistorySize)
	s.monWake = make(chan struct{}, 1)
	s.peers = newPeerRunner()
	s.mon = planet.NewMonitor(opts.Monitor, nil, nil)
	if err := s.loadPlanet(context.Background()); err != nil {
		s.log.Error("planet table: loading the stored reports", "err", err)
	}
	return s
}

// DB returns the store.
func (s *Service) DB() *store.DB { return s.db }

// OpRoles implements core.Registry. Under Options.OpenOutbox GetOutbox is
// open to every role, anonymous too (outbox.go).
func (s *Service) OpRoles(op string) []string {
	if op == opGetOutbox.String() && s.opts.OpenOutbox {
		return openOutboxRoles.Names()
	}
	return OpRoles(op)
}

// LeaseGranularity returns the lease granularity in seconds.
func (s *Service) LeaseGranularity() int64 { return s.opts.LeaseGranularity }

func (s *Service) now() int64 { return s.opts.Now().Unix() }

// op is the context of one service call: its transaction, caller, clock and
// the changes it made (for the watch hub).
type op struct {
	ctx context.Context
	s   *Service
	tx  *store.Tx
	c   *core.Caller
	now int64
	ch  changes
	// notices recorded by the transaction, sent once it commits.
	notices []core.Notice
}

// changes records which nodes' desired state a transaction may affect.
type changes struct {
	all   bool
	nodes map[int64]bool
}

func (c *changes) addNodes(ids ...int64) {
	if c.nodes == nil {
		c.nodes = map[int64]bool{}
	}
	for _, id := range ids {
		c.nodes[id] = true
	}
}

// write runs fn in a write transaction and, after commit, notifies the
// watchers of affected nodes.
func (s *Service) write(ctx context.Context, c *core.Caller, fn func(o *op) error) error {
	var ch changes
	var notices []core.Notice
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		o := &op{ctx: ctx, s: s, tx: tx, c: c, now: s.now()}
		if err := o.refreshCaller(); err != nil {
			return err
		}
		if err := fn(o); err != nil {
			return err
		}
		ch, notices = o.ch, o.notices
		return s.notifyReplicas(ctx, tx, ch)
	})
	if err != nil {
		return s.mapErr(err)
	}
	s.hub.notify(ch)
	s.peerChanges(ctx, ch)
	for _, n := range notices {
		s.sendNotice(ctx, n)
	}
	s.armExpiry(ctx)
	return nil
}

func (s *Service) read(ctx context.Context, c *core.Caller, fn func(o *op) error) error {
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		o := &op{ctx: ctx, s: s, tx: tx, c: c, now: s.now()}
		if err := o.refreshCaller(); err != nil {
			return err
		}
		return fn(o)
	})
	return s.mapErr(err)
}

// refreshCaller reloads a person caller's roles and sites so that a
// long-lived Caller never keeps privileges it lost.
func (o *op) refreshCaller() error {
	c := o.c
	if c == nil || c.Kind != core.PersonCaller {
		return nil
	}
	var enabled int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT enabled FROM persons WHERE person_id = ? AND deleted = 0", []any{c.PersonID}, &enabled)
	if err != nil {
		return err
	}
	if !found || enabled == 0 {
		return core.Errorf(core.Unauthenticated, "account %s is disabled or deleted", c.Email)
	}
	roles, err := o.tx.Strings(o.ctx, "SELECT y.name FROM person_role r JOIN roles y ON y.role_id = r.role_id WHERE r.person_id = ? ORDER BY y.role_id", c.PersonID)
	if err != nil {
		return err
	}
	sites, err := o.personSites(c.PersonID)
	if err != nil {
		return err
	}
	cc := *c
	cc.Roles, cc.SiteIDs = roles, sites
	o.c = &cc
	return nil
}

func (o *op) personSites(pid int64) ([]int64, error) {
	return o.tx.Ints(o.ctx, "SELECT ps.site_id FROM person_site ps JOIN sites s ON s.site_id = ps.site_id WHERE ps.person_id = ? AND s.deleted = 0 ORDER BY ps.is_primary DESC, ps.site_id", pid)
}

// ErrDBUnavailable is the message of calls refused while the registry
// database cannot be reached.
const ErrDBUnavailable = "the registry database is unreachable: this PLC accepts no changes until it is back; retry (or use another PLC replica)"

// mapErr turns store failures into domain errors: unique violations are
// conflicts, other database errors internal (logged, never shown).
//
// A database that cannot be reached is Unavailable (HTTP 503), with
// ErrDBUnavailable: this PLC accepts no change until it is back, and
// clients of several replicas go on to the next (docs/replicas.md).
func (s *Service) mapErr(err error) error {
	if err == nil {
		return nil
	}
	var de *core.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &core.Error{Code: core.Unavailable, Message: "request cancelled", Err: err}
	}
	if store.IsUniqueViolation(err) {
		return &core.Error{Code: core.Conflict, Message: "an object with that name already exists", Err: err}
	}
	if store.IsUnavailable(err) {
		s.log.Warn("registry database unreachable", "err", err)
		return &core.Error{Code: core.Unavailable, Message: ErrDBUnavailable, Err: err}
	}
	s.log.Error("registry failure", "err", err)
	return &core.Error{Code: core.Internal, Message: "database error", Err: err}
}

func table(class core.Class) (*store.Table, error) {
	t, ok := store.TableOf(class)
	if !ok {
		return nil, core.FieldErrorf("class", "unknown class %q", class)
	}
	return t, nil
}

// notFound is the NotFound error for a class and reference.
func notFound(class core.Class, ref any) error {
	return &core.Error{Code: core.NotFound, Message: sprintf("No such %s %v", class, ref)}
}
