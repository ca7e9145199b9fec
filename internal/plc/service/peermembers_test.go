package service

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// TestPeerMemberOfOtherPLC: a person of B who is a member of A's slice
// gets into that slice's sliver on B's node with the keys B has for them
// (A hands B a reference to B's own person, not a copy), follows key
// changes made at B without A refreshing, and leaves when A removes them.
func TestPeerMemberOfOtherPLC(t *testing.T) {
	a, b, bAtA, aAtB, nodeA, nodeB := twoPLCs(t, filepath.Join(t.TempDir(), "a.db"), filepath.Join(t.TempDir(), "b.db"))
	// Bob is B's: a member of B's slice on A's node, so A knows him.
	bsite := get(t, b.env, b.admin, core.Site, "plb", "site_id")[0]["site_id"].(int64)
	bob := b.person("bob@plb.test", bsite, "pi", "user")
	bobKey := sshKey(t)
	b.add(bob, core.Key, core.Record{"person_id": bob.PersonID, "key": bobKey})
	bs := b.slice(bob, "plb_exp")
	b.must(b.s.Link(b.ctx, bob, core.SlicePerson, bs, bob.PersonID, nil))
	atB := get(t, b.env, b.admin, core.Node, "n1.pla.test", "node_id")[0]["node_id"].(int64)
	b.must(b.s.Link(b.ctx, bob, core.SliceNode, bs, atB, nil))
	a.refresh(bAtA)
	bobAtA := get(t, a.env, a.admin, core.Person, "bob@plb.test", "person_id", "peer_id")
	if len(bobAtA) != 1 || bobAtA[0]["peer_id"] != bAtA {
		t.Fatalf("bob at A: %v", bobAtA)
	}
	// A's slice on B's node with A's pi and B's bob.
	asite := get(t, a.env, a.admin, core.Site, "pla", "site_id")[0]["site_id"].(int64)
	pi := a.person("pi@pla.test", asite, "pi", "user")
	piKey := sshKey(t)
	a.add(pi, core.Key, core.Record{"person_id": pi.PersonID, "key": piKey})
	as := a.slice(pi, "pla_demo")
	remote := get(t, a.env, a.admin, core.Node, "n1.plb.test", "node_id")[0]["node_id"].(int64)
	for _, p := range []int64{pi.PersonID, bobAtA[0]["person_id"].(int64)} {
		a.must(a.s.Link(a.ctx, pi, core.SlicePerson, as, p, nil))
	}
	a.must(a.s.Link(a.ctx, pi, core.SliceNode, as, remote, nil))
	a.must(a.s.Link(a.ctx, pi, core.SliceNode, as, nodeA, nil))
	b.refresh(aAtB)

	hasKey := func(keys []string, key string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { return strings.Fields(k)[1] == strings.Fields(key)[1] })
	}
	keys := b.sliverKeys(nodeB, "pla_demo")
	if len(keys) != 2 || !hasKey(keys, piKey) || !hasKey(keys, bobKey) {
		t.Fatalf("the sliver on B's node: keys %v, want pi's and bob's", keys)
	}
	// At B the slice's members are A's pi (foreign) and B's own bob.
	fs := get(t, b.env, b.admin, core.Slice, "pla_demo", "person_ids")[0]["person_ids"].([]int64)
	if !slices.Contains(fs, bob.PersonID) || len(fs) != 2 {
		t.Fatalf("members of A's slice at B: %v (bob is %d)", fs, bob.PersonID)
	}
	if n := len(get(t, b.env, b.admin, core.Person, map[string]any{"email": "bob@plb.test"})); n != 1 {
		t.Fatalf("bob copied at B: %d persons", n)
	}
	// Bob's new key at B reaches the sliver with no refresh of A.
	bobKey2 := sshKey(t)
	b.add(bob, core.Key, core.Record{"person_id": bob.PersonID, "key": bobKey2})
	if keys := b.sliverKeys(nodeB, "pla_demo"); !hasKey(keys, bobKey2) {
		t.Fatalf("bob's second key not in the sliver: %v", keys)
	}
	// On A's node, bob's keys are those A has (B's copy at its last refresh).
	if keys := a.sliverKeys(nodeA, "pla_demo"); !hasKey(keys, bobKey) {
		t.Fatalf("the sliver on A's node: %v", keys)
	}
	// A removes bob: he leaves the sliver at B's next refresh of A.
	a.must(a.s.Unlink(a.ctx, pi, core.SlicePerson, as, bobAtA[0]["person_id"].(int64)))
	b.refresh(aAtB)
	if keys := b.sliverKeys(nodeB, "pla_demo"); len(keys) != 1 || !hasKey(keys, piKey) {
		t.Fatalf("after bob's removal at A: %v", keys)
	}
}
