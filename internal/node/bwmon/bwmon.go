// Package bwmon holds each slice to a daily egress byte budget on a node,
// as the original's bwmon (nodemanager.md §3.3): it reads the bytes sent
// through each sliver's HTB class, and when a slice passes its threshold
// (net_thresh_kbyte, default 80% of net_max_kbyte) its ceiling becomes the
// rate that spreads the rest of the budget over the rest of its day; past
// the budget, the ceiling drops to the throttled rate (the sliver's
// net_min_rate, at least the node's floor). At the end of the slice's day
// (24 h from its last reset, or when the counters went backwards: a
// reboot or a new class) the configured ceiling comes back.
//
// Each slice's period, baseline and state are kept in a file, so neither
// a node manager restart nor destroying and re-creating the sliver within
// the day resets its budget (the original's "dead" table). Every cap,
// throttle and reset is an Event: logged, kept (the last MaxEvents) and
// served with the state at /bwmon on the sensor listener.
//
// Left out: the Internet2 (i2) budgets of the original and its mail to the
// slice (PLC's mail outbox does not exist yet).
package bwmon

import (
	"sort"
	"time"
)

// Defaults.
const (
	// DefaultMaxKByte is the node-wide daily budget of slices without
	// net_max_kbyte: the original's 10546875 KiB (about 10.8 GB a day,
	// 1 Mbit/s on average).
	DefaultMaxKByte = 10546875
	// DefaultFloorKbit is the lowest throttled ceiling (logins and light
	// interactive use keep working).
	DefaultFloorKbit = 64
	// Period is the length of a slice's budget day.
	Period = 24 * time.Hour
	// MaxEvents bounds the events kept.
	MaxEvents = 1000
)

// Sliver is what bwmon knows of a sliver on the node.
type Sliver struct {
	Name        string
	XID         int
	SliceID     int64
	MaxKByte    int64 // -1: the node's default; 0: no budget
	ThreshKByte int64 // 0: 80% of MaxKByte
	MinRateKbit int64 // net_min_rate: the throttled ceiling (at least the floor)
}

// Slice is the budget state of one slice (by name: it outlives its sliver).
type Slice struct {
	Name      string    `json:"name"`
	SliceID   int64     `json:"slice_id"`
	XID       int       `json:"xid"`
	Start     time.Time `json:"period_start"` // the day runs to Start+Period
	Base      uint64    `json:"base"`         // class counter at Start
	Last      uint64    `json:"last"`         // class counter at the last read
	Carried   uint64    `json:"carried"`      // bytes of the day from classes gone since
	Used      uint64    `json:"used_bytes"`   // bytes sent this day
	Limit     uint64    `json:"limit_bytes"`  // 0 = no budget
	Thresh    uint64    `json:"thresh_bytes"`
	CeilKbit  int64     `json:"ceil_kbit,omitempty"` // the lowered ceiling; 0 = configured
	Throttled bool      `json:"throttled,omitempty"` // past the budget
}

// Event is a change bwmon made.
type Event struct {
	At        time.Time `json:"at"`
	Slice     string    `json:"slice"`
	SliceID   int64     `json:"slice_id"`
	XID       int       `json:"xid"`
	Kind      string    `json:"kind"` // capped, throttled, reset
	UsedBytes uint64    `json:"used_bytes"`
	Limit     uint64    `json:"limit_bytes"`
	CeilKbit  int64     `json:"ceil_kbit"` // 0 = configured again
	Until     time.Time `json:"until"`     // end of the slice's day
}

// Action is a ceiling to set (0 = configured).
type Action struct {
	XID      int
	CeilKbit int64
}

// Policy is the node-wide part of the rules.
type Policy struct {
	DefaultMaxKByte int64 // DefaultMaxKByte when 0; -1 = no default budget
	FloorKbit       int64 // DefaultFloorKbit when 0
	Period          time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.DefaultMaxKByte == 0 {
		p.DefaultMaxKByte = DefaultMaxKByte
	}
	if p.FloorKbit <= 0 {
		p.FloorKbit = DefaultFloorKbit
	}
	if p.Period <= 0 {
		p.Period = Period
	}
	return p
}

// State is every slice's budget state: the pure core of bwmon.
type State struct {
	Slices map[string]*Slice `json:"slices"`
	Events []Event           `json:"events"`
}

