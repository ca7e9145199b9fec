package core

import (
	"fmt"
	"time"
)

// Kinds of BwmonEvent (the node's bwmon, docs/audit.md).
const (
	BwmonCapped    = "capped"    // past the threshold: the ceiling spreads the rest of the budget
	BwmonThrottled = "throttled" // past the daily budget: the ceiling drops to the floor
	BwmonReset     = "reset"     // the slice's day ended: the configured ceiling is back
)

// MaxBwmonEvents bounds the bwmon events one report carries.
const MaxBwmonEvents = 64

// BwmonEvent is a change the node's bwmon made to a slice's ceiling, as a
// report carries it to PLC (NodeReport.BwmonEvents): PLC records a notice
// to the slice's members for each throttle.
type BwmonEvent struct {
	At         time.Time `json:"at"`
	Slice      string    `json:"slice"`
	SliceID    int64     `json:"slice_id"`
	Kind       string    `json:"kind"` // BwmonCapped, BwmonThrottled, BwmonReset
	UsedBytes  uint64    `json:"used_bytes"`
	LimitBytes uint64    `json:"limit_bytes"`
	CeilKbit   int64     `json:"ceil_kbit"` // 0 = the configured ceiling again
	Until      time.Time `json:"until"`     // end of the slice's day
}

// ValidateBwmonEvents refuses a report's events that are too many or carry
// impossible values, naming the field (bwmon_events[i].kind).
func ValidateBwmonEvents(evs []BwmonEvent) error {
	if len(evs) > MaxBwmonEvents {
		return FieldErrorf("bwmon_events", "at most %d events in one report, got %d", MaxBwmonEvents, len(evs))
	}
	for i, e := range evs {
		field := func(name string) string { return fmt.Sprintf("bwmon_events[%d].%s", i, name) }
		switch {
		case e.Kind != BwmonCapped && e.Kind != BwmonThrottled && e.Kind != BwmonReset:
			return FieldErrorf(field("kind"), "want capped, throttled or reset, got %q", e.Kind)
		case e.Slice == "":
			return FieldErrorf(field("slice"), "required")
		case e.SliceID <= 0:
			return FieldErrorf(field("slice_id"), "want a slice id, got %d", e.SliceID)
		case e.At.IsZero() || e.At.Year() < 2000 || e.At.Year() > 9999:
			return FieldErrorf(field("at"), "want a time after 2000, got %v", e.At)
		case e.Until.IsZero() || e.Until.Year() > 9999:
			return FieldErrorf(field("until"), "want a time, got %v", e.Until)
		case e.UsedBytes > MaxFigure || e.LimitBytes > MaxFigure:
			return FieldErrorf(field("used_bytes"), "want at most 2^62")
		case e.CeilKbit < 0 || e.CeilKbit > 1<<40:
			return FieldErrorf(field("ceil_kbit"), "want 0..2^40, got %d", e.CeilKbit)
		}
		if err := boundedText(e.Slice, MaxSliceName); err != nil {
			return FieldErrorf(field("slice"), "%v", err)
		}
	}
	return nil
}
