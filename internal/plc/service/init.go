package service

import (
	"context"

	"github.com/planetlab/pl/internal/core"
)

// System site defaults (db-config.d/002-system_site).
const (
	SystemSiteLoginBase = "pl"
	SystemSiteMaxSlices = 100
)

// Init bootstraps an empty registry: the system site (site_id 1, login_base
// "pl", max_slices 100) and the first admin (roles admin and pi, enabled,
// at the system site). It refuses to run twice. It returns the admin's id.
func (s *Service) Init(ctx context.Context, adminEmail, adminPassword string) (int64, error) {
	if adminPassword == "" {
		return 0, core.FieldErrorf("password", "the first admin needs a password")
	}
	var pid int64
	err := s.write(ctx, nil, func(o *op) error {
		var v string
		found, err := o.tx.QueryRow(ctx, "SELECT value FROM plc_meta WHERE name = 'initialized'", nil, &v)
		if err != nil {
			return err
		}
		if found {
			return core.Errorf(core.Conflict, "PLC is already initialized (since %s)", v)
		}
		n, err := o.tx.Int(ctx, "SELECT COUNT(*) FROM sites")
		if err != nil {
			return err
		}
		if n > 0 {
			return core.Errorf(core.Conflict, "PLC already has sites; refusing to initialize")
		}
		admin := &core.Caller{Kind: core.PersonCaller, Roles: []string{core.RoleAdmin}}
		o.c = admin
		st, _ := table(core.Site)
		rec, err := st.Check(core.Record{"login_base": SystemSiteLoginBase, "name": "PlanetLab Central", "abbreviated_name": "PLC",
			"max_slices": int64(SystemSiteMaxSlices)}, true)
		if err != nil {
			return err
		}
		site, err := o.addSite(st, rec)
		if err != nil {
			return err
		}
		if site != 1 {
			return core.Errorf(core.Internal, "system site got id %d, want 1", site)
		}
		pt, _ := table(core.Person)
		prec, err := pt.Check(core.Record{"email": adminEmail, "first_name": "PLC", "last_name": "Administrator", "password": adminPassword}, true)
		if err != nil {
			return err
		}
		if pid, err = o.addPerson(pt, prec); err != nil {
			return err
		}
		for _, q := range []string{
			"UPDATE persons SET enabled = 1 WHERE person_id = ?",
			"INSERT INTO person_role (person_id, role_id) VALUES (?, 10)",
			"INSERT INTO person_role (person_id, role_id) VALUES (?, 20)",
			"INSERT INTO person_site (person_id, site_id, is_primary) VALUES (?, 1, 1)",
		} {
			if _, err := o.tx.Exec(ctx, q, pid); err != nil {
				return err
			}
		}
		_, err = o.tx.Exec(ctx, "INSERT INTO plc_meta (name, value) VALUES ('initialized', ?)", sprintf("%d", o.now))
		return err
	})
	return pid, err
}

// Initialized reports whether Init has run.
func (s *Service) Initialized(ctx context.Context) (bool, error) {
	var found bool
	err := s.read(ctx, nil, func(o *op) error {
		var v string
		var err error
		found, err = o.tx.QueryRow(ctx, "SELECT value FROM plc_meta WHERE name = 'initialized'", nil, &v)
		return err
	})
	return found, err
}
