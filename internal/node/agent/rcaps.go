package agent

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rcap"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/node/nmapi"
)

// Resource capabilities through the local API (package core/rcap,
// docs/brokering.md). Acquire and GetRcaps name a slice the caller must
// control (target); Bind, Delegate and Release take the token, which is
// the credential (whoever presents it acts), and Bind's target must be a
// slice the caller controls. They are kept in control.json with the
// loans and applied at every pass; a bound capability moves its
// resources as a loan does, through the usual live update.

// MaxRcaps bounds the capabilities taken out of one slice on a node.
const MaxRcaps = 64

// MaxRcapDuration bounds a capability's life (as a ticket's).
const MaxRcapDuration = 30 * 24 * 3600

// DefaultRcapDuration is a capability's life when Acquire names no end.
const DefaultRcapDuration = 3600

// AcquireArgs are Acquire's arguments.
type AcquireArgs struct {
	Slice  string      `json:"slice"`
	Amount rspec.RSpec `json:"amount"`
	Until  int64       `json:"until,omitempty"` // UNIX seconds; 0 = in DefaultRcapDuration
}

// BindArgs are Bind's arguments.
type BindArgs struct {
	Rcap  string `json:"rcap"`
	Slice string `json:"slice"`
}

// DelegateArgs are Delegate's arguments.
type DelegateArgs struct {
	Rcap   string      `json:"rcap"`
	Amount rspec.RSpec `json:"amount"`
}

// RcapArgs name a capability (Release).
type RcapArgs struct {
	Rcap string `json:"rcap"`
}

// RcapResult answers Acquire and Delegate: the new token (shown once:
// the node keeps only its hash) and what it carries.
type RcapResult struct {
	Rcap string `json:"rcap"`
	RcapInfo
}

// RcapInfo describes a capability without its token.
type RcapInfo struct {
	ID     string      `json:"id"`
	From   string      `json:"from"`
	To     string      `json:"to,omitempty"`
	Amount rspec.RSpec `json:"amount"`
	Until  int64       `json:"until"`
}

func infoOf(c rcap.Cap) RcapInfo {
	return RcapInfo{ID: c.ID(), From: c.From, To: c.To, Amount: c.Amount, Until: c.Until}
}

// holdingsAt is what every sliver holds of its own at now (PLC's tags or
// its ticket, delegated slivers created through the API counted).
func (m *Main) holdingsAt(st *core.NodeState, now int64) map[string]rspec.RSpec {
	created, _ := WithControl(st, controlFile{Created: m.control.snapshot().Created}, now)
	return Holdings(created, now)
}

// decodeRcapCall decodes args into v and parses the token tok points
// to: the presented token's hash.
func decodeRcapCall(raw json.RawMessage, v any, tok *string) (string, error) {
	if err := nmapi.Decode(raw, v); err != nil {
		return "", err
	}
	return rcap.Parse(*tok)
}

