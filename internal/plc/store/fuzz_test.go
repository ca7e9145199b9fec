package store_test

import (
	"encoding/json"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// FuzzCheck feeds JSON-decoded records to every class's validation: it
// must answer a domain error or values of the declared types, never panic.
func FuzzCheck(f *testing.F) {
	f.Add(`{"login_base":"pl","name":"n","abbreviated_name":"a","latitude":1.5}`, true)
	f.Add(`{"hostname":"x.org","site_id":1,"node_type":null}`, false)
	f.Add(`{"email":"a@b.c","enabled":true,"max_slices":2.5}`, false)
	f.Fuzz(func(t *testing.T, js string, add bool) {
		var rec core.Record
		if json.Unmarshal([]byte(js), &rec) != nil {
			return
		}
		for _, c := range store.Classes() {
			tbl, _ := store.TableOf(c)
			out, err := tbl.Check(rec, add)
			if err != nil {
				_, inRec := rec[core.ErrorField(err)]
				_, inTable := tbl.Field(core.ErrorField(err))
				if core.ErrorCode(err) != core.Invalid || !inRec && !inTable {
					t.Fatalf("%s: error without code/field: %v", c, err)
				}
				continue
			}
			for k, v := range out {
				fd, ok := tbl.Field(k)
				if !ok {
					t.Fatalf("%s: unknown field %s passed", c, k)
				}
				switch x := v.(type) {
				case nil:
					if !fd.Null {
						t.Fatalf("%s.%s: nil passed", c, k)
					}
				case string:
					if fd.Type != store.String || fd.Max > 0 && len(x) > fd.Max {
						t.Fatalf("%s.%s: bad string %q", c, k, x)
					}
				case int64:
					if fd.Type != store.Int {
						t.Fatalf("%s.%s: int for %s", c, k, fd.Type)
					}
				case float64:
					if fd.Type != store.Float {
						t.Fatalf("%s.%s: double for %s", c, k, fd.Type)
					}
				case bool:
					if fd.Type != store.Bool {
						t.Fatalf("%s.%s: bool for %s", c, k, fd.Type)
					}
				default:
					t.Fatalf("%s.%s: value of type %T", c, k, v)
				}
			}
		}
	})
}
