package agent

import (
	"context"
	"encoding/json"

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

// APIMethods are the local API's methods over m (package nmapi).
func (m *Main) APIMethods() map[string]nmapi.Method {
	return map[string]nmapi.Method{
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
	}
}
