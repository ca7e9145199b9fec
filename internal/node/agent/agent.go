// Package agent is the node manager core: it follows PLC's desired state for
// the node (watch, with polling as the fallback), caches the last good state
// on disk, computes every sliver's configuration (Compute, pure), compares it
// with what exists on the host (Plan, pure) and carries out the difference
// (Executor) through the sliver runtime and the network manager.
//
// Rules it keeps (reference nodemanager.md §8):
//   - Nothing is destroyed because PLC is unreachable: without a state from
//     PLC or a valid cache the agent does nothing; while offline it keeps
//     acting on the cached state, which still enforces expiry locally.
//   - Restarting the agent never restarts slivers: on start it re-adopts what
//     Runtime.List and netcfg List report and only changes what differs.
//   - One bad slice never stops the others: its errors are logged and
//     reported to PLC and it keeps its last good configuration.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/vsys"
	"github.com/planetlab/pl/internal/nodeapi"
)

// PLC is the node API as the agent uses it (implemented by plcclient.Client).
type PLC interface {
	State(ctx context.Context) (*core.NodeState, error)
	// Watch returns (nil, nil) when the wait ended without a change.
	Watch(ctx context.Context, version string, timeout time.Duration) (*core.NodeState, error)
	Report(ctx context.Context, r nodeapi.Report) error
}

// RunLevel is what a running node manager reports, as run level and as
// the boot state it reached (PLC keeps an admin's safeboot or disabled).
const RunLevel = "boot"

// Config configures the agent. Zero durations take the defaults shown.
type Config struct {
	StateDir string // cache, xid and network records (created 0700)
	PLC      PLC
	Runtime  sliver.Runtime
	Net      netcfg.Manager
	// Links builds slivers' virtual links; nil = slivers with links are
	// refused (an error reported to PLC).
	Links LinkManager
	// Images lists the reference images present; nil = vref is not checked.
	Images func(ctx context.Context) ([]string, error)
	// Runtimes lists the sliver runtimes the node has (sliver.Spec.Runtime
	// values); nil = runtime is not checked.
	Runtimes []string
	NCPU     int // 0 = runtime.NumCPU()
	Logger   *slog.Logger

	Parallel       int           // concurrent sliver operations; 0 = 8
	WatchTimeout   time.Duration // server-side long-poll wait; 55s
	PollInterval   time.Duration // longest wait between polls while PLC is unreachable; 3s
	ResyncInterval time.Duration // local re-evaluation (expiry, retries); 10s
	// ReportInterval is the period of reports to PLC (run level, host
	// key, sliver errors and the sensor figures); 15s, so that PLC's
	// planet table follows load within one interval (RunlevelAgent
	// reported every 15 min; CoMon refreshed every 5).
	ReportInterval time.Duration
	Version        string // node manager version, reported
	SSHHostKey     string // the node's public host key, reported
	// Figures, if set, collects the sensor summary each report carries
	// (package sensors); a failure is logged and the report goes without.
	Figures func() (*core.NodeFigures, error)
	// BwmonEvents, if set, returns bwmon's events later than after (at
	// most core.MaxBwmonEvents); each report carries those since the
	// last event of an accepted report.
	BwmonEvents func(after time.Time) []core.BwmonEvent
	Now         func() time.Time

	// Observe, if set, is called after each sliver operation (benchmarks,
	// and the SSH gateway, which drops sessions of destroyed or suspended
	// slivers).
	Observe func(op Op, err error, took time.Duration)
	// Capacity is what the node can promise slivers (tickets are refused
	// beyond it: tickets.go); a zero CPUPct means MaxReservedPct.
	Capacity rspec.Capacity
	// APISocket is the local API socket's host path, bound into slivers
	// with nm_api=1 or a vsys grant ("" = none).
	APISocket string
	// APIClient is the host path of a static pl binary bound read-only
	// beside the socket in those slivers, their client (`/run/pl/pl nm`);
	// "" = none.
	APIClient string
	// Vsys runs the privileged operations slices are granted by their
	// vsys tag (local API method Vsys); nil = none.
	Vsys *vsys.Registry
	// IPv6Prefix, when valid, is the node's own prefix for its slivers'
	// IPv6 addresses (pl node --ipv6-prefix): it wins over PLC's
	// (EffectivePrefix6). A Net that is a Prefix6Setter is given the
	// effective prefix before each pass.
	IPv6Prefix netip.Prefix

	// OnDirectory, if set, is called with the slice directory (see
	// LookupSlice) each time the agent refreshes it: the node manager
	// hands it to the SSH gateway's process.
	OnDirectory func(dir map[string]SliceInfo)
	// OnCodemux, if set, is called after each pass with the node's host
	// name at PLC and the codemux host names of the accepted, enabled
	// slivers (sorted by slice, host): the node manager hands them to its
	// port 80/443 demultiplexer.
	OnCodemux func(node string, routes []CodemuxRoute)
}

