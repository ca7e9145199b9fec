package service

import (
	"context"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Resolve implements core.Registry.
func (s *Service) Resolve(ctx context.Context, c *core.Caller, class core.Class, ref any) (int64, error) {
	t, err := table(class)
	if err != nil {
		return 0, err
	}
	if t.StrPK {
		return 0, core.Errorf(core.Invalid, "%s objects are named, not numbered", class)
	}
	var id int64
	err = s.read(ctx, c, func(o *op) error {
		q := "SELECT t." + t.PK + " FROM " + t.SQL + " t WHERE "
		var arg any
		if n, ok := core.AsInt(ref); ok {
			q += "t." + t.PK + " = ?"
			arg = n
		} else if name, ok := ref.(string); ok {
			if t.Key == "" {
				return core.Errorf(core.Invalid, "%s objects have no name: use the id", class)
			}
			if class == core.Person || class == core.Node {
				name = strings.ToLower(name)
			}
			q += "t." + t.Key + " = ?"
			arg = name
		} else {
			return core.Errorf(core.Invalid, "%s reference must be an int id or a string name, got %s", class, core.TypeName(ref))
		}
		if t.SoftDelete {
			q += " AND t.deleted = 0"
		}
		if class == core.Slice {
			q += sprintf(" AND t.expires > %d", o.now)
		}
		found, err := o.tx.QueryRow(ctx, q, []any{arg}, &id)
		if err != nil {
			return err
		}
		if !found {
			return notFound(class, ref)
		}
		return nil
	})
	return id, err
}

// Get implements core.Registry.
func (s *Service) Get(ctx context.Context, c *core.Caller, class core.Class, f *core.Filter, fields []string) ([]core.Record, error) {
	t, err := authorizedTable(c, class, verbGet)
	if err != nil {
		return nil, err
	}
	if class == core.Lease {
		if f, err = leaseFilter(f); err != nil {
			return nil, err
		}
	}
	var key string
	var gen uint64
	cached := false
	if s.rcache != nil {
		if key, cached = cacheKey(c, class, f, fields); cached {
			if gen, cached = s.db.Generation(ctx); cached {
				if recs, hit := s.rcache.get(key, gen, s.now()); hit {
					return recs, nil
				}
			}
		}
	}
	var out []core.Record
	var now, until int64
	err = s.read(ctx, c, func(o *op) error {
		now = o.now
		if cached && timeBound(class) {
			// The answer holds until the next slice expiry (visibility).
			var err error
			if until, err = o.tx.Int(ctx, "SELECT COALESCE(MIN(expires), 0) FROM slices WHERE deleted = 0 AND expires > ?", o.now); err != nil {
				return err
			}
		}
		q := store.Query{Table: t, Filter: f, Fields: fields, Admin: isAdmin(o.c)}
		if t.TagSQL != "" && (fields != nil || f != nil && len(f.Terms)+len(f.Sort) > 0) {
			names, err := o.tagNames()
			if err != nil {
				return err
			}
			q.Tags = names
		}
		o.visibility(class, &q)
		var err error
		out, err = o.tx.Select(ctx, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	out = out[:len(out):len(out)] // an append by a caller never writes into a shared array
	if cached {
		if s.rcache.afterRead != nil {
			s.rcache.afterRead()
		}
		if g, ok := s.db.Generation(ctx); ok && g == gen {
			s.rcache.put(key, &cacheEntry{gen: gen, recs: out, now: now, until: until})
		}
	}
	return out, nil
}

// timeBound reports whether Get answers of class change with time alone:
// expired slices (and their tags and leases) are not visible (visibility).
func timeBound(class core.Class) bool {
	return class == core.Slice || class == core.SliceTag || class == core.Lease
}

// visibility adds the non-admin result filtering of the original (§2.3).
func (o *op) visibility(class core.Class, q *store.Query) {
	c := o.c
	admin := isAdmin(c)
	sites := "-1"
	if c != nil {
		for _, id := range c.SiteIDs {
			sites += sprintf(", %d", id)
		}
	}
	switch class {
	case core.Person:
		switch {
		case admin || isNode(c):
		case c.HasRole(core.RolePI) || c.HasRole(core.RoleTech):
			q.Where = append(q.Where, "t.person_id = ? OR t.person_id IN (SELECT ps.person_id FROM person_site ps WHERE ps.site_id IN ("+sites+"))")
			q.Args = append(q.Args, c.PersonID)
		default:
			q.Where = append(q.Where, "t.person_id = ?")
			q.Args = append(q.Args, c.PersonID)
		}
	case core.Key:
		q.Where = append(q.Where, "t.is_blacklisted = 0", "t.person_id IN (SELECT p.person_id FROM persons p WHERE p.deleted = 0)")
		if !admin && !isNode(c) {
			q.Where = append(q.Where, "t.person_id = ?")
			q.Args = append(q.Args, c.PersonID)
		}
	case core.Node:
		if !admin && !isNode(c) {
			pid := int64(0)
			if c != nil {
				pid = c.PersonID
			}
			q.Where = append(q.Where, "NOT EXISTS (SELECT 1 FROM slice_node_whitelist w WHERE w.node_id = t.node_id) OR t.site_id IN ("+sites+
				") OR EXISTS (SELECT 1 FROM slice_node_whitelist w JOIN slice_person sp ON sp.slice_id = w.slice_id WHERE w.node_id = t.node_id AND sp.person_id = ?)")
			q.Args = append(q.Args, pid)
		}
	case core.PCU:
		if !admin {
			q.Where = append(q.Where, "t.site_id IN ("+sites+")")
		}
	case core.Slice:
		q.Where = append(q.Where, "t.expires > ?")
		q.Args = append(q.Args, o.now)
	case core.SliceTag, core.Lease:
		q.Where = append(q.Where, "t.slice_id IN (SELECT s.slice_id FROM slices s WHERE s.deleted = 0 AND s.expires > ?)")
		q.Args = append(q.Args, o.now)
	case core.Session:
		if !admin {
			q.Where = append(q.Where, "1 = 0")
		}
	}
}

// Add implements core.Registry.
func (s *Service) Add(ctx context.Context, c *core.Caller, class core.Class, fields core.Record) (int64, error) {
	t, err := authorizedTable(c, class, verbAdd)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.write(ctx, c, func(o *op) error {
		native, tags, err := o.splitTags(t, fields)
		if err != nil {
			return err
		}
		id, err = o.add(t, native)
		if err != nil {
			return err
		}
		return o.setTags(class, id, tags)
	})
	return id, err
}

// Update implements core.Registry.
func (s *Service) Update(ctx context.Context, c *core.Caller, class core.Class, id int64, fields core.Record) error {
	t, err := authorizedTable(c, class, verbUpdate)
	if err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		native, tags, err := o.splitTags(t, fields)
		if err != nil {
			return err
		}
		if err := o.update(t, id, native); err != nil {
			return err
		}
		return o.setTags(class, id, tags)
	})
}

// Delete implements core.Registry.
func (s *Service) Delete(ctx context.Context, c *core.Caller, class core.Class, id int64) error {
	t, err := authorizedTable(c, class, verbDelete)
	if err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error { return o.del(t, id) })
}

func (o *op) add(t *store.Table, in core.Record) (int64, error) {
	rec := in
	switch t.Class {
	case core.Person:
		rec = core.Record{}
		for k, v := range in {
			if k != "enabled" { // always created disabled; silently dropped as the original
				rec[k] = v
			}
		}
	case core.Key:
		if _, ok := in["key_type"]; !ok {
			rec = core.Record{"key_type": "ssh"}
			for k, v := range in {
				rec[k] = v
			}
		}
	case core.Lease:
		return o.addLeaseRecord(in)
	case core.Session:
		return 0, core.Errorf(core.Unimplemented, "sessions are created with CreateSession")
	}
	rec, err := t.Check(rec, true)
	if err != nil {
		return 0, err
	}
	if err := o.localRecord(rec); err != nil {
		return 0, err
	}
	switch t.Class {
	case core.Peer:
		return o.addPeer(t, rec)
	case core.Site:
		return o.addSite(t, rec)
	case core.Address:
		if err := o.siteManager(i64(rec, "site_id")); err != nil {
			return 0, err
		}
	case core.AddressType:
		if blank(rec["name"]) {
			return 0, core.FieldErrorf("name", "must not be empty")
		}
	case core.Person:
		return o.addPerson(t, rec)
	case core.Role:
		if id := i64(rec, "role_id"); id <= 0 {
			return 0, core.FieldErrorf("role_id", "must be positive")
		}
		if blank(rec["name"]) {
			return 0, core.FieldErrorf("name", "must not be empty")
		}
		id := i64(rec, "role_id")
		_, err := o.tx.Exec(o.ctx, "INSERT INTO roles (role_id, name) VALUES (?, ?)", id, rec["name"])
		return id, err
	case core.Key:
		return o.addKey(t, rec)
	case core.Node:
		return o.addNode(t, rec)
	case core.Interface:
		return o.addInterface(t, rec)
	case core.TagType:
		if err := o.uniqueName("tag_types", "tagname", "tag type", rec); err != nil {
			return 0, err
		}
		o.ch.all = true
	case core.SiteTag, core.PersonTag, core.NodeTag, core.InterfaceTag:
		return o.addObjectTag(t, rec)
	case core.SliceTag:
		return o.addSliceTag(t, rec)
	case core.NodeGroup:
		if err := o.uniqueName("nodegroups", "groupname", "node group", rec); err != nil {
			return 0, err
		}
		if err := o.exists(core.TagType, i64(rec, "tag_type_id")); err != nil {
			return 0, err
		}
		o.ch.all = true
	case core.PCU:
		if err := o.siteTech(i64(rec, "site_id")); err != nil {
			return 0, err
		}
		if _, err := checkIPv4("ip", rec["ip"]); err != nil {
			return 0, err
		}
		rec["last_updated"] = o.now
	case core.ConfFile:
		o.ch.all = true
	case core.Slice:
		return o.addSlice(t, rec)
	case core.InitScriptClass:
		if err := o.uniqueName("initscripts", "name", "init script", rec); err != nil {
			return 0, err
		}
		o.ch.all = true
	case core.Ilink:
		if err := o.checkIlink(rec); err != nil {
			return 0, err
		}
	case core.KeyType, core.BootState, core.NodeType, core.NetworkType, core.NetworkMethod, core.SliceInstantiation:
		v := str(rec, t.PK)
		if strings.TrimSpace(v) == "" {
			return 0, core.FieldErrorf(t.PK, "must not be empty")
		}
		if dup, err := o.lookupExists(t.SQL, t.PK, v); err != nil || dup {
			return 0, conflictOr(err, "%s %q already exists", t.Class, v)
		}
		_, err := o.tx.Exec(o.ctx, "INSERT INTO "+t.SQL+" ("+t.PK+") VALUES (?)", v)
		return 0, err
	}
	return o.tx.InsertRecord(o.ctx, t, rec)
}

func conflictOr(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return core.Errorf(core.Conflict, format, args...)
}

func (o *op) update(t *store.Table, id int64, in core.Record) error {
	rec, err := t.Check(in, false)
	if err != nil {
		return err
	}
	if err := o.localRow(t, id); err != nil {
		return err
	}
	switch t.Class {
	case core.Peer:
		return o.updatePeer(t, id, rec)
	case core.Site:
		return o.updateSite(t, id, rec)
	case core.Address:
		cur, err := o.row(core.Address, id, "site_id")
		if err != nil {
			return err
		}
		if err := o.siteManager(i64(cur, "site_id")); err != nil {
			return err
		}
	case core.AddressType, core.ConfFile, core.InitScriptClass, core.NodeGroup, core.TagType:
		if err := o.exists(t.Class, id); err != nil {
			return err
		}
		for _, k := range []string{"name", "groupname", "tagname"} {
			if v, ok := rec[k]; ok && blank(v) {
				return core.FieldErrorf(k, "must not be empty")
			}
		}
		if tt, ok := rec["tag_type_id"]; ok {
			if err := o.exists(core.TagType, tt.(int64)); err != nil {
				return err
			}
		}
		if t.Class != core.AddressType {
			o.ch.all = true
		}
	case core.Person:
		return o.updatePerson(t, id, rec)
	case core.Key:
		return o.updateKey(t, id, rec)
	case core.Node:
		return o.updateNode(t, id, rec)
	case core.Interface:
		return o.updateInterface(t, id, rec)
	case core.SiteTag, core.PersonTag, core.NodeTag, core.InterfaceTag:
		if err := o.updateObjectTag(t, id, rec); err != nil {
			return err
		}
	case core.SliceTag:
		return o.updateSliceTag(t, id, rec)
	case core.PCU:
		cur, err := o.row(core.PCU, id, "site_id")
		if err != nil {
			return err
		}
		if err := o.siteTech(i64(cur, "site_id")); err != nil {
			return err
		}
		if v, ok := rec["ip"]; ok {
			if _, err := checkIPv4("ip", v); err != nil {
				return err
			}
		}
		rec["last_updated"] = o.now
	case core.Slice:
		_, err := o.updateSlice(t, id, rec, false)
		return err
	case core.Lease:
		return o.updateLease(id, rec)
	case core.Ilink:
		cur, err := o.row(core.Ilink, id)
		if err != nil {
			return err
		}
		if err := o.checkIlink(cur); err != nil {
			return err
		}
	default:
		return core.Errorf(core.Invalid, "%s objects cannot be updated", t.Class)
	}
	if len(rec) == 0 {
		return nil
	}
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

func (o *op) del(t *store.Table, id int64) error {
	if !t.StrPK {
		if err := o.localRow(t, id); err != nil {
			return err
		}
	}
	switch t.Class {
	case core.Peer:
		return o.deletePeer(id)
	case core.Site:
		return o.deleteSite(id)
	case core.Person:
		return o.deletePerson(id)
	case core.Node:
		if err := o.nodeManager(id); err != nil {
			return err
		}
		return o.deleteNode(id)
	case core.Slice:
		return o.deleteSlice(id)
	case core.Key:
		cur, err := o.row(core.Key, id, "person_id")
		if err != nil {
			return err
		}
		if !isAdmin(o.c) && i64(cur, "person_id") != o.c.PersonID {
			return forbidden("Permission denied: not your key")
		}
		if err := o.touchPerson(i64(cur, "person_id")); err != nil {
			return err
		}
	case core.Address:
		cur, err := o.row(core.Address, id, "site_id")
		if err != nil {
			return err
		}
		if err := o.siteManager(i64(cur, "site_id")); err != nil {
			return err
		}
	case core.Interface:
		cur, err := o.row(core.Interface, id, "node_id")
		if err != nil {
			return err
		}
		if err := o.nodeManager(i64(cur, "node_id")); err != nil {
			return err
		}
		o.ch.addNodes(i64(cur, "node_id"))
	case core.PCU:
		cur, err := o.row(core.PCU, id, "site_id")
		if err != nil {
			return err
		}
		if err := o.siteTech(i64(cur, "site_id")); err != nil {
			return err
		}
	case core.SiteTag, core.PersonTag, core.NodeTag, core.InterfaceTag:
		if err := o.authObjectTag(t, id, nil); err != nil {
			return err
		}
	case core.SliceTag:
		return o.deleteSliceTag(id)
	case core.Lease:
		return o.deleteLease(id)
	case core.Ilink:
		cur, err := o.row(core.Ilink, id)
		if err != nil {
			return err
		}
		if err := o.checkIlink(cur); err != nil {
			return err
		}
	case core.Session:
		return core.Errorf(core.Unimplemented, "sessions are deleted with DeleteSession")
	case core.TagType, core.NodeGroup, core.ConfFile, core.InitScriptClass:
		if err := o.exists(t.Class, id); err != nil {
			return err
		}
		if t.Class == core.NodeGroup {
			if _, err := o.tx.Exec(o.ctx, "DELETE FROM slice_tags WHERE nodegroup_id = ?", id); err != nil {
				return err
			}
		}
		if t.Class == core.TagType {
			if _, err := o.tx.Exec(o.ctx, "DELETE FROM nodegroups WHERE tag_type_id = ?", id); err != nil {
				return err
			}
		}
		o.ch.all = true
	case core.KeyType, core.BootState, core.NodeType, core.NetworkType, core.NetworkMethod, core.SliceInstantiation:
		return core.Errorf(core.Invalid, "%s objects are deleted by name (DeleteLookup)", t.Class)
	}
	if t.SoftDelete {
		_, err := o.tx.Exec(o.ctx, "UPDATE "+t.SQL+" SET deleted = 1 WHERE "+t.PK+" = ?", id)
		return err
	}
	n, err := o.tx.Exec(o.ctx, "DELETE FROM "+t.SQL+" WHERE "+t.PK+" = ?", id)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(t.Class, id)
	}
	return nil
}

// DeleteLookup deletes a name of a lookup table (boot states, node types,
// network types and methods, slice instantiations, key types): these are
// keyed by name, which Registry.Delete's int id cannot express.
func (s *Service) DeleteLookup(ctx context.Context, c *core.Caller, class core.Class, name string) error {
	t, err := authorizedTable(c, class, verbDelete)
	if err != nil {
		return err
	}
	if !t.StrPK || class == core.Session {
		return core.Errorf(core.Invalid, "%s is not a lookup table", class)
	}
	return s.write(ctx, c, func(o *op) error {
		n, err := o.tx.Exec(ctx, "DELETE FROM "+t.SQL+" WHERE "+t.PK+" = ?", name)
		if err != nil {
			if strings.Contains(strings.ToLower(err.Error()), "foreign key") {
				return core.Errorf(core.Conflict, "%s %q is in use", class, name)
			}
			return err
		}
		if n == 0 {
			return notFound(class, name)
		}
		return nil
	})
}

// --- ownership helpers ---

// siteManager: admin, or a pi of the site.
func (o *op) siteManager(site int64) error {
	if isAdmin(o.c) {
		return o.exists(core.Site, site)
	}
	if err := o.exists(core.Site, site); err != nil {
		return err
	}
	if o.c.HasRole(core.RolePI) && atSite(o.c, site) {
		return nil
	}
	return forbidden("Permission denied: not a pi of site %d", site)
}

// siteTech: admin, or a pi or tech of the site.
func (o *op) siteTech(site int64) error {
	if err := o.exists(core.Site, site); err != nil {
		return err
	}
	if isAdmin(o.c) {
		return nil
	}
	if (o.c.HasRole(core.RolePI) || o.c.HasRole(core.RoleTech)) && atSite(o.c, site) {
		return nil
	}
	return forbidden("Permission denied: not a pi or tech of site %d", site)
}

func (o *op) nodeManager(node int64) error {
	site, err := o.nodeSite(node)
	if err != nil {
		return err
	}
	return o.siteTech(site)
}

// authorizedTable checks that the caller may apply verb to class (the
// operation's role set) and returns the class's table.
func authorizedTable(c *core.Caller, class core.Class, verb int) (*store.Table, error) {
	opName, err := opFor(class, verb)
	if err != nil {
		return nil, err
	}
	if err := authorize(c, opName); err != nil {
		return nil, err
	}
	return table(class)
}

// uniqueName checks that rec[col] is a non-empty name that no row of table
// has yet; what names the object in the conflict message.
func (o *op) uniqueName(table, col, what string, rec core.Record) error {
	if blank(rec[col]) {
		return core.FieldErrorf(col, "must not be empty")
	}
	if dup, err := o.lookupExists(table, col, str(rec, col)); err != nil || dup {
		return conflictOr(err, "%s %q already exists", what, rec[col])
	}
	return nil
}
