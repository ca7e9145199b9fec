package service

import (
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestObjectsRoundTrip(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("obj", 5)
		other := e.site("oth", 5)
		pi := e.person("pi@obj.org", site, "pi")
		tech := e.person("tech@obj.org", site, "tech")
		user := e.person("u@obj.org", site, "user")
		// Sites: a PI updates its own site, but not max_slices or login_base.
		e.must(e.s.Update(e.ctx, pi, core.Site, site, core.Record{"name": "Object Site", "latitude": 40.3, "longitude": -74.6}))
		wantCode(t, e.s.Update(e.ctx, pi, core.Site, site, core.Record{"max_slices": int64(50)}), core.Forbidden, "pi sets max_slices")
		wantCode(t, e.s.Update(e.ctx, pi, core.Site, other, core.Record{"name": "x"}), core.Forbidden, "pi updates other site")
		wantCode(t, e.s.Update(e.ctx, pi, core.Site, site, core.Record{"latitude": nil}), core.Invalid, "lat without long")
		s := get(t, e, user, core.Site, []any{"obj"}, "name", "latitude", "person_ids")[0]
		if s["name"] != "Object Site" || s["latitude"] != 40.3 || len(s["person_ids"].([]int64)) != 3 {
			t.Fatalf("site %v", s)
		}
		// Addresses and address types.
		addr := e.add(pi, core.Address, core.Record{"site_id": site, "line1": "1 Main St", "city": "Princeton"})
		_, err := e.s.Add(e.ctx, pi, core.Address, core.Record{"site_id": other, "city": "x"})
		wantCode(t, err, core.Forbidden, "address at other site")
		ship, err := e.s.Resolve(e.ctx, e.admin, core.AddressType, "Shipping")
		e.must(err)
		e.must(e.s.Link(e.ctx, pi, core.AddressAddressType, addr, ship, nil))
		a := get(t, e, pi, core.Address, []any{addr})[0]
		if ts := a["address_types"].([]string); len(ts) != 1 || ts[0] != "Shipping" {
			t.Fatalf("address %v", a)
		}
		e.must(e.s.Update(e.ctx, pi, core.Address, addr, core.Record{"postalcode": "08540"}))
		e.must(e.s.Delete(e.ctx, pi, core.Address, addr))
		// Nodes by a tech; PCUs and ports.
		n := e.add(tech, core.Node, core.Record{"site_id": site, "hostname": "Node1.Obj.ORG", "node_type": "reservable", "model": "x"})
		nd := get(t, e, user, core.Node, []any{"node1.obj.org"})[0]
		if nd["hostname"] != "node1.obj.org" || nd["boot_state"] != "reinstall" || nd["node_type"] != "reservable" {
			t.Fatalf("node %v", nd)
		}
		if _, ok := nd["key"]; ok {
			t.Fatal("node key shown to a user")
		}
		if nd := get(t, e, e.admin, core.Node, []any{n}, "key")[0]; nd["key"] == nil {
			t.Fatal("admin does not see the node key")
		}
		_, err = e.s.Add(e.ctx, user, core.Node, core.Record{"site_id": site, "hostname": "n2.obj.org"})
		wantCode(t, err, core.Forbidden, "user adds node")
		_, err = e.s.Add(e.ctx, tech, core.Node, core.Record{"site_id": other, "hostname": "n2.obj.org"})
		wantCode(t, err, core.Forbidden, "tech adds node at other site")
		_, err = e.s.Add(e.ctx, e.admin, core.Node, core.Record{"site_id": other, "hostname": "NODE1.obj.org"})
		wantCode(t, err, core.Conflict, "duplicate hostname")
		wantCode(t, e.s.Update(e.ctx, tech, core.Node, n, core.Record{"key": "x"}), core.Forbidden, "tech sets key")
		e.must(e.s.Update(e.ctx, tech, core.Node, n, core.Record{"boot_state": "boot"}))
		pcu := e.add(tech, core.PCU, core.Record{"site_id": site, "ip": "192.0.2.10", "protocol": "ssh"})
		_, err = e.s.Add(e.ctx, tech, core.PCU, core.Record{"site_id": site, "ip": "not-an-ip"})
		wantCode(t, err, core.Invalid, "pcu ip")
		e.must(e.s.Link(e.ctx, tech, core.NodePCU, n, pcu, core.Record{"port": int64(1)}))
		n2 := e.node(site, "n2.obj.org")
		wantCode(t, e.s.Link(e.ctx, tech, core.NodePCU, n2, pcu, core.Record{"port": int64(1)}), core.Conflict, "pcu port reused")
		nOther := e.node(other, "n3.oth.org")
		wantCode(t, e.s.Link(e.ctx, e.admin, core.NodePCU, nOther, pcu, core.Record{"port": int64(2)}), core.Invalid, "mismatched sites")
		if p := get(t, e, tech, core.PCU, nil); len(p) != 1 || p[0]["ports"].([]int64)[0] != 1 {
			t.Fatalf("pcus %v", p)
		}
		if p := get(t, e, e.person("t2@oth.org", other, "tech"), core.PCU, nil); len(p) != 0 {
			t.Fatalf("pcu visible at other site: %v", p)
		}
		// Interfaces: first is primary, a second primary is refused.
		i1 := e.add(tech, core.Interface, core.Record{"node_id": n, "method": "static", "ip": "10.1.0.2", "network": "10.1.0.0",
			"netmask": "255.255.0.0", "broadcast": "10.1.255.255", "gateway": "10.1.0.1", "dns1": "10.1.0.1"})
		_, err = e.s.Add(e.ctx, tech, core.Interface, core.Record{"node_id": n, "method": "dhcp", "is_primary": true})
		wantCode(t, err, core.Invalid, "second primary")
		_, err = e.s.Add(e.ctx, tech, core.Interface, core.Record{"node_id": n, "method": "tap", "ip": "10.2.0.1"})
		wantCode(t, err, core.Invalid, "tap without gateway")
		_, err = e.s.Add(e.ctx, tech, core.Interface, core.Record{"node_id": n, "method": "dhcp", "bwlimit": int64(100)})
		wantCode(t, err, core.Invalid, "bwlimit")
		i2 := e.add(tech, core.Interface, core.Record{"node_id": n, "method": "dhcp"})
		if nd := get(t, e, tech, core.Node, []any{n}, "interface_ids")[0]; nd["interface_ids"].([]int64)[0] != i1 {
			t.Fatalf("primary not first: %v", nd)
		}
		wantCode(t, e.s.Update(e.ctx, tech, core.Interface, i1, core.Record{"gateway": "10.9.0.1"}), core.Invalid, "unreachable gateway")
		e.add(tech, core.InterfaceTag, core.Record{"interface_id": i2, "tag_type_id": e.tagType("ifname"), "value": "eth1"})
		if it := get(t, e, tech, core.Interface, []any{i2}, "ifname"); it[0]["ifname"] != "eth1" {
			t.Fatalf("interface tag %v", it)
		}
		// Ilinks.
		il := e.add(e.admin, core.Ilink, core.Record{"tag_type_id": e.tagType("alias"), "src_interface_id": i1, "dst_interface_id": i2, "value": "x"})
		e.must(e.s.Update(e.ctx, tech, core.Ilink, il, core.Record{"value": "y"}))
		e.must(e.s.Delete(e.ctx, e.admin, core.Ilink, il))
		e.must(e.s.Delete(e.ctx, tech, core.Interface, i2))
		// Tag types and their roles.
		tt := e.add(e.admin, core.TagType, core.Record{"tagname": "color", "category": "node/ui"})
		_, err = e.s.Add(e.ctx, tech, core.NodeTag, core.Record{"node_id": n, "tag_type_id": tt, "value": "red"})
		wantCode(t, err, core.Forbidden, "tag type without tech role")
		e.must(e.s.Link(e.ctx, e.admin, core.TagTypeRole, tt, 40, nil))
		ntag := e.add(tech, core.NodeTag, core.Record{"node_id": n, "tag_type_id": tt, "value": "red"})
		e.must(e.s.Update(e.ctx, tech, core.NodeTag, ntag, core.Record{"value": "blue"}))
		if got := get(t, e, user, core.NodeTag, map[string]any{"tagname": "color"}, "value", "hostname"); len(got) != 1 || got[0]["value"] != "blue" || got[0]["hostname"] != "node1.obj.org" {
			t.Fatalf("node tags %v", got)
		}
		if got := get(t, e, user, core.Node, map[string]any{"color": "blu*"}, "node_id"); len(got) != 1 {
			t.Fatalf("filter on tag %v", got)
		}
		wantCode(t, e.s.Delete(e.ctx, user, core.NodeTag, ntag), core.Forbidden, "user deletes node tag")
		e.must(e.s.Delete(e.ctx, e.admin, core.TagType, tt))
		// Site and person tags.
		e.add(pi, core.SiteTag, core.Record{"site_id": site, "tag_type_id": e.tagType("disabled_registration"), "value": "1"})
		_, err = e.s.Add(e.ctx, pi, core.SiteTag, core.Record{"site_id": other, "tag_type_id": e.tagType("disabled_registration"), "value": "1"})
		wantCode(t, err, core.Forbidden, "site tag at other site")
		e.add(user, core.PersonTag, core.Record{"person_id": user.PersonID, "tag_type_id": e.tagType("columnconf"), "value": "a"})
		_, err = e.s.Add(e.ctx, user, core.PersonTag, core.Record{"person_id": pi.PersonID, "tag_type_id": e.tagType("columnconf"), "value": "a"})
		wantCode(t, err, core.Forbidden, "person tag of another person")
		// Conf files and node groups (admin).
		cf := e.add(e.admin, core.ConfFile, core.Record{"source": "s", "dest": "/etc/x", "file_permissions": "0600"})
		_, err = e.s.Add(e.ctx, pi, core.ConfFile, core.Record{"source": "s", "dest": "/etc/x"})
		wantCode(t, err, core.Forbidden, "pi adds conf file")
		e.must(e.s.Link(e.ctx, e.admin, core.ConfFileNode, cf, n, nil))
		e.must(e.s.Unlink(e.ctx, e.admin, core.ConfFileNode, cf, n))
		e.must(e.s.Unlink(e.ctx, e.admin, core.ConfFileNode, cf, n)) // absent: not an error
		e.must(e.s.Update(e.ctx, e.admin, core.ConfFile, cf, core.Record{"enabled": false}))
		e.must(e.s.Delete(e.ctx, e.admin, core.ConfFile, cf))
		// Lookup tables.
		e.add(e.admin, core.BootState, core.Record{"boot_state": "testing"})
		_, err = e.s.Add(e.ctx, e.admin, core.BootState, core.Record{"boot_state": "testing"})
		wantCode(t, err, core.Conflict, "duplicate boot state")
		if got := get(t, e, nil, core.BootState, []any{"testing"}); len(got) != 1 {
			t.Fatalf("lookup %v", got)
		}
		e.must(e.s.DeleteLookup(e.ctx, e.admin, core.BootState, "testing"))
		wantCode(t, e.s.DeleteLookup(e.ctx, e.admin, core.NodeType, "reservable"), core.Conflict, "lookup in use")
		if got := get(t, e, user, core.Role, nil); len(got) != 5 {
			t.Fatalf("roles %v", got)
		}
		// Primary site.
		e.must(e.s.Link(e.ctx, e.admin, core.PersonSite, user.PersonID, other, nil))
		e.must(e.s.SetPersonPrimarySite(e.ctx, user, user.PersonID, other))
		if p := get(t, e, user, core.Person, []any{user.PersonID}, "site_ids")[0]; p["site_ids"].([]int64)[0] != other {
			t.Fatalf("primary site %v", p)
		}
		wantCode(t, e.s.SetPersonPrimarySite(e.ctx, user, pi.PersonID, site), core.Forbidden, "primary site of another")
		// Node deletion by its tech; soft, never listed again.
		e.must(e.s.Delete(e.ctx, tech, core.Node, n))
		if got := get(t, e, e.admin, core.Node, map[string]any{"hostname": "node1.obj.org"}); len(got) != 0 {
			t.Fatalf("deleted node listed %v", got)
		}
		wantCode(t, e.s.Delete(e.ctx, tech, core.Node, n), core.NotFound, "delete twice")
	})
}

