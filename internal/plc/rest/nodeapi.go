package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
)

// Watch timeouts of the node API (see package nodeapi).
const (
	DefaultWatchTimeout = 55 * time.Second
	MaxWatchTimeout     = 300 * time.Second
)

func (h *Handler) nodeAPIRoutes() []route {
	return []route{
		{method: http.MethodPost, path: nodeapi.JoinPath, auth: authNone, body: "JoinRequest", resp: "JoinResponse",
			summary: "Node API: exchange a one-time join secret for the node's permanent key",
			h:       h.join},
		{method: http.MethodGet, path: nodeapi.StatePath, auth: authNode, op: "GetSlivers", resp: "NodeState",
			summary: "Node API: the calling node's desired state; records its contact",
			h: func(ctx context.Context, q *request) (result, error) {
				st, err := h.reg.NodeState(ctx, q.caller, q.caller.NodeID)
				return result{body: st}, err
			}},
		{method: http.MethodGet, path: nodeapi.WatchPath, auth: authNode, op: "GetSlivers", resp: "NodeState",
			summary: "Node API: long-poll the calling node's desired state (?version=&timeout=; 304 on timeout)",
			h: func(ctx context.Context, q *request) (result, error) {
				return h.watch(ctx, q, q.caller.NodeID)
			}},
		{method: http.MethodPost, path: nodeapi.ReportPath, auth: authNode, op: "ReportRunlevel", body: "Report",
			summary: "Node API: report run level, boot state, ssh host key, version, sliver errors and sensor figures",
			h: func(ctx context.Context, q *request) (result, error) {
				var rep nodeapi.Report
				if err := h.strictBody(q, &rep); err != nil {
					return result{}, err
				}
				return result{}, h.reg.ReportNode(ctx, q.caller, q.caller.NodeID, core.NodeReport{RunLevel: rep.RunLevel, BootState: rep.BootState,
					SSHHostKey: rep.SSHHostKey, Version: rep.Version, SliverErrors: rep.SliverErrors, Figures: rep.Figures,
					BwmonEvents: rep.BwmonEvents})
			}},
	}
}

func (h *Handler) join(ctx context.Context, q *request) (result, error) {
	var req nodeapi.JoinRequest
	if err := h.strictBody(q, &req); err != nil {
		return result{}, err
	}
	if req.NodeID <= 0 {
		return result{}, core.FieldErrorf("node_id", "required")
	}
	if req.Secret == "" {
		return result{}, core.FieldErrorf("secret", "required")
	}
	key, err := h.reg.JoinNode(ctx, req.NodeID, req.Secret, req.SSHHostKey)
	if err != nil {
		return result{}, err
	}
	c, err := h.reg.Authenticate(ctx, core.Credentials{Method: "node_key", NodeID: req.NodeID, NodeKey: key}, nil)
	if err != nil {
		return result{}, err
	}
	recs, err := h.reg.Get(ctx, c, core.Node, &core.Filter{IsList: true, IDs: []int64{req.NodeID}}, []string{"hostname"})
	if err != nil {
		return result{}, err
	}
	var hostname string
	if len(recs) == 1 {
		hostname, _ = recs[0]["hostname"].(string)
	}
	return result{body: nodeapi.JoinResponse{NodeID: req.NodeID, Hostname: hostname, NodeKey: key}}, nil
}

// watch answers the node's state at once when its version differs from
// ?version=, otherwise when it changes, or 304 after ?timeout= seconds.
func (h *Handler) watch(ctx context.Context, q *request, nodeID int64) (result, error) {
	v := q.r.URL.Query()
	version := v.Get("version")
	timeout, err := durationParam(v, "timeout", DefaultWatchTimeout, MaxWatchTimeout)
	if err != nil {
		return result{}, err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		// Subscribe before reading the state so no change is lost in between.
		wctx, cancel := context.WithCancel(ctx)
		ch, err := h.reg.WatchNodeState(wctx, q.caller, nodeID, version)
		if err != nil {
			cancel()
			return result{}, err
		}
		st, err := h.reg.NodeState(ctx, q.caller, nodeID)
		if err != nil {
			cancel()
			return result{}, err
		}
		if version == "" || st.Version != version {
			cancel()
			return result{body: st}, nil
		}
		select {
		case <-ch:
			cancel()
		case <-timer.C:
			cancel()
			return result{status: http.StatusNotModified}, nil
		case <-ctx.Done():
			cancel()
			return result{}, &core.Error{Code: core.Unavailable, Message: "watch interrupted (PLC shutting down?); retry", Err: ctx.Err()}
		}
	}
}
