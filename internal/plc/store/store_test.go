package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// dialects runs f against a fresh SQLite file and a fresh PostgreSQL database.
func dialects(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "plc.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := store.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f(t, db)
	})
}

func TestMigrateIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plc.db")
	for i := 0; i < 2; i++ {
		db, err := store.Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := db.SchemaVersion(context.Background())
		if err != nil || v != store.LatestVersion() || v < 2 {
			t.Fatalf("version %d %v", v, err)
		}
		db.Close()
	}
}

func TestSelectAndFilters(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sites, _ := store.TableOf(core.Site)
		err := db.Write(ctx, func(tx *store.Tx) error {
			for i, lb := range []string{"pl", "princeton", "mit"} {
				rec, err := sites.Check(core.Record{"login_base": lb, "name": "Site " + lb, "abbreviated_name": lb, "max_slices": int64(i * 10), "latitude": 1.5 * float64(i)}, true)
				if err != nil {
					return err
				}
				rec["date_created"], rec["last_updated"] = int64(100+i), int64(100+i)
				if _, err := tx.InsertRecord(ctx, sites, rec); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, "UPDATE sites SET deleted = 1 WHERE login_base = ?", "mit")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			filter any
			want   []string
		}{
			{nil, []string{"pl", "princeton"}},
			{[]any{}, nil},
			{[]any{int64(1), "princeton", "mit"}, []string{"pl", "princeton"}},
			{map[string]any{"login_base": "PRIN*"}, []string{"princeton"}},
			{map[string]any{">max_slices": int64(5)}, []string{"princeton"}},
			{map[string]any{"~login_base": "pl"}, []string{"princeton"}},
			{map[string]any{"login_base": []any{"pl", "mit"}}, []string{"pl"}},
			{map[string]any{"url": nil, "-SORT": "-login_base"}, []string{"princeton", "pl"}},
			{map[string]any{"-SORT": "login_base", "-LIMIT": int64(1), "-OFFSET": int64(1)}, []string{"princeton"}},
			{map[string]any{"login_base": "pl", "max_slices": int64(10), "-OR": true}, []string{"pl", "princeton"}},
			{map[string]any{"[latitude": int64(0)}, []string{"pl"}},
		}
		for _, c := range cases {
			f, err := core.ParseFilter(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []core.Record
			err = db.Read(ctx, func(tx *store.Tx) error {
				var err error
				got, err = tx.Select(ctx, store.Query{Table: sites, Filter: f, Fields: []string{"login_base", "node_ids"}})
				return err
			})
			if err != nil {
				t.Fatalf("%v: %v", c.filter, err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r["login_base"].(string))
				if ids, ok := r["node_ids"].([]int64); !ok || len(ids) != 0 {
					t.Fatalf("node_ids %#v", r["node_ids"])
				}
			}
			if len(names) != len(c.want) {
				t.Fatalf("%v: got %v want %v", c.filter, names, c.want)
			}
			for i := range names {
				if names[i] != c.want[i] {
					t.Fatalf("%v: got %v want %v", c.filter, names, c.want)
				}
			}
		}
		for _, bad := range []any{map[string]any{"nope": int64(1)}, map[string]any{"login_base": int64(1)}, map[string]any{"&login_base": "x"}, map[string]any{"<node_ids": int64(1)}} {
			f, _ := core.ParseFilter(bad)
			err := db.Read(ctx, func(tx *store.Tx) error {
				_, err := tx.Select(ctx, store.Query{Table: sites, Filter: f})
				return err
			})
			if core.ErrorCode(err) != core.Invalid {
				t.Errorf("%v: want Invalid, got %v", bad, err)
			}
		}
	})
}

