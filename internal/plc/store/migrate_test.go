package store

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/plc/store/pgtest"
)

// TestMigrationScripts runs migrations whose string literals hold what a
// splitter or a placeholder rewriter would break (';', '?', '--', a quoted
// quote) on both dialects, and one that fails half way: it leaves nothing
// behind and the version where it was.
func TestMigrationScripts(t *testing.T) {
	eachDialect(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		base := len(migrations)
		values := []string{"a;b", "why?", "-- not a comment;", "it's; done", "$1 ?"}
		var script strings.Builder
		script.WriteString("CREATE TABLE semi (n {{ID}}, v TEXT NOT NULL);\n")
		for _, v := range values {
			script.WriteString("INSERT INTO semi (v) VALUES ('" + strings.ReplaceAll(v, "'", "''") + "');\n")
		}
		list := append(slices.Clip(migrations), script.String())
		if err := db.apply(ctx, list); err != nil {
			t.Fatal(err)
		}
		if v, err := db.SchemaVersion(ctx); err != nil || v != base+1 {
			t.Fatalf("version %d, %v; want %d", v, err, base+1)
		}
		if got := semiValues(t, db); !slices.Equal(got, values) {
			t.Fatalf("stored %q, want %q", got, values)
		}

		// The second statement fails: the first is undone too.
		bad := "CREATE TABLE half (v TEXT);\nINSERT INTO no_such_table VALUES ('x;y');\n"
		err = db.apply(ctx, append(list, bad))
		if err == nil || !strings.Contains(err.Error(), "migration "+strconv.Itoa(base+2)) {
			t.Fatalf("failing migration: %v", err)
		}
		if v, err := db.SchemaVersion(ctx); err != nil || v != base+1 {
			t.Fatalf("after a failed migration: version %d, %v; want %d", v, err, base+1)
		}
		err = db.Read(ctx, func(tx *Tx) error {
			_, err := tx.Exec(ctx, "SELECT * FROM half")
			return err
		})
		if err == nil {
			t.Fatal("table half exists after its migration failed")
		}
		// Applied migrations are not run again.
		if err := db.apply(ctx, list); err != nil {
			t.Fatal(err)
		}
		if got := semiValues(t, db); len(got) != len(values) {
			t.Fatalf("rows %q after re-applying", got)
		}
	})
}

// eachDialect runs f with the DSN of a fresh SQLite file and of a fresh
// PostgreSQL database (see pgtest), each as a subtest.
func eachDialect(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "plc.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, pgtest.DSN(t)) })
}

func semiValues(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	err := db.Read(context.Background(), func(tx *Tx) error {
		rows, err := tx.Query(context.Background(), "SELECT v FROM semi ORDER BY n")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
