package service

import (
	"math"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Sites: checks and writes of AddSite, UpdateSite and DeleteSite.

func checkLatLong(rec core.Record) error {
	lat, hasLat := rec["latitude"]
	lon, hasLon := rec["longitude"]
	if (lat == nil) != (lon == nil) {
		field := "longitude"
		if lat == nil {
			field = "latitude"
		}
		return core.FieldErrorf(field, "latitude and longitude must be set together")
	}
	if hasLat && lat != nil && math.Abs(lat.(float64)) > 90 {
		return core.FieldErrorf("latitude", "must be within -90..90")
	}
	if hasLon && lon != nil && math.Abs(lon.(float64)) > 180 {
		return core.FieldErrorf("longitude", "must be within -180..180")
	}
	return nil
}

func checkSiteFields(rec core.Record) error {
	if v, ok := rec["login_base"]; ok && !loginBaseRE.MatchString(v.(string)) {
		return core.FieldErrorf("login_base", "%q must be non-empty and contain only a-z, 0-9 and '.'", v)
	}
	for _, k := range []string{"name", "abbreviated_name"} {
		if v, ok := rec[k]; ok && blank(v) {
			return core.FieldErrorf(k, "must not be empty")
		}
	}
	return nil
}

func (o *op) addSite(t *store.Table, rec core.Record) (int64, error) {
	if err := checkSiteFields(rec); err != nil {
		return 0, err
	}
	if err := checkLatLong(rec); err != nil {
		return 0, err
	}
	lb := str(rec, "login_base")
	var one int64
	if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM sites WHERE login_base = ? AND deleted = 0", []any{lb}, &one); err != nil || found {
		return 0, conflictOr(err, "login_base %q is taken", lb)
	}
	rec["date_created"], rec["last_updated"] = o.now, o.now
	id, err := o.tx.InsertRecord(o.ctx, t, rec)
	if err != nil {
		return 0, err
	}
	return id, o.putTag(core.Site, id, "hrn", o.s.opts.HRNRoot+"."+lb)
}

func (o *op) updateSite(t *store.Table, id int64, rec core.Record) error {
	cur, err := o.row(core.Site, id)
	if err != nil {
		return err
	}
	if !isAdmin(o.c) {
		if !atSite(o.c, id) || !o.c.HasRole(core.RolePI) {
			return forbidden("Permission denied: not a pi of site %s", str(cur, "login_base"))
		}
		for _, k := range []string{"max_slices", "max_slivers", "login_base"} {
			if _, ok := rec[k]; ok {
				return &core.Error{Code: core.Forbidden, Field: k, Message: "only admins may change " + k}
			}
		}
	}
	if err := checkSiteFields(rec); err != nil {
		return err
	}
	merged := core.Record{"latitude": cur["latitude"], "longitude": cur["longitude"]}
	for _, k := range []string{"latitude", "longitude"} {
		if v, ok := rec[k]; ok {
			merged[k] = v
		}
	}
	if err := checkLatLong(merged); err != nil {
		return err
	}
	if lb, ok := rec["login_base"]; ok && lb != cur["login_base"] {
		var one int64
		if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM sites WHERE login_base = ? AND deleted = 0", []any{lb}, &one); err != nil || found {
			return conflictOr(err, "login_base %q is taken", lb)
		}
	}
	if _, ok := rec["enabled"]; ok {
		if err := o.touchSite(id); err != nil {
			return err
		}
	}
	rec["last_updated"] = o.now
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

// deleteSite cascades as the original: the site's addresses, slices, PCUs
// and nodes, and every person who belongs to no other site.
func (o *op) deleteSite(id int64) error {
	if err := o.exists(core.Site, id); err != nil {
		return err
	}
	ctx, tx := o.ctx, o.tx
	if err := o.touchSite(id); err != nil {
		return err
	}
	slices, err := tx.Ints(ctx, "SELECT slice_id FROM slices WHERE site_id = ? AND deleted = 0", id)
	if err != nil {
		return err
	}
	for _, s := range slices {
		if err := o.removeSlice(s); err != nil {
			return err
		}
	}
	nodes, err := tx.Ints(ctx, "SELECT node_id FROM nodes WHERE site_id = ? AND deleted = 0", id)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := o.deleteNode(n); err != nil {
			return err
		}
	}
	persons, err := tx.Ints(ctx, `SELECT ps.person_id FROM person_site ps JOIN persons p ON p.person_id = ps.person_id
		WHERE ps.site_id = ? AND p.deleted = 0 AND NOT EXISTS (
		SELECT 1 FROM person_site o JOIN sites s ON s.site_id = o.site_id WHERE o.person_id = ps.person_id AND o.site_id <> ps.site_id AND s.deleted = 0)`, id)
	if err != nil {
		return err
	}
	for _, p := range persons {
		if err := o.removePerson(p); err != nil {
			return err
		}
	}
	for _, q := range []string{
		"DELETE FROM addresses WHERE site_id = ?",
		"DELETE FROM pcus WHERE site_id = ?",
		"DELETE FROM site_tags WHERE site_id = ?",
		"DELETE FROM person_site WHERE site_id = ?",
		"UPDATE sites SET deleted = 1, last_updated = " + sprintf("%d", o.now) + " WHERE site_id = ?",
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return err
		}
	}
	// Persons whose primary site was this one get another primary.
	return o.fixPrimaries()
}

func (o *op) fixPrimaries() error {
	_, err := o.tx.Exec(o.ctx, `UPDATE person_site SET is_primary = 1 WHERE NOT EXISTS (
		SELECT 1 FROM person_site p WHERE p.person_id = person_site.person_id AND p.is_primary = 1)
		AND site_id = (SELECT MIN(p.site_id) FROM person_site p WHERE p.person_id = person_site.person_id)`)
	return err
}
