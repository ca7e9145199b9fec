package plcapi

import (
	"crypto/ed25519"
	"crypto/rand"
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
