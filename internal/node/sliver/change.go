package sliver

import "github.com/planetlab/pl/internal/node/fielddiff"

// What a change of a Spec field takes on an existing sliver: the class in
// the field's diff tag.
const (
	changeIdentity = "identity" // the sliver's name: never changes for one sliver
	changeRecreate = "recreate" // host structures rebuilt: destroy, then create (Apply, layout)
	changeRestart  = "restart"  // container re-created in the new network namespace (Apply)
	changeFiles    = "files"    // account files rewritten; a changed init script is re-run (update)
	changeFreezer  = "freezer"  // paused or resumed (update)
	changeCgroup   = "cgroup"   // runc update of the cgroup limits (update, live)
	changeRlimit   = "rlimit"   // prlimit of the sliver's processes (update, live)
	changeQuota    = "quota"    // btrfs qgroup limit (update, live)
	changeUTS      = "uts"      // host name set in the sliver's UTS namespace (update, live)
)

// stateChanges are the classes handled whatever changed, by comparing the
// host's state (files, freezer) or by Apply (identity, recreate, restart);
// the others are live changes that update applies when a field of theirs
// changed (liveChanges, runtime_linux.go).
var stateChanges = map[string]bool{
	changeIdentity: true, changeRecreate: true, changeRestart: true, changeFiles: true, changeFreezer: true,
}

// changedClasses returns the classes of the fields that differ between
// the applied spec prev and s; with no applied spec, all of them.
func changedClasses(prev *Spec, s Spec) (changed map[string]bool, all bool) {
	if prev == nil {
		return nil, true
	}
	return fielddiff.Classes(fielddiff.Diff(*prev, s)), false
}

// Changes names the fields in which two specs differ (e.g. "cpu_shares",
// "keys"), in declaration order.
func Changes(a, b Spec) []string { return fielddiff.Names(fielddiff.Diff(a, b)) }
