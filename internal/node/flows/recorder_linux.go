package flows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	Store *Store
	// NetNS is the path of the node's network namespace, whose conntrack
	// table is read; "" = the process's own.
	NetNS string
	// SliverPrefixes hold the slivers' own routable addresses (the node's
	// IPv6 prefix, netcfg's Prefix6): their flows are not translated, so
	// a connection into one is told apart from one the sliver started by
	// its destination.
	SliverPrefixes []netip.Prefix
	// IsSliverAddr, when set, tells a sliver's own address instead of
	// SliverPrefixes (the node's prefix may change while it runs).
	IsSliverAddr func(netip.Addr) bool
	// DumpInterval is how often the whole table is read: counters of
	// long flows, flows whose events were lost. Default 30 s.
	DumpInterval time.Duration
	// FlushInterval is how often finished records are written (one
	// transaction each time). Default 1 s.
	FlushInterval time.Duration
	// PruneInterval is how often retention runs. Default 10 min.
	PruneInterval time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Recorder follows the kernel's connection tracking table of the node's
// namespace and writes flow records to the store.
//
// At start it turns on per-flow byte counters and timestamps
// (net.netfilter.nf_conntrack_acct=1 and nf_conntrack_timestamp=1 in the
// node's namespace; without them flows have no counters and no start
// time), reads the whole table once and matches it with the records left
// open by its previous run. Then it listens for NEW and DESTROY events
// (the DESTROY event carries the final counters) and re-reads the table
// every DumpInterval. What it cannot see: a flow that starts and ends
// while the recorder is not running.
type Recorder struct {
	cfg    RecorderConfig
	log    *slog.Logger
	slices sliceMap
	tab    *table

	mu    sync.Mutex
	stats Stats
	sync  chan chan error
}

// NewRecorder prepares a recorder; Run runs it.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Store == nil {
		return nil, errors.New("flow recorder: no store")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DumpInterval, 30*time.Second)
	def(&cfg.FlushInterval, time.Second)
	def(&cfg.PruneInterval, 10*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger.With("subsystem", "flows"), sync: make(chan chan error)}
	m, err := cfg.Store.Slices()
	if err != nil {
		return nil, fmt.Errorf("flow store: slices: %w", err)
	}
	r.slices.m = m
	r.tab = newTable(cfg.Now, r.slices.get, r.log)
	if cfg.IsSliverAddr != nil {
		r.tab.sliver = cfg.IsSliverAddr
	} else if len(cfg.SliverPrefixes) > 0 {
		r.tab.sliver = func(a netip.Addr) bool {
			for _, p := range cfg.SliverPrefixes {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}
	}
	return r, nil
}

// SetSlices tells the recorder which slice holds each xid now (from the
// node manager's directory). Xids missing from m keep their last holder.
func (r *Recorder) SetSlices(m map[int]SliceRef) {
	r.slices.mu.Lock()
	changed := map[int]SliceRef{}
	for xid, ref := range m {
		if old, ok := r.slices.m[xid]; !ok || old.Name != ref.Name || old.SliceID != ref.SliceID {
			r.slices.m[xid] = ref
			changed[xid] = ref
		}
	}
	r.slices.mu.Unlock()
	if len(changed) > 0 {
		if err := r.cfg.Store.SetSlices(changed); err != nil {
			r.log.Error("flow store: cannot save the xid map", "err", err)
		}
	}
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Sync reads the whole table and writes every pending record now (tests,
// and queries that want the freshest counters). It fails when Run is not
// running.
func (r *Recorder) Sync(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.sync <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) dial() (*conntrack.Conn, error) {
	cfg := &netlink.Config{}
	if r.cfg.NetNS != "" {
		f, err := os.Open(r.cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("node netns: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return nil, fmt.Errorf("conntrack netlink: %w", err)
	}
	return c, nil
}

// enableAccounting sets the conntrack sysctls of the node's namespace.
func (r *Recorder) enableAccounting() error {
	set := func() error {
		for _, name := range []string{"nf_conntrack_acct", "nf_conntrack_timestamp"} {
			if err := os.WriteFile("/proc/sys/net/netfilter/"+name, []byte("1"), 0o644); err != nil {
				return fmt.Errorf("sysctl net.netfilter.%s=1: %w", name, err)
			}
		}
		return nil
	}
	if r.cfg.NetNS == "" {
		return set()
	}
	return inNetNS(r.cfg.NetNS, set)
}

func inNetNS(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("node netns: %w", err)
	}
	defer ns.Close()
	return netcfg.InNetNS(ns, fn)
}

// localAddrs returns a test of the node namespace's own addresses.
func (r *Recorder) localAddrs() func(netip.Addr) bool {
	var h *vnl.Handle
	var err error
	if r.cfg.NetNS != "" {
		ns, nerr := netns.GetFromPath(r.cfg.NetNS)
		if nerr != nil {
			return nil
		}
		defer ns.Close()
		h, err = vnl.NewHandleAt(ns)
	} else {
		h, err = vnl.NewHandle()
	}
	if err != nil {
		return nil
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, vnl.FAMILY_ALL)
	if err != nil {
		return nil
	}
	set := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			set[ip.Unmap()] = true
		}
	}
	return func(a netip.Addr) bool { return set[a] }
}

// listen opens the event socket.
func (r *Recorder) listen(ev chan conntrack.Event) (*conntrack.Conn, chan error, error) {
	c, err := r.dial()
	if err != nil {
		return nil, nil, err
	}
	// A large buffer rides out bursts; an overrun is detected and
	// repaired by a dump.
	_ = c.SetReadBuffer(8 << 20)
	errs, err := c.Listen(ev, 1, []netfilter.NetlinkGroup{netfilter.GroupCTNew, netfilter.GroupCTDestroy})
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("conntrack events: %w", err)
	}
	return c, errs, nil
}

