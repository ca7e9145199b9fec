package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

var _ core.Planet = (*Client)(nil)

func rel(path string) string { return strings.TrimPrefix(path, restapi.Prefix) }

func topValues(q core.TopQuery) url.Values {
	v := url.Values{}
	if q.Where != "" {
		v.Set("where", q.Where)
	}
	if q.Sort != "" {
		v.Set("sort", q.Sort)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

func sinceValues(since int64, limit int) url.Values {
	v := url.Values{}
	if since != 0 {
		v.Set("since", strconv.FormatInt(since, 10))
	}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return v
}

// TopNodes implements core.Planet.
func (c *Client) TopNodes(ctx context.Context, caller *core.Caller, q core.TopQuery) ([]core.NodeRow, error) {
	var rows []core.NodeRow
	err := c.do(ctx, caller, http.MethodGet, rel(restapi.TopNodesPath), topValues(q), nil, &rows, "")
	return rows, err
}

// TopSlices implements core.Planet.
func (c *Client) TopSlices(ctx context.Context, caller *core.Caller, q core.TopQuery) ([]core.SliceRow, error) {
	var rows []core.SliceRow
	err := c.do(ctx, caller, http.MethodGet, rel(restapi.TopSlicesPath), topValues(q), nil, &rows, "")
	return rows, err
}

// SelectNodes implements core.Planet.
func (c *Client) SelectNodes(ctx context.Context, caller *core.Caller, sliceID int64, sel core.NodeSelection) ([]core.Selected, error) {
	var out []core.Selected
	err := c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/slices/%d%s", sliceID, restapi.SelectNodesSuffix), nil, sel, &out, "")
	return out, err
}

// MonitorActions implements core.Planet.
func (c *Client) MonitorActions(ctx context.Context, caller *core.Caller, since int64, limit int) ([]core.MonitorAction, error) {
	var out []core.MonitorAction
	err := c.do(ctx, caller, http.MethodGet, rel(restapi.MonitorActionsPath), sinceValues(since, limit), nil, &out, "")
	return out, err
}

// Notices implements core.Planet.
func (c *Client) Notices(ctx context.Context, caller *core.Caller, since int64, limit int) ([]core.Notice, error) {
	var out []core.Notice
	err := c.do(ctx, caller, http.MethodGet, rel(restapi.NoticesPath), sinceValues(since, limit), nil, &out, "")
	return out, err
}

// PlanetHistory implements core.Planet.
func (c *Client) PlanetHistory(ctx context.Context, caller *core.Caller, since int64) ([]core.PlanetSample, error) {
	var out []core.PlanetSample
	err := c.do(ctx, caller, http.MethodGet, rel(restapi.HistoryPath), sinceValues(since, 0), nil, &out, "")
	return out, err
}

// SuspendSlice implements core.Planet.
func (c *Client) SuspendSlice(ctx context.Context, caller *core.Caller, sliceID int64, reason string) error {
	return c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/slices/%d%s", sliceID, restapi.SuspendSuffix), nil, restapi.ReasonRequest{Reason: reason}, nil, "")
}

// ResumeSlice implements core.Planet.
func (c *Client) ResumeSlice(ctx context.Context, caller *core.Caller, sliceID int64, reason string) error {
	return c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/slices/%d%s", sliceID, restapi.ResumeSuffix), nil, restapi.ReasonRequest{Reason: reason}, nil, "")
}

var _ core.Outbox = (*Client)(nil)

// Outbox implements core.Outbox.
func (c *Client) Outbox(ctx context.Context, caller *core.Caller, q core.OutboxQuery) ([]core.OutboxMail, error) {
	v := sinceValues(0, q.Limit)
	if q.State != "" {
		v.Set("state", q.State)
	}
	if q.Before != 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	var out []core.OutboxMail
	err := c.do(ctx, caller, http.MethodGet, rel(restapi.OutboxPath), v, nil, &out, "")
	return out, err
}

var _ core.Accounts = (*Client)(nil)

// RegisterPerson implements core.Accounts (no credentials are sent).
func (c *Client) RegisterPerson(ctx context.Context, caller *core.Caller, r core.Registration) (int64, error) {
	var out restapi.Created
	err := c.do(ctx, caller, http.MethodPost, rel(restapi.RegisterPath), nil, r, &out, "-")
	return out.ID, err
}

// RequestPasswordReset implements core.Accounts (no credentials are sent).
func (c *Client) RequestPasswordReset(ctx context.Context, caller *core.Caller, email string) error {
	return c.do(ctx, caller, http.MethodPost, rel(restapi.PasswordResetPath), nil, restapi.ResetRequest{Email: email}, nil, "-")
}

// CompletePasswordReset implements core.Accounts (no credentials are sent).
func (c *Client) CompletePasswordReset(ctx context.Context, caller *core.Caller, token, password string) error {
	return c.do(ctx, caller, http.MethodPost, rel(restapi.ResetCompletePath), nil, restapi.ResetComplete{Token: token, Password: password}, nil, "-")
}

// ConfirmEmail implements core.Accounts (no credentials are sent); the
// REST answer carries no address, so it returns "".
func (c *Client) ConfirmEmail(ctx context.Context, caller *core.Caller, token string) (string, error) {
	return "", c.do(ctx, caller, http.MethodPost, rel(restapi.VerifyEmailPath), nil, restapi.LinkToken{Token: token}, nil, "-")
}
