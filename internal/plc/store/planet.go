package store

import (
	"context"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// The queries of monitoring (service/planet.go, docs/monitoring.md):
// registry facts for the planet table, the latest report of each node,
// the monitor's memory and log, notices and slice suspensions.

// PlanetNode is what the planet table needs of a node and its site.
type PlanetNode struct {
	NodeID, SiteID int64
	Hostname       string
	LoginBase      string
	Country        string // site tag "country", else the site's address country; raw
	Lat, Lon       *float64
	BootState      string
	LastContact    int64
	Version        string
}

// PlanetNodes lists the live nodes.
func (t *Tx) PlanetNodes(ctx context.Context) ([]PlanetNode, error) {
	rows, err := t.Query(ctx, `SELECT n.node_id, n.site_id, n.hostname, s.login_base, s.latitude, s.longitude, n.boot_state,
		COALESCE(n.last_contact, 0), COALESCE(n.version, ''),
		COALESCE((SELECT st.value FROM site_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		          WHERE st.site_id = n.site_id AND tt.tagname = 'country'),
		         (SELECT MIN(a.country) FROM addresses a WHERE a.site_id = n.site_id), '')
		FROM nodes n JOIN sites s ON s.site_id = n.site_id WHERE n.deleted = 0 ORDER BY n.node_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PlanetNode
	for rows.Next() {
		var n PlanetNode
		if err := rows.Scan(&n.NodeID, &n.SiteID, &n.Hostname, &n.LoginBase, &n.Lat, &n.Lon, &n.BootState, &n.LastContact, &n.Version, &n.Country); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, n)
	}
	return out, wrapDB("rows", rows.Err())
}

// PlanetSlice is a live slice.
type PlanetSlice struct {
	SliceID, SiteID int64
	Name            string
}

// PlanetSlices lists the live slices.
func (t *Tx) PlanetSlices(ctx context.Context) ([]PlanetSlice, error) {
	rows, err := t.Query(ctx, `SELECT slice_id, site_id, name FROM slices WHERE deleted = 0 ORDER BY slice_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PlanetSlice
	for rows.Next() {
		var s PlanetSlice
		if err := rows.Scan(&s.SliceID, &s.SiteID, &s.Name); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, s)
	}
	return out, wrapDB("rows", rows.Err())
}

// ReadableSlices returns the ids of the slices a person may read in the
// planet table: slices they are a member of and, when pi, the slices of
// their sites.
func (t *Tx) ReadableSlices(ctx context.Context, personID int64, piSites []int64) ([]int64, error) {
	q := `SELECT sp.slice_id FROM slice_person sp WHERE sp.person_id = ?`
	args := []any{personID}
	if len(piSites) > 0 {
		q += ` UNION SELECT s.slice_id FROM slices s WHERE s.deleted = 0 AND s.site_id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(piSites)), ", ") + `)`
		for _, id := range piSites {
			args = append(args, id)
		}
	}
	return t.Ints(ctx, q, args...)
}

// NodeReportRow is the latest sensor summary of a node (JSON).
type NodeReportRow struct {
	NodeID   int64
	Received int64
	Figures  string
}

// PutNodeReport stores a node's latest summary, replacing the previous.
func (t *Tx) PutNodeReport(ctx context.Context, nodeID, received int64, figures string) error {
	_, err := t.Exec(ctx, `INSERT INTO node_reports (node_id, received, figures) VALUES (?, ?, ?)
		ON CONFLICT (node_id) DO UPDATE SET received = excluded.received, figures = excluded.figures`, nodeID, received, figures)
	return err
}

// NodeReports lists the stored summaries of live nodes.
func (t *Tx) NodeReports(ctx context.Context) ([]NodeReportRow, error) {
	rows, err := t.Query(ctx, `SELECT r.node_id, r.received, COALESCE(r.figures, '') FROM node_reports r
		JOIN nodes n ON n.node_id = r.node_id WHERE n.deleted = 0 ORDER BY r.node_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []NodeReportRow
	for rows.Next() {
		var r NodeReportRow
		if err := rows.Scan(&r.NodeID, &r.Received, &r.Figures); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, r)
	}
	return out, wrapDB("rows", rows.Err())
}

