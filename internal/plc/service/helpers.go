package service

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

var sprintf = fmt.Sprintf

var (
	loginBaseRE = regexp.MustCompile(`^[a-z0-9.]+$`)
	emailRE     = regexp.MustCompile(`^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9._-]+\.[a-zA-Z]+$`)
	hostnameRE  = regexp.MustCompile(`(?i)^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,6}$`)
	sliceNameRE = regexp.MustCompile(`^[a-z0-9.]+_[a-zA-Z0-9_.]+$`)
	macRE       = regexp.MustCompile(`^[0-9a-fA-F]{1,2}([-:][0-9a-fA-F]{1,2}){5}$`)
)

// row fetches the admin view of one object by id, or NotFound.
func (o *op) row(class core.Class, id int64, fields ...string) (core.Record, error) {
	t, err := table(class)
	if err != nil {
		return nil, err
	}
	var fl []string
	if len(fields) > 0 {
		fl = fields
	}
	recs, err := o.tx.Select(o.ctx, store.Query{Table: t, Filter: &core.Filter{IsList: true, IDs: []int64{id}}, Fields: fl, Admin: true})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, notFound(class, id)
	}
	return recs[0], nil
}

func (o *op) exists(class core.Class, id int64) error {
	t, err := table(class)
	if err != nil {
		return err
	}
	q := "SELECT 1 FROM " + t.SQL + " WHERE " + t.PK + " = ?"
	if t.SoftDelete {
		q += " AND deleted = 0"
	}
	var one int64
	found, err := o.tx.QueryRow(o.ctx, q, []any{id}, &one)
	if err != nil {
		return err
	}
	if !found {
		return notFound(class, id)
	}
	return nil
}

func (o *op) lookupExists(table, col, v string) (bool, error) {
	var one int64
	return o.tx.QueryRow(o.ctx, "SELECT 1 FROM "+table+" WHERE "+col+" = ?", []any{v}, &one)
}

func (o *op) nodeSite(nodeID int64) (int64, error) {
	var site int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id FROM nodes WHERE node_id = ? AND deleted = 0", []any{nodeID}, &site)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, notFound(core.Node, nodeID)
	}
	return site, nil
}

func str(r core.Record, k string) string {
	s, _ := r[k].(string)
	return s
}

func i64(r core.Record, k string) int64 {
	n, _ := r[k].(int64)
	return n
}

func ids(r core.Record, k string) []int64 {
	v, _ := r[k].([]int64)
	return v
}

func blank(v any) bool {
	s, ok := v.(string)
	return v == nil || ok && strings.TrimSpace(s) == ""
}

func checkIPv4(field string, v any) (net.IP, error) {
	s, _ := v.(string)
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return nil, core.FieldErrorf(field, "%q is not a valid IPv4 address", s)
	}
	return ip, nil
}

// tagNames loads every tag type name (tag pseudo-fields).
func (o *op) tagNames() (map[string]bool, error) {
	names, err := o.tx.Strings(o.ctx, "SELECT tagname FROM tag_types")
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m, nil
}

// splitTags separates tag pseudo-fields from native fields of an Add or
// Update record for classes with tags; unknown names stay in native so
// that Check reports them.
func (o *op) splitTags(t *store.Table, rec core.Record) (native, tags core.Record, err error) {
	native = core.Record{}
	if t.TagSQL == "" {
		for k, v := range rec {
			native[k] = v
		}
		return native, nil, nil
	}
	var names map[string]bool
	for k, v := range rec {
		if _, ok := t.Field(k); ok {
			native[k] = v
			continue
		}
		if names == nil {
			if names, err = o.tagNames(); err != nil {
				return nil, nil, err
			}
		}
		if names[k] {
			if tags == nil {
				tags = core.Record{}
			}
			if v != nil {
				if _, ok := v.(string); !ok {
					return nil, nil, core.FieldErrorf(k, "tag value must be a string, got %s", core.TypeName(v))
				}
			}
			tags[k] = v
			continue
		}
		native[k] = v
	}
	return native, tags, nil
}

func (o *op) tagTypeID(name string) (int64, error) {
	var id int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT tag_type_id FROM tag_types WHERE tagname = ?", []any{name}, &id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, notFound(core.TagType, name)
	}
	return id, nil
}

func (o *op) tagTypeName(id int64) (string, error) {
	var name string
	found, err := o.tx.QueryRow(o.ctx, "SELECT tagname FROM tag_types WHERE tag_type_id = ?", []any{id}, &name)
	if err != nil {
		return "", err
	}
	if !found {
		return "", notFound(core.TagType, id)
	}
	return name, nil
}

// mayWriteTagType: admin always; others need a role in the tag type's roles.
func (o *op) mayWriteTagType(ttID int64) (bool, error) {
	if isAdmin(o.c) {
		return true, nil
	}
	roles, err := o.tx.Strings(o.ctx, "SELECT y.name FROM tag_type_role r JOIN roles y ON y.role_id = r.role_id WHERE r.tag_type_id = ?", ttID)
	if err != nil {
		return false, err
	}
	for _, r := range roles {
		if o.c.HasRole(r) {
			return true, nil
		}
	}
	return false, nil
}
