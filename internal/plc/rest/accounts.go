package rest

import (
	"context"
	"net/http"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// WithAccounts serves self-service accounts (sign-up) over a.
func WithAccounts(a core.Accounts) Option { return func(h *Handler) { h.accounts = a } }

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
	}
}
