package service

import (
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Nodes: checks and writes of AddNode, UpdateNode and DeleteNode.

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
