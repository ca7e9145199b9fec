package service

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Link implements core.Registry.
func (s *Service) Link(ctx context.Context, c *core.Caller, rel core.Relation, a, b int64, extra core.Record) error {
	return s.link(ctx, c, rel, a, b, extra, true)
}

// Unlink implements core.Registry.
func (s *Service) Unlink(ctx context.Context, c *core.Caller, rel core.Relation, a, b int64) error {
	return s.link(ctx, c, rel, a, b, nil, false)
}

func (s *Service) link(ctx context.Context, c *core.Caller, rel core.Relation, a, b int64, extra core.Record, add bool) error {
	ops, ok := relOps[rel]
	if !ok {
		return core.FieldErrorf("relation", "unknown relation %q", rel)
	}
	opName := ops[1]
	if add {
		opName = ops[0]
	}
	if err := authorize(c, opName); err != nil {
		return err
	}
	if rel != core.NodePCU && len(extra) > 0 {
		for k := range extra {
			return core.FieldErrorf(k, "unknown field %q for %s", k, rel)
		}
	}
	return s.write(ctx, c, func(o *op) error {
		if err := o.localLink(rel, a, b); err != nil {
			return err
		}
		return o.link(rel, a, b, extra, add)
	})
}

// simple membership statement pairs: insert (ignoring duplicates) / delete.
func (o *op) member(table, ca, cb string, a, b int64, add bool) error {
	if add {
		var one int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM "+table+" WHERE "+ca+" = ? AND "+cb+" = ?", []any{a, b}, &one)
		if err != nil || found {
			return err
		}
		_, err = o.tx.Exec(o.ctx, "INSERT INTO "+table+" ("+ca+", "+cb+") VALUES (?, ?)", a, b)
		return err
	}
	_, err := o.tx.Exec(o.ctx, "DELETE FROM "+table+" WHERE "+ca+" = ? AND "+cb+" = ?", a, b)
	return err
}

func (o *op) link(rel core.Relation, a, b int64, extra core.Record, add bool) error {
	l, ok := linkers[rel]
	if !ok {
		return core.FieldErrorf("relation", "unknown relation %q", rel)
	}
	return l(o, a, b, extra, add)
}

// linkers holds, per relation, the check and write of Link and Unlink.
var linkers = map[core.Relation]func(o *op, a, b int64, extra core.Record, add bool) error{
	core.PersonSite:         (*op).linkPersonSite,
	core.PersonRole:         (*op).linkPersonRole,
	core.SlicePerson:        (*op).linkSlicePerson,
	core.SliceNode:          (*op).linkSliceNode,
	core.SliceNodeWhitelist: (*op).linkSliceNodeWhitelist,
	core.NodePCU:            (*op).linkNodePCU,
	core.ConfFileNode:       (*op).linkConfFileNode,
	core.ConfFileNodeGroup:  (*op).linkConfFileNodeGroup,
	core.TagTypeRole:        (*op).linkTagTypeRole,
	core.AddressAddressType: (*op).linkAddressAddressType,
}

// linkPersonSite adds or removes a person at a site.
func (o *op) linkPersonSite(a, b int64, extra core.Record, add bool) error {
	if err := o.exists(core.Person, a); err != nil {
		return err
	}
	if err := o.exists(core.Site, b); err != nil {
		return err
	}
	if err := o.touchPerson(a); err != nil {
		return err
	}
	if err := o.touchSite(b); err != nil {
		return err
	}
	if err := o.member("person_site", "person_id", "site_id", a, b, add); err != nil {
		return err
	}
	return o.fixPrimaries()
}

// linkPersonRole grants or revokes a role; below admin, only roles below one's own, on persons one may update.
func (o *op) linkPersonRole(a, b int64, extra core.Record, add bool) error {
	if err := o.exists(core.Person, a); err != nil {
		return err
	}
	if _, ok := RoleName(b); !ok {
		if err := o.exists(core.Role, b); err != nil {
			return err
		}
	}
	if !isAdmin(o.c) {
		if b <= minRoleID(o.c) {
			return forbidden("Permission denied: you may only grant or revoke roles below your own (role %d)", b)
		}
		ok, err := o.canUpdatePerson(a)
		if err != nil {
			return err
		}
		if !ok {
			return forbidden("Permission denied: may not change the roles of person %d", a)
		}
	}
	if err := o.touchPerson(a); err != nil {
		return err
	}
	return o.member("person_role", "person_id", "role_id", a, b, add)
}

