package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestGENISlivers: the GENI aggregate's rows survive a reopen, replace
// rows of the same key, hide and then drop expired allocations, and are
// deleted by ref or by slice.
func TestGENISlivers(t *testing.T) {
	dialects(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var slice int64
		err := db.Write(ctx, func(tx *store.Tx) error {
			site, err := tx.Insert(ctx, "sites", "site_id", []string{"login_base", "name", "abbreviated_name", "date_created", "last_updated"}, []any{"pr", "P", "p", 1, 1})
			if err != nil {
				return err
			}
			slice, err = tx.Insert(ctx, "slices", "slice_id", []string{"site_id", "name", "created", "expires"}, []any{site, "pr_x", 1, 1 << 40})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		n1 := core.GENISliver{SliceID: slice, Kind: core.GENINode, Ref: "1", ClientID: "a", AllocatedUntil: 100}
		n2 := core.GENISliver{SliceID: slice, Kind: core.GENINode, Ref: "2", ClientID: "b"}
		l := core.GENISliver{SliceID: slice, Kind: core.GENILink, Ref: "l0", ClientID: "link-0", AllocatedUntil: 200, Spec: "l0 h1 h2 rate=100kbit"}
		if err := db.PutGENISlivers(ctx, 10, n1, n2, l); err != nil {
			t.Fatal(err)
		}
		got, err := db.GENISlivers(ctx, slice, 50)
		if err != nil || !reflect.DeepEqual(got, []core.GENISliver{l, n1, n2}) {
			t.Fatalf("rows %+v %v", got, err)
		}
		// Replaced: n1 provisioned, a restart in progress.
		n1.AllocatedUntil, n1.RestartUntil, n1.RestartActor = 0, 60, "urn:publicid:IDN+a+user+b"
		if err := db.PutGENISlivers(ctx, 10, n1); err != nil {
			t.Fatal(err)
		}
		// At 250 the link's allocation has expired: hidden, then dropped
		// by the next write.
		if got, _ := db.GENISlivers(ctx, slice, 250); !reflect.DeepEqual(got, []core.GENISliver{n1, n2}) {
			t.Fatalf("after expiry %+v", got)
		}
		if err := db.PutGENISlivers(ctx, 250, n2); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.GENISlivers(ctx, slice, 0); !reflect.DeepEqual(got, []core.GENISliver{n1, n2}) {
			t.Fatalf("expired allocation not dropped %+v", got)
		}
		if err := db.DeleteGENISlivers(ctx, slice, core.GENINode, "1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.GENISlivers(ctx, slice, 0); !reflect.DeepEqual(got, []core.GENISliver{n2}) {
			t.Fatalf("after delete %+v", got)
		}
		if err := db.DeleteGENISlivers(ctx, slice, ""); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.GENISlivers(ctx, slice, 0); len(got) != 0 {
			t.Fatalf("after deleting the slice's rows %+v", got)
		}
	})
}
