package flows

import (
	"bytes"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/planetlab/pl/internal/core"
)

// Summary limits: a summary reads at most MaxSummaryScan records of the
// window (then answers Partial) and keeps at most MaxSummaryDests distinct
// remote addresses (further ones count in the totals and days only, and
// the answer is Partial).
const (
	MaxSummaryScan  = 2_000_000
	MaxSummaryDests = 100_000
)

// Summary sums the flows of one slice (by name) that started in
// [since, until]: by UTC day of their start, and by remote address, the
// top destinations by bytes. It reads the records of the window's days
// (every slice's), as the store has no index by slice.
func (s *Store) Summary(slice string, since, until time.Time, top int) (core.TrafficSummary, error) {
	out := core.TrafficSummary{Days: []core.TrafficDay{}, Top: []core.TrafficDest{}}
	dests := map[netip.Addr]*core.Traffic{}
	days := map[string]*core.Traffic{}
	var order []string
	scanned := 0
	lo, hi := MakeKey(since, 0), MakeKey(until, ^uint32(0))
	err := s.db.View(func(tx *bolt.Tx) error {
		dc := tx.Bucket(bDays).Cursor()
		last := dayOf(until)
		for day, _ := dc.Seek(dayOf(since)); day != nil && bytes.Compare(day, last) <= 0; day, _ = dc.Next() {
			db := tx.Bucket(bDays).Bucket(day)
			if db == nil || db.Bucket(bRecs) == nil {
				continue
			}
			c := db.Bucket(bRecs).Cursor()
			for k, v := c.Seek(lo[:]); k != nil && bytes.Compare(k, hi[:]) <= 0; k, v = c.Next() {
				if scanned++; scanned > MaxSummaryScan {
					out.Partial = true
					return errStop
				}
				r, err := decodeRecord(v)
				if err != nil {
					s.log.Warn("skipping damaged flow record", "key", Key(k).String(), "err", err)
					continue
				}
				if r.Slice != slice || r.XID == 0 {
					continue
				}
				t := core.Traffic{BytesSent: r.BytesSent, BytesReceived: r.BytesReceived, Flows: 1}
				out.Total.Add(t)
				d := string(day)
				if days[d] == nil {
					days[d] = &core.Traffic{}
					order = append(order, d)
				}
				days[d].Add(t)
				a := r.Remote.Addr()
				if x := dests[a]; x != nil {
					x.Add(t)
				} else if len(dests) < MaxSummaryDests {
					dests[a] = &t
				} else {
					out.Partial = true
				}
			}
		}
		return nil
	})
	if err != nil && err != errStop {
		return out, err
	}
	for _, d := range order {
		out.Days = append(out.Days, core.TrafficDay{Day: d, Traffic: *days[d]})
	}
	for a, t := range dests {
		out.Top = append(out.Top, core.TrafficDest{Remote: a, Traffic: *t})
	}
	core.SortTop(out.Top)
	if len(out.Top) > top {
		out.Top = out.Top[:top]
	}
	return out, nil
}
