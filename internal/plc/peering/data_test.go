package peering

import (
	"encoding/json"
	"strings"
	"testing"
)

const goodData = `{
 "Sites": [{"site_id": 1, "login_base": "pla", "name": "PLC A site", "abbreviated_name": "A", "enabled": true, "is_public": true, "latitude": 48.8, "longitude": 2.3, "max_slices": 10}],
 "Nodes": [{"node_id": 5, "hostname": "n1.pla.test", "site_id": 1, "node_type": "regular", "boot_state": "boot"}],
 "PeerNodes": [{"node_id": 9, "hostname": "n1.plb.test", "site_id": 3, "peer_node_id": 2}],
 "PeerPersons": [{"person_id": 8, "email": "bob@plb.test", "peer_person_id": 4}],
 "Persons": [{"person_id": 7, "email": "ada@pla.test", "first_name": "Ada", "last_name": "L", "enabled": true, "site_ids": [1], "password": "ignored"}],
 "Keys": [{"key_id": 3, "person_id": 7, "key_type": "ssh", "key": "ssh-ed25519 AAAA ada"}],
 "Slices": [{"slice_id": 4, "name": "pla_demo", "site_id": 1, "instantiation": "plc-instantiated", "expires": 1900000000, "node_ids": [5, 9], "person_ids": [7, 8], "tags": [{"tagname": "initscript_code", "value": "#!/bin/sh"}]}],
 "db_time": 0.01
}`

func TestDecodeData(t *testing.T) {
	d, err := DecodeData([]byte(goodData))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Slices) != 1 || d.Slices[0].NodeIDs[1] != 9 || *d.PeerNodes[0].PeerNodeID != 2 {
		t.Fatalf("%+v", d)
	}
	bad := map[string]struct{ edit, want string }{
		"syntax":                 {`{"Sites": [}`, "peer data"},
		"duplicate key":          {`{"Sites": [], "Sites": []}`, "Sites"},
		"type":                   {`{"Sites": [{"site_id": "one"}]}`, "site_id"},
		"duplicate site id":      {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}, {"site_id": 1, "login_base": "b", "name": "b"}]}`, "Sites[1]: duplicate id 1"},
		"zero id":                {`{"Nodes": [{"node_id": 0}]}`, "Nodes[0]: id 0 out of range"},
		"dangling site":          {`{"Nodes": [{"node_id": 1, "hostname": "h", "site_id": 9}]}`, "site_id 9 is not among the Sites"},
		"duplicate hostname":     {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}], "Nodes": [{"node_id": 1, "hostname": "h", "site_id": 1}, {"node_id": 2, "hostname": "H", "site_id": 1}]}`, "hostname \"H\" already named"},
		"empty login_base":       {`{"Sites": [{"site_id": 1, "login_base": " ", "name": "a"}]}`, "login_base is empty"},
		"long name":              {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "` + strings.Repeat("x", 300) + `"}]}`, "name is 300 bytes"},
		"nul":                    {`{"Sites": [{"site_id": 1, "login_base": "a\u0000", "name": "a"}]}`, "NUL"},
		"key without person":     {`{"Keys": [{"key_id": 1, "person_id": 2, "key": "k"}]}`, "person_id 2 is not among the Persons"},
		"slice unknown node":     {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}], "Slices": [{"slice_id": 1, "name": "a_s", "site_id": 1, "node_ids": [4]}]}`, "node 4, among neither"},
		"peer node no id":        {`{"PeerNodes": [{"node_id": 1, "hostname": "h", "site_id": 1}]}`, "no peer_node_id"},
		"bad email":              {`{"Persons": [{"person_id": 1, "email": "nobody"}]}`, "not an address"},
		"peer person no id":      {`{"PeerPersons": [{"person_id": 1, "email": "b@plb.test"}]}`, "PeerPersons[0] (person_id 1): no peer_person_id"},
		"peer person twice":      {`{"Persons": [{"person_id": 1, "email": "a@pla.test"}], "PeerPersons": [{"person_id": 1, "peer_person_id": 3}]}`, "also among the Persons"},
		"peer person dup":        {`{"PeerPersons": [{"person_id": 1, "peer_person_id": 3}, {"person_id": 1, "peer_person_id": 4}]}`, "PeerPersons[1]: duplicate id 1"},
		"key of a peer person":   {`{"PeerPersons": [{"person_id": 1, "peer_person_id": 3}], "Keys": [{"key_id": 1, "person_id": 1, "key": "k"}]}`, "person_id 1 is not among the Persons"},
		"member twice":           {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}], "Persons": [{"person_id": 4, "email": "a@b"}], "Slices": [{"slice_id": 1, "name": "a_s", "site_id": 1, "person_ids": [4, 4]}]}`, "person_ids names 4 twice"},
		"node twice":             {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}], "Nodes": [{"node_id": 4, "hostname": "h", "site_id": 1}], "Slices": [{"slice_id": 1, "name": "a_s", "site_id": 1, "node_ids": [4, 4]}]}`, "node_ids names 4 twice"},
		"site twice":             {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}], "Persons": [{"person_id": 4, "email": "a@b", "site_ids": [1, 1]}]}`, "site_ids names 1 twice"},
		"two own nodes as one":   {`{"PeerNodes": [{"node_id": 1, "peer_node_id": 3}, {"node_id": 2, "peer_node_id": 3}]}`, "peer_node_id 3 already named by PeerNodes[0]"},
		"two own persons as one": {`{"PeerPersons": [{"person_id": 1, "peer_person_id": 3}, {"person_id": 2, "peer_person_id": 3}]}`, "peer_person_id 3 already named by PeerPersons[0]"},
		"trailing":               {`{} {}`, "after the JSON value"},
		"not an object":          {`[1]`, "peer data"},
		"slice unknown person":   {`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}], "Slices": [{"slice_id": 1, "name": "a_s", "site_id": 1, "person_ids": [4]}]}`, "person 4, among neither"},
	}
	for name, c := range bad {
		if _, err := DecodeData([]byte(c.edit)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzDecodeData: the decoder of what a peer sends never panics, and what
// it accepts passes Check again after a round trip.
func FuzzDecodeData(f *testing.F) {
	f.Add([]byte(goodData))
	f.Add([]byte(`{"Sites": [{"site_id": 1, "login_base": "a", "name": "a"}, {"site_id": 1}]}`))
	f.Add([]byte(`{"Slices": [{"slice_id": 2147483648}]}`))
	f.Add([]byte(`{"PeerPersons": [{"person_id": 1, "peer_person_id": 3}], "Slices": [{"slice_id": 1, "name": "a_b", "site_id": 1, "person_ids": [1, 1]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeData(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeData(again); err != nil {
			t.Fatalf("re-encoded accepted data refused: %v", err)
		}
	})
}

func TestCarriedTag(t *testing.T) {
	for name, want := range map[string]bool{"initscript_code": true, "ports": true, "vref": true, "enabled": false, "cpu_pct": false, "hrn": false, "no-such-tag": false} {
		if got := CarriedTag(name); got != want {
			t.Errorf("CarriedTag(%q) = %v, want %v", name, got, want)
		}
	}
}
