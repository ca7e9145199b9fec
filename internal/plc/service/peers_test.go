package service

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/peering"
	"github.com/planetlab/pl/internal/plc/store"
)

func peerKey(t testing.TB) (string, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return peering.FormatPublicKey(pub), priv
}

func (e *env) peer(name string) int64 {
	e.t.Helper()
	k, _ := peerKey(e.t)
	return e.add(e.admin, core.Peer, core.Record{"peername": name, "peer_url": "https://" + name + ".test/", "key": k})
}

// markForeign makes a local object foreign, as a refresh would store it.
func (e *env) markForeign(class core.Class, id, peer int64) {
	e.t.Helper()
	t, _ := store.TableOf(class)
	e.must(e.s.db.Write(e.ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(e.ctx, "UPDATE "+t.SQL+" SET peer_id = ?, peer_"+string(class)+"_id = ? WHERE "+t.PK+" = ?", peer, id+1000, id)
		return err
	}))
}

func TestPeersCRUD(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		k1, _ := peerKey(t)
		id := e.add(e.admin, core.Peer, core.Record{"peername": "PLE", "peer_url": "https://ple.test/", "key": strings.TrimPrefix(k1, peering.KeyPrefix), "shortname": "ple", "hrn_root": "ple"})
		recs := get(t, e, e.admin, core.Peer, "PLE")
		if len(recs) != 1 || recs[0]["peer_id"] != id || recs[0]["key"] != k1 || recs[0]["max_slices"] != int64(100) {
			t.Fatalf("GetPeers: %v", recs)
		}
		k2, _ := peerKey(t)
		bad := []struct {
			rec  core.Record
			code core.Code
			want string
		}{
			{core.Record{"peername": "PLE", "peer_url": "https://x.test/", "key": k2}, core.Conflict, "already in use"},
			{core.Record{"peername": "X", "peer_url": "http://x.test/", "key": k2}, core.Invalid, "scheme must be https"},
			{core.Record{"peername": "X", "peer_url": "https://x.test/api", "key": k2}, core.Invalid, "end with /"},
			{core.Record{"peername": "X", "peer_url": "https://x.test/", "key": "ed25519:AAAA"}, core.Invalid, "3 bytes, want 32"},
			{core.Record{"peername": "X", "peer_url": "https://x.test/", "key": k1}, core.Conflict, "already the key of peer"},
			{core.Record{"peername": " ", "peer_url": "https://x.test/", "key": k2}, core.Invalid, "must be specified"},
			{core.Record{"peername": "X", "peer_url": "https://x.test/", "key": k2, "cacert": "zz"}, core.Invalid, "cacert"},
			{core.Record{"peername": "X", "peer_url": "https://x.test/", "key": k2, "peer_id": 5}, core.Invalid, "cannot be set"},
		}
		for _, b := range bad {
			_, err := e.s.Add(e.ctx, e.admin, core.Peer, b.rec)
			wantCode(t, err, b.code, "AddPeer "+b.want)
			if !strings.Contains(err.Error(), b.want) {
				t.Errorf("AddPeer %v: %v, want %q", b.rec, err, b.want)
			}
		}
		user := e.person("u@x.test", 0, "user")
		_, err := e.s.Add(e.ctx, user, core.Peer, core.Record{"peername": "Y", "peer_url": "https://y.test/", "key": k2})
		wantCode(t, err, core.Forbidden, "AddPeer by a user")
		e.must(e.s.Update(e.ctx, e.admin, core.Peer, id, core.Record{"max_slices": 3, "peer_url": "https://ple2.test/"}))
		if r := get(t, e, user, core.Peer, nil)[0]; r["max_slices"] != int64(3) || r["peer_url"] != "https://ple2.test/" {
			t.Fatalf("after UpdatePeer: %v", r)
		}
		// Deleting a peer deletes what it is authoritative for.
		site := e.site("fs", 5)
		node := e.node(site, "n1.fs.test")
		e.markForeign(core.Site, site, id)
		e.markForeign(core.Node, node, id)
		if r := get(t, e, e.admin, core.Peer, id)[0]; !equalIDs(r["site_ids"], site) || !equalIDs(r["node_ids"], node) {
			t.Fatalf("peer's objects: %v", r)
		}
		e.must(e.s.Delete(e.ctx, e.admin, core.Peer, id))
		if n := len(get(t, e, e.admin, core.Node, node)); n != 0 {
			t.Fatalf("foreign node survived DeletePeer")
		}
		if n := len(get(t, e, e.admin, core.Peer, nil)); n != 0 {
			t.Fatalf("peer survived DeletePeer")
		}
		// The name is free again.
		e.add(e.admin, core.Peer, core.Record{"peername": "PLE", "peer_url": "https://ple.test/", "key": k1})
	})
}