// linkSlicePerson adds or removes a slice member (admins and the PIs of the slice's site).
func (o *op) linkSlicePerson(a, b int64, extra core.Record, add bool) error {
	sl, err := o.slice(a)
	if err != nil {
		return err
	}
	if err := o.exists(core.Person, b); err != nil {
		return err
	}
	if !isAdmin(o.c) && !(o.c.HasRole(core.RolePI) && atSite(o.c, sl.site)) {
		return forbidden("Permission denied: only a pi of the slice's site may change its members")
	}
	if err := o.touchSlice(a); err != nil {
		return err
	}
	return o.member("slice_person", "slice_id", "person_id", a, b, add)
}

// linkSliceNode adds or removes a node of a slice, honouring whitelists and reserved ports.
func (o *op) linkSliceNode(a, b int64, extra core.Record, add bool) error {
	sl, err := o.slice(a)
	if err != nil {
		return err
	}
	site, err := o.nodeSite(b)
	if err != nil {
		return err
	}
	if err := o.sliceWriter(sl); err != nil {
		return err
	}
	if add {
		if !isAdmin(o.c) && !atSite(o.c, site) {
			var wl, mine int64
			if wl, err = o.tx.Int(o.ctx, "SELECT COUNT(*) FROM slice_node_whitelist WHERE node_id = ?", b); err != nil {
				return err
			}
			if mine, err = o.tx.Int(o.ctx, "SELECT COUNT(*) FROM slice_node_whitelist WHERE node_id = ? AND slice_id = ?", b, a); err != nil {
				return err
			}
			if wl > 0 && mine == 0 {
				return forbidden("Permission denied: node %d is whitelisted for other slices", b)
			}
		}
		if err := o.checkNodeExclusive(a, b); err != nil {
			return err
		}
	}
	o.ch.addNodes(b)
	return o.member("slice_node", "slice_id", "node_id", a, b, add)
}

// linkSliceNodeWhitelist whitelists a node for a slice, or stops doing so.
func (o *op) linkSliceNodeWhitelist(a, b int64, extra core.Record, add bool) error {
	if _, err := o.slice(a); err != nil {
		return err
	}
	if _, err := o.nodeSite(b); err != nil {
		return err
	}
	return o.member("slice_node_whitelist", "slice_id", "node_id", a, b, add)
}

// linkNodePCU connects a node to a port of a PCU at the same site, or disconnects it.
func (o *op) linkNodePCU(a, b int64, extra core.Record, add bool) error {
	var pcuSite int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id FROM pcus WHERE pcu_id = ?", []any{b}, &pcuSite)
	if err != nil {
		return err
	}
	if !found {
		return notFound(core.PCU, b)
	}
	nodeSite, err := o.nodeSite(a)
	if err != nil {
		return err
	}
	if err := o.siteTech(pcuSite); err != nil {
		return err
	}
	if !add {
		_, err := o.tx.Exec(o.ctx, "DELETE FROM pcu_node WHERE pcu_id = ? AND node_id = ?", b, a)
		return err
	}
	if nodeSite != pcuSite {
		return core.Errorf(core.Invalid, "Mismatched sites: node %d and PCU %d are at different sites", a, b)
	}
	for k := range extra {
		if k != "port" {
			return core.FieldErrorf(k, "unknown field %q for %s", k, core.NodePCU)
		}
	}
	port, ok := core.AsInt(extra["port"])
	if !ok {
		return core.FieldErrorf("port", "an int port is required")
	}
	var one int64
	if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM pcu_node WHERE pcu_id = ? AND node_id = ?", []any{b, a}, &one); err != nil || found {
		return conflictOr(err, "node %d is already on PCU %d", a, b)
	}
	if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM pcu_node WHERE pcu_id = ? AND port = ?", []any{b, port}, &one); err != nil || found {
		return conflictOr(err, "port %d of PCU %d is already in use", port, b)
	}
	_, err = o.tx.Exec(o.ctx, "INSERT INTO pcu_node (pcu_id, node_id, port) VALUES (?, ?, ?)", b, a, port)
	return err
}

