package service

import (
	"context"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Slice lifecycle (the original's):
//
//	AddSlice ──> live (expires = now + 2 weeks) ──UpdateSlice/RenewSlice──> live (later expiry)
//	               │                                  (non-admin: <= now + 8 weeks,
//	               │                                   needs url and description)
//	               ├── expires <= now ──> expired: hidden from every listing and node;
//	               │                       soft-deleted by the next AddSlice (name free)
//	               └── DeleteSlice / DeleteSite ──> deleted (id never reused)
//
// Slice lifetimes of the original.
const (
	DefaultSliceLifetime = 14 * 24 * time.Hour // new slices expire in 2 weeks
	MaxRenewal           = core.MaxRenewal
)

type sliceInfo struct {
	id            int64
	site          int64
	name          string
	instantiation string
	expires       int64
	url, desc     *string
}

func (o *op) slice(id int64) (*sliceInfo, error) {
	s := &sliceInfo{id: id}
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id, name, instantiation, expires, url, description FROM slices WHERE slice_id = ? AND deleted = 0 AND expires > ?",
		[]any{id, o.now}, &s.site, &s.name, &s.instantiation, &s.expires, &s.url, &s.desc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(core.Slice, id)
	}
	return s, nil
}

func (o *op) isMember(slice, person int64) (bool, error) {
	var one int64
	return o.tx.QueryRow(o.ctx, "SELECT 1 FROM slice_person WHERE slice_id = ? AND person_id = ?", []any{slice, person}, &one)
}

// sliceWriter is the permission shared by UpdateSlice, DeleteSlice,
// AddSliceToNodes, DeleteSliceFromNodes and AddLeases: admin; PIs of the
// slice's site; members of the slice.
func (o *op) sliceWriter(s *sliceInfo) error {
	if isAdmin(o.c) {
		return nil
	}
	if isPerson(o.c) {
		if o.c.HasRole(core.RolePI) && atSite(o.c, s.site) {
			return nil
		}
		m, err := o.isMember(s.id, o.c.PersonID)
		if err != nil {
			return err
		}
		if m {
			return nil
		}
	}
	return forbidden("Permission denied: not a member of slice %s or a pi of its site", s.name)
}

func (o *op) deleteExpiredSlices() error {
	if err := o.s.queueExpired(o.ctx, o.tx, o.now); err != nil { // outbox.go: before the members go
		return err
	}
	ids, err := o.tx.Ints(o.ctx, "SELECT slice_id FROM slices WHERE deleted = 0 AND expires <= ?", o.now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := o.removeSlice(id); err != nil {
			return err
		}
	}
	return nil
}

func (o *op) addSlice(t *store.Table, rec core.Record) (int64, error) {
	name := str(rec, "name")
	if !sliceNameRE.MatchString(name) {
		return 0, core.FieldErrorf("name", "Invalid slice name %q: must be <login_base>_<name> with [a-z0-9.] before the first '_' and [a-zA-Z0-9_.] after it", name)
	}
	lb := name[:strings.Index(name, "_")]
	var site, maxSlices, enabled int64
	found, err := o.tx.QueryRow(o.ctx, "SELECT site_id, max_slices, enabled FROM sites WHERE login_base = ? AND deleted = 0", []any{lb}, &site, &maxSlices, &enabled)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, core.FieldErrorf("name", "Invalid slice name %q: no site has login_base %q", name, lb)
	}
	if err := o.local(core.Site, site); err != nil {
		return 0, err
	}
	if !isAdmin(o.c) && !atSite(o.c, site) {
		return 0, forbidden("Permission denied: slice name %q must start with the login_base of one of your sites", name)
	}
	if enabled == 0 {
		return 0, core.Errorf(core.Invalid, "site %s is disabled", lb)
	}
	if err := o.deleteExpiredSlices(); err != nil {
		return 0, err
	}
	n, err := o.tx.Int(o.ctx, "SELECT COUNT(*) FROM slices WHERE site_id = ? AND deleted = 0", site)
	if err != nil {
		return 0, err
	}
	if n >= maxSlices {
		return 0, core.Errorf(core.Conflict, "site %s has reached its maximum number of slices (%d)", lb, maxSlices)
	}
	var one int64
	if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM slices WHERE name = ? AND deleted = 0", []any{name}, &one); err != nil || found {
		return 0, conflictOr(err, "slice %q already exists", name)
	}
	if v, ok := rec["instantiation"]; ok {
		if err := o.checkInstantiation(v.(string)); err != nil {
			return 0, err
		}
	}
	rec["site_id"] = site
	if isPerson(o.c) {
		rec["creator_person_id"] = o.c.PersonID
	}
	rec["created"] = o.now
	rec["expires"] = o.now + int64(DefaultSliceLifetime/time.Second)
	id, err := o.tx.InsertRecord(o.ctx, t, rec)
	if err != nil {
		return 0, err
	}
	hrnTT, err := o.tagTypeID("hrn")
	if err != nil {
		return 0, err
	}
	if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, ?)", id, hrnTT, o.s.opts.HRNRoot+"."+lb+"."+name[len(lb)+1:]); err != nil {
		return 0, err
	}
	if len(o.s.opts.VsysDefaults) > 0 {
		vsys, err := o.tagTypeID("vsys")
		if err != nil {
			return 0, err
		}
		for _, v := range o.s.opts.VsysDefaults {
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, ?)", id, vsys, v); err != nil {
				return 0, err
			}
		}
	}
	return id, o.touchSlice(id)
}

