package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"

	"github.com/planetlab/pl/internal/core/rcap"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/node/sliver"
)

// SliceOfUID maps a host uid to the slice whose sliver's uid range holds
// it (the local API's caller identity: SO_PEERCRED gives host uids).
func (m *Main) SliceOfUID(uid uint32) (string, bool) {
	if uid < 1<<28 || m.init() != nil {
		return "", false
	}
	xid := int((uid - 1<<28) / sliver.UIDCount)
	for name, x := range m.xids.Snapshot() {
		if x == xid {
			return name, true
		}
	}
	return "", false
}

// TicketArgs are the arguments of the local API's Ticket.
type TicketArgs struct {
	Ticket string `json:"ticket"`
}

// TicketResult answers a redeemed ticket.
type TicketResult struct {
	Slice    string      `json:"slice"`
	NotAfter int64       `json:"not_after"`
	RSpec    rspec.RSpec `json:"rspec"`
}

// SliceArgs name the target slice of a local API method.
type SliceArgs struct {
	Slice string `json:"slice"`
}

// LoanArgs set a slice's loans (SetLoans).
type LoanArgs struct {
	Slice string       `json:"slice"`
	Loans []rspec.Loan `json:"loans"` // From is the slice (may be omitted)
}

// RSpecResult answers GetRSpec.
type RSpecResult struct {
	Slice     string      `json:"slice"`
	RSpec     rspec.RSpec `json:"rspec"`     // its own allocation (PLC's tags or its ticket)
	Effective rspec.RSpec `json:"effective"` // with loans (what the sliver gets, before leases)
}

// RecordResult answers GetRecord.
type RecordResult struct {
	Sliver    core.Sliver `json:"sliver"`
	RSpec     rspec.RSpec `json:"rspec"`
	Effective rspec.RSpec `json:"effective"`
	Created   bool        `json:"created"` // a sliver is desired on this node
}

// withTickets is the state the local API judges by: PLC's (or the cache)
// with tickets in force.
func (m *Main) apiState() (*core.NodeState, int64, error) {
	st := m.currentState()
	if st == nil {
		return nil, 0, core.Errorf(core.Unavailable, "this node has no desired state from PLC yet")
	}
	now := m.Now().Unix()
	return WithTickets(st, m.tickets.active(now), now), now, nil
}

func findSliver(st *core.NodeState, name string) (core.Sliver, bool) {
	for _, s := range st.Slivers {
		if s.Name == name {
			return s, true
		}
	}
	return core.Sliver{}, false
}

// delegates lists the slices a slice's delegations tag names.
func delegates(s core.Sliver) []string {
	var out []string
	for _, a := range s.Attributes {
		if a.TagName == tags.Delegations {
			out = append(out, strings.FieldsFunc(a.Value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })...)
		}
	}
	return out
}

// target resolves the slice a caller acts on and checks that the caller
// controls it: the host's root, the slice itself, or a slice its
// delegations tag names (reference nodemanager.md §4.1).
func (m *Main) target(c nmapi.Caller, name string) (*core.NodeState, core.Sliver, int64, error) {
	st, now, err := m.apiState()
	if err != nil {
		return nil, core.Sliver{}, 0, err
	}
	if name == "" {
		return nil, core.Sliver{}, 0, core.FieldErrorf("slice", "no slice named")
	}
	s, ok := findSliver(st, name)
	if !ok {
		return nil, core.Sliver{}, 0, core.Errorf(core.NotFound, "slice %q is not on this node", name)
	}
	if c.Root || c.Slice == name || slices.Contains(delegates(s), c.Slice) {
		return st, s, now, nil
	}
	return nil, core.Sliver{}, 0, core.Errorf(core.Forbidden, "slice %s may not control slice %s (not in its delegations)", c.Slice, name)
}

func (m *Main) rspecs(st *core.NodeState, name string, now int64) (own, eff rspec.RSpec) {
	created, _ := WithControl(st, controlFile{Created: m.control.snapshot().Created}, now)
	holdings := Holdings(created, now)
	e, _ := rspec.Effective(holdings, m.control.snapshot().allLoans(now), now)
	return holdings[name], e[name]
}

