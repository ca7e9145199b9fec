package service

import (
	"math"
	"net"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/store"
)

// --- sites ---

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

// --- persons ---

func checkEmail(rec core.Record) error {
	if v, ok := rec["email"]; ok {
		e := strings.ToLower(strings.TrimSpace(v.(string)))
		if !emailRE.MatchString(e) {
			return core.FieldErrorf("email", "%q is not a valid e-mail address", v)
		}
		rec["email"] = e
	}
	for _, k := range []string{"first_name", "last_name"} {
		if v, ok := rec[k]; ok && blank(v) {
			return core.FieldErrorf(k, "must not be empty")
		}
	}
	return nil
}

func (o *op) emailTaken(email string, except int64) error {
	var one int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM persons WHERE email = ? AND deleted = 0 AND person_id <> ?", []any{email, except}, &one)
	return conflictOr2(err, found, "e-mail address %q is already registered", email)
}

func conflictOr2(err error, found bool, format string, args ...any) error {
	if err != nil {
		return err
	}
	if found {
		return core.Errorf(core.Conflict, format, args...)
	}
	return nil
}

func (o *op) hashPasswordField(rec core.Record) error {
	if v, ok := rec["password"]; ok && v != nil {
		pw := v.(string)
		if pw == "" {
			return core.FieldErrorf("password", "must not be empty")
		}
		h, err := o.s.hashPassword(pw)
		if err != nil {
			return err
		}
		rec["password"] = h
	}
	return nil
}

