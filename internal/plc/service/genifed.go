package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/sfa"
)

// Slices of other GENI authorities (docs/geni.md): the GENI aggregate
// verifies a credential chained to a trusted root and asks here for the
// local stand-ins of the slice and of the user the credential was issued
// to. These methods take no caller: the aggregate, in this process, is
// the only one calling them, after verification; no transport serves
// them.

// DefaultGENIMaxSlices is the max_slices of a new GENI authority's site.
const DefaultGENIMaxSlices = 10

// GENIForeignSlice returns the stand-in of a slice of another GENI
// authority and the caller of the stand-in of the user, who is made a
// member of it. With r.Create it creates what is missing: the authority's
// site (login_base geni.ForeignLoginBase, site tag geni_authority, max_slices
// r.MaxSlices), the slice (geni.ForeignSliceName, slice tag geni_slice,
// expiring as a new slice does but never after r.Expires) and the person
// (person tag geni_user, role user, enabled, no password). It refuses an
// authority whose site an admin disabled, a site at its max_slices, a
// name that maps onto another live slice, and a person an admin disabled.
func (s *Service) GENIForeignSlice(ctx context.Context, r core.GENIForeign) (*core.Caller, string, error) {
	a, err := s.authority()
	if err != nil {
		return nil, "", err
	}
	su, err := sfa.ParseURN(r.SliceURN)
	if err != nil {
		return nil, "", err
	}
	uu, err := sfa.ParseURN(r.UserURN)
	if err != nil {
		return nil, "", err
	}
	if su.Type != "slice" || uu.Type != "user" {
		return nil, "", core.Errorf(core.Invalid, "want a slice and a user URN, not %s and %s", su.Type, uu.Type)
	}
	if sfa.WithinAuthority(su.Authority, a.Host) {
		return nil, "", core.Errorf(core.Invalid, "%s is a slice of this PLC's own authority", r.SliceURN)
	}
	base := geni.ForeignLoginBase(su.Authority)
	name, err := geni.ForeignSliceName(base, su.Name)
	if err != nil {
		return nil, "", core.FieldErrorf("slice_urn", "%s: %v", r.SliceURN, err)
	}
	authURN := sfa.URN{Authority: su.Authority, Type: "authority", Name: "sa"}.String()
	maxSlices := r.MaxSlices
	if maxSlices <= 0 {
		maxSlices = DefaultGENIMaxSlices
	}
	var pid int64
	var email string
	err = s.write(ctx, nil, func(o *op) error {
		o.c = &core.Caller{Kind: core.PersonCaller, Roles: []string{core.RoleAdmin}}
		site, err := o.geniSite(authURN, base, su.Authority, maxSlices, r.Create)
		if err != nil {
			return err
		}
		if pid, email, err = o.geniPerson(r.UserURN, uu, site, r.Create); err != nil {
			return err
		}
		slice, err := o.geniSlice(r.SliceURN, name, pid, r.Expires, r.Create)
		if err != nil {
			return err
		}
		if err := o.member("slice_person", "slice_id", "person_id", slice, pid, true); err != nil {
			return err
		}
		return o.touchSlice(slice)
	})
	if err != nil {
		return nil, "", err
	}
	var c *core.Caller
	if err := s.read(ctx, &core.Caller{Kind: core.PersonCaller, PersonID: pid, Email: email}, func(o *op) error { c = o.c; return nil }); err != nil {
		return nil, "", err
	}
	return c, name, nil
}

// geniTagged finds the live object whose tag tagname is value.
func (o *op) geniTagged(query string, args ...any) (int64, bool, error) {
	var id int64
	found, err := o.tx.QueryRow(o.ctx, query, args, &id)
	return id, found, err
}

