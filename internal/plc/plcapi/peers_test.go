package plcapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/planetlab/pl/internal/plc/peering"
)

// TestPeerMethods drives AddPeer, GetPeers (and the peer_id filters),
// UpdatePeer, RefreshPeer, GetPeerData and DeletePeer through XML-RPC over
// the real service.
func TestPeerMethods(t *testing.T) {
	s, _ := realService(t)
	h := NewHandler(s, Options{})
	root := map[string]any{"AuthMethod": "password", "Username": itAdmin, "AuthString": itAdminPW}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	key := peering.FormatPublicKey(pub)
	v, f := rpc(t, h, "AddPeer", root, map[string]any{"peername": "PLE", "peer_url": "https://127.0.0.1:1/", "key": key, "shortname": "ple", "hrn_root": "ple"})
	if f != nil {
		t.Fatal(f)
	}
	id := v.(int64)
	_, f = rpc(t, h, "AddPeer", root, map[string]any{"peername": "X", "peer_url": "https://x.test/"})
	wantFault(t, f, 102, "person_id 1: AddPeer: Invalid peer_fields value: 'key' not specified")
	_, f = rpc(t, h, "AddPeer", root, map[string]any{"peername": "X", "peer_url": "http://x.test/", "key": key})
	wantFault(t, f, 102, "person_id 1: AddPeer: Invalid peer_url value: Peer URL scheme must be https, got \"http\"")
	v, f = rpc(t, h, "GetPeers", root, []any{"PLE"}, []any{"peer_id", "peername", "key", "node_ids"})
	if f != nil {
		t.Fatal(f)
	}
	if ps := v.([]any); len(ps) != 1 || ps[0].(map[string]any)["peer_id"] != id || ps[0].(map[string]any)["key"] != key {
		t.Fatalf("GetPeers: %v", v)
	}
	if _, f = rpc(t, h, "UpdatePeer", root, "PLE", map[string]any{"max_slices": 2}); f != nil {
		t.Fatal(f)
	}
	_, f = rpc(t, h, "UpdatePeer", root, "PLE", map[string]any{"peer_id": 9})
	wantFault(t, f, 102, "person_id 1: UpdatePeer: Invalid peer_id value: peer field \"peer_id\" cannot be changed")
	// peer_id filters: local objects have peer_id nil.
	v, f = rpc(t, h, "GetSites", root, map[string]any{"peer_id": nil}, []any{"login_base", "peer_id", "peer_site_id"})
	if f != nil || len(v.([]any)) != 1 || v.([]any)[0].(map[string]any)["peer_id"] != nil {
		t.Fatalf("GetSites peer_id=nil: %v %v", v, f)
	}
	v, f = rpc(t, h, "GetNodes", root, map[string]any{"peer_id": id})
	if f != nil || len(v.([]any)) != 0 {
		t.Fatalf("GetNodes peer_id=%d: %v %v", id, v, f)
	}
	// This PLC has no peer key (the server always makes one).
	_, f = rpc(t, h, "RefreshPeer", root, id)
	wantFault(t, f, 109, "person_id 1: RefreshPeer: Not fully implemented: peering is not configured on this PLC (no peer key)")
	v, f = rpc(t, h, "GetPeerData", root)
	if f != nil {
		t.Fatal(f)
	}
	for _, k := range []string{"Sites", "Keys", "Nodes", "Persons", "Slices", "db_time"} {
		if _, ok := v.(map[string]any)[k]; !ok {
			t.Fatalf("GetPeerData lacks %s: %v", k, v)
		}
	}
	if _, f = rpc(t, h, "DeletePeer", root, "PLE"); f != nil {
		t.Fatal(f)
	}
	_, f = rpc(t, h, "GetPeerData", map[string]any{"AuthMethod": "gpg", "name": "PLE", "signature": "x"})
	wantFault(t, f, 103, ": GetPeerData: Failed to authenticate call: GPGAuth: not supported: peer PLCs authenticate with Ed25519 signatures at /api/v1/peer/ (docs/federation.md)")
}

