package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestSeededTagTypes: a new PLC has exactly the tag types of the table in
// core/tags, with its categories, descriptions and write roles.
func TestSeededTagTypes(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		type row struct{ category, doc, roles string }
		got := map[string]row{}
		err := db.Read(context.Background(), func(tx *store.Tx) error {
			rows, err := tx.Query(context.Background(), `SELECT tt.tagname, tt.category, tt.description, r.name
				FROM tag_types tt JOIN tag_type_role ttr ON ttr.tag_type_id = tt.tag_type_id
				JOIN roles r ON r.role_id = ttr.role_id ORDER BY tt.tagname, r.role_id`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var name, cat, doc, role string
				if err := rows.Scan(&name, &cat, &doc, &role); err != nil {
					return err
				}
				r := got[name]
				r.category, r.doc = cat, doc
				if r.roles != "" {
					r.roles += ","
				}
				r.roles += role
				got[name] = r
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags.All() {
			roles := append([]string{core.RoleAdmin}, tag.Roles...)
			slices.SortFunc(roles, func(a, b string) int { return roleOrder(a) - roleOrder(b) })
			want := row{tag.Category, tag.Doc, strings.Join(roles, ",")}
			if got[tag.Name] != want {
				t.Errorf("tag type %s = %+v, want %+v", tag.Name, got[tag.Name], want)
			}
			delete(got, tag.Name)
		}
		for name := range got {
			t.Errorf("tag type %s is seeded but not in core/tags", name)
		}
	})
}

func roleOrder(r string) int {
	return slices.Index([]string{core.RoleAdmin, core.RolePI, core.RoleUser, core.RoleTech, core.RoleNode}, r)
}
