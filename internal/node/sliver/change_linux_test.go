package sliver

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/node/fielddiff"
)

// TestEverySpecFieldIsClassified fails when a field of Spec (Resources
// included) has no diff tag, or a class that neither Apply nor update
// handles: a new field cannot be silently ignored by the change check.
func TestEverySpecFieldIsClassified(t *testing.T) {
	fs, err := fielddiff.Fields(reflect.TypeFor[Spec]())
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, c := range liveChanges {
		if stateChanges[c.class] || live[c.class] {
			t.Errorf("class %q handled twice", c.class)
		}
		live[c.class] = true
	}
	resources := 0
	for _, f := range fs {
		if !stateChanges[f.Class] && !live[f.Class] {
			t.Errorf("field %s (%s): class %q is handled neither by Apply nor by update", f.Path, f.Name, f.Class)
		}
		if strings.HasPrefix(f.Path, "Resources.") {
			resources++
			if !live[f.Class] {
				t.Errorf("limit %s is not changed live", f.Path)
			}
		}
	}
	if n := reflect.TypeFor[Resources]().NumField(); resources != n {
		t.Errorf("%d of %d fields of Resources compared", resources, n)
	}
}

func TestChanges(t *testing.T) {
	a := validSpec()
	b := a
	b.Keys = []string{}
	if c := Changes(a, b); len(c) != 0 {
		t.Errorf("nil and empty keys differ: %v", c)
	}
	b.Keys = []string{"ssh-ed25519 AAAA"}
	b.Resources.Pids = 100
	b.Resources.DiskBytes = 1 << 30
	b.Hostname = "node1.example.org"
	if c := Changes(a, b); !slices.Equal(c, []string{"keys", "pids", "disk", "hostname"}) {
		t.Errorf("Changes = %v", c)
	}
	changed, all := changedClasses(&a, b)
	if all || !slices.Equal(slices.Sorted(maps.Keys(changed)), []string{changeCgroup, changeFiles, changeQuota, changeUTS}) {
		t.Errorf("classes = %v %v", changed, all)
	}
	if _, all := changedClasses(nil, b); !all {
		t.Error("no applied spec: every live class applies")
	}
}