func equalIDs(v any, want ...int64) bool {
	got, _ := v.([]int64)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestForeignReadOnly: every local mutation path refuses a foreign object
// (or a child of one) with the original's "Not a local ..." and changes
// nothing, while a local slice may use foreign nodes and persons.
func TestForeignReadOnly(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		peer := e.peer("B")
		local := e.site("loc", 10)
		pi := e.person("pi@loc.test", local, "pi")
		mine := e.slice(pi, "loc_mine")
		fsite := e.site("far", 10)
		fnode := e.node(fsite, "n1.far.test")
		fpiID := e.add(e.admin, core.Person, core.Record{"email": "pi@far.test", "first_name": "F", "last_name": "L"})
		e.must(e.s.Link(e.ctx, e.admin, core.PersonSite, fpiID, fsite, nil))
		fkey := e.add(e.admin, core.Key, core.Record{"person_id": fpiID, "key": sshKey(t)})
		fslice := e.slice(e.admin, "far_theirs")
		lnode := e.node(local, "n1.loc.test")
		for _, o := range []struct {
			c  core.Class
			id int64
		}{{core.Site, fsite}, {core.Node, fnode}, {core.Person, fpiID}, {core.Key, fkey}, {core.Slice, fslice}} {
			e.markForeign(o.c, o.id, peer)
		}
		before := snapshot(t, e)
		tt := e.tagType("vref")
		nodeTT, err := e.s.Add(e.ctx, e.admin, core.TagType, core.Record{"tagname": "rack"})
		e.must(err)
		refused := map[string]error{}
		try := func(name string, err error) { refused[name] = err }
		try("UpdateSite", e.s.Update(e.ctx, e.admin, core.Site, fsite, core.Record{"name": "x"}))
		try("DeleteSite", e.s.Delete(e.ctx, e.admin, core.Site, fsite))
		try("UpdateNode", e.s.Update(e.ctx, e.admin, core.Node, fnode, core.Record{"model": "x"}))
		try("DeleteNode", e.s.Delete(e.ctx, e.admin, core.Node, fnode))
		try("UpdatePerson", e.s.Update(e.ctx, e.admin, core.Person, fpiID, core.Record{"first_name": "x"}))
		try("DeletePerson", e.s.Delete(e.ctx, e.admin, core.Person, fpiID))
		try("UpdateKey", e.s.Update(e.ctx, e.admin, core.Key, fkey, core.Record{"key": sshKey(t)}))
		try("DeleteKey", e.s.Delete(e.ctx, e.admin, core.Key, fkey))
		try("BlacklistKey", e.s.BlacklistKey(e.ctx, e.admin, fkey))
		try("UpdateSlice", e.s.Update(e.ctx, e.admin, core.Slice, fslice, core.Record{"description": "x"}))
		try("DeleteSlice", e.s.Delete(e.ctx, e.admin, core.Slice, fslice))
		_, err = e.s.RenewSlice(e.ctx, e.admin, fslice, e.clock.Now().Unix()+86400)
		try("RenewSlice", err)
		_, err = e.s.Add(e.ctx, e.admin, core.Node, core.Record{"site_id": fsite, "hostname": "n2.far.test"})
		try("AddNode at a foreign site", err)
		_, err = e.s.Add(e.ctx, e.admin, core.Slice, core.Record{"name": "far_new"})
		try("AddSlice at a foreign site", err)
		_, err = e.s.Add(e.ctx, e.admin, core.Key, core.Record{"person_id": fpiID, "key": sshKey(t)})
		try("AddPersonKey to a foreign person", err)
		_, err = e.s.Add(e.ctx, e.admin, core.Interface, core.Record{"node_id": fnode, "method": "dhcp", "type": "ipv4"})
		try("AddInterface to a foreign node", err)
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": fslice, "tag_type_id": tt, "value": "x"})
		try("AddSliceTag to a foreign slice", err)
		_, err = e.s.Add(e.ctx, e.admin, core.NodeTag, core.Record{"node_id": fnode, "tag_type_id": nodeTT, "value": "x"})
		try("AddNodeTag to a foreign node", err)
		_, err = e.s.Add(e.ctx, e.admin, core.SiteTag, core.Record{"site_id": fsite, "tag_type_id": nodeTT, "value": "x"})
		try("AddSiteTag to a foreign site", err)
		try("AddPersonToSite (foreign person)", e.s.Link(e.ctx, e.admin, core.PersonSite, fpiID, local, nil))
		try("AddPersonToSite (foreign site)", e.s.Link(e.ctx, e.admin, core.PersonSite, pi.PersonID, fsite, nil))
		try("AddRoleToPerson", e.s.Link(e.ctx, e.admin, core.PersonRole, fpiID, 20, nil))
		try("AddSliceToNodes (foreign slice)", e.s.Link(e.ctx, e.admin, core.SliceNode, fslice, lnode, nil))
		try("AddPersonToSlice (foreign slice)", e.s.Link(e.ctx, e.admin, core.SlicePerson, fslice, pi.PersonID, nil))
		try("SetPersonPrimarySite", e.s.SetPersonPrimarySite(e.ctx, e.admin, fpiID, fsite))
		_, err = e.s.IssueJoinToken(e.ctx, e.admin, fnode)
		try("IssueJoinToken", err)
		_, _, err = e.s.AddLeases(e.ctx, e.admin, []int64{lnode}, fslice, e.clock.Now().Unix()+3600, e.clock.Now().Unix()+7200)
		try("AddLeases", err)
		for name, err := range refused {
			wantCode(t, err, core.Invalid, name)
			if !strings.Contains(err.Error(), "Not a local") || !strings.Contains(err.Error(), "belongs to peer") {
				t.Errorf("%s: %v", name, err)
			}
		}
		if after := snapshot(t, e); after != before {
			t.Fatalf("refused calls changed the registry:\n%s\n---\n%s", before, after)
		}
		// A local slice may hold foreign nodes and persons.
		e.must(e.s.Link(e.ctx, pi, core.SliceNode, mine, fnode, nil))
		e.must(e.s.Link(e.ctx, e.admin, core.SlicePerson, mine, fpiID, nil))
		if r := get(t, e, e.admin, core.Slice, mine)[0]; !equalIDs(r["node_ids"], fnode) {
			t.Fatalf("local slice on a foreign node: %v", r)
		}
		// peer_id filters.
		if recs := get(t, e, e.admin, core.Node, map[string]any{"peer_id": peer}, "hostname"); len(recs) != 1 || recs[0]["hostname"] != "n1.far.test" {
			t.Fatalf("GetNodes peer_id=%d: %v", peer, recs)
		}
		if recs := get(t, e, e.admin, core.Node, map[string]any{"peer_id": nil}, "hostname"); len(recs) != 1 || recs[0]["hostname"] != "n1.loc.test" {
			t.Fatalf("GetNodes peer_id=nil: %v", recs)
		}
	})
}

// snapshot renders the peered tables (what a refused call must not touch).
func snapshot(t *testing.T, e *env) string {
	t.Helper()
	var b strings.Builder
	for _, c := range []core.Class{core.Site, core.Node, core.Person, core.Key, core.Slice, core.Interface, core.SliceTag, core.NodeTag, core.SiteTag} {
		for _, r := range get(t, e, e.admin, c, nil) {
			delete(r, "last_updated")
			fmt.Fprintf(&b, "%s %v\n", c, r)
		}
	}
	return b.String()
}
