package store

import (
	"context"
	"testing"
)

// TestKeysUsableMigration opens a database at schema version 2 holding a
// key, then upgrades it: the key, which passed the strict check of its
// time, becomes usable with no reason (issue 9.1).
func TestKeysUsableMigration(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		all := migrations
		migrations = all[:2]
		db, err := Open(ctx, dsn)
		migrations = all
		if err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *Tx) error {
			pid, err := tx.Insert(ctx, "persons", "person_id", []string{"email", "first_name", "last_name", "date_created", "last_updated"}, []any{"a@b.org", "A", "B", 1, 1})
			if err != nil {
				return err
			}
			_, err = tx.Insert(ctx, "keys", "key_id", []string{"person_id", "key_type", "key", "material"}, []any{pid, "ssh", "ssh-ed25519 AAAA x", "ssh-ed25519 AAAA"})
			return err
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		db, err = Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if v, err := db.SchemaVersion(ctx); err != nil || v != LatestVersion() || v < 3 {
			t.Fatalf("version %d %v", v, err)
		}
		var usable int64
		var reason *string
		err = db.Read(ctx, func(tx *Tx) error {
			_, err := tx.QueryRow(ctx, "SELECT usable, unusable_reason FROM keys", nil, &usable, &reason)
			return err
		})
		if err != nil || usable != 1 || reason != nil {
			t.Fatalf("usable %d reason %v: %v", usable, reason, err)
		}
	})
}

// TestRuntimeTagMigration: a database seeded before the slice tag runtime
// existed gets its tag type, with the roles of core/tags, on upgrade.
func TestRuntimeTagMigration(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		all := migrations
		migrations = all[:2]
		db, err := Open(ctx, dsn)
		migrations = all
		if err != nil {
			t.Fatal(err)
		}
		err = db.Write(ctx, func(tx *Tx) error {
			if _, err := tx.Exec(ctx, "DELETE FROM tag_type_role WHERE tag_type_id IN (SELECT tag_type_id FROM tag_types WHERE tagname = 'runtime')"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "DELETE FROM tag_types WHERE tagname = 'runtime'")
			return err
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		db, err = Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var roles int64
		err = db.Read(ctx, func(tx *Tx) error {
			_, err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM tag_type_role r JOIN tag_types t ON t.tag_type_id = r.tag_type_id WHERE t.tagname = 'runtime' AND r.role_id IN (10, 20, 30)", nil, &roles)
			return err
		})
		if err != nil || roles != 3 {
			t.Fatalf("runtime tag type roles after the upgrade: %d (want admin, pi, user) %v", roles, err)
		}
	})
}
