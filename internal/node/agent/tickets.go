package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
)

// Tickets on the node (docs/brokering.md). A redeemed ticket makes its
// slice a sliver of this node with the ticket's rspec until the ticket's
// not_after, whatever PLC lists (a delegated slice, or one PLC does not
// list at all: the ticket carries the slice's record). While it is in
// force the ticket's rspec replaces the slice's rspec tags; its expiry is
// the earlier of the slice's and the ticket's.
//
// Redemption checks, in order, each refusal logged and changing nothing:
// a desired state is known (it carries the trusted keys); the signature
// verifies with a trusted key; the ticket names this node; now is inside
// its window; its nonce was never redeemed here (the nonce set is kept on
// disk until each ticket's not_after, after which the ticket is refused as
// expired anyway); the slice name is usable; and the node's promises,
// with this ticket in place of what the slice held, fit its capacity
// (rspec.Fits).

// ticketBook is the persistent record of redeemed tickets.
type ticketBook struct {
	path string
	mu   sync.Mutex
	f    bookFile
	live []ticket.Ticket // decoded f.Tickets
}

type bookFile struct {
	Tickets []string         `json:"tickets"` // wire forms, one per slice
	Nonces  map[string]int64 `json:"nonces"`  // nonce -> its ticket's not_after
}

func loadTicketBook(path string) (*ticketBook, error) {
	b := &ticketBook{path: path, f: bookFile{Nonces: map[string]int64{}}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return b, err
	}
	var f bookFile
	if err := json.Unmarshal(data, &f); err != nil {
		return b, fmt.Errorf("ticket book %s: %w", path, err)
	}
	if f.Nonces == nil {
		f.Nonces = map[string]int64{}
	}
	b.f.Nonces = f.Nonces
	for _, w := range f.Tickets {
		t, _, _, err := ticket.Decode(w)
		if err != nil {
			return b, fmt.Errorf("ticket book %s: %w", path, err)
		}
		b.f.Tickets = append(b.f.Tickets, w)
		b.live = append(b.live, *t)
	}
	return b, nil
}

// active returns the tickets in force at now.
func (b *ticketBook) active(now int64) []ticket.Ticket {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ticket.Ticket
	for _, t := range b.live {
		if t.NotBefore <= now && now < t.NotAfter {
			out = append(out, t)
		}
	}
	return out
}

// seen reports whether nonce was redeemed.
func (b *ticketBook) seen(nonce string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.f.Nonces[nonce]
	return ok
}

// add records t (replacing an earlier ticket of the same slice) and its
// nonce, drops what has expired, and saves the book before returning.
func (b *ticketBook) add(t ticket.Ticket, wire string, now int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := bookFile{Nonces: map[string]int64{}}
	var live []ticket.Ticket
	for i, x := range b.live {
		if x.Sliver.Name != t.Sliver.Name && now < x.NotAfter {
			f.Tickets = append(f.Tickets, b.f.Tickets[i])
			live = append(live, x)
		}
	}
	for n, until := range b.f.Nonces {
		if now < until {
			f.Nonces[n] = until
		}
	}
	f.Tickets = append(f.Tickets, wire)
	live = append(live, t)
	f.Nonces[t.Nonce] = t.NotAfter
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(b.path, data, 0o600); err != nil {
		return fmt.Errorf("save ticket book: %w", err)
	}
	b.f, b.live = f, live
	return nil
}

// WithTickets returns st with the tickets in force at now applied (see
// the package comment above); st is not modified. It is pure.
func WithTickets(st *core.NodeState, tickets []ticket.Ticket, now int64) *core.NodeState {
	if len(tickets) == 0 {
		return st
	}
	c := *st
	c.Slivers = append([]core.Sliver(nil), st.Slivers...)
	sort.Slice(tickets, func(i, j int) bool { return tickets[i].Sliver.Name < tickets[j].Sliver.Name })
	for _, t := range tickets {
		if now < t.NotBefore || now >= t.NotAfter {
			continue
		}
		i := -1
		for k, s := range c.Slivers {
			if s.Name == t.Sliver.Name {
				i = k
				break
			}
		}
		sv := t.Sliver
		if i >= 0 {
			sv = c.Slivers[i] // PLC's record is fresher (keys, tags)
		}
		sv.Attributes = t.RSpec.Attributes(sv.Attributes)
		sv.Instantiation = "plc-instantiated"
		if sv.Expires == 0 || sv.Expires > t.NotAfter {
			sv.Expires = t.NotAfter
		}
		if i >= 0 {
			c.Slivers[i] = sv
		} else {
			c.Slivers = append(c.Slivers, sv)
		}
	}
	return &c
}

