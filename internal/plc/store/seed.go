package store

import (
	"fmt"
	"strings"

	"github.com/planetlab/pl/internal/core/tags"
)

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func seedSQL() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+";\n", args...) }
	for name, id := range map[string]int{"admin": 10, "pi": 20, "user": 30, "tech": 40, "node": 50} {
		w("INSERT INTO roles (role_id, name) VALUES (%d, %s)", id, q(name))
	}
	for _, v := range []string{"boot", "safeboot", "reinstall", "disabled", "failboot", "install", "upgrade"} {
		w("INSERT INTO boot_states (boot_state) VALUES (%s)", q(v))
	}
	for _, v := range []string{"regular", "reservable"} {
		w("INSERT INTO node_types (node_type) VALUES (%s)", q(v))
	}
	w("INSERT INTO network_types (type) VALUES ('ipv4')")
	for _, v := range []string{"static", "dhcp", "proxy", "tap", "ipmi", "unknown"} {
		w("INSERT INTO network_methods (method) VALUES (%s)", q(v))
	}
	for _, v := range []string{"not-instantiated", "plc-instantiated", "delegated", "nm-controller"} {
		w("INSERT INTO slice_instantiations (instantiation) VALUES (%s)", q(v))
	}
	w("INSERT INTO key_types (key_type) VALUES ('ssh')")
	for _, v := range []string{"Personal", "Shipping", "Billing"} {
		w("INSERT INTO address_types (name, description) VALUES (%s, %s)", q(v), q(v+" address"))
	}
	// The tag types: every tag of the table in core/tags, the one list
	// (its texts contain no ';', on which migrations are split).
	for _, t := range tags.All() {
		b.WriteString(tagTypeSQL(t.Name))
	}
	return b.String()
}

// tagTypeSQL inserts the tag type of the tag name of core/tags and its
// roles (admin and the tag's Roles), unless they exist: the seed, and the
// upgrade (migrations.go) of a database seeded before the tag was added
// to the table.
func tagTypeSQL(name string) string {
	t := tags.MustLookup(name)
	roleID := map[string]int{"pi": 20, "user": 30, "tech": 40, "node": 50}
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO tag_types (tagname, category, description) SELECT %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM tag_types WHERE tagname = %s);\n",
		q(t.Name), q(t.Category), q(t.Doc), q(t.Name))
	ids := []int{10} // admin
	for _, r := range t.Roles {
		ids = append(ids, roleID[r])
	}
	for _, r := range ids {
		fmt.Fprintf(&b, "INSERT INTO tag_type_role (tag_type_id, role_id) SELECT tag_type_id, %d FROM tag_types WHERE tagname = %s "+
			"AND NOT EXISTS (SELECT 1 FROM tag_type_role x WHERE x.tag_type_id = tag_types.tag_type_id AND x.role_id = %d);\n", r, q(t.Name), r)
	}
	return b.String()
}

// tagTypeRolesSQL makes the tag type of the tag name of core/tags match
// the table again in an existing database: its description, and no role
// beyond admin and the tag's Roles (an upgrade that narrows who may set a
// tag).
func tagTypeRolesSQL(name string) string {
	t := tags.MustLookup(name)
	roleID := map[string]int{"pi": 20, "user": 30, "tech": 40, "node": 50}
	keep := []string{"10"}
	for _, r := range t.Roles {
		keep = append(keep, fmt.Sprint(roleID[r]))
	}
	return fmt.Sprintf("UPDATE tag_types SET description = %s WHERE tagname = %s;\n", q(t.Doc), q(t.Name)) +
		fmt.Sprintf("DELETE FROM tag_type_role WHERE role_id NOT IN (%s) AND tag_type_id IN (SELECT tag_type_id FROM tag_types WHERE tagname = %s);\n",
			strings.Join(keep, ", "), q(t.Name))
}

// The seed is migration 2; the upgrades of migrations.go follow it.
func init() { migrations = append(append(migrations, seedSQL()), upgrades...) }