func TestCheck(t *testing.T) {
	sites, _ := store.TableOf(core.Site)
	cases := []struct {
		rec   core.Record
		add   bool
		field string
	}{
		{core.Record{"login_base": "x", "name": "n", "abbreviated_name": "a", "bogus": 1}, true, "bogus"},
		{core.Record{"login_base": "x", "name": "n"}, true, "abbreviated_name"},
		{core.Record{"latitude": int64(45)}, false, "latitude"},
		{core.Record{"max_slices": 1.5}, false, "max_slices"},
		{core.Record{"name": string(make([]byte, 255))}, false, "name"},
		{core.Record{"site_id": int64(3)}, false, "site_id"},
		{core.Record{"name": nil}, false, "name"},
		{core.Record{"enabled": int64(1)}, false, "enabled"},
		{core.Record{"max_slices": int64(-5)}, false, "max_slices"},
		{core.Record{"max_slivers": int64(1) << 40}, false, "max_slivers"},
		{core.Record{"max_slices": float64(1 << 31)}, false, "max_slices"},
		{core.Record{"login_base": "x", "name": "n", "abbreviated_name": "a", "ext_consortium_id": int64(-1)<<31 - 1}, true, "ext_consortium_id"},
	}
	for _, c := range cases {
		_, err := sites.Check(c.rec, c.add)
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != c.field {
			t.Errorf("%v: got %v, want Invalid on %q", c.rec, err, c.field)
		}
	}
	// UTF-8 bytes: 127 two-byte runes = 254 bytes pass, one more fails.
	long := ""
	for i := 0; i < 127; i++ {
		long += "é"
	}
	if _, err := sites.Check(core.Record{"name": long, "max_slices": true}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sites.Check(core.Record{"name": long + "x"}, false); err == nil {
		t.Fatal("255 bytes accepted")
	}
	// Ranges: 32-bit ints, counts from 0, times 64-bit.
	if _, err := sites.Check(core.Record{"max_slices": int64(0), "max_slivers": int64(1)<<31 - 1, "ext_consortium_id": int64(-1) << 31}, false); err != nil {
		t.Fatal(err)
	}
	slices, _ := store.TableOf(core.Slice)
	if _, err := slices.Check(core.Record{"expires": int64(1) << 40}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := sites.Check(core.Record{"max_slices": int64(-5)}, false); err == nil || !strings.Contains(err.Error(), "must be between 0 and 2147483647, got -5") {
		t.Fatalf("max_slices -5: %v", err)
	}
}

// TestLongLists: lists longer than any dialect's parameter limit work, as
// in the original (issue 9.3): 40,000 ids and 100,000 names in list
// filters, value lists of fields and of array fields, over 40,000 rows
// with their list fields.
func TestLongLists(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const nSites, nIDs, nNames = 40000, 40000, 100000
		err := db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO sites (login_base, name, abbreviated_name, date_created, last_updated)
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
				SELECT 's' || i, 'Site ' || i, 's', 1, 1 FROM n`, nSites)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO nodes (site_id, hostname, date_created, last_updated) VALUES (7, 'n7.org', 1, 1), (9, 'n9.org', 1, 1)`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		sites, _ := store.TableOf(core.Site)
		ids := make([]any, nIDs)
		for i := range ids {
			ids[i] = int64(i + 1)
		}
		names := make([]any, nNames)
		for i := range names {
			names[i] = fmt.Sprintf("x%d", i) // all but the last two name no site
		}
		names[nNames-2], names[nNames-1] = "s5", "s40000"
		nodeIDs := make([]any, nIDs)
		for i := range nodeIDs {
			nodeIDs[i] = int64(nIDs - i) // node 1 is at site 7
		}
		for _, c := range []struct {
			what   string
			filter any
			want   int
		}{
			{"no filter (list fields read for every row)", nil, nSites},
			{"40,000 ids", ids, nSites},
			{"100,000 names", names, 2},
			{"ids and names", append(ids[:10:10], names...), 11}, // s5 is id 5
			{"a field's 40,000 values", map[string]any{"site_id": ids}, nSites},
			{"a field's 100,000 values", map[string]any{"login_base": names}, 2},
			{"an array field's 40,000 values", map[string]any{"node_ids": nodeIDs}, 2},
			{"all of 40,000 values", map[string]any{"&node_ids": nodeIDs[nIDs-1:]}, 1},
		} {
			f, err := core.ParseFilter(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []core.Record
			err = db.Read(ctx, func(tx *store.Tx) error {
				var err error
				got, err = tx.Select(ctx, store.Query{Table: sites, Filter: f, Fields: []string{"site_id", "node_ids", "person_ids"}})
				return err
			})
			if err != nil {
				t.Fatalf("%s: %v", c.what, err)
			}
			if len(got) != c.want {
				t.Fatalf("%s: %d sites, want %d", c.what, len(got), c.want)
			}
			for _, r := range got {
				if n := len(r["node_ids"].([]int64)); n != map[int64]int{7: 1, 9: 1}[r["site_id"].(int64)] {
					t.Fatalf("%s: site %v node_ids %v", c.what, r["site_id"], r["node_ids"])
				}
			}
		}
	})
}

// TestGenerationSeesOtherWriters: a write through another handle on the
// same SQLite file (another process: `pl plc init` while PLC runs) moves
// the generation; PostgreSQL never offers one (other PLC processes may
// write it unseen).
func TestGenerationSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "plc.db")
	a, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g0, ok := a.Generation(ctx)
	if !ok {
		t.Fatal("generation not usable")
	}
	if g, _ := a.Generation(ctx); g != g0 {
		t.Fatalf("generation moved without a write: %d then %d", g0, g)
	}
	if err := b.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO roles (role_id, name) VALUES (?, ?)", 78, "other-writer")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if g1, ok := a.Generation(ctx); !ok || g1 == g0 {
		t.Fatalf("after another handle's write: generation %d (usable %v), before %d", g1, ok, g0)
	}
	t.Run("postgres", func(t *testing.T) {
		db, err := store.Open(ctx, pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, ok := db.Generation(ctx); ok {
			t.Fatal("PostgreSQL offered a usable generation")
		}
	})
}
