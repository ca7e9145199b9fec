package rest

import (
	"context"
	"net/http"
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// WithAccounts serves self-service accounts (sign-up) over a.
func WithAccounts(a core.Accounts) Option { return func(h *Handler) { h.accounts = a } }

// WithOutbox serves the mail outbox (GET /api/v1/outbox) over o.
func WithOutbox(o core.Outbox) Option { return func(h *Handler) { h.outbox = o } }

func (h *Handler) outboxRoutes() []route {
	if h.outbox == nil {
		return nil
	}
	return []route{
		{method: http.MethodGet, path: restapi.OutboxPath, op: "GetOutbox", resp: "Outbox",
			summary: "The mail outbox, newest first: every message PLC sends, queued, failed (with attempts and the last error) or sent; ?state=queued|failed|sent&before=<mail_id>&limit=",
			h: func(ctx context.Context, q *request) (result, error) {
				v := q.r.URL.Query()
				oq := core.OutboxQuery{State: v.Get("state")}
				if s := v.Get("before"); s != "" {
					n, err := strconv.ParseInt(s, 10, 64)
					if err != nil || n < 0 {
						return result{}, core.FieldErrorf("before", "want a non-negative id, got %q", s)
					}
					oq.Before = n
				}
				_, limit, err := sinceLimit(v)
				if err != nil {
					return result{}, err
				}
				oq.Limit = limit
				ms, err := h.outbox.Outbox(ctx, q.caller, oq)
				return result{body: ms}, err
			}},
	}
}

func (h *Handler) accountRoutes() []route {
	if h.accounts == nil {
		return nil
	}
	return []route{
		{method: http.MethodPost, path: restapi.RegisterPath, op: "RegisterPerson", body: "Registration", resp: "Created",
			summary: "Sign up (anonymous): the account stays disabled until a PI of the site or an admin enables it",
			h: func(ctx context.Context, q *request) (result, error) {
				var req core.Registration
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				id, err := h.accounts.RegisterPerson(ctx, q.caller, req)
				if err != nil {
					return result{}, err
				}
				return result{status: http.StatusCreated, body: restapi.Created{ID: id}}, nil
			}},
		{method: http.MethodPost, path: restapi.PasswordResetPath, op: "RequestPasswordReset", body: "ResetRequest",
			summary: "Mail a one-time password reset link to an account's address; the same answer whether or not the account exists",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.ResetRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				return result{}, h.accounts.RequestPasswordReset(ctx, q.caller, req.Email)
			}},
		{method: http.MethodPost, path: restapi.ResetCompletePath, op: "CompletePasswordReset", body: "ResetComplete",
			summary: "Set a new password with the token of a mailed reset link (works once, for 24 hours)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.ResetComplete
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				return result{}, h.accounts.CompletePasswordReset(ctx, q.caller, req.Token, req.Password)
			}},
		{method: http.MethodPost, path: restapi.VerifyEmailPath, op: "ConfirmEmail", body: "LinkToken",
			summary: "Confirm an e-mail address with the token of a mailed verification link (works once, for 24 hours)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.LinkToken
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				_, err := h.accounts.ConfirmEmail(ctx, q.caller, req.Token)
				return result{}, err
			}},
	}
}