// CodemuxRoute is one host name a sliver serves through codemux.
type CodemuxRoute struct {
	Slice string
	XID   int
	Route tags.Route
}

// Main is the node manager core: Run it, Close it.
type Main struct {
	Config

	log    *slog.Logger
	xids   *XIDs
	exec   *Executor
	kick   chan struct{} // reconcile now
	report chan struct{} // report now

	mu       sync.Mutex
	state    *core.NodeState // the desired state acted upon (PLC or cache)
	online   bool
	errs     map[string]string // sliver errors of the last pass
	dir      map[string]SliceInfo
	applied  string // version of the last fully successful pass
	retry    map[string]retryState
	passes   int
	cancel   context.CancelFunc
	done     chan struct{}
	tickets  *ticketBook
	control  *control
	redeemMu sync.Mutex  // one redemption at a time
	recreate recreateSet // slivers ReCreate asked for (nodemethods.go)
	initOnce sync.Once
	initErr  error

	prefix6    netip.Prefix // the slivers' IPv6 prefix in force
	badPrefix6 string       // PLC's last refused prefix (logged once)
}

// SliverErrors returns the current sliver errors (slice -> why its last
// configuration was refused); the sensors report them per sliver.
func (m *Main) SliverErrors() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.errs))
	for k, v := range m.errs {
		out[k] = v
	}
	return out
}

