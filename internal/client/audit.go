package client

import (
	"context"
	"net/http"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

var _ core.Auditor = (*Client)(nil)

// AuditWho implements core.Auditor.
func (c *Client) AuditWho(ctx context.Context, caller *core.Caller, q core.FlowQuery) (*core.AuditAnswer, error) {
	var out core.AuditAnswer
	if err := c.do(ctx, caller, http.MethodGet, rel(restapi.AuditWhoPath), q.Values(), nil, &out, ""); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditSlice implements core.Auditor.
func (c *Client) AuditSlice(ctx context.Context, caller *core.Caller, q core.TrafficQuery) (*core.SliceTraffic, error) {
	var out core.SliceTraffic
	if err := c.do(ctx, caller, http.MethodGet, rel(restapi.AuditSlicePath), q.Values(), nil, &out, ""); err != nil {
		return nil, err
	}
	return &out, nil
}
