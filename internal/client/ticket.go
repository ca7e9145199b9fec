package client

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/restapi"
)

var _ ticket.Issuer = (*Client)(nil)

// SliceTicket implements ticket.Issuer (GetSliceTicket).
func (c *Client) SliceTicket(ctx context.Context, caller *core.Caller, r ticket.Request) (string, error) {
	var out restapi.TicketResponse
	req := restapi.TicketRequest{NodeIDs: r.NodeIDs, Duration: int64(r.Duration / time.Second), RSpec: r.RSpec}
	err := c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/slices/%d%s", r.SliceID, restapi.TicketSuffix), nil, req, &out, "")
	return out.Ticket, err
}