// Holdings returns what every sliver of st live at now holds (its rspec
// tags); slivers whose tags do not parse hold nothing (they are refused).
func Holdings(st *core.NodeState, now int64) map[string]rspec.RSpec {
	out := map[string]rspec.RSpec{}
	for _, s := range st.Slivers {
		if !instantiated(s.Instantiation) || expired(s.Expires, now) {
			continue
		}
		if r, err := rspec.FromAttributes(s.Attributes); err == nil {
			out[s.Name] = r
		}
	}
	return out
}

// capacity is the node's capacity for promises; CPUPct defaults to
// MaxReservedPct.
func (m *Main) capacity() rspec.Capacity {
	c := m.Capacity
	if c.CPUPct == 0 {
		c.CPUPct = MaxReservedPct
	}
	return c
}

// effectiveState is the desired state with tickets, then what slices
// decided through the local API (creates, stops, loans), then leases,
// applied.
func (m *Main) effectiveState(st *core.NodeState, now int64) *core.NodeState {
	st, _ = WithControl(WithTickets(st, m.tickets.active(now), now), m.control.snapshot(), now)
	return WithLeases(st, now)
}

// RedeemTicket verifies and honours a ticket (the checks are listed
// above). It needs no PLC: the trusted keys come with the last desired
// state (cached on disk).
func (m *Main) RedeemTicket(wire string) (*ticket.Ticket, error) {
	return m.redeemTicket(wire, false)
}

// AdminTicket honours a ticket as RedeemTicket does but without checking
// who signed it (the local API's AdminTicket, for the host's root only,
// who is trusted anyway: the original's AdminTicket took an unsigned
// record). Every other check holds.
func (m *Main) AdminTicket(wire string) (*ticket.Ticket, error) {
	return m.redeemTicket(wire, true)
}

func (m *Main) redeemTicket(wire string, admin bool) (*ticket.Ticket, error) {
	if err := m.init(); err != nil {
		return nil, err
	}
	m.redeemMu.Lock()
	defer m.redeemMu.Unlock()
	t, err := m.redeem(wire, admin)
	if err != nil {
		attrs := []any{"err", err}
		if t != nil {
			attrs = append(attrs, "slice", t.Sliver.Name, "nonce", t.Nonce, "signer", t.Key)
		}
		m.log.Warn("ticket refused", append(attrs, "admin", admin)...)
		return nil, err
	}
	m.log.Info("ticket redeemed", "slice", t.Sliver.Name, "rspec", t.RSpec.String(), "until", t.NotAfter, "nonce", t.Nonce, "signer", t.Key, "admin", admin)
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return t, nil
}

func (m *Main) redeem(wire string, admin bool) (*ticket.Ticket, error) {
	st := m.currentState()
	if st == nil {
		return nil, core.Errorf(core.Unavailable, "this node has no desired state from PLC yet, so it trusts no ticket signer")
	}
	trusted, err := ticket.Trusted(st.TicketKeys)
	if err != nil {
		return nil, err
	}
	var t *ticket.Ticket
	if admin {
		t, _, _, err = ticket.Decode(wire)
	} else {
		t, err = ticket.Verify(wire, trusted)
	}
	if err != nil {
		dt, _, _, derr := ticket.Decode(wire)
		if derr == nil {
			return dt, err // for the log: who it claims to be
		}
		return nil, err
	}
	now := m.Now().Unix()
	switch {
	case !t.For(st.NodeID):
		return t, core.Errorf(core.Forbidden, "ticket is for nodes %v, this is node %d", t.Nodes, st.NodeID)
	case now < t.NotBefore:
		return t, core.Errorf(core.Forbidden, "ticket is valid from %d, it is %d", t.NotBefore, now)
	case now >= t.NotAfter:
		return t, core.Errorf(core.Forbidden, "ticket expired at %d, it is %d", t.NotAfter, now)
	case m.tickets.seen(t.Nonce):
		return t, core.Errorf(core.Conflict, "ticket %s was already redeemed on this node", t.Nonce)
	case !sliceName.MatchString(t.Sliver.Name):
		return t, core.FieldErrorf("sliver", "slice name %q is not usable on a node", t.Sliver.Name)
	}
	holdings := Holdings(m.effectiveState(st, now), now)
	if err := rspec.Admit(m.capacity(), holdings, t.Sliver.Name, t.RSpec); err != nil {
		return t, err
	}
	if err := m.tickets.add(*t, wire, now); err != nil {
		return t, core.Errorf(core.Internal, "%v", err)
	}
	return t, nil
}

// drop forgets the ticket of slice name (its nonce stays: no replay).
func (b *ticketBook) drop(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := bookFile{Nonces: b.f.Nonces}
	var live []ticket.Ticket
	for i, x := range b.live {
		if x.Sliver.Name != name {
			f.Tickets = append(f.Tickets, b.f.Tickets[i])
			live = append(live, x)
		}
	}
	if len(live) == len(b.live) {
		return nil
	}
	data, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(b.path, data, 0o600); err != nil {
		return fmt.Errorf("save ticket book: %w", err)
	}
	b.f, b.live = f, live
	return nil
}