func (o *op) addPerson(t *store.Table, rec core.Record) (int64, error) {
	if err := checkEmail(rec); err != nil {
		return 0, err
	}
	if err := o.emailTaken(str(rec, "email"), 0); err != nil {
		return 0, err
	}
	if err := o.hashPasswordField(rec); err != nil {
		return 0, err
	}
	rec["enabled"] = false
	rec["date_created"], rec["last_updated"] = o.now, o.now
	id, err := o.tx.InsertRecord(o.ctx, t, rec)
	if err != nil {
		return 0, err
	}
	// A PI's new person joins the PI's primary site, so the PI can then
	// enable it and grant it roles (the original left that to the web UI's
	// registration flow).
	if !isAdmin(o.c) && len(o.c.SiteIDs) > 0 {
		if _, err := o.tx.Exec(o.ctx, "INSERT INTO person_site (person_id, site_id, is_primary) VALUES (?, ?, 1)", id, o.c.SiteIDs[0]); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// canUpdatePerson is the original Person.can_update: the caller is the
// target, or an admin, or a PI sharing a site with a target who is
// neither pi nor admin.
func (o *op) canUpdatePerson(target int64) (bool, error) {
	c := o.c
	if isAdmin(c) {
		return true, nil
	}
	if !isPerson(c) {
		return false, nil
	}
	if c.PersonID == target {
		return true, nil
	}
	if !c.HasRole(core.RolePI) {
		return false, nil
	}
	sites, err := o.personSites(target)
	if err != nil {
		return false, err
	}
	shared := false
	for _, s := range sites {
		if atSite(c, s) {
			shared = true
		}
	}
	if !shared {
		return false, nil
	}
	n, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM person_role WHERE person_id = ? AND role_id IN (10, 20)", target)
	return n == 0, err
}

func (o *op) updatePerson(t *store.Table, id int64, rec core.Record) error {
	if err := o.exists(core.Person, id); err != nil {
		return err
	}
	ok, err := o.canUpdatePerson(id)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("Permission denied: may not update person %d", id)
	}
	if _, has := rec["enabled"]; has && !isAdmin(o.c) && !(o.c.HasRole(core.RolePI) && o.c.PersonID != id) {
		return &core.Error{Code: core.Forbidden, Field: "enabled", Message: "only a pi of the person's site or an admin may enable or disable an account"}
	}
	if err := checkEmail(rec); err != nil {
		return err
	}
	if e, has := rec["email"]; has {
		if err := o.emailTaken(e.(string), id); err != nil {
			return err
		}
	}
	if err := o.hashPasswordField(rec); err != nil {
		return err
	}
	if err := o.touchPerson(id); err != nil {
		return err
	}
	o.s.pwCache.forget(id) // a new password, email or enabled flag
	rec["last_updated"] = o.now
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

func (o *op) deletePerson(id int64) error {
	if err := o.exists(core.Person, id); err != nil {
		return err
	}
	ok, err := o.canUpdatePerson(id)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("Permission denied: may not delete person %d", id)
	}
	return o.removePerson(id)
}

// removePerson soft-deletes a person and drops its memberships, keys (but
// blacklisted ones, which must keep refusing their material), tags and
// sessions.
func (o *op) removePerson(id int64) error {
	if err := o.touchPerson(id); err != nil {
		return err
	}
	o.s.pwCache.forget(id)
	for _, q := range []string{
		"DELETE FROM person_site WHERE person_id = ?",
		"DELETE FROM person_role WHERE person_id = ?",
		"DELETE FROM slice_person WHERE person_id = ?",
		"DELETE FROM keys WHERE person_id = ? AND is_blacklisted = 0",
		"DELETE FROM person_tags WHERE person_id = ?",
		"DELETE FROM sessions WHERE person_id = ?",
		"UPDATE persons SET deleted = 1, last_updated = " + sprintf("%d", o.now) + " WHERE person_id = ?",
	} {
		if _, err := o.tx.Exec(o.ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// --- keys ---

func (o *op) checkKeyMaterial(rec core.Record) error {
	if kt, ok := rec["key_type"]; ok {
		found, err := o.lookupExists("key_types", "key_type", kt.(string))
		if err != nil {
			return err
		}
		if !found {
			return core.FieldErrorf("key_type", "unknown key type %q", kt)
		}
	}
	k, ok := rec["key"]
	if !ok {
		return nil
	}
	parsed, err := ParsePersonKey(k.(string))
	if err != nil {
		return core.FieldErrorf("key", "%v", err)
	}
	var one int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM keys WHERE material = ? AND is_blacklisted = 1", []any{parsed.Material}, &one)
	if err != nil {
		return err
	}
	if found {
		return core.FieldErrorf("key", "this key is blacklisted")
	}
	rec["key"] = parsed.Line
	rec["material"] = parsed.Material
	rec["usable"] = parsed.Usable
	rec["unusable_reason"] = nil
	if !parsed.Usable {
		rec["unusable_reason"] = parsed.Reason
	}
	return nil
}

func (o *op) addKey(t *store.Table, rec core.Record) (int64, error) {
	pid := i64(rec, "person_id")
	if err := o.exists(core.Person, pid); err != nil {
		return 0, err
	}
	if !isAdmin(o.c) && pid != o.c.PersonID {
		return 0, forbidden("Permission denied: you may add keys to your own account only")
	}
	if err := o.checkKeyMaterial(rec); err != nil {
		return 0, err
	}
	if err := o.touchPerson(pid); err != nil {
		return 0, err
	}
	return o.tx.InsertRecord(o.ctx, t, rec)
}

func (o *op) updateKey(t *store.Table, id int64, rec core.Record) error {
	var pid int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT person_id FROM keys WHERE key_id = ? AND is_blacklisted = 0", []any{id}, &pid)
	if err != nil {
		return err
	}
	if !found {
		return notFound(core.Key, id)
	}
	if !isAdmin(o.c) && pid != o.c.PersonID {
		return forbidden("Permission denied: not your key")
	}
	if err := o.checkKeyMaterial(rec); err != nil {
		return err
	}
	if err := o.touchPerson(pid); err != nil {
		return err
	}
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

// --- nodes ---

func (o *op) checkNodeFields(rec core.Record) error {
	if v, ok := rec["hostname"]; ok {
		h := strings.ToLower(strings.TrimSpace(v.(string)))
		if !hostnameRE.MatchString(h) {
			return core.FieldErrorf("hostname", "%q is not a valid hostname", v)
		}
		rec["hostname"] = h
	}
	for k, tbl := range map[string]string{"node_type": "node_types", "boot_state": "boot_states"} {
		if v, ok := rec[k]; ok {
			found, err := o.lookupExists(tbl, k, v.(string))
			if err != nil {
				return err
			}
			if !found {
				return core.FieldErrorf(k, "unknown %s %q", k, v)
			}
		}
	}
	return nil
}

func (o *op) hostnameTaken(h string, except int64) error {
	var one int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM nodes WHERE hostname = ? AND deleted = 0 AND node_id <> ?", []any{h, except}, &one)
	return conflictOr2(err, found, "hostname %q is already registered", h)
}

func (o *op) addNode(t *store.Table, rec core.Record) (int64, error) {
	site := i64(rec, "site_id")
	if err := o.siteTech(site); err != nil {
		return 0, err
	}
	if err := o.checkNodeFields(rec); err != nil {
		return 0, err
	}
	if err := o.hostnameTaken(str(rec, "hostname"), 0); err != nil {
		return 0, err
	}
	rec["key"] = newNodeKey()
	rec["date_created"], rec["last_updated"] = o.now, o.now
	id, err := o.tx.InsertRecord(o.ctx, t, rec)
	if err != nil {
		return 0, err
	}
	var lb string
	if _, err := o.tx.QueryRow(o.ctx, "SELECT login_base FROM sites WHERE site_id = ?", []any{site}, &lb); err != nil {
		return 0, err
	}
	short := strings.SplitN(str(rec, "hostname"), ".", 2)[0]
	o.ch.addNodes(id)
	return id, o.putTag(core.Node, id, "hrn", o.s.opts.HRNRoot+"."+lb+"."+short)
}

func (o *op) updateNode(t *store.Table, id int64, rec core.Record) error {
	if err := o.nodeManager(id); err != nil {
		return err
	}
	if !isAdmin(o.c) {
		for _, k := range []string{"key", "session", "boot_nonce", "site_id"} {
			if _, ok := rec[k]; ok {
				return &core.Error{Code: core.Forbidden, Field: k, Message: "only admins may change " + k}
			}
		}
	}
	if s, ok := rec["site_id"]; ok {
		if err := o.exists(core.Site, s.(int64)); err != nil {
			return err
		}
	}
	if err := o.checkNodeFields(rec); err != nil {
		return err
	}
	if h, ok := rec["hostname"]; ok {
		if err := o.hostnameTaken(h.(string), id); err != nil {
			return err
		}
	}
	o.ch.addNodes(id)
	rec["last_updated"] = o.now
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

// deleteNode soft-deletes a node and drops what hangs off it.
func (o *op) deleteNode(id int64) error {
	o.ch.addNodes(id)
	for _, q := range []string{
		"DELETE FROM slice_node WHERE node_id = ?",
		"DELETE FROM slice_node_whitelist WHERE node_id = ?",
		"DELETE FROM conf_file_node WHERE node_id = ?",
		"DELETE FROM pcu_node WHERE node_id = ?",
		"DELETE FROM node_tags WHERE node_id = ?",
		"DELETE FROM slice_tags WHERE node_id = ?",
		"DELETE FROM leases WHERE node_id = ?",
		"DELETE FROM sessions WHERE node_id = ?",
		"DELETE FROM interfaces WHERE node_id = ?",
		"UPDATE nodes SET deleted = 1, key = NULL, join_secret = NULL, last_updated = " + sprintf("%d", o.now) + " WHERE node_id = ?",
	} {
		if _, err := o.tx.Exec(o.ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

// --- interfaces ---

func normMAC(s string) (string, error) {
	if !macRE.MatchString(s) {
		return "", core.FieldErrorf("mac", "%q is not a MAC address", s)
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	for i, p := range parts {
		if len(p) == 1 {
			p = "0" + p
		}
		parts[i] = strings.ToLower(p)
	}
	return strings.Join(parts, ":"), nil
}

// checkInterface validates a complete (merged) interface record.
func (o *op) checkInterface(r core.Record) error {
	for k, tbl := range map[string]string{"type": "network_types", "method": "network_methods"} {
		found, err := o.lookupExists(tbl, k, str(r, k))
		if err != nil {
			return err
		}
		if !found {
			return core.FieldErrorf(k, "unknown %s %q", k, r[k])
		}
	}
	if m, ok := r["mac"].(string); ok && m != "" {
		n, err := normMAC(m)
		if err != nil {
			return err
		}
		r["mac"] = n
	}
	if bw, ok := r["bwlimit"].(int64); ok && bw < 500000 {
		return core.FieldErrorf("bwlimit", "must be at least 500000 bps")
	}
	ipFields := []string{"ip", "gateway", "network", "broadcast", "netmask", "dns1", "dns2"}
	parsed := map[string]net.IP{}
	for _, k := range ipFields {
		if v, ok := r[k].(string); ok && v != "" {
			ip, err := checkIPv4(k, v)
			if err != nil {
				return err
			}
			parsed[k] = ip
		}
	}
	need := func(fields ...string) error {
		for _, k := range fields {
			if parsed[k] == nil {
				return core.FieldErrorf(k, "required for method %s", r["method"])
			}
		}
		return nil
	}
	switch str(r, "method") {
	case "static":
		if err := need("ip", "network", "broadcast", "netmask"); err != nil {
			return err
		}
		mask := net.IPMask(parsed["netmask"])
		if ones, bits := mask.Size(); bits == 0 || ones == 0 && !parsed["netmask"].Equal(net.IPv4zero.To4()) {
			return core.FieldErrorf("netmask", "%q is not a netmask", r["netmask"])
		}
		network := parsed["network"].Mask(mask)
		if !network.Equal(parsed["network"]) {
			return core.FieldErrorf("network", "%q is not a network address for netmask %s", r["network"], r["netmask"])
		}
		for _, k := range []string{"ip", "broadcast"} {
			if !parsed[k].Mask(mask).Equal(network) {
				return core.FieldErrorf(k, "%s is outside %s/%s", r[k], r["network"], r["netmask"])
			}
		}
		if b, _ := r["is_primary"].(bool); b {
			if err := need("gateway", "dns1"); err != nil {
				return err
			}
			if !parsed["gateway"].Mask(mask).Equal(network) {
				return core.FieldErrorf("gateway", "%s is not reachable from %s/%s", r["gateway"], r["network"], r["netmask"])
			}
		}
	case "proxy", "tap":
		if err := need("ip"); err != nil {
			return err
		}
		if m, _ := r["mac"].(string); m != "" {
			return core.FieldErrorf("mac", "not allowed for method %s", r["method"])
		}
		if str(r, "method") == "tap" {
			if err := need("gateway"); err != nil {
				return err
			}
		}
	case "ipmi":
		if err := need("ip"); err != nil {
			return err
		}
	}
	return nil
}

func (o *op) addInterface(t *store.Table, rec core.Record) (int64, error) {
	node := i64(rec, "node_id")
	if err := o.nodeManager(node); err != nil {
		return 0, err
	}
	if _, ok := rec["type"]; !ok {
		rec["type"] = "ipv4"
	}
	n, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM interfaces WHERE node_id = ? AND is_primary = 1", node)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		rec["is_primary"] = true // the first interface becomes primary
	} else if b, _ := rec["is_primary"].(bool); b {
		return 0, core.FieldErrorf("is_primary", "node %d already has a primary interface", node)
	}
	if err := o.checkInterface(rec); err != nil {
		return 0, err
	}
	rec["last_updated"] = o.now
	o.ch.addNodes(node)
	return o.tx.InsertRecord(o.ctx, t, rec)
}

func (o *op) updateInterface(t *store.Table, id int64, rec core.Record) error {
	cur, err := o.row(core.Interface, id)
	if err != nil {
		return err
	}
	node := i64(cur, "node_id")
	if err := o.nodeManager(node); err != nil {
		return err
	}
	if b, _ := rec["is_primary"].(bool); b && cur["is_primary"] != true {
		n, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM interfaces WHERE node_id = ? AND is_primary = 1 AND interface_id <> ?", node, id)
		if err != nil {
			return err
		}
		if n > 0 {
			return core.FieldErrorf("is_primary", "node %d already has a primary interface", node)
		}
	}
	merged := core.Record{}
	for k, v := range cur {
		merged[k] = v
	}
	for k, v := range rec {
		merged[k] = v
	}
	if err := o.checkInterface(merged); err != nil {
		return err
	}
	if _, ok := rec["mac"]; ok {
		rec["mac"] = merged["mac"]
	}
	rec["last_updated"] = o.now
	o.ch.addNodes(node)
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

// --- ilinks ---

func (o *op) checkIlink(rec core.Record) error {
	tt := i64(rec, "tag_type_id")
	if err := o.exists(core.TagType, tt); err != nil {
		return err
	}
	var srcNode int64
	for _, k := range []string{"src_interface_id", "dst_interface_id"} {
		var node int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT node_id FROM interfaces WHERE interface_id = ?", []any{i64(rec, k)}, &node)
		if err != nil {
			return err
		}
		if !found {
			return &core.Error{Code: core.NotFound, Field: k, Message: sprintf("No such interface %d", i64(rec, k))}
		}
		if k == "src_interface_id" {
			srcNode = node
		}
	}
	if isAdmin(o.c) {
		return nil
	}
	ok, err := o.mayWriteTagType(tt)
	if err != nil {
		return err
	}
	site, err := o.nodeSite(srcNode)
	if err != nil {
		return err
	}
	if !ok || !atSite(o.c, site) {
		return forbidden("Permission denied: may not write ilinks of this type from node %d", srcNode)
	}
	return nil
}

// --- tags of sites, persons, nodes and interfaces ---

type tagSpec struct {
	class    core.Class // tag class
	owner    core.Class
	table    string
	ownerCol string
}

var tagSpecs = map[core.Class]tagSpec{
	core.SiteTag:      {core.SiteTag, core.Site, "site_tags", "site_id"},
	core.PersonTag:    {core.PersonTag, core.Person, "person_tags", "person_id"},
	core.NodeTag:      {core.NodeTag, core.Node, "node_tags", "node_id"},
	core.InterfaceTag: {core.InterfaceTag, core.Interface, "interface_tags", "interface_id"},
}

var tagClassOf = map[core.Class]core.Class{
	core.Site: core.SiteTag, core.Person: core.PersonTag, core.Node: core.NodeTag, core.Interface: core.InterfaceTag, core.Slice: core.SliceTag,
}

// authObjectTag checks the write permission of a tag (AuthorizeHelpers):
// by tag id (id > 0) or for a new tag (rec).
func (o *op) authObjectTag(t *store.Table, id int64, rec core.Record) error {
	spec := tagSpecs[t.Class]
	if rec == nil {
		r, err := o.row(t.Class, id, spec.ownerCol, "tag_type_id")
		if err != nil {
			return err
		}
		rec = r
	}
	owner, tt := i64(rec, spec.ownerCol), i64(rec, "tag_type_id")
	if err := o.exists(spec.owner, owner); err != nil {
		return err
	}
	if err := o.exists(core.TagType, tt); err != nil {
		return err
	}
	if err := o.tagChanged(spec.owner, owner); err != nil {
		return err
	}
	if isAdmin(o.c) {
		return nil
	}
	ok, err := o.mayWriteTagType(tt)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("Permission denied: your roles may not write tags of type %d", tt)
	}
	switch spec.owner {
	case core.Site:
		ok = atSite(o.c, owner)
	case core.Person:
		ok = isPerson(o.c) && o.c.PersonID == owner
	case core.Node, core.Interface:
		node := owner
		if spec.owner == core.Interface {
			if _, err := o.tx.QueryRow(o.ctx, "SELECT node_id FROM interfaces WHERE interface_id = ?", []any{owner}, &node); err != nil {
				return err
			}
		}
		if isNode(o.c) {
			ok = o.c.NodeID == node
		} else {
			site, err := o.nodeSite(node)
			if err != nil {
				return err
			}
			ok = atSite(o.c, site)
		}
	}
	if !ok {
		return forbidden("Permission denied: may not write tags of %s %d", spec.owner, owner)
	}
	return nil
}

// tagChanged records the watch consequences of a tag change.
func (o *op) tagChanged(owner core.Class, id int64) error {
	switch owner {
	case core.Node:
		o.ch.addNodes(id)
	case core.Interface:
		var node int64
		if _, err := o.tx.QueryRow(o.ctx, "SELECT node_id FROM interfaces WHERE interface_id = ?", []any{id}, &node); err != nil {
			return err
		}
		o.ch.addNodes(node)
	case core.Person:
		return o.touchPerson(id)
	}
	return nil
}

func (o *op) addObjectTag(t *store.Table, rec core.Record) (int64, error) {
	if err := o.authObjectTag(t, 0, rec); err != nil {
		return 0, err
	}
	if err := o.checkTagValue(i64(rec, "tag_type_id"), rec["value"]); err != nil {
		return 0, err
	}
	spec := tagSpecs[t.Class]
	var one int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM "+spec.table+" WHERE "+spec.ownerCol+" = ? AND tag_type_id = ?", []any{rec[spec.ownerCol], rec["tag_type_id"]}, &one)
	if err := conflictOr2(err, found, "%s %v already has a tag of type %v", spec.owner, rec[spec.ownerCol], rec["tag_type_id"]); err != nil {
		return 0, err
	}
	return o.tx.InsertRecord(o.ctx, t, rec)
}

// checkTagValue refuses a value of tag type tt that the tag table
// (core/tags) refuses.
func (o *op) checkTagValue(tt int64, v any) error {
	value, ok := v.(string)
	if !ok {
		return nil
	}
	name, err := o.tagTypeName(tt)
	if err != nil {
		return err
	}
	return tags.Check(name, value)
}

// updateObjectTag checks a change of a site, person, node or interface tag.
func (o *op) updateObjectTag(t *store.Table, id int64, rec core.Record) error {
	if err := o.authObjectTag(t, id, nil); err != nil {
		return err
	}
	v, ok := rec["value"]
	if !ok {
		return nil
	}
	cur, err := o.row(t.Class, id, "tag_type_id")
	if err != nil {
		return err
	}
	return o.checkTagValue(i64(cur, "tag_type_id"), v)
}

// putTag sets an object tag without permission checks (internal tags such
// as hrn).
func (o *op) putTag(owner core.Class, id int64, tagname, value string) error {
	tt, err := o.tagTypeID(tagname)
	if err != nil {
		return err
	}
	spec := tagSpecs[tagClassOf[owner]]
	if _, err := o.tx.Exec(o.ctx, "DELETE FROM "+spec.table+" WHERE "+spec.ownerCol+" = ? AND tag_type_id = ?", id, tt); err != nil {
		return err
	}
	_, err = o.tx.Exec(o.ctx, "INSERT INTO "+spec.table+" ("+spec.ownerCol+", tag_type_id, value) VALUES (?, ?, ?)", id, tt, value)
	return err
}

// setTags applies tag pseudo-fields of an Add or Update, with the
// permission checks of the tag methods; nil deletes the tag.
func (o *op) setTags(class core.Class, id int64, tags core.Record) error {
	if len(tags) == 0 {
		return nil
	}
	tc := tagClassOf[class]
	t, err := table(tc)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(tags) {
		v := tags[name]
		tt, err := o.tagTypeID(name)
		if err != nil {
			return err
		}
		if class == core.Slice {
			if err := o.setSliceTagField(t, id, tt, v); err != nil {
				return err
			}
			continue
		}
		spec := tagSpecs[tc]
		rec := core.Record{spec.ownerCol: id, "tag_type_id": tt}
		if err := o.authObjectTag(t, 0, rec); err != nil {
			return err
		}
		if err := o.checkTagValue(tt, v); err != nil {
			return err
		}
		if _, err := o.tx.Exec(o.ctx, "DELETE FROM "+spec.table+" WHERE "+spec.ownerCol+" = ? AND tag_type_id = ?", id, tt); err != nil {
			return err
		}
		if v != nil {
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO "+spec.table+" ("+spec.ownerCol+", tag_type_id, value) VALUES (?, ?, ?)", id, tt, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedNames(r core.Record) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