// Run records until ctx ends; then it reads the table once more, writes
// the open flows and returns.
func (r *Recorder) Run(ctx context.Context) error {
	if err := r.enableAccounting(); err != nil {
		return err
	}
	r.log.Info("flow recorder: conntrack accounting and timestamps on", "sysctl", "net.netfilter.nf_conntrack_acct=1 nf_conntrack_timestamp=1", "netns", r.cfg.NetNS)
	dumper, err := r.dial()
	if err != nil {
		return err
	}
	defer dumper.Close()
	ev := make(chan conntrack.Event, 4096)
	evConn, evErrs, err := r.listen(ev)
	if err != nil {
		return err
	}
	defer func() {
		// Close waits for the event worker, which may be blocked sending.
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-ev:
				case <-evErrs:
				case <-stop:
					return
				}
			}
		}()
		evConn.Close()
		close(stop)
	}()

	r.tab.local = r.localAddrs()
	open, err := r.cfg.Store.OpenFlows()
	if err != nil {
		return fmt.Errorf("flow store: %w", err)
	}
	flows, err := dumper.Dump(nil)
	if err != nil {
		return fmt.Errorf("conntrack dump: %w", err)
	}
	r.tab.resume(open, flows)
	r.note(func(s *Stats) { s.Dumps++ })
	r.flush()
	r.log.Info("flow recorder started", "kernel_flows", len(flows), "resumed_open", len(open))

	dumpT := time.NewTicker(r.cfg.DumpInterval)
	defer dumpT.Stop()
	flushT := time.NewTicker(r.cfg.FlushInterval)
	defer flushT.Stop()
	pruneT := time.NewTicker(r.cfg.PruneInterval)
	defer pruneT.Stop()
	r.prune()

	dump := func() error {
		r.tab.local = r.localAddrs()
		flows, err := dumper.Dump(nil)
		if err != nil {
			return fmt.Errorf("conntrack dump: %w", err)
		}
		// Events queued before the dump are older than it: apply them first.
		for drained := false; !drained; {
			select {
			case e := <-ev:
				r.event(e)
			default:
				drained = true
			}
		}
		r.tab.dump(flows)
		r.note(func(s *Stats) { s.Dumps++ })
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			if err := dump(); err != nil {
				r.log.Warn("flow recorder: last read", "err", err)
			}
			// Every followed flow is written as open: the next start
			// resumes it or closes it as lost.
			r.tab.keepLive()
			r.flush()
			return nil
		case e := <-ev:
			r.event(e)
			if len(r.tab.out) >= 4096 {
				r.flush()
			}
		case err := <-evErrs:
			// Usually ENOBUFS: the kernel dropped events. Reopen and
			// read the table (flows are found again, ended ones are
			// closed after two dumps without them).
			r.note(func(s *Stats) { s.Overruns++ })
			r.log.Warn("flow recorder: event socket failed; reopening and reading the table", "err", err)
			evConn.Close()
			if evConn, evErrs, err = r.listen(ev); err != nil {
				return err
			}
			if err := dump(); err != nil {
				return err
			}
		case <-dumpT.C:
			if err := dump(); err != nil {
				r.log.Error("flow recorder", "err", err)
			}
		case <-flushT.C:
			r.flush()
		case <-pruneT.C:
			r.prune()
		case done := <-r.sync:
			err := dump()
			r.flush()
			done <- err
		}
	}
}

func (r *Recorder) event(e conntrack.Event) {
	r.note(func(s *Stats) { s.Events++ })
	if e.Flow == nil {
		return
	}
	switch e.Type {
	case conntrack.EventNew:
		r.tab.newFlow(e.Flow)
	case conntrack.EventDestroy:
		r.tab.destroy(e.Flow)
	}
}

func (r *Recorder) note(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.stats.Live = len(r.tab.live)
	r.mu.Unlock()
}

func (r *Recorder) flush() {
	recs := r.tab.take()
	if len(recs) == 0 {
		return
	}
	// Attribute late: the xid map may have learnt the slice since.
	for i := range recs {
		if recs[i].XID != 0 && recs[i].Slice == "" {
			r.tab.attribute(&recs[i])
		}
	}
	if err := r.cfg.Store.Put(recs); err != nil {
		// A full disk must not stop the node: the records are dropped
		// and counted, retention makes room.
		r.note(func(s *Stats) { s.WriteErrs++ })
		r.log.Error("flow store: write failed; records dropped", "records", len(recs), "err", err)
		r.prune()
		return
	}
	r.note(func(s *Stats) { s.Written += uint64(len(recs)) })
}

func (r *Recorder) prune() {
	if _, err := r.cfg.Store.Prune(); err != nil {
		r.log.Error("flow store: retention", "err", err)
	}
}