func (o *op) geniSite(authURN, base, auth string, maxSlices int64, create bool) (int64, error) {
	var site, enabled int64
	var lb string
	found, err := o.tx.QueryRow(o.ctx, `SELECT s.site_id, s.enabled, s.login_base FROM sites s JOIN site_tags t ON t.site_id = s.site_id
		JOIN tag_types tt ON tt.tag_type_id = t.tag_type_id WHERE tt.tagname = ? AND t.value = ? AND s.deleted = 0`,
		[]any{tags.GENIAuthority, authURN}, &site, &enabled, &lb)
	if err != nil {
		return 0, err
	}
	if found {
		if enabled == 0 {
			return 0, core.Errorf(core.Conflict, "GENI authority %s is refused here: its site %s is disabled", authURN, lb)
		}
		return site, nil
	}
	if !create {
		return 0, core.Errorf(core.NotFound, "no slice of GENI authority %s at this PLC", authURN)
	}
	var one int64
	if found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM sites WHERE login_base = ? AND deleted = 0", []any{base}, &one); err != nil || found {
		return 0, conflictOr(err, "GENI authority %s: its site's login_base %q is taken by a site that does not stand in for it", authURN, base)
	}
	st, _ := table(core.Site)
	rec, err := st.Check(core.Record{"login_base": base, "name": "GENI " + auth, "abbreviated_name": base,
		"max_slices": maxSlices, "is_public": false}, true)
	if err != nil {
		return 0, err
	}
	if site, err = o.addSite(st, rec); err != nil {
		return 0, err
	}
	if _, err := o.tx.Exec(o.ctx, "UPDATE sites SET enabled = 1 WHERE site_id = ?", site); err != nil {
		return 0, err
	}
	o.s.log.Info("GENI authority site created", "authority", authURN, "login_base", base, "site_id", site)
	return site, o.putTag(core.Site, site, tags.GENIAuthority, authURN)
}

func (o *op) geniPerson(urn string, u sfa.URN, site int64, create bool) (int64, string, error) {
	var pid int64
	var email string
	found, err := o.tx.QueryRow(o.ctx, `SELECT p.person_id, p.email FROM persons p JOIN person_tags t ON t.person_id = p.person_id
		JOIN tag_types tt ON tt.tag_type_id = t.tag_type_id WHERE tt.tagname = ? AND t.value = ? AND p.deleted = 0`,
		[]any{tags.GENIUser, urn}, &pid, &email)
	if err != nil {
		return 0, "", err
	}
	if !found {
		if !create {
			return 0, "", core.Errorf(core.Forbidden, "%s is not a member of any slice at this PLC", urn)
		}
		h := sha256.Sum256([]byte(strings.ToLower(u.Authority) + "+" + u.Name))
		local := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
				return r
			}
			return '-'
		}, u.Name)
		if len(local) > 40 {
			local = local[:40]
		}
		email = strings.Trim(local, ".") + "." + hex.EncodeToString(h[:4]) + "@" + geni.ForeignLoginBase(u.Authority) + ".geni.invalid"
		pt, _ := table(core.Person)
		rec, err := pt.Check(core.Record{"email": email, "first_name": clipName(u.Name), "last_name": clipName("GENI " + u.Authority)}, true)
		if err != nil {
			return 0, "", err
		}
		if pid, err = o.addPerson(pt, rec); err != nil {
			return 0, "", err
		}
		for _, q := range []string{"UPDATE persons SET enabled = 1 WHERE person_id = ?", "INSERT INTO person_role (person_id, role_id) VALUES (?, 30)"} {
			if _, err := o.tx.Exec(o.ctx, q, pid); err != nil {
				return 0, "", err
			}
		}
		if err := o.putTag(core.Person, pid, tags.GENIUser, urn); err != nil {
			return 0, "", err
		}
		o.s.log.Info("GENI user person created", "urn", urn, "person_id", pid, "email", email)
	}
	if err := o.member("person_site", "person_id", "site_id", pid, site, true); err != nil {
		return 0, "", err
	}
	return pid, email, nil
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func (o *op) geniSlice(urn, name string, pid int64, expires time.Time, create bool) (int64, error) {
	// The live slice named name, and which URN it stands in for.
	var id int64
	var tagged *string
	found, err := o.tx.QueryRow(o.ctx, `SELECT s.slice_id, (SELECT t.value FROM slice_tags t JOIN tag_types tt ON tt.tag_type_id = t.tag_type_id
		WHERE t.slice_id = s.slice_id AND tt.tagname = ?) FROM slices s WHERE s.name = ? AND s.deleted = 0 AND s.expires > ?`,
		[]any{tags.GENISlice, name, o.now}, &id, &tagged)
	if err != nil {
		return 0, err
	}
	if found {
		if tagged == nil || *tagged != urn {
			other := "a slice of this PLC"
			if tagged != nil {
				other = *tagged
			}
			return 0, core.Errorf(core.Conflict, "slice %s maps onto the PlanetLab slice %s, which stands in for %s", urn, name, other)
		}
		return id, nil
	}
	if !create {
		return 0, core.Errorf(core.NotFound, "no slice %s at this PLC", urn)
	}
	if !expires.After(o.s.opts.Now()) {
		return 0, core.Errorf(core.Forbidden, "the credential for %s has expired", urn)
	}
	t, _ := table(core.Slice)
	rec, err := t.Check(core.Record{"name": name, "url": urn, "description": "GENI slice " + urn}, true)
	if err != nil {
		return 0, err
	}
	if id, err = o.addSlice(t, rec); err != nil {
		return 0, err
	}
	exp := min(o.now+int64(DefaultSliceLifetime/time.Second), expires.Unix())
	if _, err := o.tx.Exec(o.ctx, "UPDATE slices SET expires = ?, creator_person_id = ? WHERE slice_id = ?", exp, pid, id); err != nil {
		return 0, err
	}
	tt, err := o.tagTypeID(tags.GENISlice)
	if err != nil {
		return 0, err
	}
	if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, ?)", id, tt, urn); err != nil {
		return 0, err
	}
	o.s.log.Info("GENI slice created", "urn", urn, "slice", name, "slice_id", id, "expires", time.Unix(exp, 0).UTC())
	return id, nil
}

