package service

import (
	"reflect"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

// TestVLinks: PLC refuses topologies it cannot build, precisely, and
// resolves an accepted one into each node's link ends.
func TestVLinks(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("vl", 10)
		a := e.slice(e.admin, "vl_a")
		b := e.slice(e.admin, "vl_b")
		var nodes []int64
		for i, h := range []string{"n1.vl.org", "n2.vl.org", "n3.vl.org"} {
			n := e.node(site, h)
			ip := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}[i]
			e.add(e.admin, core.Interface, core.Record{"node_id": n, "method": "static", "ip": ip, "network": "192.0.2.0", "netmask": "255.255.255.0",
				"broadcast": "192.0.2.255", "gateway": "192.0.2.254", "dns1": "192.0.2.53", "is_primary": true})
			nodes = append(nodes, n)
		}
		for _, l := range [][2]int64{{a, nodes[0]}, {a, nodes[1]}, {a, nodes[2]}, {b, nodes[0]}, {b, nodes[1]}} {
			e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, l[0], l[1], nil))
		}
		tt := e.tagType("vlinks")
		add := func(slice int64, value string, scope ...any) error {
			rec := core.Record{"slice_id": slice, "tag_type_id": tt, "value": value}
			for i := 0; i+1 < len(scope); i += 2 {
				rec[scope[i].(string)] = scope[i+1]
			}
			_, err := e.s.Add(e.ctx, e.admin, core.SliceTag, rec)
			return err
		}
		says := func(err error, code core.Code, want string) {
			t.Helper()
			wantCode(t, err, code, want)
			if err != nil && !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		says(add(a, "prefix 10.200.0.0/24; ab n1.vl.org n2.vl.org rate=0"), core.Invalid, "rate 0 is impossible")
		says(add(a, "prefix 10.200.0.0/24; ab n1.vl.org n2.vl.org; ba n2.vl.org n1.vl.org"), core.Invalid, `link "ba" duplicates link "ab"`)
		says(add(b, "prefix 10.201.0.0/24; ab n1.vl.org n3.vl.org"), core.Invalid, "link ab: n3.vl.org is not a node of slice vl_b")
		says(add(b, "prefix 10.201.0.0/24; ab n1.vl.org n9.vl.org"), core.Invalid, "n9.vl.org is not a node of slice vl_b")
		says(add(a, "prefix 10.200.0.0/24", "node_id", nodes[0]), core.Invalid, "cannot be scoped to one node")

		id := e.tag(e.admin, a, "vlinks", "prefix 10.200.0.0/24; ab n1.vl.org n2.vl.org rate=20mbit delay=5ms; bc n2.vl.org n3.vl.org loss=1%; ca N3.vl.org n1.vl.org")
		says(add(a, "prefix 10.210.0.0/24"), core.Conflict, "already has a vlinks tag")
		says(add(b, "prefix 10.200.0.0/16"), core.Conflict, "prefix 10.200.0.0/16 overlaps prefix 10.200.0.0/24 of slice vl_a")
		e.tag(e.admin, b, "vlinks", "prefix 10.201.0.0/24; ab n1.vl.org n2.vl.org")
		// Updating a's own tag is not a second tag, nor an overlap with itself.
		e.must(e.s.Update(e.ctx, e.admin, core.SliceTag, id, core.Record{"value": "prefix 10.200.0.0/23; ab n1.vl.org n2.vl.org rate=20mbit delay=5ms; bc n2.vl.org n3.vl.org loss=1%; ca n3.vl.org n1.vl.org"}))
		says(e.s.Update(e.ctx, e.admin, core.SliceTag, id, core.Record{"value": "prefix 10.201.0.0/16"}), core.Conflict, "overlaps prefix 10.201.0.0/24 of slice vl_b")

		links := func(node int64, slice string) []core.VLink {
			for _, s := range e.state(node).Slivers {
				if s.Name == slice {
					return s.VLinks
				}
			}
			t.Fatalf("no sliver %s", slice)
			return nil
		}
		got := links(nodes[1], "vl_a")
		want := []core.VLink{
			{Name: "ab", VNI: uint32(a)*64 + 1, Local: "10.200.0.2/30", Remote: "10.200.0.1", PeerNode: "n1.vl.org", PeerAddr: "192.0.2.1", RateKbit: 20_000, DelayUS: 5000},
			{Name: "bc", VNI: uint32(a)*64 + 2, Local: "10.200.0.5/30", Remote: "10.200.0.6", PeerNode: "n3.vl.org", PeerAddr: "192.0.2.3", RateKbit: 10_000, LossPPM: 10_000},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("n2's ends of vl_a:\n got %+v\nwant %+v", got, want)
		}
		if got := links(nodes[0], "vl_b"); len(got) != 1 || got[0].VNI != uint32(b)*64+1 || got[0].VNI == want[0].VNI {
			t.Fatalf("n1's ends of vl_b: %+v", got)
		}
		// LANs: members must be nodes of the slice; an accepted LAN gives
		// each member one end listing the others.
		says(e.s.Update(e.ctx, e.admin, core.SliceTag, id, core.Record{"value": "prefix 10.200.0.0/23; lan core n1.vl.org n2.vl.org n9.vl.org"}),
			core.Invalid, "LAN core: n9.vl.org is not a node of slice vl_a")
		says(e.s.Update(e.ctx, e.admin, core.SliceTag, id, core.Record{"value": "prefix 10.200.0.0/30; ab n1.vl.org n2.vl.org; lan core n1.vl.org n2.vl.org n3.vl.org"}),
			core.Invalid, "too small")
		e.must(e.s.Update(e.ctx, e.admin, core.SliceTag, id, core.Record{"value": "prefix 10.200.0.0/23; ab n1.vl.org n2.vl.org rate=20mbit delay=5ms; bc n2.vl.org n3.vl.org loss=1%; ca n3.vl.org n1.vl.org; lan core n1.vl.org n2.vl.org N3.vl.org rate=5mbit"}))
		lan := links(nodes[1], "vl_a")[2]
		wantLAN := core.VLink{Name: "core", VNI: uint32(a)*64 + 63, Local: "10.200.1.250/29", RateKbit: 5000,
			Peers: []core.VLinkPeer{{Node: "n1.vl.org", Addr: "192.0.2.1", Private: "10.200.1.249"}, {Node: "n3.vl.org", Addr: "192.0.2.3", Private: "10.200.1.251"}}}
		if !reflect.DeepEqual(lan, wantLAN) {
			t.Fatalf("n2's end of LAN core:\n got %+v\nwant %+v", lan, wantLAN)
		}

		// A node leaving the slice takes its links with it (the peers' ends
		// disappear; it leaves the LANs' peers), and its state changes version.
		before := e.state(nodes[0]).Version
		e.must(e.s.Unlink(e.ctx, e.admin, core.SliceNode, a, nodes[2]))
		if got := links(nodes[0], "vl_a"); len(got) != 2 || got[0].Name != "ab" || got[1].Name != "core" ||
			len(got[1].Peers) != 1 || got[1].Peers[0].Node != "n2.vl.org" {
			t.Fatalf("n1's ends after n3 left: %+v", got)
		}
		if e.state(nodes[0]).Version == before {
			t.Error("n1's state version did not change")
		}
	})
}
