package agent

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/nmapi"
)

// The original local API's remaining methods (reference nodemanager.md
// §4.2), adapted (docs/brokering.md):
//
//   - GetXIDs (anyone): {slice: xid} of the slivers on this node; a
//     sliver's host uids are 2^28 + xid·65536 + its own uid (UIDBase).
//   - GetSSHKeys (anyone): {slice: [public keys]} of the slivers on this
//     node, as PLC (or a ticket) gave them.
//   - ReCreate {slice} (root, the slice, or a slice in its delegations):
//     the sliver is destroyed and created afresh from its image at the
//     next pass, with its xid, network and configuration (what its
//     processes wrote is lost). The original stopped and started it.
//   - AdminTicket {ticket} (root only): a ticket honoured without checking
//     its signer (the original's took an unsigned GetSlivers record); every
//     other check of Ticket holds.

// recreateSet is the slivers ReCreate asked for, destroyed at the start of
// the next pass (Reconcile), which then creates them again.
type recreateSet struct {
	mu    sync.Mutex
	names map[string]bool
}

func (r *recreateSet) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string]bool{}
	}
	r.names[name] = true
}

func (r *recreateSet) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.names {
		out = append(out, n)
	}
	sort.Strings(out)
	r.names = nil
	return out
}

// destroyForRecreate destroys the slivers ReCreate asked for (called by
// Reconcile before it lists the host: the plan then creates them). Their
// networks and xids stay: the slices are still desired.
func (m *Main) destroyForRecreate(ctx context.Context) {
	for _, name := range m.recreate.take() {
		t0 := time.Now()
		err := m.Runtime.Destroy(ctx, name)
		if m.Observe != nil {
			m.Observe(Op{Kind: OpDestroy, Name: name, Reason: "re-created through the local API"}, err, time.Since(t0))
		}
		if err != nil {
			m.log.Error("re-create: destroy failed; the sliver is left as it is", "sliver", name, "err", err)
			continue
		}
		m.log.Info("re-create: sliver destroyed, the pass creates it again", "sliver", name)
	}
}

// XIDsResult answers GetXIDs.
type XIDsResult map[string]int

// SSHKeysResult answers GetSSHKeys.
type SSHKeysResult map[string][]core.SliverKey

func (m *Main) nodeMethods() map[string]nmapi.Method {
	noArgs := func(raw json.RawMessage) error { return nmapi.Decode(raw, &struct{}{}) }
	return map[string]nmapi.Method{
		"GetXIDs": {Help: "The slivers on this node and their xids (anyone): {} -> {slice: xid}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				if err := noArgs(raw); err != nil {
					return nil, err
				}
				if m.init() != nil {
					return nil, core.Errorf(core.Unavailable, "the node manager is not initialised")
				}
				return XIDsResult(m.xids.Snapshot()), nil
			}},
		"GetSSHKeys": {Help: "The public keys of the slivers on this node (anyone): {} -> {slice: [key]}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				if err := noArgs(raw); err != nil {
					return nil, err
				}
				st, now, err := m.apiState()
				if err != nil {
					return nil, err
				}
				on := m.holdingsAt(st, now)
				out := SSHKeysResult{}
				for _, s := range st.Slivers {
					if _, ok := on[s.Name]; ok {
						out[s.Name] = append([]core.SliverKey{}, s.Keys...)
					}
				}
				return out, nil
			}},
		"ReCreate": {Help: "Destroy a sliver the caller controls and create it afresh from its image: {slice}",
			Fn: m.sliceMethod(func(c nmapi.Caller, _ *core.NodeState, s core.Sliver, now int64) (any, error) {
				if _, ok := Holdings(m.effectiveState(m.currentState(), now), now)[s.Name]; !ok {
					return nil, core.Errorf(core.Conflict, "slice %s has no sliver on this node to re-create", s.Name)
				}
				m.recreate.add(s.Name)
				m.log.Info("local API: sliver to be re-created", "slice", s.Name, "by", callerName(c))
				m.kickNow()
				return struct{}{}, nil
			})},
		"AdminTicket": {Help: "Honour a ticket without checking its signer (the host's root only): {ticket} -> {slice, not_after, rspec}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a TicketArgs
				if err := nmapi.Decode(raw, &a); err != nil {
					return nil, err
				}
				if !c.Root {
					return nil, core.Errorf(core.Forbidden, "AdminTicket is for the host's root only (slice %s: use Ticket)", c.Slice)
				}
				t, err := m.AdminTicket(a.Ticket)
				if err != nil {
					return nil, err
				}
				return TicketResult{Slice: t.Sliver.Name, NotAfter: t.NotAfter, RSpec: t.RSpec}, nil
			}},
	}
}
