package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// TestStatementCache: statements are reused per connection, a statement
// whose rows are still open is not handed out twice, and the cache stays
// bounded with correct answers past its bound.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const q = "SELECT value FROM json_each(?) ORDER BY value"
	err = db.Read(ctx, func(tx *Tx) error {
		outer, err := tx.Query(ctx, q, "[1,2,3]")
		if err != nil {
			return err
		}
		defer outer.Close()
		var got []int64
		for outer.Next() {
			var v int64
			if err := outer.Scan(&v); err != nil {
				return err
			}
			got = append(got, v)
			// The same SQL while the outer rows are open.
			inner, err := tx.Ints(ctx, q, "[7,8]")
			if err != nil {
				return err
			}
			if fmt.Sprint(inner) != "[7 8]" {
				return fmt.Errorf("inner %v", inner)
			}
		}
		if fmt.Sprint(got) != "[1 2 3]" {
			return fmt.Errorf("outer %v", got)
		}
		for i := 0; i < maxCachedStmts+50; i++ {
			n, err := tx.Int(ctx, fmt.Sprintf("SELECT %d + ?", i), 1)
			if err != nil || n != int64(i+1) {
				return fmt.Errorf("statement %d: %d %v", i, n, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cached, busy int
	conn.Raw(func(dc any) error {
		c := dc.(*cachingConn)
		cached = len(c.stmts)
		for _, s := range c.stmts {
			if s.busy {
				busy++
			}
		}
		return nil
	})
	if cached == 0 || cached > maxCachedStmts || busy != 0 {
		t.Fatalf("%d statements cached (bound %d), %d still busy", cached, maxCachedStmts, busy)
	}
}
