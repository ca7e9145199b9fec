package rest

import (
	"context"
	"net/http"
	"strconv"
	"strings"

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
		{method: http.MethodPut, path: restapi.PeerObjectPath("{ref}", "{class}", "{id}"), op: "BindObjectToPeer", body: "BindRequest",
			summary: "Mark a local object (site, person, key, node, slice) as the peer's, read-only here (the original's BindObjectToPeer)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.BindRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				peer, class, id, err := h.peerObject(ctx, q)
				if err != nil {
					return result{}, err
				}
				return result{}, h.peering.BindObjectToPeer(ctx, q.caller, class, id, peer, req.RemoteObjectID)
			}},
		{method: http.MethodDelete, path: restapi.PeerObjectPath("{ref}", "{class}", "{id}"), op: "UnBindObjectFromPeer",
			summary: "Make the peer's object local again (the original's UnBindObjectFromPeer)",
			h: func(ctx context.Context, q *request) (result, error) {
				peer, class, id, err := h.peerObject(ctx, q)
				if err != nil {
					return result{}, err
				}
				return result{}, h.peering.UnBindObjectFromPeer(ctx, q.caller, class, id, peer)
			}},
		{method: http.MethodDelete, path: restapi.PeerObjectsPath("{ref}"), op: "DeleteAllPeerEntries",
			summary: "Delete every object of the peer here, keeping the peer (its next refresh fetches them anew)",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Peer, "ref")
				if err != nil {
					return result{}, err
				}
				return result{}, h.peering.DeleteAllPeerEntries(ctx, q.caller, id)
			}},
		{method: http.MethodGet, path: restapi.PeerNamePath, op: "GetPeerName", resp: "PeerName",
			summary: "This PLC's name",
			h: func(ctx context.Context, q *request) (result, error) {
				name, err := h.peering.GetPeerName(ctx, q.caller)
				return result{body: restapi.PeerName{Peername: name}}, err
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

// peerObject reads the peer, class and object id of a PeerObjectPath.
func (h *Handler) peerObject(ctx context.Context, q *request) (peer int64, class core.Class, id int64, err error) {
	if peer, err = h.resolve(ctx, q, core.Peer, "ref"); err != nil {
		return 0, "", 0, err
	}
	class = core.Class(strings.ToLower(q.path("class")))
	id, err = strconv.ParseInt(q.path("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, "", 0, core.FieldErrorf("id", "object id %q is not a positive integer", q.path("id"))
	}
	return peer, class, id, nil
}
