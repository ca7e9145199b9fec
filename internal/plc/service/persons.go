package service

import (
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Persons: checks and writes of AddPerson, UpdatePerson and DeletePerson.

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
	approved := false
	if en, _ := rec["enabled"].(bool); en {
		var was bool
		if _, err := o.tx.QueryRow(o.ctx, "SELECT enabled FROM persons WHERE person_id = ?", []any{id}, &was); err != nil {
			return err
		}
		approved = !was
	}
	if err := o.tx.UpdateRecord(o.ctx, t, id, rec); err != nil {
		return err
	}
	if approved {
		return o.approvedNotice(id) // signup.go
	}
	return nil
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
