package planet

import (
	"cmp"
	"slices"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/geo"
	"github.com/planetlab/pl/internal/plc/planet/query"
)

// Point is a place on Earth in decimal degrees.
type Point struct{ Lat, Lon float64 }

// Select chooses nodes from rows by sel (SWORD's modern form): the rows
// that are up and match sel.Where, ordered by great-circle distance from
// near when given (nodes of sites without a location last), else by load;
// ties by hostname. Then at most sel.PerSite per site and sel.Count in
// all. The caller resolves sel.Near into near.
func Select(rows []core.NodeRow, sel core.NodeSelection, near *Point) ([]core.Selected, error) {
	if sel.PerSite < 0 {
		return nil, core.FieldErrorf("per_site", "must not be negative")
	}
	if sel.Count < 0 {
		return nil, core.FieldErrorf("count", "must not be negative")
	}
	q, err := query.Compile[core.NodeRow](sel.Where)
	if err != nil {
		return nil, core.FieldErrorf("where", "%v", err)
	}
	type cand struct {
		row  *core.NodeRow
		dist float64 // km; +Inf-like when unknown
		has  bool
	}
	var cs []cand
	for i := range rows {
		r := &rows[i]
		if !r.Up {
			continue
		}
		ok, err := q.Match(r)
		if err != nil {
			return nil, core.FieldErrorf("where", "%v", err)
		}
		if !ok {
			continue
		}
		c := cand{row: r}
		if near != nil && r.HasLocation {
			c.dist, c.has = geo.Distance(near.Lat, near.Lon, r.Latitude, r.Longitude)/1000, true
		}
		cs = append(cs, c)
	}
	slices.SortStableFunc(cs, func(a, b cand) int {
		if near != nil {
			if a.has != b.has {
				if a.has {
					return -1
				}
				return 1
			}
			if c := cmp.Compare(a.dist, b.dist); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(a.row.Load, b.row.Load); c != 0 {
			return c
		}
		return cmp.Compare(a.row.Hostname, b.row.Hostname)
	})
	perSite := map[int64]int{}
	out := []core.Selected{}
	for _, c := range cs {
		if sel.Count > 0 && len(out) >= sel.Count {
			break
		}
		if sel.PerSite > 0 && perSite[c.row.SiteID] >= sel.PerSite {
			continue
		}
		perSite[c.row.SiteID]++
		s := core.Selected{NodeID: c.row.NodeID, Hostname: c.row.Hostname, Site: c.row.Site, Load: c.row.Load}
		if c.has {
			s.DistanceKm = c.dist
		}
		out = append(out, s)
	}
	return out, nil
}