// MonitorNode and MonitorSite are the monitor's memory.
type MonitorNode struct {
	NodeID int64
	Status string
	Since  int64
}

// MonitorSite is a site the monitor watches: all its nodes down since
// DownSince, penalty Level; DisabledSite says the monitor disabled the
// site (and enables it again when lifting).
type MonitorSite struct {
	SiteID, DownSince int64
	Level             int
	DisabledSite      bool
}

// MonitorState reads the monitor's memory.
func (t *Tx) MonitorState(ctx context.Context) ([]MonitorNode, []MonitorSite, error) {
	rows, err := t.Query(ctx, `SELECT node_id, status, since FROM monitor_nodes ORDER BY node_id`)
	if err != nil {
		return nil, nil, err
	}
	var nodes []MonitorNode
	for rows.Next() {
		var n MonitorNode
		if err := rows.Scan(&n.NodeID, &n.Status, &n.Since); err != nil {
			rows.Close()
			return nil, nil, wrapDB("scan", err)
		}
		nodes = append(nodes, n)
	}
	rows.Close()
	rows, err = t.Query(ctx, `SELECT site_id, down_since, level, disabled_site FROM monitor_sites ORDER BY site_id`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var sites []MonitorSite
	for rows.Next() {
		var s MonitorSite
		var dis int64
		if err := rows.Scan(&s.SiteID, &s.DownSince, &s.Level, &dis); err != nil {
			return nil, nil, wrapDB("scan", err)
		}
		s.DisabledSite = dis != 0
		sites = append(sites, s)
	}
	return nodes, sites, wrapDB("rows", rows.Err())
}

// PutMonitorNode stores (or, with status "", forgets) a node's state.
func (t *Tx) PutMonitorNode(ctx context.Context, n MonitorNode) error {
	if n.Status == "" {
		_, err := t.Exec(ctx, `DELETE FROM monitor_nodes WHERE node_id = ?`, n.NodeID)
		return err
	}
	_, err := t.Exec(ctx, `INSERT INTO monitor_nodes (node_id, status, since) VALUES (?, ?, ?)
		ON CONFLICT (node_id) DO UPDATE SET status = excluded.status, since = excluded.since`, n.NodeID, n.Status, n.Since)
	return err
}

// PutMonitorSite stores a site's state, keeping DisabledSite unless set.
func (t *Tx) PutMonitorSite(ctx context.Context, s MonitorSite) error {
	_, err := t.Exec(ctx, `INSERT INTO monitor_sites (site_id, down_since, level, disabled_site) VALUES (?, ?, ?, ?)
		ON CONFLICT (site_id) DO UPDATE SET down_since = excluded.down_since, level = excluded.level,
		disabled_site = CASE WHEN excluded.disabled_site = 1 THEN 1 ELSE monitor_sites.disabled_site END`,
		s.SiteID, s.DownSince, s.Level, b2i(s.DisabledSite))
	return err
}

// DeleteMonitorSite forgets a site; it returns whether the monitor had
// disabled it.
func (t *Tx) DeleteMonitorSite(ctx context.Context, siteID int64) (disabledSite bool, err error) {
	dis, err := t.Int(ctx, `SELECT disabled_site FROM monitor_sites WHERE site_id = ?`, siteID)
	if err != nil {
		return false, err
	}
	_, err = t.Exec(ctx, `DELETE FROM monitor_sites WHERE site_id = ?`, siteID)
	return dis != 0, err
}

// InsertMonitorAction records an action and returns its id.
func (t *Tx) InsertMonitorAction(ctx context.Context, a core.MonitorAction) (int64, error) {
	return t.Insert(ctx, "monitor_actions", "action_id", []string{"at", "kind", "node_id", "site_id", "slice_id", "level", "actor", "reason"},
		[]any{a.At, a.Kind, nullID(a.NodeID), nullID(a.SiteID), nullID(a.SliceID), a.Level, a.Actor, a.Reason})
}

// MonitorActions lists actions with id > since, oldest first.
func (t *Tx) MonitorActions(ctx context.Context, since int64, limit int) ([]core.MonitorAction, error) {
	rows, err := t.Query(ctx, `SELECT action_id, at, kind, COALESCE(node_id, 0), COALESCE(site_id, 0), COALESCE(slice_id, 0), level, actor, reason
		FROM monitor_actions WHERE action_id > ? ORDER BY action_id LIMIT ?`, since, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.MonitorAction{}
	for rows.Next() {
		var a core.MonitorAction
		if err := rows.Scan(&a.ActionID, &a.At, &a.Kind, &a.NodeID, &a.SiteID, &a.SliceID, &a.Level, &a.Actor, &a.Reason); err != nil {
			return nil, wrapDB("scan", err)
		}
		out = append(out, a)
	}
	return out, wrapDB("rows", rows.Err())
}

// InsertNotice records a notice and returns its id.
func (t *Tx) InsertNotice(ctx context.Context, n core.Notice) (int64, error) {
	return t.Insert(ctx, "notices", "notice_id", []string{"at", "site_id", "node_id", "kind", "recipients", "subject", "body"},
		[]any{n.At, n.SiteID, nullID(n.NodeID), n.Kind, strings.Join(n.Recipients, ","), n.Subject, n.Body})
}

// Notices lists notices with id > since, oldest first. sites nil lists
// all; otherwise only those to these sites or, when email is not empty,
// with email among their recipients.
func (t *Tx) Notices(ctx context.Context, since int64, limit int, sites []int64, email string) ([]core.Notice, error) {
	q := `SELECT notice_id, at, site_id, COALESCE(node_id, 0), kind, recipients, subject, body FROM notices WHERE notice_id > ?`
	args := []any{since}
	if sites != nil {
		var or []string
		if len(sites) > 0 {
			or = append(or, `site_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(sites)), ", ")+`)`)
			for _, s := range sites {
				args = append(args, s)
			}
		}
		if email != "" && !strings.Contains(email, ",") {
			or = append(or, `(',' || recipients || ',') LIKE ? ESCAPE '\'`)
			args = append(args, "%,"+likeEscaper.Replace(email)+",%")
		}
		if len(or) == 0 {
			return []core.Notice{}, nil
		}
		q += ` AND (` + strings.Join(or, " OR ") + `)`
	}
	rows, err := t.Query(ctx, q+` ORDER BY notice_id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.Notice{}
	for rows.Next() {
		var n core.Notice
		var rcpt string
		if err := rows.Scan(&n.NoticeID, &n.At, &n.SiteID, &n.NodeID, &n.Kind, &rcpt, &n.Subject, &n.Body); err != nil {
			return nil, wrapDB("scan", err)
		}
		n.Recipients = []string{}
		if rcpt != "" {
			n.Recipients = strings.Split(rcpt, ",")
		}
		out = append(out, n)
	}
	return out, wrapDB("rows", rows.Err())
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// NoticeExists tells whether a notice of this kind, node, time and
// subject is recorded (a node may report an event again).
func (t *Tx) NoticeExists(ctx context.Context, kind string, nodeID, at int64, subject string) (bool, error) {
	n, err := t.Int(ctx, `SELECT COUNT(*) FROM notices WHERE kind = ? AND node_id = ? AND at = ? AND subject = ?`, kind, nodeID, at, subject)
	return n > 0, err
}

// SliceUsers returns the emails of a slice's enabled members, sorted.
func (t *Tx) SliceUsers(ctx context.Context, sliceID int64) ([]string, error) {
	return t.Strings(ctx, `SELECT p.email FROM persons p JOIN slice_person sp ON sp.person_id = p.person_id
		WHERE sp.slice_id = ? AND p.enabled = 1 AND p.deleted = 0 ORDER BY p.email`, sliceID)
}

// SiteSliceUsers returns the emails of the enabled members of a site's
// live slices, sorted.
func (t *Tx) SiteSliceUsers(ctx context.Context, siteID int64) ([]string, error) {
	return t.Strings(ctx, `SELECT DISTINCT p.email FROM persons p JOIN slice_person sp ON sp.person_id = p.person_id
		JOIN slices s ON s.slice_id = sp.slice_id WHERE s.site_id = ? AND s.deleted = 0 AND p.enabled = 1 AND p.deleted = 0
		ORDER BY p.email`, siteID)
}

// SiteSlices returns the ids of a site's live slices.
func (t *Tx) SiteSlices(ctx context.Context, siteID int64) ([]int64, error) {
	return t.Ints(ctx, `SELECT slice_id FROM slices WHERE site_id = ? AND deleted = 0 ORDER BY slice_id`, siteID)
}

// SetSiteEnabled sets a site's enabled flag; it returns whether it changed.
func (t *Tx) SetSiteEnabled(ctx context.Context, siteID int64, enabled bool) (bool, error) {
	n, err := t.Exec(ctx, `UPDATE sites SET enabled = ? WHERE site_id = ? AND enabled <> ?`, b2i(enabled), siteID, b2i(enabled))
	return n > 0, err
}

// AddSuspension records why a slice is suspended (source "admin" or
// "monitor"; one row per source) and sets its global slice tag
// enabled=0.
func (t *Tx) AddSuspension(ctx context.Context, sliceID int64, source, actor, reason string, now int64) error {
	if _, err := t.Exec(ctx, `INSERT INTO slice_suspensions (slice_id, source, actor, reason, since) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (slice_id, source) DO UPDATE SET actor = excluded.actor, reason = excluded.reason`, sliceID, source, actor, reason, now); err != nil {
		return err
	}
	tt, err := t.Int(ctx, `SELECT tag_type_id FROM tag_types WHERE tagname = 'enabled'`)
	if err != nil {
		return err
	}
	n, err := t.Exec(ctx, `UPDATE slice_tags SET value = '0' WHERE slice_id = ? AND tag_type_id = ? AND node_id IS NULL AND nodegroup_id IS NULL`, sliceID, tt)
	if err != nil || n > 0 {
		return err
	}
	_, err = t.Exec(ctx, `INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, '0')`, sliceID, tt)
	return err
}

// RemoveSuspension removes a slice's suspension by source ("" = every
// source); when none remains, the global enabled tag goes. It returns
// whether the slice is running again.
func (t *Tx) RemoveSuspension(ctx context.Context, sliceID int64, source string) (bool, error) {
	q, args := `DELETE FROM slice_suspensions WHERE slice_id = ?`, []any{sliceID}
	if source != "" {
		q, args = q+` AND source = ?`, append(args, source)
	}
	if _, err := t.Exec(ctx, q, args...); err != nil {
		return false, err
	}
	left, err := t.Int(ctx, `SELECT COUNT(*) FROM slice_suspensions WHERE slice_id = ?`, sliceID)
	if err != nil || left > 0 {
		return false, err
	}
	_, err = t.Exec(ctx, `DELETE FROM slice_tags WHERE slice_id = ? AND node_id IS NULL AND nodegroup_id IS NULL
		AND tag_type_id = (SELECT tag_type_id FROM tag_types WHERE tagname = 'enabled')`, sliceID)
	return err == nil, err
}

// SiteLocation returns a live site's coordinates by login_base.
func (t *Tx) SiteLocation(ctx context.Context, loginBase string) (lat, lon *float64, found bool, err error) {
	found, err = t.QueryRow(ctx, `SELECT latitude, longitude FROM sites WHERE login_base = ? AND deleted = 0`, []any{loginBase}, &lat, &lon)
	return lat, lon, found, err
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