func (m *Main) kickNow() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// sliceMethod makes a local API method of fn for methods that take
// {slice}: the argument decoded and the target checked (target) first.
func (m *Main) sliceMethod(fn func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error)) func(context.Context, nmapi.Caller, json.RawMessage) (any, error) {
	return func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
		var a SliceArgs
		if err := nmapi.Decode(raw, &a); err != nil {
			return nil, err
		}
		st, s, now, err := m.target(c, a.Slice)
		if err != nil {
			return nil, err
		}
		return fn(c, st, s, now)
	}
}

// APIMethods are the local API's methods over m (package nmapi). Every
// method but Help, Ticket and GetRecord names a target slice the caller must
// control (target); refusals are logged by the server.
func (m *Main) APIMethods() map[string]nmapi.Method {
	delegated := func(s core.Sliver, verb string) error {
		if s.Instantiation != "delegated" {
			return core.Errorf(core.Forbidden, "slice %s is %s: only PLC %s its slivers", s.Name, orDefault(s.Instantiation, "plc-instantiated"), verb)
		}
		return nil
	}
	methods := map[string]nmapi.Method{
		"Ticket": {Help: "Redeem a signed ticket (anyone: the ticket is the credential): {ticket} -> {slice, not_after, rspec}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a TicketArgs
				if err := nmapi.Decode(raw, &a); err != nil {
					return nil, err
				}
				t, err := m.RedeemTicket(a.Ticket)
				if err != nil {
					return nil, err
				}
				return TicketResult{Slice: t.Sliver.Name, NotAfter: t.NotAfter, RSpec: t.RSpec}, nil
			}},
		"GetRecord": {Help: "The caller's own record: {} -> {sliver, rspec, effective, created}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				if err := nmapi.Decode(raw, &struct{}{}); err != nil {
					return nil, err
				}
				if c.Root {
					return nil, core.Errorf(core.Invalid, "the host's root has no record: call from a sliver")
				}
				st, s, now, err := m.target(c, c.Slice)
				if err != nil {
					return nil, err
				}
				own, eff := m.rspecs(st, s.Name, now)
				_, created := Holdings(m.effectiveState(m.currentState(), now), now)[s.Name]
				return RecordResult{Sliver: s, RSpec: own, Effective: eff, Created: created}, nil
			}},
		"GetRSpec": {Help: "A slice's rspec: {slice} -> {slice, rspec, effective}",
			Fn: m.sliceMethod(func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error) {
				own, eff := m.rspecs(st, s.Name, now)
				return RSpecResult{Slice: s.Name, RSpec: own, Effective: eff}, nil
			})},
		"Create": {Help: "Create the sliver of a delegated slice the caller controls: {slice}",
			Fn: m.sliceMethod(func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error) {
				if err := delegated(m.plcSliver(s), "creates"); err != nil {
					return nil, err
				}
				if err := m.control.update(func(f *controlFile) { f.Created = setIn(f.Created, s.Name, true) }); err != nil {
					return nil, err
				}
				m.log.Info("local API: delegated sliver created", "slice", s.Name, "by", callerName(c))
				m.kickNow()
				return struct{}{}, nil
			})},
		"Destroy": {Help: "Destroy the sliver of a delegated slice the caller controls (and forget its ticket): {slice}",
			Fn: m.sliceMethod(func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error) {
				if err := delegated(m.plcSliver(s), "destroys"); err != nil {
					return nil, err
				}
				if err := m.control.update(func(f *controlFile) {
					f.Created = setIn(f.Created, s.Name, false)
					f.Stopped = setIn(f.Stopped, s.Name, false)
				}); err != nil {
					return nil, err
				}
				if err := m.tickets.drop(s.Name); err != nil {
					return nil, core.Errorf(core.Internal, "%v", err)
				}
				m.log.Info("local API: delegated sliver destroyed", "slice", s.Name, "by", callerName(c))
				m.kickNow()
				return struct{}{}, nil
			})},
		"Start": {Help: "Resume a sliver the caller controls (after Stop): {slice}",
			Fn: m.sliceMethod(func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error) {
				if err := m.control.update(func(f *controlFile) { f.Stopped = setIn(f.Stopped, s.Name, false) }); err != nil {
					return nil, err
				}
				m.kickNow()
				return struct{}{}, nil
			})},
		"Stop": {Help: "Suspend (freeze) a sliver the caller controls until Start: {slice}",
			Fn: m.sliceMethod(func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error) {
				if err := m.control.update(func(f *controlFile) { f.Stopped = setIn(f.Stopped, s.Name, true) }); err != nil {
					return nil, err
				}
				m.log.Info("local API: sliver stopped", "slice", s.Name, "by", callerName(c))
				m.kickNow()
				return struct{}{}, nil
			})},
		"GetLoans": {Help: "The loans a slice makes: {slice} -> [{from, to, amount, until}]",
			Fn: m.sliceMethod(func(c nmapi.Caller, st *core.NodeState, s core.Sliver, now int64) (any, error) {
				out := []rspec.Loan{}
				for _, l := range m.control.snapshot().Loans {
					if l.From == s.Name && l.Active(now) {
						out = append(out, l)
					}
				}
				return out, nil
			})},
		"SetLoans": {Help: "Replace the loans a slice makes: {slice, loans: [{to, amount, until}]}; each must fit what the slice holds, or nothing changes",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a LoanArgs
				if err := nmapi.Decode(raw, &a); err != nil {
					return nil, err
				}
				st, s, now, err := m.target(c, a.Slice)
				if err != nil {
					return nil, err
				}
				if len(a.Loans) > MaxLoans {
					return nil, core.FieldErrorf("loans", "%d loans, at most %d", len(a.Loans), MaxLoans)
				}
				created, _ := WithControl(st, controlFile{Created: m.control.snapshot().Created}, now)
				holdings := Holdings(created, now)
				lent := rcap.Taken(m.control.snapshot().Rcaps, s.Name, now) // capabilities are taken first
				for i := range a.Loans {
					l := &a.Loans[i]
					if l.From == "" {
						l.From = s.Name
					}
					if l.From != s.Name {
						return nil, core.FieldErrorf("loans", "loan %d is from %s, not %s", i, l.From, s.Name)
					}
					if err := rspec.CheckLoan(*l, holdings, lent, now); err != nil {
						return nil, &core.Error{Code: core.ErrorCode(err), Field: "loans", Message: fmt.Sprintf("loan %d: %v", i, err)}
					}
					lent = lent.Add(l.Amount)
				}
				if err := m.control.update(func(f *controlFile) {
					f.Loans = slices.DeleteFunc(f.Loans, func(l rspec.Loan) bool { return l.From == s.Name || !l.Active(now) })
					f.Loans = append(f.Loans, a.Loans...)
				}); err != nil {
					return nil, err
				}
				m.log.Info("local API: loans set", "slice", s.Name, "loans", len(a.Loans), "by", callerName(c))
				m.kickNow()
				return struct{}{}, nil
			}},
	}
	maps.Copy(methods, m.rcapMethods()) // rcaps.go
	maps.Copy(methods, m.nodeMethods()) // nodemethods.go
	m.addVsysMethods(methods)           // vsysapi.go
	methods["Help"] = nmapi.Method{Help: "The methods and what they take: {} -> {method: help}",
		Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
			if err := nmapi.Decode(raw, &struct{}{}); err != nil {
				return nil, err
			}
			out := map[string]string{}
			for n, mt := range methods {
				out[n] = mt.Help
			}
			return out, nil
		}}
	return methods
}

// plcSliver is s as PLC lists it (its instantiation before tickets).
func (m *Main) plcSliver(s core.Sliver) core.Sliver {
	if st := m.currentState(); st != nil {
		if p, ok := findSliver(st, s.Name); ok {
			return p
		}
	}
	return s
}

func callerName(c nmapi.Caller) string {
	if c.Root {
		return "root"
	}
	return c.Slice
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
