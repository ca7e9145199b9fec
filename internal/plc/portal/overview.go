package portal

import (
	"html/template"
	"net/http"

	"github.com/planetlab/pl/internal/core"
)

// The admin planet overview (/planet): the planet now (core.Planet's
// TopNodes, TopSlices), plots of the whole-planet samples over time
// (PlanetHistory, REST GET /api/v1/top/history: kept in PLC's memory for
// a day, so a restarted PLC starts with empty plots) and the monitor's
// latest actions and notices (REST /api/v1/monitor/actions and /notices).

// overviewListed is how many of the latest actions and notices it lists.
const overviewListed = 50

type overviewData struct {
	Now     core.PlanetSample
	Samples int
	Plots   []template.HTML
	Actions []core.MonitorAction
	Notices []core.Notice
}

func (h *Handler) planetPage(w http.ResponseWriter, r *http.Request, s *session) {
	if h.opts.Planet == nil {
		h.fail(w, r, s, core.Errorf(core.Unimplemented, "the planet table is not served here"))
		return
	}
	ctx := r.Context()
	hist, err := h.opts.Planet.PlanetHistory(ctx, s.caller, 0)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := overviewData{Samples: len(hist)}
	if len(hist) > 0 {
		d.Now = hist[len(hist)-1]
	}
	at := make([]int64, len(hist))
	col := func(f func(core.PlanetSample) float64) []float64 {
		out := make([]float64, len(hist))
		for i, x := range hist {
			out[i] = f(x)
		}
		return out
	}
	for i, x := range hist {
		at[i] = x.At
	}
	d.Plots = []template.HTML{
		linePlot("Nodes", at, []series{
			{Name: "up", Class: "s1", Y: col(func(x core.PlanetSample) float64 { return float64(x.NodesUp) })},
			{Name: "down", Class: "s2", Y: col(func(x core.PlanetSample) float64 { return float64(x.NodesDown) })},
			{Name: "unknown", Class: "s3", Y: col(func(x core.PlanetSample) float64 { return float64(x.NodesUnknown) })}}),
		linePlot("Load (1 minute)", at, []series{
			{Name: "mean", Class: "s1", Y: col(func(x core.PlanetSample) float64 { return x.MeanLoad })},
			{Name: "max", Class: "s2", Y: col(func(x core.PlanetSample) float64 { return x.MaxLoad })}}),
		linePlot("Usage", at, []series{
			{Name: "slivers", Class: "s1", Y: col(func(x core.PlanetSample) float64 { return float64(x.Slivers) })},
			{Name: "slices", Class: "s3", Y: col(func(x core.PlanetSample) float64 { return float64(x.Slices) })}}),
		linePlot("Traffic (kbit/s)", at, []series{
			{Name: "received", Class: "s1", Y: col(func(x core.PlanetSample) float64 { return x.RxKbps })},
			{Name: "sent", Class: "s3", Y: col(func(x core.PlanetSample) float64 { return x.TxKbps })}}),
	}
	d.Actions, err = latest(func(since int64) ([]core.MonitorAction, error) {
		return h.opts.Planet.MonitorActions(ctx, s.caller, since, 0)
	}, func(a core.MonitorAction) int64 { return a.ActionID })
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d.Notices, err = latest(func(since int64) ([]core.Notice, error) {
		return h.opts.Planet.Notices(ctx, s.caller, since, 0)
	}, func(n core.Notice) int64 { return n.NoticeID })
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, http.StatusOK, "planet", s.page("Planet overview", d))
}

// latest pages through a log read oldest first after an id (the API's
// ?since=) and returns its last overviewListed entries, newest first.
func latest[T any](page func(since int64) ([]T, error), id func(T) int64) ([]T, error) {
	var keep []T
	var since int64
	for range 1000 { // at most a million entries
		got, err := page(since)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			break
		}
		keep = append(keep, got...)
		if len(keep) > overviewListed {
			keep = keep[len(keep)-overviewListed:]
		}
		since = id(got[len(got)-1])
	}
	out := make([]T, 0, len(keep))
	for i := len(keep) - 1; i >= 0; i-- {
		out = append(out, keep[i])
	}
	return out, nil
}