// linkConfFileNode binds a conf file to a node, or unbinds it.
func (o *op) linkConfFileNode(a, b int64, extra core.Record, add bool) error {
	if err := o.exists(core.ConfFile, a); err != nil {
		return err
	}
	if _, err := o.nodeSite(b); err != nil {
		return err
	}
	o.ch.addNodes(b)
	return o.member("conf_file_node", "conf_file_id", "node_id", a, b, add)
}

// linkConfFileNodeGroup binds a conf file to a node group, or unbinds it.
func (o *op) linkConfFileNodeGroup(a, b int64, extra core.Record, add bool) error {
	if err := o.exists(core.ConfFile, a); err != nil {
		return err
	}
	if err := o.exists(core.NodeGroup, b); err != nil {
		return err
	}
	o.ch.all = true
	return o.member("conf_file_nodegroup", "conf_file_id", "nodegroup_id", a, b, add)
}

// linkTagTypeRole lets a role set a tag type, or stops it.
func (o *op) linkTagTypeRole(a, b int64, extra core.Record, add bool) error {
	if err := o.exists(core.TagType, a); err != nil {
		return err
	}
	if err := o.exists(core.Role, b); err != nil {
		return err
	}
	return o.member("tag_type_role", "tag_type_id", "role_id", a, b, add)
}

// linkAddressAddressType gives an address a type, or takes it away.
func (o *op) linkAddressAddressType(a, b int64, extra core.Record, add bool) error {
	addr, err := o.row(core.Address, a, "site_id")
	if err != nil {
		return err
	}
	if err := o.exists(core.AddressType, b); err != nil {
		return err
	}
	if err := o.siteManager(i64(addr, "site_id")); err != nil {
		return err
	}
	return o.member("address_address_type", "address_id", "address_type_id", a, b, add)
}

// SetPersonPrimarySite implements core.Registry.
func (s *Service) SetPersonPrimarySite(ctx context.Context, c *core.Caller, personID, siteID int64) error {
	if err := authorize(c, opSetPersonPrimarySite); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		if err := o.exists(core.Person, personID); err != nil {
			return err
		}
		if err := o.exists(core.Site, siteID); err != nil {
			return err
		}
		if err := o.local(core.Person, personID); err != nil {
			return err
		}
		if err := o.local(core.Site, siteID); err != nil {
			return err
		}
		ok, err := o.canUpdatePerson(personID)
		if err != nil {
			return err
		}
		if !ok {
			return forbidden("Permission denied: may not update person %d", personID)
		}
		var one int64
		found, err := o.tx.QueryRow(ctx, "SELECT 1 FROM person_site WHERE person_id = ? AND site_id = ?", []any{personID, siteID}, &one)
		if err != nil {
			return err
		}
		if !found {
			return core.FieldErrorf("site_id", "person %d is not at site %d", personID, siteID)
		}
		if _, err := o.tx.Exec(ctx, "UPDATE person_site SET is_primary = 0 WHERE person_id = ?", personID); err != nil {
			return err
		}
		_, err = o.tx.Exec(ctx, "UPDATE person_site SET is_primary = 1 WHERE person_id = ? AND site_id = ?", personID, siteID)
		return err
	})
}

