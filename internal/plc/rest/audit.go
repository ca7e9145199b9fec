package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// WithAuditor serves "who sent this?" (GET AuditWhoPath) and slice
// traffic summaries (GET AuditSlicePath) over a.
func WithAuditor(a core.Auditor) Option { return func(h *Handler) { h.auditor = a } }

func (h *Handler) auditRoutes() []route {
	if h.auditor == nil {
		return nil
	}
	return []route{
		{method: http.MethodGet, path: restapi.AuditWhoPath, op: "AuditWho", resp: "AuditAnswer",
			summary: "Flows with an outside address on every node, with slice, site and PIs: ?addr=&port=&proto=&since=2h&until=&limit= (docs/audit.md)",
			h: func(ctx context.Context, q *request) (result, error) {
				fq, err := core.ParseFlowQuery(q.r.URL.Query(), time.Now())
				if err != nil {
					return result{}, err
				}
				ans, err := h.auditor.AuditWho(ctx, q.caller, fq)
				return result{body: ans}, err
			}},
		{method: http.MethodGet, path: restapi.AuditSlicePath, op: "AuditSlice", resp: "SliceTraffic",
			summary: "A slice's traffic on every node: bytes per day and top destinations: ?slice=&since=24h&until=&top= (docs/audit.md)",
			h: func(ctx context.Context, q *request) (result, error) {
				tq, err := core.ParseTrafficQuery(q.r.URL.Query(), time.Now())
				if err != nil {
					return result{}, err
				}
				ans, err := h.auditor.AuditSlice(ctx, q.caller, tq)
				return result{body: ans}, err
			}},
	}
}