// GENISliceURN is the URN of the slice of another GENI authority that the
// PlanetLab slice name stands in for ("" for a slice of this PLC's own;
// NotFound when there is no live slice of that name).
func (s *Service) GENISliceURN(ctx context.Context, name string) (string, error) {
	var urn string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var id int64
		var tagged *string
		found, err := tx.QueryRow(ctx, `SELECT s.slice_id, (SELECT t.value FROM slice_tags t JOIN tag_types tt ON tt.tag_type_id = t.tag_type_id
			WHERE t.slice_id = s.slice_id AND tt.tagname = ?) FROM slices s WHERE s.name = ? AND s.deleted = 0 AND s.expires > ?`,
			[]any{tags.GENISlice, name, s.now()}, &id, &tagged)
		if err != nil {
			return err
		}
		if !found {
			return core.Errorf(core.NotFound, "no slice %s", name)
		}
		if tagged != nil {
			urn = *tagged
		}
		return nil
	})
	return urn, s.mapErr(err)
}

// GENISlivers, PutGENISlivers and DeleteGENISlivers are the GENI
// aggregate's memory (store/geni.go).
func (s *Service) GENISlivers(ctx context.Context, sliceID, now int64) ([]core.GENISliver, error) {
	out, err := s.db.GENISlivers(ctx, sliceID, now)
	return out, s.mapErr(err)
}

// PutGENISlivers: see GENISlivers.
func (s *Service) PutGENISlivers(ctx context.Context, now int64, rows ...core.GENISliver) error {
	return s.mapErr(s.db.PutGENISlivers(ctx, now, rows...))
}

// DeleteGENISlivers: see GENISlivers.
func (s *Service) DeleteGENISlivers(ctx context.Context, sliceID int64, kind string, refs ...string) error {
	return s.mapErr(s.db.DeleteGENISlivers(ctx, sliceID, kind, refs...))
}

// geniForeignCaller is GENICaller for a user of another authority: the
// enabled person standing in for them.
func (s *Service) geniForeignCaller(ctx context.Context, urn string) (*core.Caller, error) {
	var pid int64
	var email string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		found, err := tx.QueryRow(ctx, `SELECT p.person_id, p.email FROM persons p JOIN person_tags t ON t.person_id = p.person_id
			JOIN tag_types tt ON tt.tag_type_id = t.tag_type_id WHERE tt.tagname = ? AND t.value = ? AND p.deleted = 0 AND p.enabled = 1`,
			[]any{tags.GENIUser, urn}, &pid, &email)
		if err == nil && !found {
			err = core.Errorf(core.Forbidden, "no enabled person of this PLC stands in for %s", urn)
		}
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	var c *core.Caller
	if err := s.read(ctx, &core.Caller{Kind: core.PersonCaller, PersonID: pid, Email: email}, func(o *op) error { c = o.c; return nil }); err != nil {
		return nil, err
	}
	return c, nil
}