// BlacklistKey implements core.Registry: every key with the same material
// is blacklisted, hidden, and can never be added again.
func (s *Service) BlacklistKey(ctx context.Context, c *core.Caller, keyID int64) error {
	if err := authorize(c, opBlacklistKey); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		if err := o.local(core.Key, keyID); err != nil {
			return err
		}
		var material string
		found, err := o.tx.QueryRow(ctx, "SELECT material FROM keys WHERE key_id = ?", []any{keyID}, &material)
		if err != nil {
			return err
		}
		if !found {
			return notFound(core.Key, keyID)
		}
		owners, err := o.tx.Ints(ctx, "SELECT DISTINCT person_id FROM keys WHERE material = ?", material)
		if err != nil {
			return err
		}
		for _, p := range owners {
			if err := o.touchPerson(p); err != nil {
				return err
			}
		}
		_, err = o.tx.Exec(ctx, "UPDATE keys SET is_blacklisted = 1 WHERE material = ?", material)
		return err
	})
}

// ReportNode implements core.Registry.
func (s *Service) ReportNode(ctx context.Context, c *core.Caller, nodeID int64, r core.NodeReport) error {
	if err := authorize(c, opReportRunlevel); err != nil {
		return err
	}
	if isNode(c) && c.NodeID != nodeID {
		return forbidden("Permission denied: a node may only report for itself")
	}
	if r.SSHHostKey != "" {
		if _, err := ParseSSHKey(r.SSHHostKey); err != nil {
			return core.FieldErrorf("ssh_host_key", "%v", err)
		}
	}
	if len(r.Version) > 64 || strings.ContainsAny(r.Version, "\x00\n") {
		return core.FieldErrorf("version", "want at most 64 characters on one line")
	}
	if err := r.Figures.Validate(); err != nil {
		return err
	}
	if err := core.ValidateBwmonEvents(r.BwmonEvents); err != nil {
		return err
	}
	var at int64
	var skipped []string
	err := s.write(ctx, c, func(o *op) error {
		if _, err := o.nodeSite(nodeID); err != nil {
			return err
		}
		if len(r.BwmonEvents) > 0 {
			var host string
			if _, err := o.tx.QueryRow(ctx, "SELECT hostname FROM nodes WHERE node_id = ?", []any{nodeID}, &host); err != nil {
				return err
			}
			var err error
			if skipped, err = o.recordBwmon(nodeID, host, r.BwmonEvents); err != nil {
				return err
			}
		}
		q := "UPDATE nodes SET last_contact = ?"
		args := []any{o.now}
		for _, st := range []struct{ field, value string }{{"run_level", r.RunLevel}, {"boot_state", r.BootState}} {
			if st.value == "" {
				continue
			}
			found, err := o.lookupExists("boot_states", "boot_state", st.value)
			if err != nil {
				return err
			}
			if !found {
				return core.FieldErrorf(st.field, "unknown %s %q", strings.ReplaceAll(st.field, "_", " "), st.value)
			}
		}
		if r.RunLevel != "" {
			q += ", run_level = ?"
			args = append(args, r.RunLevel)
		}
		if r.BootState != "" {
			// Installed or recovered; safeboot and disabled are the
			// admin's choice and stay.
			q += ", boot_state = CASE WHEN boot_state IN ('reinstall', 'failboot') THEN ? ELSE boot_state END"
			args = append(args, r.BootState)
		}
		if r.Version != "" {
			q += ", version = ?"
			args = append(args, r.Version)
		}
		if r.SSHHostKey != "" {
			q += ", ssh_rsa_key = ?"
			args = append(args, r.SSHHostKey)
		}
		if r.SliverErrors != nil {
			b, _ := json.Marshal(r.SliverErrors)
			q += ", sliver_errors = ?"
			args = append(args, string(b))
		}
		if _, err := o.tx.Exec(ctx, q+" WHERE node_id = ?", append(args, nodeID)...); err != nil {
			return err
		}
		at = o.now
		return o.storeFigures(nodeID, r.Figures)
	})
	if err != nil {
		return err
	}
	s.logSkippedBwmon(nodeID, skipped)
	s.planet.Ingest(nodeID, at, r.Figures, r.SliverErrors, r.Version)
	if row, _ := s.planet.Node(nodeID); !row.Up {
		select { // RunMonitor marks it up now
		case s.monWake <- struct{}{}:
		default:
		}
	}
	return nil
}