func TestGetFilters(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("gf", 10)
		var ids []int64
		for _, h := range []string{"a.gf.org", "b.gf.org", "c.gf.net"} {
			ids = append(ids, e.node(site, h))
		}
		cases := []struct {
			filter any
			want   int
		}{
			{nil, 3},
			{[]any{}, 0},
			{[]any{ids[0], "c.gf.net"}, 2},
			{"b.gf.org", 1},
			{map[string]any{"hostname": "*.org"}, 2},
			{map[string]any{"~hostname": "*.org"}, 1},
			{map[string]any{"hostname": []any{"a.gf.org", "x"}, "-OR": true, "node_id": ids[2]}, 2},
			{map[string]any{">node_id": ids[0], "-LIMIT": int64(1)}, 1},
			{map[string]any{"|slice_ids": []any{int64(999)}}, 0},
			{map[string]any{"site_id": site, "-SORT": "-hostname", "-OFFSET": int64(2)}, 1},
		}
		for _, c := range cases {
			if got := get(t, e, e.admin, core.Node, c.filter, "hostname"); len(got) != c.want {
				t.Errorf("%v: %d results %v, want %d", c.filter, len(got), got, c.want)
			}
		}
		got := get(t, e, e.admin, core.Node, map[string]any{"-SORT": "-hostname"}, "hostname")
		if got[0]["hostname"] != "c.gf.net" {
			t.Fatalf("sort %v", got)
		}
	})
}
