package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/sliver"
)

// Executor carries out plans. Operations on one sliver are serialized (a
// per-name lock, also held across overlapping Run calls); independent
// slivers proceed concurrently, at most Parallel at a time. Every operation
// is "make it so" and therefore safe to repeat after a crash at any step:
//
//   - create/update/suspend/resume: netcfg Ensure (namespace first, the
//     container joins it), the virtual links in that namespace, remember
//     the applied network, Runtime Apply.
//   - destroy: Runtime Destroy (processes, mounts, cgroups, files), then
//     the virtual links, netcfg Remove, then forget the network record and
//     free the xid last,
//     so a crash never frees an xid whose uid range still owns files.
type Executor struct {
	Runtime  sliver.Runtime
	Net      netcfg.Manager
	Links    LinkManager // nil: slivers with virtual links are refused
	XIDs     *XIDs
	Parallel int // 0 = 8
	Log      *slog.Logger
	// Observe, if set, is called after each op with its outcome.
	Observe func(op Op, err error, took time.Duration)

	rec   *netRecord
	locks sync.Map // name -> *sync.Mutex
}

// Run executes ops: destroys first, then the others. It returns the error
// of every failed op by sliver name.
func (e *Executor) Run(ctx context.Context, ops []Op) map[string]error {
	errs := map[string]error{}
	var mu sync.Mutex
	phase := func(pick func(Op) bool) {
		n := e.Parallel
		if n <= 0 {
			n = 8
		}
		sem := make(chan struct{}, n)
		var wg sync.WaitGroup
		for _, op := range ops {
			if op.Kind == OpNone || !pick(op) {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(op Op) {
				defer wg.Done()
				defer func() { <-sem }()
				start := time.Now()
				err := e.one(ctx, op)
				took := time.Since(start)
				if e.Observe != nil {
					e.Observe(op, err, took)
				}
				if err != nil {
					e.Log.Error("sliver operation failed", "op", op.Kind, "sliver", op.Name, "took", took, "err", err)
					mu.Lock()
					errs[op.Name] = err
					mu.Unlock()
					return
				}
				e.Log.Info("sliver operation done", "op", op.Kind, "sliver", op.Name, "reason", op.Reason, "took", took)
			}(op)
		}
		wg.Wait()
	}
	phase(func(o Op) bool { return o.Kind == OpDestroy })
	phase(func(o Op) bool { return o.Kind != OpDestroy })
	return errs
}

func (e *Executor) lock(name string) func() {
	m, _ := e.locks.LoadOrStore(name, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (e *Executor) one(ctx context.Context, op Op) error {
	defer e.lock(op.Name)()
	switch op.Kind {
	case OpCreate, OpUpdate, OpSuspend, OpResume:
		att, err := e.Net.Ensure(ctx, op.Net)
		if err != nil {
			return fmt.Errorf("sliver %q: network: %w", op.Name, err)
		}
		// Links this node cannot build as asked (Unimplemented: no link
		// manager, or a property it cannot enforce) do not stop the
		// sliver; the error is reported.
		linkErr := e.links(ctx, op, att.NetNS)
		if linkErr != nil && core.ErrorCode(linkErr) != core.Unimplemented {
			return linkErr // nothing recorded: the next pass retries
		}
		if err := e.rec.set(op.Name, &op.Net); err != nil {
			e.Log.Warn("cannot record applied network; it will be re-ensured", "sliver", op.Name, "err", err)
		}
		spec := op.Spec
		spec.NetNS = att.NetNS
		if err := e.Runtime.Apply(ctx, spec); err != nil {
			return err // the runtime names the sliver
		}
		return linkErr
	case OpDestroy:
		if err := e.Runtime.Destroy(ctx, op.Name); err != nil {
			return fmt.Errorf("destroy: %w", err)
		}
		xid := op.XID
		if xid == 0 {
			xid = e.XIDs.Get(op.Name)
		}
		if e.Links != nil {
			if err := e.Links.Remove(ctx, op.Name); err != nil {
				return fmt.Errorf("sliver %q: remove virtual links: %w", op.Name, err)
			}
		}
		if err := e.Net.Remove(ctx, op.Name, xid); err != nil {
			return fmt.Errorf("sliver %q: remove network: %w", op.Name, err)
		}
		if err := e.rec.set(op.Name, nil); err != nil {
			e.Log.Warn("cannot update network record", "sliver", op.Name, "err", err)
		}
		if err := e.XIDs.Release(op.Name); err != nil {
			return fmt.Errorf("sliver %q: release xid: %w", op.Name, err)
		}
		return nil
	}
	return nil
}

// LinkManager builds slivers' virtual links (package vlink; the vlinks
// slice tag) in their network namespaces.
type LinkManager interface {
	// Ensure makes the sliver's link ends exactly links (none: removes
	// them), in the namespace at netns; xid is the sliver's number (its
	// traffic class).
	Ensure(ctx context.Context, sliver string, xid int, netns string, links []core.VLink) error
	// Remove deletes every link end of the sliver.
	Remove(ctx context.Context, sliver string) error
}

func (e *Executor) links(ctx context.Context, op Op, netns string) error {
	if e.Links == nil {
		if len(op.Net.Links) > 0 {
			return core.Errorf(core.Unimplemented, "sliver %q: virtual links are not supported on this node", op.Name)
		}
		return nil
	}
	if err := e.Links.Ensure(ctx, op.Name, op.XID, netns, op.Net.Links); err != nil {
		return fmt.Errorf("virtual links: %w", err)
	}
	return nil
}
