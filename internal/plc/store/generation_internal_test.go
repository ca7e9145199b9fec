package store

import (
	"context"
	"path/filepath"
	"testing"
)

// TestGenerationCommitInProgress: while a write of this process commits,
// the generation is not usable; before and after it is, and it moved.
func TestGenerationCommitInProgress(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "plc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g0, ok := db.Generation(ctx)
	if !ok {
		t.Fatal("generation not usable on an idle SQLite store")
	}
	var during uint64
	var duringOK bool
	SetCommitHook(func() { during, duringOK = db.Generation(ctx) })
	defer SetCommitHook(nil)
	if err := db.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO roles (role_id, name) VALUES (?, ?)", 77, "gen-test")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	SetCommitHook(nil)
	if duringOK {
		t.Fatalf("generation %d usable while a commit was in progress", during)
	}
	g1, ok := db.Generation(ctx)
	if !ok || g1 == g0 {
		t.Fatalf("after a write: generation %d (usable %v), before %d", g1, ok, g0)
	}
	// A failed write (rolled back) commits nothing and moves nothing.
	db.Write(ctx, func(tx *Tx) error { return context.Canceled })
	if g2, ok := db.Generation(ctx); !ok || g2 != g1 {
		t.Fatalf("after a rolled-back write: generation %d (usable %v), want %d", g2, ok, g1)
	}
}
