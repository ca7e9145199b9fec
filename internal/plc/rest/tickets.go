package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/restapi"

	"github.com/planetlab/pl/internal/core"
)

// WithTickets serves GetSliceTicket (POST /slices/{ref}/ticket) over iss.
func WithTickets(iss ticket.Issuer) Option { return func(h *Handler) { h.tickets = iss } }

func (h *Handler) ticketRoutes() []route {
	if h.tickets == nil {
		return nil
	}
	return []route{
		{method: http.MethodPost, path: restapi.Prefix + "/slices/{ref}" + restapi.TicketSuffix, op: "GetSliceTicket", body: "TicketRequest", resp: "TicketResponse",
			summary: "A signed ticket for the slice on nodes (docs/brokering.md): node_ids (default: the slice's nodes), duration in seconds (default a day), rspec (admins only)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.TicketRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				id, err := h.resolve(ctx, q, core.Slice, "ref")
				if err != nil {
					return result{}, err
				}
				if req.Duration < 0 {
					return result{}, core.FieldErrorf("duration", "%d is negative", req.Duration)
				}
				w, err := h.tickets.SliceTicket(ctx, q.caller, ticket.Request{SliceID: id, NodeIDs: req.NodeIDs, Duration: time.Duration(req.Duration) * time.Second, RSpec: req.RSpec})
				return result{body: restapi.TicketResponse{Ticket: w}}, err
			}},
	}
}
