package rest

import (
	"context"
	"net/http"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// WithPeering serves RefreshPeer, GetPeerData and slice refusals over p
// (the peers collection itself is generic CRUD).
func WithPeering(p core.Peering) Option { return func(h *Handler) { h.peering = p } }

func (h *Handler) peerRoutes() []route {
	if h.peering == nil {
		return nil
	}
	return []route{
		{method: http.MethodPost, path: restapi.PeerRefreshPath("{ref}"), op: "RefreshPeer", resp: "Record",
			summary: "Fetch the peer's data now and store it as foreign objects (docs/federation.md)",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Peer, "ref")
				if err != nil {
					return result{}, err
				}
				r, err := h.peering.RefreshPeer(ctx, q.caller, id)
				return result{body: r}, err
			}},
		{method: http.MethodGet, path: restapi.PeerDataPath, op: "GetPeerData", resp: "Record",
			summary: "What this PLC hands its peers: Sites, Keys, Nodes, Persons, Slices, PeerNodes, db_time",
			h: func(ctx context.Context, q *request) (result, error) {
				r, err := h.peering.GetPeerData(ctx, q.caller)
				return result{body: r}, err
			}},
		{method: http.MethodPut, path: restapi.SliceRefusalPath("{ref}"), op: "RefuseSlice", body: "RefusalRequest",
			summary: "Refuse a peer's slice on this PLC's nodes (its slivers go)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.RefusalRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				id, err := h.resolve(ctx, q, core.Slice, "ref")
				if err != nil {
					return result{}, err
				}
				return result{}, h.peering.RefuseSlice(ctx, q.caller, id, true, req.Reason)
			}},
		{method: http.MethodDelete, path: restapi.SliceRefusalPath("{ref}"), op: "RefuseSlice",
			summary: "Admit a refused peer's slice again",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Slice, "ref")
				if err != nil {
					return result{}, err
				}
				return result{}, h.peering.RefuseSlice(ctx, q.caller, id, false, "")
			}},
	}
}
