package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// The query builder (Tx.Select) on both dialects: every filter form, tags
// as fields, list fields, sorting, paging and the service's own conditions.

// fixture is a small registry:
//
//	sites   pl (max 0, lat 0, region=eu, color=red), princeton (max 10,
//	        lat 1.5, url, region=us), eth (max 5, lat -2, not public),
//	        mit (max 20, deleted)
//	persons alice (admin, pi; at pl), bob (user; at pl and princeton,
//	        princeton primary), dave (no role, no site), carol (deleted)
//	nodes   n1.pl (key set), n2.princeton, n3.princeton (deleted)
type fixture struct {
	site, person, node map[string]int64
}

func loadFixture(t *testing.T, db *store.DB) fixture {
	t.Helper()
	ctx := context.Background()
	fx := fixture{site: map[string]int64{}, person: map[string]int64{}, node: map[string]int64{}}
	err := db.Write(ctx, func(tx *store.Tx) error {
		siteCols := []string{"login_base", "name", "abbreviated_name", "max_slices", "latitude", "url", "is_public", "deleted", "date_created", "last_updated"}
		for _, s := range []struct {
			lb      string
			max     int64
			lat     float64
			url     any
			public  bool
			deleted bool
		}{
			{"pl", 0, 0, nil, true, false},
			{"princeton", 10, 1.5, "http://princeton.edu", true, false},
			{"eth", 5, -2, nil, false, false},
			{"mit", 20, 3, nil, true, true},
		} {
			id, err := tx.Insert(ctx, "sites", "site_id", siteCols, []any{s.lb, "Site " + s.lb, s.lb, s.max, s.lat, s.url, s.public, s.deleted, 1, 1})
			if err != nil {
				return err
			}
			fx.site[s.lb] = id
		}
		tags := map[string]int64{}
		for _, name := range []string{"qt_region", "qt_color"} {
			id, err := tx.Insert(ctx, "tag_types", "tag_type_id", []string{"tagname", "category"}, []any{name, "test"})
			if err != nil {
				return err
			}
			tags[name] = id
		}
		for _, st := range []struct {
			site, tag, value string
		}{{"pl", "qt_region", "eu"}, {"pl", "qt_color", "red"}, {"princeton", "qt_region", "us"}, {"mit", "qt_region", "us"}} {
			if _, err := tx.Insert(ctx, "site_tags", "site_tag_id", []string{"site_id", "tag_type_id", "value"}, []any{fx.site[st.site], tags[st.tag], st.value}); err != nil {
				return err
			}
		}
		for _, p := range []struct {
			name    string
			deleted bool
		}{{"alice", false}, {"bob", false}, {"dave", false}, {"carol", true}} {
			id, err := tx.Insert(ctx, "persons", "person_id", []string{"email", "first_name", "last_name", "deleted", "date_created", "last_updated", "password"},
				[]any{p.name + "@example.org", p.name, "Test", p.deleted, 1, 1, "secret-hash"})
			if err != nil {
				return err
			}
			fx.person[p.name] = id
		}
		for _, r := range []struct {
			person string
			role   int64
		}{{"alice", 10}, {"alice", 20}, {"bob", 30}, {"carol", 30}} {
			if _, err := tx.Exec(ctx, "INSERT INTO person_role (person_id, role_id) VALUES (?, ?)", fx.person[r.person], r.role); err != nil {
				return err
			}
		}
		for _, ps := range []struct {
			person, site string
			primary      bool
		}{{"alice", "pl", true}, {"bob", "pl", false}, {"bob", "princeton", true}} {
			if _, err := tx.Exec(ctx, "INSERT INTO person_site (person_id, site_id, is_primary) VALUES (?, ?, ?)", fx.person[ps.person], fx.site[ps.site], ps.primary); err != nil {
				return err
			}
		}
		for _, n := range []struct {
			host, site string
			key        any
			deleted    bool
		}{{"n1.pl", "pl", "node-secret", false}, {"n2.princeton", "princeton", nil, false}, {"n3.princeton", "princeton", nil, true}} {
			id, err := tx.Insert(ctx, "nodes", "node_id", []string{"hostname", "site_id", "key", "deleted", "date_created", "last_updated"},
				[]any{n.host, fx.site[n.site], n.key, n.deleted, 1, 1})
			if err != nil {
				return err
			}
			fx.node[n.host] = id
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// selectRecs runs a Select of filter (in PLCAPI form, see core.ParseFilter)
// on class, with q's other fields.
func selectRecs(t *testing.T, db *store.DB, class core.Class, filter any, q store.Query) ([]core.Record, error) {
	t.Helper()
	f, err := core.ParseFilter(filter)
	if err != nil {
		t.Fatalf("filter %v: %v", filter, err)
	}
	tbl, ok := store.TableOf(class)
	if !ok {
		t.Fatalf("no table for %s", class)
	}
	q.Table, q.Filter = tbl, f
	var out []core.Record
	err = db.Read(context.Background(), func(tx *store.Tx) error {
		var err error
		out, err = tx.Select(context.Background(), q)
		return err
	})
	return out, err
}

// column lists one field of every record, in order.
func column(recs []core.Record, field string) []any {
	out := []any{}
	for _, r := range recs {
		out = append(out, r[field])
	}
	return out
}

func strs(s ...string) []any {
	out := []any{}
	for _, x := range s {
		out = append(out, x)
	}
	return out
}

// selectCase is a filter and the values of one field it must return, in order.
type selectCase struct {
	name   string
	filter any
	want   []any
}

// checkSelects runs each case as a Select of class returning field.
func checkSelects(t *testing.T, db *store.DB, class core.Class, field string, q store.Query, cases []selectCase) {
	t.Helper()
	q.Fields = []string{field}
	for _, c := range cases {
		got, err := selectRecs(t, db, class, c.filter, q)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if g := column(got, field); !reflect.DeepEqual(g, c.want) {
			t.Errorf("%s: %v gives %v, want %v", c.name, c.filter, g, c.want)
		}
	}
}

func TestSelectSites(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		loadFixture(t, db)
		tags := map[string]bool{"qt_region": true, "qt_color": true}
		checkSelects(t, db, core.Site, "login_base", store.Query{Tags: tags}, []selectCase{
			{"all live, by id", nil, strs("pl", "princeton", "eth")},
			{"empty list", []any{}, strs()},
			{"ids and names", []any{int64(1), "eth", "mit"}, strs("pl", "eth")},
			{"unknown name", []any{"nowhere"}, strs()},
			{"exact", map[string]any{"login_base": "eth"}, strs("eth")},
			{"exact is case sensitive", map[string]any{"login_base": "ETH"}, strs()},
			{"wildcard *", map[string]any{"login_base": "p*"}, strs("pl", "princeton")},
			{"wildcard %", map[string]any{"login_base": "%ton"}, strs("princeton")},
			{"wildcard ignores case", map[string]any{"name": "SITE P*"}, strs("pl", "princeton")},
			{"negated wildcard", map[string]any{"~login_base": "p*"}, strs("eth")},
			{"negated exact", map[string]any{"~login_base": "pl"}, strs("princeton", "eth")},
			{"in list", map[string]any{"login_base": []any{"pl", "eth", "mit"}}, strs("pl", "eth")},
			{"not in list", map[string]any{"~login_base": []any{"pl", "eth"}}, strs("princeton")},
			{"empty in list", map[string]any{"login_base": []any{}}, strs()},
			{"null", map[string]any{"url": nil}, strs("pl", "eth")},
			{"not null", map[string]any{"~url": nil}, strs("princeton")},
			{"bool", map[string]any{"is_public": false}, strs("eth")},
			{"int >", map[string]any{">max_slices": int64(0)}, strs("princeton", "eth")},
			{"int <", map[string]any{"<max_slices": int64(10)}, strs("pl", "eth")},
			{"int [ (<=)", map[string]any{"[max_slices": int64(5)}, strs("pl", "eth")},
			{"int ] (>=)", map[string]any{"]max_slices": int64(5)}, strs("princeton", "eth")},
			{"float with an int", map[string]any{"<latitude": int64(0)}, strs("eth")},
			{"float with a double", map[string]any{"]latitude": 1.5}, strs("princeton")},
			{"string <", map[string]any{"<login_base": "pm"}, strs("pl", "eth")},
			{"AND", map[string]any{"is_public": true, ">max_slices": int64(0)}, strs("princeton")},
			{"OR", map[string]any{"login_base": "pl", "max_slices": int64(5), "-OR": true}, strs("pl", "eth")},
			{"list field contains", map[string]any{"node_ids": []any{int64(1)}}, strs("pl")},
			{"list field empty", map[string]any{"node_ids": nil}, strs("eth")},
			{"list field any", map[string]any{"|person_ids": []any{int64(1), int64(2)}}, strs("pl", "princeton")},
			{"list field all", map[string]any{"&person_ids": []any{int64(1), int64(2)}}, strs("pl")},
			{"list field all, repeated value", map[string]any{"&person_ids": []any{int64(2), int64(2)}}, strs("pl", "princeton")},
			{"deleted members do not count", map[string]any{"node_ids": []any{int64(3)}}, strs()},
			{"tag equal", map[string]any{"qt_region": "us"}, strs("princeton")},
			{"tag wildcard", map[string]any{"qt_region": "E*"}, strs("pl")},
			{"tag absent", map[string]any{"qt_color": nil}, strs("princeton", "eth")},
			// As in SQL and the original: NOT (NULL = 'us') is not true, so a
			// site without the tag is not returned by a negated comparison.
			{"tag negated", map[string]any{"~qt_region": "us"}, strs("pl")},
			{"tag in list", map[string]any{"qt_region": []any{"us", "eu"}}, strs("pl", "princeton")},
			{"tag and column", map[string]any{"qt_region": "us", "url": "http*"}, strs("princeton")},
			{"sort desc", map[string]any{"-SORT": "-max_slices"}, strs("princeton", "eth", "pl")},
			{"sort two keys", map[string]any{"-SORT": []any{"is_public", "-login_base"}}, strs("eth", "princeton", "pl")},
			{"sort ties by id", map[string]any{"-SORT": "is_public"}, strs("eth", "pl", "princeton")},
			{"limit", map[string]any{"-SORT": "login_base", "-LIMIT": int64(2)}, strs("eth", "pl")},
			{"offset", map[string]any{"-SORT": "login_base", "-OFFSET": int64(1)}, strs("pl", "princeton")},
			{"limit and offset", map[string]any{"-SORT": "login_base", "-LIMIT": int64(1), "-OFFSET": int64(2)}, strs("princeton")},
			{"offset past the end", map[string]any{"-OFFSET": int64(10)}, strs()},
			{"paging after filtering", map[string]any{"is_public": true, "-LIMIT": int64(1), "-OFFSET": int64(1)}, strs("princeton")},
		})
	})
}

func TestSelectFieldsAndTags(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		fx := loadFixture(t, db)
		tags := map[string]bool{"qt_region": true, "qt_color": true}

		// Tags as return fields: nil where the object has none; an asked
		// field comes once, in a record holding only what was asked.
		got, err := selectRecs(t, db, core.Site, nil, store.Query{Fields: []string{"login_base", "qt_region", "qt_color", "login_base"}, Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		want := []core.Record{
			{"login_base": "pl", "qt_region": "eu", "qt_color": "red"},
			{"login_base": "princeton", "qt_region": "us", "qt_color": nil},
			{"login_base": "eth", "qt_region": nil, "qt_color": nil},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("tags as fields:\n got %v\nwant %v", got, want)
		}

		// Placeholders of a tag field, the service's condition and a tag
		// filter bind in the right order.
		got, err = selectRecs(t, db, core.Site, map[string]any{"qt_region": "us", "-OR": true, "login_base": "eth"}, store.Query{
			Fields: []string{"qt_color", "login_base"}, Tags: tags,
			Where: []string{"t.site_id <> ?"}, Args: []any{fx.site["eth"]},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, []core.Record{{"login_base": "princeton", "qt_color": nil}}) {
			t.Errorf("where AND (a OR b): %v", got)
		}

		// Every visible native field by default; hidden ones never.
		got, err = selectRecs(t, db, core.Person, []any{fx.person["bob"]}, store.Query{})
		if err != nil {
			t.Fatal(err)
		}
		persons, _ := store.TableOf(core.Person)
		if len(got) != 1 || len(got[0]) != len(persons.FieldNames()) {
			t.Fatalf("default fields: %v, want %v", got, persons.FieldNames())
		}
		if _, ok := got[0]["password"]; ok {
			t.Error("hidden field password returned")
		}
		r := got[0]
		if r["email"] != "bob@example.org" || r["enabled"] != false || r["peer_id"] != nil || r["title"] != nil {
			t.Errorf("scalars: %v", r)
		}
		// List fields: roles by role id, sites with the primary first.
		if !reflect.DeepEqual(r["roles"], []string{"user"}) || !reflect.DeepEqual(r["role_ids"], []int64{30}) {
			t.Errorf("roles %v %v", r["roles"], r["role_ids"])
		}
		if want := []int64{fx.site["princeton"], fx.site["pl"]}; !reflect.DeepEqual(r["site_ids"], want) {
			t.Errorf("site_ids %v, want %v (primary first)", r["site_ids"], want)
		}
		got, _ = selectRecs(t, db, core.Person, []any{"alice@example.org", "dave@example.org"}, store.Query{Fields: []string{"roles", "site_ids"}})
		if want := []core.Record{{"roles": []string{"admin", "pi"}, "site_ids": []int64{fx.site["pl"]}}, {"roles": []string{}, "site_ids": []int64{}}}; !reflect.DeepEqual(got, want) {
			t.Errorf("lists: %v, want %v", got, want)
		}

		// Admin-only fields: stripped for others, both as fields and filters.
		got, err = selectRecs(t, db, core.Node, nil, store.Query{Fields: []string{"hostname", "key"}})
		if err != nil || !reflect.DeepEqual(got, []core.Record{{"hostname": "n1.pl"}, {"hostname": "n2.princeton"}}) {
			t.Errorf("non-admin: %v, %v", got, err)
		}
		got, err = selectRecs(t, db, core.Node, map[string]any{"~key": nil}, store.Query{Fields: []string{"hostname", "key"}, Admin: true})
		if err != nil || !reflect.DeepEqual(got, []core.Record{{"hostname": "n1.pl", "key": "node-secret"}}) {
			t.Errorf("admin: %v, %v", got, err)
		}
		if _, err := selectRecs(t, db, core.Node, map[string]any{"key": "node-secret"}, store.Query{}); core.ErrorCode(err) != core.Invalid {
			t.Errorf("non-admin filter on key: %v", err)
		}
	})
}

func TestSelectPersonLists(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		loadFixture(t, db)
		checkSelects(t, db, core.Person, "first_name", store.Query{}, []selectCase{
			{"contains", map[string]any{"roles": "user"}, strs("bob")},
			{"any", map[string]any{"|roles": []any{"pi", "user"}}, strs("alice", "bob")},
			{"all", map[string]any{"&roles": []any{"admin", "pi"}}, strs("alice")},
			{"all, not all held", map[string]any{"&roles": []any{"admin", "user"}}, strs()},
			{"all of nothing", map[string]any{"&roles": []any{}}, strs("alice", "bob", "dave")},
			{"none", map[string]any{"roles": nil}, strs("dave")},
			{"negated", map[string]any{"~roles": "pi"}, strs("bob", "dave")},
			{"negated all", map[string]any{"~&roles": []any{"admin", "pi"}}, strs("bob", "dave")},
			{"int list", map[string]any{"role_ids": []any{int64(10), int64(30)}}, strs("alice", "bob")},
		})
	})
}

func TestSelectRefusals(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		loadFixture(t, db)
		tags := map[string]bool{"qt_region": true}
		cases := []struct {
			name   string
			class  core.Class
			filter any
			fields []string
			field  string // the field the error must name
		}{
			{"unknown filter field", core.Site, map[string]any{"nope": int64(1)}, nil, "nope"},
			{"unknown return field", core.Site, nil, []string{"nope"}, "nope"},
			{"tag not declared", core.Site, map[string]any{"qt_color": "red"}, nil, "qt_color"},
			{"hidden return field", core.Person, nil, []string{"password"}, "password"},
			{"hidden filter field", core.Person, map[string]any{"password": "x"}, nil, "password"},
			{"string for an int", core.Site, map[string]any{"max_slices": "ten"}, nil, "max_slices"},
			{"wildcard on an int", core.Site, map[string]any{"max_slices": "1*"}, nil, "max_slices"},
			{"int for a string", core.Site, map[string]any{"login_base": int64(1)}, nil, "login_base"},
			{"bool out of range", core.Site, map[string]any{"is_public": int64(2)}, nil, "is_public"},
			{"nil inside a list", core.Site, map[string]any{"login_base": []any{"pl", nil}}, nil, "login_base"},
			{"& on a scalar", core.Site, map[string]any{"&login_base": "x"}, nil, "login_base"},
			{"< on a list field", core.Site, map[string]any{"<node_ids": int64(1)}, nil, "node_ids"},
			{"wrong element type", core.Person, map[string]any{"roles": int64(10)}, nil, "roles"},
			{"sort by unknown", core.Site, map[string]any{"-SORT": "nope"}, nil, "nope"},
			{"sort by list", core.Site, map[string]any{"-SORT": "node_ids"}, nil, "node_ids"},
			{"sort by tag", core.Site, map[string]any{"-SORT": "qt_region"}, nil, "qt_region"},
			{"names where there are none", core.Key, []any{"x"}, nil, "filter"},
			{"ids for rows keyed by name", core.KeyType, []any{int64(1)}, nil, "key_type"},
		}
		for _, c := range cases {
			_, err := selectRecs(t, db, c.class, c.filter, store.Query{Fields: c.fields, Tags: tags})
			if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != c.field {
				t.Errorf("%s: %v, want Invalid naming field %q", c.name, err, c.field)
			}
		}
	})
}

// TestSelectManyLists fills list fields of more owners than one IN (...)
// chunk holds.
func TestSelectManyLists(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 1234
		err := db.Write(ctx, func(tx *store.Tx) error {
			for i := range n {
				id, err := tx.Insert(ctx, "persons", "person_id", []string{"email", "first_name", "last_name", "date_created", "last_updated"},
					[]any{fmt.Sprintf("p%d@example.org", i), "P", "Q", 1, 1})
				if err != nil {
					return err
				}
				if i%3 == 0 {
					continue
				}
				if _, err := tx.Exec(ctx, "INSERT INTO person_role (person_id, role_id) VALUES (?, ?)", id, 20+10*(i%3)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := selectRecs(t, db, core.Person, nil, store.Query{Fields: []string{"email", "role_ids"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("%d records, want %d", len(got), n)
		}
		for i, r := range got {
			want := []int64{}
			if i%3 != 0 {
				want = []int64{int64(20 + 10*(i%3))}
			}
			if r["email"] != fmt.Sprintf("p%d@example.org", i) || !slices.Equal(r["role_ids"].([]int64), want) {
				t.Fatalf("record %d: %v, want role_ids %v", i, r, want)
			}
		}
	})
}