// Step advances the state to now with the classes' byte counters (by
// xid) and the slivers present; it returns the ceilings to set and the
// events of this step. Pure.
func (st *State) Step(p Policy, now time.Time, counters map[int]uint64, slivers []Sliver) ([]Action, []Event) {
	p = p.withDefaults()
	if st.Slices == nil {
		st.Slices = map[string]*Slice{}
	}
	var acts []Action
	var evs []Event
	sort.Slice(slivers, func(i, j int) bool { return slivers[i].Name < slivers[j].Name })
	present := map[string]bool{}
	for _, sv := range slivers {
		present[sv.Name] = true
		ctr, ok := counters[sv.XID]
		if !ok {
			continue // no class yet
		}
		maxK := sv.MaxKByte
		if maxK < 0 {
			maxK = max(p.DefaultMaxKByte, 0)
		}
		limit := uint64(maxK) * 1024
		thresh := uint64(sv.ThreshKByte) * 1024
		if thresh == 0 || thresh > limit {
			thresh = limit * 8 / 10
		}
		s := st.Slices[sv.Name]
		if s == nil {
			s = &Slice{Name: sv.Name, Start: now, Base: ctr, Last: ctr}
			st.Slices[sv.Name] = s
		}
		s.SliceID, s.Limit, s.Thresh = sv.SliceID, limit, thresh
		if s.XID != sv.XID || ctr < s.Last {
			// A new class (sliver re-created, reboot, other xid) counts
			// from zero: what the day used so far is carried over.
			s.Carried += s.Last - s.Base
			s.Base = 0
			s.XID = sv.XID
			if s.CeilKbit != 0 {
				acts = append(acts, Action{XID: sv.XID, CeilKbit: s.CeilKbit})
			}
		}
		s.Last = ctr
		if now.Sub(s.Start) >= p.Period {
			if s.CeilKbit != 0 {
				acts = append(acts, Action{XID: sv.XID})
				evs = append(evs, Event{At: now, Slice: s.Name, SliceID: s.SliceID, XID: sv.XID, Kind: "reset", UsedBytes: s.Used, Limit: s.Limit, Until: now.Add(p.Period)})
			}
			s.Start, s.Base, s.Carried, s.Used, s.CeilKbit, s.Throttled = now, ctr, 0, 0, 0, false
			continue
		}
		s.Used = s.Carried + (ctr - s.Base)
		if limit == 0 {
			if s.CeilKbit != 0 {
				acts = append(acts, Action{XID: sv.XID})
				s.CeilKbit, s.Throttled = 0, false
			}
			continue
		}
		end := s.Start.Add(p.Period)
		floor := max(sv.MinRateKbit, p.FloorKbit)
		switch {
		case s.Used >= limit && !s.Throttled:
			s.Throttled, s.CeilKbit = true, floor
			acts = append(acts, Action{XID: sv.XID, CeilKbit: floor})
			evs = append(evs, Event{At: now, Slice: s.Name, SliceID: s.SliceID, XID: sv.XID, Kind: "throttled", UsedBytes: s.Used, Limit: limit, CeilKbit: floor, Until: end})
		case s.Used >= thresh && s.Used < limit && s.CeilKbit == 0:
			left := end.Sub(now).Seconds()
			ceil := int64(float64(limit-s.Used) * 8 / 1000 / max(left, 1))
			ceil = max(ceil, floor)
			s.CeilKbit = ceil
			acts = append(acts, Action{XID: sv.XID, CeilKbit: ceil})
			evs = append(evs, Event{At: now, Slice: s.Name, SliceID: s.SliceID, XID: sv.XID, Kind: "capped", UsedBytes: s.Used, Limit: limit, CeilKbit: ceil, Until: end})
		}
	}
	// Slices whose sliver is gone keep their state until their day ends.
	for name, s := range st.Slices {
		if !present[name] && now.Sub(s.Start) >= p.Period {
			delete(st.Slices, name)
		}
	}
	st.Events = append(st.Events, evs...)
	if n := len(st.Events); n > MaxEvents {
		st.Events = append([]Event(nil), st.Events[n-MaxEvents:]...)
	}
	return acts, evs
}