func (o *op) checkInstantiation(v string) error {
	found, err := o.lookupExists("slice_instantiations", "instantiation", v)
	if err != nil {
		return err
	}
	if !found {
		return core.FieldErrorf("instantiation", "unknown instantiation %q", v)
	}
	return nil
}

// updateSlice applies UpdateSlice; clamp (RenewSlice) lowers a non-admin's
// expiry to the maximum instead of refusing it. It returns the expiry.
func (o *op) updateSlice(t *store.Table, id int64, rec core.Record, clamp bool) (int64, error) {
	s, err := o.slice(id)
	if err != nil {
		return 0, err
	}
	if err := o.sliceWriter(s); err != nil {
		return 0, err
	}
	if _, ok := rec["max_nodes"]; ok && !isAdmin(o.c) && !(o.c.HasRole(core.RolePI) && atSite(o.c, s.site)) {
		return 0, &core.Error{Code: core.Forbidden, Field: "max_nodes", Message: "only admins and pis may change max_nodes"}
	}
	if v, ok := rec["instantiation"]; ok {
		if err := o.checkInstantiation(v.(string)); err != nil {
			return 0, err
		}
	}
	expires := s.expires
	if v, ok := rec["expires"]; ok {
		exp := v.(int64)
		if exp <= o.now {
			return 0, core.FieldErrorf("expires", "must lie in the future")
		}
		if exp > s.expires {
			var maxSlices int64
			if _, err := o.tx.QueryRow(o.ctx, "SELECT max_slices FROM sites WHERE site_id = ?", []any{s.site}, &maxSlices); err != nil {
				return 0, err
			}
			if maxSlices <= 0 {
				return 0, core.FieldErrorf("expires", "slice creation and renewal have been disabled for the site")
			}
			limit := o.now + int64(MaxRenewal/time.Second)
			if !isAdmin(o.c) && exp > limit {
				if !clamp {
					return 0, core.FieldErrorf("expires", "cannot renew a slice beyond 8 weeks from now")
				}
				exp = max(limit, s.expires)
			}
			for _, k := range []string{"description", "url"} {
				cur := s.desc
				if k == "url" {
					cur = s.url
				}
				nv, given := rec[k]
				if given && blank(nv) || !given && (cur == nil || strings.TrimSpace(*cur) == "") {
					return 0, core.FieldErrorf(k, "cannot renew a slice with an empty description or URL")
				}
			}
		}
		rec["expires"] = exp
		expires = exp
	}
	if err := o.touchSlice(id); err != nil {
		return 0, err
	}
	if err := o.tx.UpdateRecord(o.ctx, t, id, rec); err != nil {
		return 0, err
	}
	return expires, o.touchSlice(id)
}

// RenewSlice implements core.Registry: it sets the expiry, lowered to the
// 8-week maximum for non-admins, and returns the expiry granted.
func (s *Service) RenewSlice(ctx context.Context, c *core.Caller, sliceID, expires int64) (int64, error) {
	if err := authorize(c, opUpdateSlice); err != nil {
		return 0, err
	}
	t, _ := table(core.Slice)
	var granted int64
	err := s.write(ctx, c, func(o *op) error {
		if err := o.local(core.Slice, sliceID); err != nil {
			return err
		}
		var err error
		granted, err = o.updateSlice(t, sliceID, core.Record{"expires": expires}, true)
		return err
	})
	return granted, err
}

func (o *op) deleteSlice(id int64) error {
	s, err := o.slice(id)
	if err != nil {
		return err
	}
	if err := o.sliceWriter(s); err != nil {
		return err
	}
	return o.removeSlice(id)
}

// removeSlice soft-deletes a slice and drops its memberships, tags and
// leases.
func (o *op) removeSlice(id int64) error {
	if err := o.touchSlice(id); err != nil {
		return err
	}
	for _, q := range []string{
		"DELETE FROM slice_node WHERE slice_id = ?",
		"DELETE FROM slice_node_whitelist WHERE slice_id = ?",
		"DELETE FROM slice_person WHERE slice_id = ?",
		"DELETE FROM slice_tags WHERE slice_id = ?",
		"DELETE FROM leases WHERE slice_id = ?",
		"UPDATE slices SET deleted = 1 WHERE slice_id = ?",
	} {
		if _, err := o.tx.Exec(o.ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}
