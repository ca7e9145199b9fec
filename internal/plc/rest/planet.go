package rest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// WithPlanet serves the monitoring endpoints (planet table, node
// selection, the monitor's log, slice suspension) over p.
func WithPlanet(p core.Planet) Option { return func(h *Handler) { h.planet = p } }

func topQuery(v url.Values) (core.TopQuery, error) {
	q := core.TopQuery{Where: v.Get("where"), Sort: v.Get("sort")}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, core.FieldErrorf("limit", "want a non-negative integer, got %q", s)
		}
		q.Limit = n
	}
	return q, nil
}

func sinceLimit(v url.Values) (int64, int, error) {
	var since int64
	var limit int
	if s := v.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, core.FieldErrorf("since", "want a non-negative id, got %q", s)
		}
		since = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, core.FieldErrorf("limit", "want a non-negative integer, got %q", s)
		}
		limit = n
	}
	return since, limit, nil
}

func (h *Handler) planetRoutes() []route {
	if h.planet == nil {
		return nil
	}
	slice := restapi.Prefix + "/slices/{ref}"
	reason := func(ctx context.Context, q *request) (int64, string, error) {
		var req restapi.ReasonRequest
		if err := h.strictBody(q, &req); err != nil {
			return 0, "", err
		}
		id, err := h.resolve(ctx, q, core.Slice, "ref")
		return id, req.Reason, err
	}
	return []route{
		{method: http.MethodGet, path: restapi.TopNodesPath, op: "GetPlanetNodes", resp: "NodeRows",
			summary: "The planet table's node rows; ?where=<query>&sort=-load,hostname&limit=N",
			h: func(ctx context.Context, q *request) (result, error) {
				tq, err := topQuery(q.r.URL.Query())
				if err != nil {
					return result{}, err
				}
				rows, err := h.planet.TopNodes(ctx, q.caller, tq)
				return result{body: rows}, err
			}},
		{method: http.MethodGet, path: restapi.TopSlicesPath, op: "GetPlanetSlices", resp: "SliceRows",
			summary: "The planet table's slice rows the caller may read; ?where=&sort=&limit=",
			h: func(ctx context.Context, q *request) (result, error) {
				tq, err := topQuery(q.r.URL.Query())
				if err != nil {
					return result{}, err
				}
				rows, err := h.planet.TopSlices(ctx, q.caller, tq)
				return result{body: rows}, err
			}},
		{method: http.MethodPost, path: slice + restapi.SelectNodesSuffix, op: "SelectNodes", body: "NodeSelection", resp: "SelectedNodes",
			summary: "Choose nodes by measurement (where, per_site, count, near) and add the slice to them (unless dry_run)",
			h: func(ctx context.Context, q *request) (result, error) {
				var sel core.NodeSelection
				if err := h.strictBody(q, &sel); err != nil {
					return result{}, err
				}
				id, err := h.resolve(ctx, q, core.Slice, "ref")
				if err != nil {
					return result{}, err
				}
				chosen, err := h.planet.SelectNodes(ctx, q.caller, id, sel)
				return result{body: chosen}, err
			}},
		{method: http.MethodPost, path: slice + restapi.SuspendSuffix, op: "SuspendSlice", body: "ReasonRequest",
			summary: "Suspend a slice everywhere (enabled=0) with a reason; recorded as a monitor action",
			h: func(ctx context.Context, q *request) (result, error) {
				id, why, err := reason(ctx, q)
				if err != nil {
					return result{}, err
				}
				return result{}, h.planet.SuspendSlice(ctx, q.caller, id, why)
			}},
		{method: http.MethodPost, path: slice + restapi.ResumeSuffix, op: "ResumeSlice", body: "ReasonRequest",
			summary: "Lift every suspension of a slice with a reason; recorded as a monitor action",
			h: func(ctx context.Context, q *request) (result, error) {
				id, why, err := reason(ctx, q)
				if err != nil {
					return result{}, err
				}
				return result{}, h.planet.ResumeSlice(ctx, q.caller, id, why)
			}},
		{method: http.MethodGet, path: restapi.MonitorActionsPath, op: "GetMonitorActions", resp: "MonitorActions",
			summary: "The monitor's actions and admin suspensions, oldest first, after ?since=<action_id>",
			h: func(ctx context.Context, q *request) (result, error) {
				since, limit, err := sinceLimit(q.r.URL.Query())
				if err != nil {
					return result{}, err
				}
				acts, err := h.planet.MonitorActions(ctx, q.caller, since, limit)
				return result{body: acts}, err
			}},
		{method: http.MethodGet, path: restapi.HistoryPath, op: "GetPlanetHistory", resp: "PlanetHistory",
			summary: "Whole-planet samples (nodes up/down/unknown, load, CPU, slivers, slices, traffic) taken by the monitor about once a minute, after ?since=<unix seconds>, oldest first; kept in PLC's memory for a day",
			h: func(ctx context.Context, q *request) (result, error) {
				since, _, err := sinceLimit(q.r.URL.Query())
				if err != nil {
					return result{}, err
				}
				hs, err := h.planet.PlanetHistory(ctx, q.caller, since)
				return result{body: hs}, err
			}},
		{method: http.MethodGet, path: restapi.NoticesPath, op: "GetNotices", resp: "Notices",
			summary: "Notices sent to sites' contacts (admins: all; PIs and techs: their sites'), after ?since=<notice_id>",
			h: func(ctx context.Context, q *request) (result, error) {
				since, limit, err := sinceLimit(q.r.URL.Query())
				if err != nil {
					return result{}, err
				}
				ns, err := h.planet.Notices(ctx, q.caller, since, limit)
				return result{body: ns}, err
			}},
	}
}
