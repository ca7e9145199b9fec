package service

import (
	"net"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Interfaces and ilinks: checks and writes.

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