// Slivers returns the names of the slivers the agent keeps (those with an
// xid), sorted.
func (m *Main) Slivers() []string {
	if m.init() != nil {
		return nil
	}
	x := m.xids.Snapshot()
	out := make([]string, 0, len(x))
	for n := range x {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SliceInfo is what the SSH gateway needs to know about a slice.
type SliceInfo struct {
	Name    string
	Keys    []string  // authorized_keys lines of the slice account
	Enabled bool      // false: logins refused
	Running bool      // the sliver exists and its init runs
	Expires time.Time // zero: unknown or never
	NetNS   string    // the sliver's network namespace ("" = unknown)
	XID     int       // the sliver's number (its conntrack mark)
	SliceID int64     // PLC's slice id (0 = unknown)
	// Daily egress budget (bwmon), from the desired state: KiB, -1 = the
	// node's default, 0 = none; MinRateKbit is the throttled floor.
	MaxKByte    int64
	ThreshKByte int64
	MinRateKbit int64
}

// SliceDirectory is a live view of the slices on this node. *Main
// implements it; the SSH gateway consumes it.
type SliceDirectory interface {
	LookupSlice(name string) (SliceInfo, bool)
}

var _ SliceDirectory = (*Main)(nil)

// New validates cfg and prepares the state directory. (A Main may also be
// built as &Main{Config: cfg}; Run then does this.)
func New(cfg Config) (*Main, error) {
	m := &Main{Config: cfg}
	if err := m.init(); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Main) init() error {
	m.initOnce.Do(func() { m.initErr = m.setup() })
	return m.initErr
}

func (m *Main) setup() error {
	cfg := &m.Config
	if cfg.StateDir == "" {
		return core.FieldErrorf("state", "no state directory")
	}
	if cfg.PLC == nil || cfg.Runtime == nil || cfg.Net == nil {
		return core.Errorf(core.Invalid, "agent: PLC, Runtime and Net are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.WatchTimeout, 55*time.Second)
	def(&cfg.PollInterval, plcclient.ReconnectBackoff.Max)
	def(&cfg.ResyncInterval, 10*time.Second)
	def(&cfg.ReportInterval, 15*time.Second)
	if cfg.NCPU <= 0 {
		cfg.NCPU = runtime.NumCPU()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	m.log = cfg.Logger.With("subsystem", "agent")
	m.kick = make(chan struct{}, 1)
	m.report = make(chan struct{}, 1)
	m.retry = map[string]retryState{}
	m.done = make(chan struct{})
	m.mu.Lock()
	m.dir = map[string]SliceInfo{}
	m.mu.Unlock()
	xids, err := LoadXIDs(filepath.Join(cfg.StateDir, "xids.json"))
	if err != nil {
		m.log.Error("xid allocation file unreadable; starting empty and re-adopting xids from the host", "err", err)
	}
	m.xids = xids
	m.tickets, err = loadTicketBook(filepath.Join(cfg.StateDir, "tickets.json"))
	if err != nil {
		m.log.Error("ticket book unreadable; redeemed tickets are forgotten", "err", err)
	}
	m.control, err = loadControl(filepath.Join(cfg.StateDir, "control.json"))
	if err != nil {
		m.log.Error("local API decisions unreadable; delegated creates, stops and loans are forgotten", "err", err)
	}
	rec, err := loadNetRecord(filepath.Join(cfg.StateDir, "net.json"))
	if err != nil {
		m.log.Warn("network record unreadable", "err", err)
	}
	m.exec = &Executor{Runtime: cfg.Runtime, Net: cfg.Net, Links: cfg.Links, XIDs: xids, Parallel: cfg.Parallel, Log: m.log, Observe: cfg.Observe, rec: rec}
	return nil
}

func (m *Main) cachePath() string { return filepath.Join(m.StateDir, "desired.json") }

// Run runs the agent until ctx is cancelled or Close is called.
func (m *Main) Run(ctx context.Context) error {
	if err := m.init(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.cancel = cancel
	m.mu.Unlock()
	defer close(m.done)
	defer cancel()

	st, saved, err := LoadCache(m.cachePath())
	switch {
	case err == nil:
		m.log.Info("using cached desired state until PLC answers", "version", st.Version, "saved", saved.Format(time.RFC3339), "slivers", len(st.Slivers))
		m.setState(st)
	case errors.Is(err, os.ErrNotExist):
		m.log.Info("no cached desired state; waiting for PLC before touching any sliver")
	default:
		m.log.Error("IGNORING the desired-state cache: it is corrupt; waiting for PLC before touching any sliver", "err", err)
	}
	if err := m.adopt(ctx); err != nil {
		m.log.Error("cannot list slivers on the host", "err", err)
	}

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); m.syncLoop(ctx) }()
	go func() { defer wg.Done(); m.reconcileLoop(ctx) }()
	go func() { defer wg.Done(); m.reportLoop(ctx) }()
	wg.Wait()
	return nil
}

// Close stops Run and waits for it to return. In-flight sliver operations
// are cancelled; slivers themselves keep running.
func (m *Main) Close() error {
	m.mu.Lock()
	cancel := m.cancel
	m.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-m.done
	return nil
}

// adopt records the xids of the slivers found on the host: the host is the
// authority for uid ranges already in use.
func (m *Main) adopt(ctx context.Context) error {
	sts, err := m.Runtime.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range sts {
		if s.XID == 0 {
			continue
		}
		if err := m.xids.Adopt(s.Name, s.XID); err != nil {
			m.log.Error("cannot adopt sliver xid", "sliver", s.Name, "err", err)
		}
	}
	m.log.Info("found slivers on the host", "count", len(sts))
	m.refreshDirectory(sts, nil)
	return nil
}

func (m *Main) setState(st *core.NodeState) {
	m.mu.Lock()
	m.state = st
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Main) currentState() *core.NodeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// accept takes a state freshly received from PLC.
func (m *Main) accept(st *core.NodeState) {
	if cur := m.currentState(); cur != nil && cur.Version == st.Version {
		return
	}
	m.log.Info("new desired state from PLC", "version", st.Version, "slivers", len(st.Slivers))
	// Act first, then cache: the cache's fsyncs (tens to hundreds of
	// milliseconds on a busy disk) need not delay the slivers. A crash in
	// between leaves the older cache, used only until PLC answers again.
	m.setState(st)
	if err := SaveCache(m.cachePath(), st); err != nil {
		m.log.Error("cannot cache desired state (acting on it anyway)", "err", err)
	}
}

// syncLoop follows PLC (plcclient.Follower): fetch the state once, then
// long-poll Watch; while PLC is unreachable, poll State after jittered
// backoff waits (0.5 s doubling to PollInterval, 3 s) and watch again once
// it answers.
func (m *Main) syncLoop(ctx context.Context) {
	b := plcclient.ReconnectBackoff
	b.Max = m.PollInterval
	b.Min = min(b.Min, b.Max)
	f := &plcclient.Follower{
		PLC: m.PLC, Backoff: b, WatchTimeout: m.WatchTimeout,
		Version: func() string {
			if cur := m.currentState(); cur != nil {
				return cur.Version
			}
			return ""
		},
		OnState: m.accept,
		OnContact: func(err error) {
			if err == nil {
				m.contact(true)
			} else {
				m.contactFailed(err)
			}
		},
	}
	f.Run(ctx)
}

func (m *Main) contact(ok bool) {
	m.mu.Lock()
	was := m.online
	m.online = ok
	m.mu.Unlock()
	if ok && !was {
		m.log.Info("PLC reachable")
		select {
		case m.report <- struct{}{}:
		default:
		}
	}
}

func (m *Main) contactFailed(err error) {
	m.mu.Lock()
	was := m.online
	m.online = false
	m.mu.Unlock()
	switch {
	case core.ErrorCode(err) == core.Unauthenticated:
		m.log.Error("PLC refuses this node's credentials; run `pl node join` again", "err", err)
	case was:
		m.log.Warn("PLC unreachable; slivers keep running as last told, expiry is enforced locally", "err", err)
	default:
		m.log.Debug("PLC still unreachable", "err", err)
	}
}

// Online reports whether the last exchange with PLC succeeded.
func (m *Main) Online() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.online
}

// reconcileLoop runs a pass on every new state, every ResyncInterval, and
// at the next sliver expiry or lease boundary.
func (m *Main) reconcileLoop(ctx context.Context) {
	timer := time.NewTimer(m.ResyncInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-timer.C:
		}
		next := m.Reconcile(ctx)
		wait := m.ResyncInterval
		if !next.IsZero() {
			if d := next.Sub(m.Now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// Reconcile runs one pass: compute, plan, execute. It does nothing before a
// desired state is known. It returns the time of the next sliver expiry,
// lease boundary or loan end (zero if none).
func (m *Main) Reconcile(ctx context.Context) time.Time {
	st := m.currentState()
	if st == nil {
		return time.Time{}
	}
	now := m.Now()
	st = m.effectiveState(st, now.Unix())
	if err := m.xids.Allocate(Candidates(st, now.Unix())); err != nil {
		m.log.Error("xid allocation", "err", err)
	}
	env := Env{Now: now.Unix(), XIDs: m.xids.Snapshot(), NCPU: m.NCPU, APISocket: m.APISocket, APIClient: m.APIClient, Prefix6: m.sliverPrefix6(st)}
	if m.Runtimes != nil {
		env.Runtimes = map[string]bool{}
		for _, rt := range m.Runtimes {
			env.Runtimes[rt] = true
		}
	}
	if m.Images != nil {
		names, err := m.Images(ctx)
		if err != nil {
			m.log.Error("cannot list images; skipping this pass", "err", err)
			return time.Time{}
		}
		env.Images = map[string]bool{}
		for _, n := range names {
			env.Images[n] = true
		}
	}
	d := Compute(st, env)
	m.destroyForRecreate(ctx)
	sts, err := m.Runtime.List(ctx)
	if err != nil {
		m.log.Error("cannot list slivers; skipping this pass", "err", err)
		return time.Time{}
	}
	nets, err := m.Net.List(ctx)
	if err != nil {
		m.log.Error("cannot list sliver networks; skipping this pass", "err", err)
		return time.Time{}
	}
	ops := Plan(Actual{Slivers: sts, Net: nets, NetApplied: m.exec.rec.snapshot()}, d)
	ops, deferred := m.holdBack(ops, time.Now())
	for _, op := range ops {
		if op.Kind != OpNone {
			m.log.Info("plan", "op", op.Kind, "sliver", op.Name, "reason", op.Reason)
		}
	}
	failed := m.exec.Run(ctx, ops)
	m.noteFailures(ops, failed, time.Now())
	for name, err := range deferred {
		failed[name] = err
	}

	// Free the xids of slices that are gone and have nothing on the host.
	onHost := map[string]bool{}
	for _, s := range sts {
		onHost[s.Name] = true
	}
	for _, n := range nets {
		onHost[n] = true
	}
	for name := range m.xids.Snapshot() {
		_, want := d.Slivers[name]
		if !want && d.Errors[name] == "" && !onHost[name] {
			if err := m.xids.Release(name); err != nil {
				m.log.Warn("cannot release xid", "sliver", name, "err", err)
			}
		}
	}

	errs := map[string]string{}
	for name, reason := range d.Errors {
		errs[name] = reason
		m.log.Warn("slice configuration refused; sliver keeps its last good configuration", "sliver", name, "reason", reason)
	}
	for name, err := range failed {
		errs[name] = err.Error()
	}
	if after, err := m.Runtime.List(ctx); err == nil {
		m.refreshDirectory(after, d.Slivers)
	}
	if m.OnCodemux != nil {
		m.OnCodemux(st.Hostname, codemuxRoutes(d))
	}
	m.mu.Lock()
	changed := !maps.Equal(errs, m.errs)
	m.errs = errs
	m.passes++
	if len(failed) == 0 {
		m.applied = st.Version
	}
	m.mu.Unlock()
	if changed {
		select {
		case m.report <- struct{}{}:
		default:
		}
	}

	var next time.Time
	if b := NextBoundary(st, now.Unix()); b > 0 {
		next = time.Unix(b, 0)
	}
	for _, l := range m.control.snapshot().allLoans(now.Unix()) {
		if t := time.Unix(l.Until, 0); l.Active(now.Unix()) && (next.IsZero() || t.Before(next)) {
			next = t // the loan's end is undone at once
		}
	}
	for _, s := range d.Slivers {
		if s.Expires > 0 {
			if t := time.Unix(s.Expires, 0); next.IsZero() || t.Before(next) {
				next = t
			}
		}
	}
	return next
}

// refreshDirectory rebuilds the slice directory from what runs on the host;
// desired (nil before the first pass) supplies expiry times.
// retryState spaces out retries of an operation that keeps failing.
type retryState struct {
	op    string    // the op (kind and target configuration) that failed
	next  time.Time // not before
	delay time.Duration
	err   error
}

const (
	minRetry = time.Second
	maxRetry = 2 * time.Minute
)

// holdBack removes from ops those that failed recently with the same
// target configuration and whose retry time has not come; a changed
// desired configuration is tried at once. It returns the remaining ops and
// the last error of each held-back sliver.
func (m *Main) holdBack(ops []Op, now time.Time) ([]Op, map[string]error) {
	held := map[string]error{}
	out := ops[:0:0]
	for _, op := range ops {
		if r, ok := m.retry[op.Name]; ok && op.Kind != OpNone && r.op == opKey(op) && now.Before(r.next) {
			held[op.Name] = r.err
			continue
		}
		out = append(out, op)
	}
	return out, held
}

// noteFailures records failed ops for backoff and forgets succeeded ones.
func (m *Main) noteFailures(ops []Op, failed map[string]error, now time.Time) {
	for _, op := range ops {
		if op.Kind == OpNone {
			continue
		}
		err, bad := failed[op.Name]
		if !bad {
			delete(m.retry, op.Name)
			continue
		}
		r := m.retry[op.Name]
		if r.op != opKey(op) {
			r = retryState{op: opKey(op)}
		}
		r.delay = min(max(2*r.delay, minRetry), maxRetry)
		r.next = now.Add(r.delay)
		r.err = err
		m.retry[op.Name] = r
	}
}

func opKey(op Op) string { return fmt.Sprintf("%s %+v %+v", op.Kind, op.Spec, op.Net) }

func (m *Main) refreshDirectory(sts []sliver.Status, desired map[string]DesiredSliver) {
	dir := make(map[string]SliceInfo, len(sts))
	for _, s := range sts {
		info := SliceInfo{Name: s.Name, Running: s.Running, Enabled: !s.Frozen, XID: s.XID}
		if s.Spec != nil {
			info.Keys = append([]string(nil), s.Spec.Keys...)
			info.Enabled = info.Enabled && s.Spec.Enabled
			info.NetNS = s.Spec.NetNS
		}
		info.MaxKByte = -1
		if d, ok := desired[s.Name]; ok {
			info.SliceID = d.SliceID
			info.MaxKByte, info.ThreshKByte, info.MinRateKbit = d.MaxKByte, d.ThreshKByte, d.Net.MinRateKbit
			if d.Expires > 0 {
				info.Expires = time.Unix(d.Expires, 0)
			}
		}
		dir[s.Name] = info
	}
	m.mu.Lock()
	m.dir = dir
	m.mu.Unlock()
	if m.OnDirectory != nil {
		m.OnDirectory(dir) // the agent never changes dir after this
	}
}

// LookupSlice implements SliceDirectory from what runs on the host: the
// keys and enabled flag of the configuration last applied.
func (m *Main) LookupSlice(name string) (SliceInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info, ok := m.dir[name]
	return info, ok
}

// Status is a snapshot of the agent for diagnostics and tests.
type Status struct {
	Online         bool
	Version        string            // desired state acted upon
	AppliedVersion string            // last version applied without errors
	Passes         int               // reconcile passes run
	SliverErrors   map[string]string // current per-sliver errors
}

// Status returns a snapshot of the agent.
func (m *Main) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Online: m.online, AppliedVersion: m.applied, Passes: m.passes, SliverErrors: map[string]string{}}
	if m.state != nil {
		s.Version = m.state.Version
	}
	for k, v := range m.errs {
		s.SliverErrors[k] = v
	}
	return s
}

// reportLoop tells PLC the run level, host key, sliver errors and sensor
// figures: at first contact, whenever the errors change and every
// ReportInterval.
func (m *Main) reportLoop(ctx context.Context) {
	var pending bool
	var bwmonSent time.Time // the last bwmon event PLC accepted
	retry := time.NewTimer(m.ReportInterval)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.report:
		case <-retry.C:
		}
		m.mu.Lock()
		errs := make(map[string]string, len(m.errs))
		for k, v := range m.errs {
			errs[k] = v
		}
		m.mu.Unlock()
		rep := nodeapi.Report{RunLevel: RunLevel, BootState: RunLevel, SSHHostKey: m.SSHHostKey, Version: m.Version, SliverErrors: errs}
		if m.Figures != nil {
			f, err := m.Figures()
			if err != nil {
				m.log.Warn("sensor figures not collected; reporting without", "err", err)
			} else {
				f.Bound()
				rep.Figures = f
			}
		}
		if m.BwmonEvents != nil {
			rep.BwmonEvents = m.BwmonEvents(bwmonSent)
		}
		err := m.PLC.Report(ctx, rep)
		wait := m.ReportInterval
		if err == nil && len(rep.BwmonEvents) > 0 {
			bwmonSent = rep.BwmonEvents[len(rep.BwmonEvents)-1].At
			for _, e := range rep.BwmonEvents {
				m.log.Info("reported bwmon event to PLC", "slice", e.Slice, "kind", e.Kind)
			}
		}
		if err != nil {
			if !pending {
				m.log.Warn("report to PLC failed; will retry", "err", err)
			}
			pending = true
			wait = min(wait, 10*time.Second+rand.N(10*time.Second))
		} else {
			pending = false
			if len(errs) > 0 {
				names := make([]string, 0, len(errs))
				for n := range errs {
					names = append(names, n)
				}
				sort.Strings(names)
				m.log.Info("reported sliver errors to PLC", "slivers", names)
			}
		}
		if !retry.Stop() {
			select {
			case <-retry.C:
			default:
			}
		}
		retry.Reset(wait)
	}
}

// codemuxRoutes lists the codemux host names of the enabled slivers of d.
func codemuxRoutes(d Desired) []CodemuxRoute {
	var out []CodemuxRoute
	for name, ds := range d.Slivers {
		if !ds.Spec.Enabled {
			continue
		}
		for _, r := range ds.Routes {
			out = append(out, CodemuxRoute{Slice: name, XID: ds.Spec.XID, Route: r})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Slice != out[j].Slice {
			return out[i].Slice < out[j].Slice
		}
		return out[i].Route.Host < out[j].Route.Host
	})
	return out
}
