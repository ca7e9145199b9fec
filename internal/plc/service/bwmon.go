package service

import (
	"fmt"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// Daily byte budgets at PLC (docs/audit.md): a node's report carries the
// events of its bwmon (core.NodeReport.BwmonEvents); each throttle becomes
// a notice to the slice's members (table notices, `pl monitor notices`)
// and its mail (the outbox), once, also when the node reports it again.

// NoticeBwmonThrottled is the kind of the notice of a throttled slice.
const NoticeBwmonThrottled = "bwmon_throttled"

// recordBwmon records a notice for each throttle among a node's events
// (o.recordNotice: with its mail; write hands it to the Notifier). An event
// naming a slice PLC does not know under that id and name is skipped and
// returned (logged by the caller).
func (o *op) recordBwmon(nodeID int64, hostname string, evs []core.BwmonEvent) (skipped []string, err error) {
	for _, e := range evs {
		if e.Kind != core.BwmonThrottled {
			continue
		}
		var name string
		var siteID int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT name, site_id FROM slices WHERE slice_id = ?", []any{e.SliceID}, &name, &siteID)
		if err != nil {
			return nil, err
		}
		if !found || name != e.Slice {
			skipped = append(skipped, fmt.Sprintf("%s (id %d)", e.Slice, e.SliceID))
			continue
		}
		n := bwmonNotice(e, nodeID, siteID, hostname)
		if dup, err := o.tx.NoticeExists(o.ctx, n.Kind, nodeID, n.At, n.Subject); err != nil || dup {
			if err != nil {
				return nil, err
			}
			continue
		}
		if n.Recipients, err = o.tx.SliceUsers(o.ctx, e.SliceID); err != nil {
			return nil, err
		}
		if _, err = o.recordNotice(n); err != nil { // and its mail (outbox.go)
			return nil, err
		}
	}
	return skipped, nil
}

// bwmonNotice is the notice of a throttle (without recipients).
func bwmonNotice(e core.BwmonEvent, nodeID, siteID int64, hostname string) core.Notice {
	subject := fmt.Sprintf("slice %s throttled on node %s: daily budget %s exceeded", e.Slice, hostname, kib(e.LimitBytes))
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", subject)
	fmt.Fprintf(&b, "Slice: %s\nNode: %s\nWhen: %s\n", e.Slice, hostname, e.At.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Sent this day: %s of a daily budget of %s (slice tag net_max_kbyte, or the node's default).\n", kib(e.UsedBytes), kib(e.LimitBytes))
	fmt.Fprintf(&b, "The sliver's outgoing rate is held at %d kbit/s until %s, when its day ends.\n", e.CeilKbit, e.Until.UTC().Format(time.RFC3339))
	return core.Notice{At: e.At.Unix(), SiteID: siteID, NodeID: nodeID, Kind: NoticeBwmonThrottled, Recipients: []string{}, Subject: subject, Body: b.String()}
}

// kib writes a byte count in KiB as the tags count it, with a rounded
// figure for people.
func kib(b uint64) string {
	k := b / 1024
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%d KiB (%.1f GiB)", k, float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%d KiB (%.1f MiB)", k, float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", k)
	}
}

// logSkippedBwmon logs the events of slices PLC does not know (the
// recorded notices are logged and handed to the Notifier by write).
func (s *Service) logSkippedBwmon(nodeID int64, skipped []string) {
	for _, sl := range skipped {
		s.log.Warn("bwmon event of an unknown slice ignored", "node", nodeID, "slice", sl)
	}
}