// TestPeerBindMethods drives BindObjectToPeer, UnBindObjectFromPeer,
// DeleteAllPeerEntries and GetPeerName with the original's argument
// shapes; the answers and faults are those the original server gave for
// the same calls (where it answered: its DeleteAllPeerEntries crashes
// after deleting).
func TestPeerBindMethods(t *testing.T) {
	s, _ := realService(t)
	h := NewHandler(s, Options{})
	root := map[string]any{"AuthMethod": "password", "Username": itAdmin, "AuthString": itAdminPW}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	v, f := rpc(t, h, "AddPeer", root, map[string]any{"peername": "plc2", "peer_url": "https://plc.test/", "key": peering.FormatPublicKey(pub), "shortname": "PLC"})
	if f != nil {
		t.Fatal(f)
	}
	peer := v.(int64)
	v, f = rpc(t, h, "AddSite", root, map[string]any{"name": "S", "abbreviated_name": "s", "login_base": "sx"})
	if f != nil {
		t.Fatal(f)
	}
	site := v.(int64)
	v, f = rpc(t, h, "AddSite", root, map[string]any{"name": "S2", "abbreviated_name": "s2", "login_base": "sy"})
	if f != nil {
		t.Fatal(f)
	}
	site2 := v.(int64)
	peerOf := func(id int64) (any, any) {
		t.Helper()
		v, f := rpc(t, h, "GetSites", root, map[string]any{"site_id": id}, []any{"peer_id", "peer_site_id"})
		if f != nil {
			t.Fatal(f)
		}
		if len(v.([]any)) == 0 {
			return "gone", "gone"
		}
		r := v.([]any)[0].(map[string]any)
		return r["peer_id"], r["peer_site_id"]
	}
	ok := func(method string, args ...any) {
		t.Helper()
		v, f := rpc(t, h, method, append([]any{root}, args...)...)
		if f != nil || v != int64(1) {
			t.Fatalf("%s%v: %v %v, want 1", method, args, v, f)
		}
	}

	v, f = rpc(t, h, "GetPeerName", root)
	if f != nil || v != "PlanetLab Central" {
		t.Fatalf("GetPeerName: %v %v", v, f)
	}
	_, f = rpc(t, h, "BindObjectToPeer", root, "site", site, "nope", 7)
	wantFault(t, f, 102, "person_id 1: BindObjectToPeer: Invalid argument: No such peer with shortname nope")
	_, f = rpc(t, h, "BindObjectToPeer", root, "sitex", site, "PLC", 7)
	wantFault(t, f, 102, "person_id 1: BindObjectToPeer: Invalid object_type value: Unrecognized object type sitex")
	_, f = rpc(t, h, "BindObjectToPeer", root, "site", 999, "PLC", 7)
	wantFault(t, f, 102, "person_id 1: BindObjectToPeer: Invalid argument: Cannot locate object, type=site id=999")
	ok("BindObjectToPeer", "site", site, "PLC", 7)
	if p, r := peerOf(site); p != peer || r != int64(7) {
		t.Fatalf("bound site: peer_id %v peer_site_id %v", p, r)
	}
	ok("BindObjectToPeer", "Site", site, "plc", 8) // already the peer's: unchanged
	if _, r := peerOf(site); r != int64(7) {
		t.Fatalf("a second bind changed peer_site_id to %v", r)
	}
	_, f = rpc(t, h, "UpdateSite", root, site, map[string]any{"name": "T"})
	wantFault(t, f, 102, fmt.Sprintf("person_id 1: UpdateSite: Invalid argument: Not a local site: site %d belongs to peer %d and is read-only here", site, peer))
	_, f = rpc(t, h, "BindObjectToPeer", root, "site", site2, "PLC", 7)
	wantFault(t, f, 102, fmt.Sprintf("person_id 1: BindObjectToPeer: Invalid argument: peer %d's site 7 is already site %d here", peer, site))
	if p, _ := peerOf(site2); p != nil {
		t.Fatalf("a refused bind changed the site: peer_id %v", p)
	}
	ok("BindObjectToPeer", "site", site2, "PLC", 0)
	_, f = rpc(t, h, "BindObjectToPeer", root, "site", 1, "PLC", 3)
	wantFault(t, f, 102, "person_id 1: BindObjectToPeer: Invalid argument: site 1 is (at) the system site, this PLC's own: it cannot be bound to a peer")

	_, f = rpc(t, h, "UnBindObjectFromPeer", root, "site", site, "PLC", 7)
	wantFault(t, f, 101, ": UnBindObjectFromPeer: Expected 4 arguments, got 5")
	ok("UnBindObjectFromPeer", "site", site, "PLC")
	if p, r := peerOf(site); p != nil || r != nil {
		t.Fatalf("unbound site: peer_id %v peer_site_id %v", p, r)
	}
	ok("UnBindObjectFromPeer", "site", site, "PLC") // not the peer's: nothing to do
	ok("UnBindObjectFromPeer", "person", 1, "PLC")
	_, f = rpc(t, h, "UnBindObjectFromPeer", root, "site", 999, "PLC")
	wantFault(t, f, 102, "person_id 1: UnBindObjectFromPeer: Invalid argument: Cannot locate object, type=site id=999")
	_, f = rpc(t, h, "UnBindObjectFromPeer", root, "bogus", site, "PLC")
	wantFault(t, f, 102, "person_id 1: UnBindObjectFromPeer: Invalid object_type value: Unrecognized object type bogus")

	_, f = rpc(t, h, "DeleteAllPeerEntries", root, 999)
	wantFault(t, f, 102, "person_id 1: DeleteAllPeerEntries: Invalid argument: No such peer 999")
	ok("DeleteAllPeerEntries", "plc2")
	if p, _ := peerOf(site2); p != "gone" {
		t.Fatalf("the peer's site after DeleteAllPeerEntries: peer_id %v", p)
	}
	if p, _ := peerOf(site); p != nil {
		t.Fatalf("DeleteAllPeerEntries touched a local site: %v", p)
	}
	v, f = rpc(t, h, "GetPeers", root, nil, []any{"peername", "site_ids"})
	if f != nil || len(v.([]any)) != 1 || len(v.([]any)[0].(map[string]any)["site_ids"].([]any)) != 0 {
		t.Fatalf("the peer after DeleteAllPeerEntries: %v %v", v, f)
	}
	user := map[string]any{"AuthMethod": "anonymous"}
	_, f = rpc(t, h, "GetPeerName", user)
	if f == nil {
		t.Fatal("GetPeerName answered an anonymous caller")
	}
}
