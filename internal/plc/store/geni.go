package store

import (
	"context"

	"github.com/planetlab/pl/internal/core"
)

// The GENI aggregate's memory (geni_slivers, docs/geni.md): allocated
// slivers and links not yet provisioned, the client_id of provisioned
// ones, and restarts in progress, so that a restart of PLC (or another
// replica) keeps them.

// GENISlivers returns the rows of a slice, allocations expired at now
// left out, ordered by kind and ref.
func (db *DB) GENISlivers(ctx context.Context, sliceID, now int64) ([]core.GENISliver, error) {
	var out []core.GENISliver
	err := db.Read(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `SELECT slice_id, kind, ref, client_id, allocated_until, spec, restart_until, restart_actor
			FROM geni_slivers WHERE slice_id = ? AND (allocated_until = 0 OR allocated_until > ?) ORDER BY kind, ref`, sliceID, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g core.GENISliver
			if err := rows.Scan(&g.SliceID, &g.Kind, &g.Ref, &g.ClientID, &g.AllocatedUntil, &g.Spec, &g.RestartUntil, &g.RestartActor); err != nil {
				return wrapDB("scan", err)
			}
			out = append(out, g)
		}
		return wrapDB("rows", rows.Err())
	})
	return out, err
}

// PutGENISlivers writes rows (replacing those with the same slice, kind
// and ref) and drops the allocations of their slices expired at now, in
// one transaction.
func (db *DB) PutGENISlivers(ctx context.Context, now int64, rows ...core.GENISliver) error {
	return db.Write(ctx, func(tx *Tx) error {
		done := map[int64]bool{}
		for _, g := range rows {
			if !done[g.SliceID] {
				if _, err := tx.Exec(ctx, "DELETE FROM geni_slivers WHERE slice_id = ? AND allocated_until > 0 AND allocated_until <= ?", g.SliceID, now); err != nil {
					return err
				}
				done[g.SliceID] = true
			}
			if _, err := tx.Exec(ctx, `INSERT INTO geni_slivers (slice_id, kind, ref, client_id, allocated_until, spec, restart_until, restart_actor)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (slice_id, kind, ref) DO UPDATE SET client_id = excluded.client_id,
				allocated_until = excluded.allocated_until, spec = excluded.spec, restart_until = excluded.restart_until, restart_actor = excluded.restart_actor`,
				g.SliceID, g.Kind, g.Ref, g.ClientID, g.AllocatedUntil, g.Spec, g.RestartUntil, g.RestartActor); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteGENISlivers deletes rows of a slice: those of kind with the given
// refs, or every row of the slice when kind is "".
func (db *DB) DeleteGENISlivers(ctx context.Context, sliceID int64, kind string, refs ...string) error {
	return db.Write(ctx, func(tx *Tx) error {
		if kind == "" {
			_, err := tx.Exec(ctx, "DELETE FROM geni_slivers WHERE slice_id = ?", sliceID)
			return err
		}
		for _, r := range refs {
			if _, err := tx.Exec(ctx, "DELETE FROM geni_slivers WHERE slice_id = ? AND kind = ? AND ref = ?", sliceID, kind, r); err != nil {
				return err
			}
		}
		return nil
	})
}