func (m *Main) rcapMethods() map[string]nmapi.Method {
	return map[string]nmapi.Method{
		"Acquire": {Help: "Take part of what a slice the caller controls holds into a capability: {slice, amount, until?} -> {rcap, id, from, amount, until}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a AcquireArgs
				if err := nmapi.Decode(raw, &a); err != nil {
					return nil, err
				}
				st, s, now, err := m.target(c, a.Slice)
				if err != nil {
					return nil, err
				}
				if a.Until == 0 {
					a.Until = now + DefaultRcapDuration
				}
				if a.Until <= now || a.Until > now+MaxRcapDuration {
					return nil, core.FieldErrorf("until", "%d is not within the next %d s (now %d)", a.Until, MaxRcapDuration, now)
				}
				holdings := m.holdingsAt(st, now)
				token, hash, err := rcap.NewToken(nil)
				if err != nil {
					return nil, core.Errorf(core.Internal, "%v", err)
				}
				cp := rcap.Cap{Hash: hash, From: s.Name, Amount: a.Amount, Until: a.Until}
				err = m.control.check(func(f *controlFile) error {
					f.Rcaps = rcap.Prune(f.Rcaps, now)
					n := 0
					var lent rspec.RSpec
					for _, x := range f.Rcaps {
						if x.From == s.Name {
							n++
						}
					}
					if n >= MaxRcaps {
						return core.Errorf(core.Conflict, "slice %s has %d capabilities, at most %d", s.Name, n, MaxRcaps)
					}
					for _, l := range f.Loans {
						if l.From == s.Name && l.Active(now) {
							lent = lent.Add(l.Amount)
						}
					}
					if err := rcap.CheckAcquire(s.Name, a.Amount, holdings, lent, f.Rcaps, now); err != nil {
						return err
					}
					f.Rcaps = append(f.Rcaps, cp)
					return nil
				})
				if err != nil {
					return nil, err
				}
				m.log.Info("local API: capability acquired", "id", cp.ID(), "slice", s.Name, "amount", a.Amount.String(), "until", a.Until, "by", callerName(c))
				return RcapResult{Rcap: token, RcapInfo: infoOf(cp)}, nil
			}},
		"Bind": {Help: "Bind a capability (the token is the credential) to a slice the caller controls; its resources move there: {rcap, slice} -> {id, from, to, amount, until}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a BindArgs
				hash, err := decodeRcapCall(raw, &a, &a.Rcap)
				if err != nil {
					return nil, err
				}
				st, s, now, err := m.target(c, a.Slice)
				if err != nil {
					return nil, err
				}
				if _, ok := m.holdingsAt(st, now)[s.Name]; !ok {
					return nil, core.Errorf(core.NotFound, "slice %s has no sliver on this node to bind to", s.Name)
				}
				var out rcap.Cap
				err = m.control.check(func(f *controlFile) error {
					i, err := rcap.Find(f.Rcaps, hash, now)
					if err != nil {
						return err
					}
					if f.Rcaps[i].From == s.Name {
						return core.FieldErrorf("slice", "capability %s is %s's own: binding it there moves nothing (Release it)", f.Rcaps[i].ID(), s.Name)
					}
					f.Rcaps[i].To = s.Name
					out = f.Rcaps[i]
					return nil
				})
				if err != nil {
					return nil, err
				}
				m.log.Info("local API: capability bound", "id", out.ID(), "from", out.From, "to", out.To, "amount", out.Amount.String(), "by", callerName(c))
				m.kickNow()
				return infoOf(out), nil
			}},
		"Delegate": {Help: "Split part of a capability off as a new one, unbound (the token is the credential): {rcap, amount} -> {rcap, id, from, amount, until}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a DelegateArgs
				hash, err := decodeRcapCall(raw, &a, &a.Rcap)
				if err != nil {
					return nil, err
				}
				now := m.Now().Unix()
				token, newHash, err := rcap.NewToken(nil)
				if err != nil {
					return nil, core.Errorf(core.Internal, "%v", err)
				}
				var from, part rcap.Cap
				err = m.control.check(func(f *controlFile) error {
					i, err := rcap.Find(f.Rcaps, hash, now)
					if err != nil {
						return err
					}
					rest, p, err := rcap.Split(f.Rcaps[i], a.Amount)
					if err != nil {
						return err
					}
					p.Hash = newHash
					from, part = rest, p
					f.Rcaps[i] = rest
					f.Rcaps = append(f.Rcaps, p)
					return nil
				})
				if err != nil {
					return nil, err
				}
				m.log.Info("local API: capability delegated", "id", from.ID(), "new", part.ID(), "amount", a.Amount.String(), "left", from.Amount.String(), "by", callerName(c))
				if from.To != "" {
					m.kickNow() // the bound part shrank
				}
				return RcapResult{Rcap: token, RcapInfo: infoOf(part)}, nil
			}},
		"Release": {Help: "End a capability; its resources go back to its slice (the token is the credential): {rcap}",
			Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
				var a RcapArgs
				hash, err := decodeRcapCall(raw, &a, &a.Rcap)
				if err != nil {
					return nil, err
				}
				now := m.Now().Unix()
				var gone rcap.Cap
				err = m.control.check(func(f *controlFile) error {
					i, err := rcap.Find(f.Rcaps, hash, now)
					if err != nil {
						return err
					}
					gone = f.Rcaps[i]
					f.Rcaps = rcap.Prune(slices.Delete(f.Rcaps, i, i+1), now)
					return nil
				})
				if err != nil {
					return nil, err
				}
				m.log.Info("local API: capability released", "id", gone.ID(), "from", gone.From, "to", gone.To, "by", callerName(c))
				m.kickNow()
				return struct{}{}, nil
			}},
		"GetRcaps": {Help: "The capabilities taken out of a slice the caller controls or bound to it (without tokens): {slice} -> [{id, from, to, amount, until}]",
			Fn: m.sliceMethod(func(c nmapi.Caller, _ *core.NodeState, s core.Sliver, now int64) (any, error) {
				out := []RcapInfo{}
				for _, x := range m.control.snapshot().Rcaps {
					if x.Active(now) && (x.From == s.Name || x.To == s.Name) {
						out = append(out, infoOf(x))
					}
				}
				return out, nil
			})},
	}
}
