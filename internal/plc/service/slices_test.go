package service

import (
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

func TestSlicePolicy(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("prin", 2)
		other := e.site("other", 5)
		pi := e.person("pi@prin.org", site, "pi")
		user := e.person("u@prin.org", site, "user")
		outsider := e.person("x@other.org", other, "pi", "user")
		now := e.clock.Now().Unix()
		sid := e.slice(pi, "prin_one")
		rec := get(t, e, pi, core.Slice, []any{sid})[0]
		if rec["expires"] != now+14*86400 || rec["site_id"] != site || rec["creator_person_id"] != pi.PersonID || rec["instantiation"] != "plc-instantiated" {
			t.Fatalf("new slice %v", rec)
		}
		if got := get(t, e, pi, core.Slice, []any{sid}, "hrn"); got[0]["hrn"] != "plc.prin.one" {
			t.Fatalf("hrn %v", got)
		}
		_, err := e.s.Add(e.ctx, outsider, core.Slice, core.Record{"name": "prin_two"})
		wantCode(t, err, core.Forbidden, "slice at another site")
		_, err = e.s.Add(e.ctx, user, core.Slice, core.Record{"name": "prin_two"})
		wantCode(t, err, core.Forbidden, "user adds slice")
		_, err = e.s.Add(e.ctx, pi, core.Slice, core.Record{"name": "prin_one"})
		wantCode(t, err, core.Conflict, "duplicate slice")
		e.slice(pi, "prin_two")
		_, err = e.s.Add(e.ctx, pi, core.Slice, core.Record{"name": "prin_three"})
		wantCode(t, err, core.Conflict, "max_slices")

		// Members: users cannot add members; PIs of the site can.
		wantCode(t, e.s.Link(e.ctx, user, core.SlicePerson, sid, user.PersonID, nil), core.Forbidden, "user adds member")
		wantCode(t, e.s.Link(e.ctx, outsider, core.SlicePerson, sid, outsider.PersonID, nil), core.Forbidden, "outsider pi adds member")
		e.must(e.s.Link(e.ctx, pi, core.SlicePerson, sid, user.PersonID, nil))
		e.must(e.s.Link(e.ctx, pi, core.SlicePerson, sid, user.PersonID, nil)) // present: not an error
		// Renewal.
		wantCode(t, e.s.Update(e.ctx, user, core.Slice, sid, core.Record{"expires": now + 9*7*86400}), core.Invalid, "renew > 8 weeks")
		wantCode(t, e.s.Update(e.ctx, user, core.Slice, sid, core.Record{"expires": now - 1}), core.Invalid, "expires in the past")
		wantCode(t, e.s.Update(e.ctx, user, core.Slice, sid, core.Record{"max_nodes": int64(3)}), core.Forbidden, "user sets max_nodes")
		e.must(e.s.Update(e.ctx, user, core.Slice, sid, core.Record{"expires": now + 7*7*86400}))
		granted, err := e.s.RenewSlice(e.ctx, user, sid, now+30*7*86400)
		e.must(err)
		if granted != now+8*7*86400 {
			t.Fatalf("granted %d want %d", granted, now+8*7*86400)
		}
		granted, err = e.s.RenewSlice(e.ctx, e.admin, sid, now+30*7*86400)
		e.must(err)
		if granted != now+30*7*86400 {
			t.Fatalf("admin granted %d", granted)
		}
		bare := e.add(e.admin, core.Slice, core.Record{"name": "pl_bare"})
		_, err = e.s.RenewSlice(e.ctx, e.admin, bare, now+20*86400)
		wantCode(t, err, core.Invalid, "renew without url/description")
		e.must(e.s.Update(e.ctx, e.admin, core.Slice, bare, core.Record{"expires": now + 20*86400, "url": "http://u", "description": "x"}))
		wantCode(t, e.s.Update(e.ctx, outsider, core.Slice, sid, core.Record{"url": "x"}), core.Forbidden, "outsider updates")
		wantCode(t, e.s.Update(e.ctx, pi, core.Slice, sid, core.Record{"name": "prin_new"}), core.Invalid, "rename")

		// Expiry: an expired slice disappears everywhere and its name is free.
		exp := e.slice(e.admin, "pl_short")
		n := e.node(site, "n1.prin.org")
		e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, exp, n, nil))
		if len(e.state(n).Slivers) != 1 {
			t.Fatal("sliver missing")
		}
		e.clock.Add(15 * 24 * time.Hour)
		if got := get(t, e, e.admin, core.Slice, map[string]any{"name": "pl_short"}); len(got) != 0 {
			t.Fatalf("expired slice listed: %v", got)
		}
		if len(e.state(n).Slivers) != 0 {
			t.Fatal("expired sliver on node")
		}
		_, err = e.s.Resolve(e.ctx, e.admin, core.Slice, "pl_short")
		wantCode(t, err, core.NotFound, "resolve expired")
		again := e.slice(e.admin, "pl_short")
		if again <= exp {
			t.Fatalf("slice id reused")
		}
		// Delete: by a member; soft, id kept.
		e.clock.Add(-15 * 24 * time.Hour)
		e.must(e.s.Delete(e.ctx, user, core.Slice, sid))
		if got := get(t, e, e.admin, core.Slice, []any{sid}); len(got) != 0 {
			t.Fatal("deleted slice listed")
		}
	})
}

func TestSliceNodesAndTags(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("st", 5)
		other := e.site("ot", 5)
		pi := e.person("pi@st.org", site, "pi")
		user := e.person("u@st.org", site, "user")
		stranger := e.person("s@st.org", site, "user")
		sid := e.slice(pi, "st_a")
		e.must(e.s.Link(e.ctx, pi, core.SlicePerson, sid, user.PersonID, nil))
		n1 := e.node(site, "n1.st.org")
		n2 := e.node(other, "n2.ot.org")
		e.must(e.s.Link(e.ctx, user, core.SliceNode, sid, n1, nil))
		wantCode(t, e.s.Link(e.ctx, stranger, core.SliceNode, sid, n1, nil), core.Forbidden, "non-member adds node")
		// Whitelist: n2 is whitelisted for another slice.
		wl := e.slice(e.admin, "pl_wl")
		e.must(e.s.Link(e.ctx, e.admin, core.SliceNodeWhitelist, wl, n2, nil))
		wantCode(t, e.s.Link(e.ctx, user, core.SliceNode, sid, n2, nil), core.Forbidden, "whitelisted node")
		if got := get(t, e, stranger, core.Node, nil, "node_id"); len(got) != 1 {
			t.Fatalf("whitelisted node visible: %v", got)
		}
		// Tags: write roles of the tag type.
		_, err := e.s.Add(e.ctx, user, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("cpu_pct"), "value": "50"})
		wantCode(t, err, core.Forbidden, "user writes admin-only tag")
		// vsys grants privileged operations on nodes; as in the original,
		// members write it (the node operator decides which operations
		// exist), and only well-formed grants are taken.
		e.tag(user, sid, "vsys", "sensor")
		e.tag(pi, sid, "vsys", "dataset:census")
		_, err = e.s.Add(e.ctx, stranger, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("vsys"), "value": "sensor:x"})
		wantCode(t, err, core.Forbidden, "non-member writes vsys")
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("vsys"), "value": "dataset:../x"})
		wantCode(t, err, core.Invalid, "a vsys value that is no grant")
		e.tag(user, sid, "geni_user_key", "a")
		e.tag(user, sid, "geni_user_key", "b")
		_, err = e.s.Add(e.ctx, user, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("geni_user_key"), "value": "a"})
		wantCode(t, err, core.Conflict, "exact duplicate tag")
		_, err = e.s.Add(e.ctx, stranger, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("geni_user_key"), "value": "c"})
		wantCode(t, err, core.Forbidden, "non-member writes tag")
		_, err = e.s.Add(e.ctx, pi, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("initscript"), "value": "nope"})
		wantCode(t, err, core.Invalid, "initscript must exist")
		// The runtime tag: a member chooses gVisor; an unknown runtime is
		// refused naming the valid ones.
		e.tag(user, sid, "runtime", "runsc")
		_, err = e.s.Add(e.ctx, user, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("runtime"), "value": "kata"})
		wantCode(t, err, core.Invalid, "unknown runtime")
		if err == nil || !strings.Contains(err.Error(), "want one of runc, runsc") {
			t.Errorf("unknown runtime refused with %v, want the valid ones named", err)
		}
		e.add(e.admin, core.InitScriptClass, core.Record{"name": "boot", "script": "#!/bin/sh\n"})
		e.tag(pi, sid, "initscript", "boot")
		// A node writes sliver tags for itself only, on slices it hosts.
		nc := e.nodeCaller(n1)
		e.tag(nc, sid, "vref", "img", "node_id", n1)
		_, err = e.s.Add(e.ctx, nc, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("vref"), "value": "x"})
		wantCode(t, err, core.Forbidden, "node writes global tag")
		// Nodegroup tags are admin-only.
		arch := e.tagType("arch")
		ng := e.add(e.admin, core.NodeGroup, core.Record{"groupname": "x86", "tag_type_id": arch, "value": "x86_64"})
		_, err = e.s.Add(e.ctx, pi, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("geni_user_key"), "value": "g", "nodegroup_id": ng})
		wantCode(t, err, core.Forbidden, "pi writes nodegroup tag")
		// Tag pseudo-fields in Get and Add.
		got := get(t, e, user, core.Slice, []any{sid}, "name", "initscript", "geni_user_key")
		if got[0]["initscript"] != "boot" || got[0]["geni_user_key"] != "a" {
			t.Fatalf("tag fields %v", got)
		}
		f := get(t, e, user, core.Slice, map[string]any{"initscript": "boot"}, "slice_id")
		if len(f) != 1 {
			t.Fatalf("filter by tag %v", f)
		}
		e.must(e.s.Update(e.ctx, pi, core.Slice, sid, core.Record{"initscript": nil}))
		if got := get(t, e, user, core.Slice, []any{sid}, "initscript"); got[0]["initscript"] != nil {
			t.Fatalf("tag not removed: %v", got)
		}
		// Node groups follow node tags.
		e.add(e.admin, core.NodeTag, core.Record{"node_id": n1, "tag_type_id": arch, "value": "x86_64"})
		if g := get(t, e, e.admin, core.NodeGroup, []any{ng}, "node_ids"); len(g[0]["node_ids"].([]int64)) != 1 {
			t.Fatalf("group members %v", g)
		}
		if nd := get(t, e, e.admin, core.Node, []any{n1}, "nodegroup_ids", "arch"); len(nd[0]["nodegroup_ids"].([]int64)) != 1 || nd[0]["arch"] != "x86_64" {
			t.Fatalf("node groups %v", nd)
		}
		// Node tags: one per type; pi/tech of the node's site only.
		_, err = e.s.Add(e.ctx, e.admin, core.NodeTag, core.Record{"node_id": n1, "tag_type_id": arch, "value": "i386"})
		wantCode(t, err, core.Conflict, "second node tag of a type")
		_, err = e.s.Add(e.ctx, pi, core.NodeTag, core.Record{"node_id": n2, "tag_type_id": e.tagType("deployment"), "value": "x"})
		wantCode(t, err, core.Forbidden, "node tag at another site")
		e.add(pi, core.NodeTag, core.Record{"node_id": n1, "tag_type_id": e.tagType("deployment"), "value": "x"})
	})
}

func TestPortReservations(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("pr", 10)
		a := e.slice(e.admin, "pr_a")
		b := e.slice(e.admin, "pr_b")
		c := e.slice(e.admin, "pr_c")
		n1, n2 := e.node(site, "n1.pr.org"), e.node(site, "n2.pr.org")
		for _, l := range [][2]int64{{a, n1}, {b, n1}, {c, n2}} {
			e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, l[0], l[1], nil))
		}
		e.tag(e.admin, a, "ports", "tcp/8080")
		e.tag(e.admin, a, "ports", "udp/5000-5010")
		_, err := e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": b, "tag_type_id": e.tagType("ports"), "value": "tcp/8080"})
		wantCode(t, err, core.Conflict, "same port on shared node")
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": b, "tag_type_id": e.tagType("ports"), "value": "udp/5010-5020"})
		wantCode(t, err, core.Conflict, "overlapping range")
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": b, "tag_type_id": e.tagType("ports"), "value": "tcp/99999"})
		wantCode(t, err, core.Invalid, "bad port")
		// The grammar of core/ports: lists, bare (tcp) ports.
		e.tag(e.admin, a, "ports", "tcp/9000, udp/9001 9100-9199")
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": b, "tag_type_id": e.tagType("ports"), "value": "udp/7000 9150"})
		wantCode(t, err, core.Conflict, "bare port inside a range of a list")
		if !strings.Contains(err.Error(), "port reservation tcp/9150 collides with slice pr_a (tcp/9000, udp/9001 9100-9199)") {
			t.Errorf("collision message: %v", err)
		}
		e.tag(e.admin, b, "ports", "udp/8080") // other protocol
		e.tag(e.admin, c, "ports", "tcp/8080") // not on a shared node
		wantCode(t, e.s.Link(e.ctx, e.admin, core.SliceNode, c, n1, nil), core.Conflict, "adding a colliding slice to a node")
		wantCode(t, e.s.Link(e.ctx, e.admin, core.SliceNode, a, n2, nil), core.Conflict, "a's tcp/8080 vs c's on n2")
		e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, b, n2, nil)) // udp/8080 does not collide
	})
}

// TestCodemuxHosts: a host name served on a node's shared port 80/443
// (codemux tag) belongs to one slice per node; PLC refuses a second claim,
// whether by tag or by adding a slice to a node, naming the host and the
// slice holding it.
func TestCodemuxHosts(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("cm", 10)
		a, b, c := e.slice(e.admin, "cm_a"), e.slice(e.admin, "cm_b"), e.slice(e.admin, "cm_c")
		n1, n2 := e.node(site, "n1.cm.org"), e.node(site, "n2.cm.org")
		for _, l := range [][2]int64{{a, n1}, {b, n1}, {c, n2}} {
			e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, l[0], l[1], nil))
		}
		e.tag(e.admin, a, "codemux", "www.example.org,8080")
		_, err := e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": b, "tag_type_id": e.tagType("codemux"), "value": "WWW.example.org.,9090,tls=9443"})
		wantCode(t, err, core.Conflict, "same host (case, trailing dot) on a shared node")
		if !strings.Contains(err.Error(), "codemux host www.example.org collides with slice cm_a (www.example.org,8080)") {
			t.Errorf("collision message: %v", err)
		}
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": b, "tag_type_id": e.tagType("codemux"), "value": "www.example.org"})
		wantCode(t, err, core.Invalid, "no port")
		e.tag(e.admin, b, "codemux", "shop.example.org,8080") // another host, same sliver port: fine
		e.tag(e.admin, c, "codemux", "www.example.org,80")    // not on a shared node
		wantCode(t, e.s.Link(e.ctx, e.admin, core.SliceNode, c, n1, nil), core.Conflict, "adding a slice claiming a taken host to a node")
		wantCode(t, e.s.Link(e.ctx, e.admin, core.SliceNode, a, n2, nil), core.Conflict, "a's host vs c's on n2")
		e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, b, n2, nil))
	})
}

// TestTagValuesChecked: PLC refuses, when a tag is written, the values of
// the tag table (core/tags) that nodes would refuse, naming the tag.
func TestTagValuesChecked(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("tv", 10)
		sid := e.slice(e.admin, "tv_a")
		n := e.node(site, "n1.tv.org")
		refused := func(err error, tag, what string) {
			t.Helper()
			wantCode(t, err, core.Invalid, what)
			if core.ErrorField(err) != tag || !strings.Contains(err.Error(), tag) {
				t.Errorf("%s: %v does not name the tag %s", what, err, tag)
			}
		}
		_, err := e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("cpu_cap_pct"), "value": "102401"})
		refused(err, "cpu_cap_pct", "cpu_cap_pct above 102400")
		_, err = e.s.Add(e.ctx, e.admin, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": e.tagType("mem_max"), "value": "100", "node_id": n})
		refused(err, "mem_max", "sliver-scoped mem_max below the minimum")
		id := e.tag(e.admin, sid, "cpu_cap_pct", "102400")
		refused(e.s.Update(e.ctx, e.admin, core.SliceTag, id, core.Record{"value": "lots"}), "cpu_cap_pct", "update to a non-integer")
		refused(e.s.Update(e.ctx, e.admin, core.Slice, sid, core.Record{"nofile": "10"}), "nofile", "tag field of UpdateSlice")
		_, err = e.s.Add(e.ctx, e.admin, core.NodeTag, core.Record{"node_id": n, "tag_type_id": e.tagType("ssh_port"), "value": "0"})
		refused(err, "ssh_port", "node tag ssh_port 0")
		nt := e.add(e.admin, core.NodeTag, core.Record{"node_id": n, "tag_type_id": e.tagType("ssh_port"), "value": "2222"})
		refused(e.s.Update(e.ctx, e.admin, core.NodeTag, nt, core.Record{"value": "65536"}), "ssh_port", "node tag update")
		refused(e.s.Update(e.ctx, e.admin, core.Node, n, core.Record{"ssh_port": "x"}), "ssh_port", "tag field of UpdateNode")
	})
}

func TestLeases(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("ls", 5)
		r := e.node(site, "r.ls.org", "node_type", "reservable")
		plain := e.node(site, "p.ls.org")
		sid := e.slice(e.admin, "ls_x")
		now := e.clock.Now().Unix() // a multiple of 3600 plus 800
		from, until := now+100, now+3*3600+100
		ids, errs, err := e.s.AddLeases(e.ctx, e.admin, []int64{r, plain}, sid, from, until)
		e.must(err)
		if len(ids) != 1 || len(errs) != 1 || !strings.Contains(errs[0], "not reservable") {
			t.Fatalf("leases %v %v", ids, errs)
		}
		l := get(t, e, e.admin, core.Lease, []any{ids[0]})[0]
		g := int64(3600)
		if l["t_from"] != (from+g-1)/g*g || l["t_until"] != until/g*g || l["name"] != "ls_x" {
			t.Fatalf("rounded lease %v", l)
		}
		_, errs, _ = e.s.AddLeases(e.ctx, e.admin, []int64{r}, sid, from+3600, until+7200)
		if len(errs) != 1 || !strings.Contains(errs[0], "already leased") {
			t.Fatalf("overlap: %v", errs)
		}
		st := e.state(r)
		if st.ReservationPolicy != "lease_or_idle" || len(st.Leases) != 1 || st.Leases[0].Name != "ls_x" {
			t.Fatalf("state leases %+v", st.Leases)
		}
		lf := l["t_from"].(int64)
		if got := get(t, e, nil, core.Lease, map[string]any{"alive": lf}); len(got) != 1 {
			t.Fatalf("alive at start: %v", got)
		}
		if got := get(t, e, nil, core.Lease, map[string]any{"alive": lf - 1}); len(got) != 0 {
			t.Fatalf("alive before: %v", got)
		}
		if got := get(t, e, nil, core.Lease, map[string]any{"alive": []any{lf - 7200, time.Unix(lf+1, 0).UTC().Format("2006-01-02 15:04:05")}}); len(got) != 1 {
			t.Fatalf("alive period: %v", got)
		}
		_, err = e.s.Get(e.ctx, nil, core.Lease, &core.Filter{Terms: []core.Term{{Field: "alive", Op: core.Eq, Value: "yesterday"}}}, nil)
		wantCode(t, err, core.Invalid, "alive garbage")
		_, _, err = e.s.AddLeases(e.ctx, e.admin, []int64{r}, sid, now+10, now+20)
		wantCode(t, err, core.Invalid, "empty after rounding")
	})
}

func TestTransactionsLeaveNothing(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("tx", 5)
		count := func(class core.Class) int { return len(get(t, e, e.admin, class, nil)) }
		slices, tags := count(core.Slice), count(core.SliceTag)
		// AddSlice inserts the slice and its hrn tag, then fails on a tag
		// pseudo-field: nothing remains.
		_, err := e.s.Add(e.ctx, e.admin, core.Slice, core.Record{"name": "tx_a", "initscript": "missing"})
		wantCode(t, err, core.Invalid, "bad tag field")
		if count(core.Slice) != slices || count(core.SliceTag) != tags {
			t.Fatal("AddSlice left rows behind")
		}
		// AddNode with a tag the caller may not write.
		pi := e.person("pi@tx.org", site, "pi")
		nodes, ntags := count(core.Node), count(core.NodeTag)
		_, err = e.s.Add(e.ctx, pi, core.Node, core.Record{"site_id": site, "hostname": "n.tx.org", "hrn": "forged"})
		wantCode(t, err, core.Forbidden, "forbidden tag field")
		if count(core.Node) != nodes || count(core.NodeTag) != ntags {
			t.Fatal("AddNode left rows behind")
		}
		// A person update that fails on its tag leaves the fields unchanged.
		err = e.s.Update(e.ctx, pi, core.Person, pi.PersonID, core.Record{"title": "Prof", "hrn": "x"})
		wantCode(t, err, core.Forbidden, "person tag")
		if p := get(t, e, e.admin, core.Person, []any{pi.PersonID}, "title"); p[0]["title"] != nil {
			t.Fatalf("title changed: %v", p)
		}
	})
}

func TestDeleteSiteCascades(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("del", 5)
		keep := e.site("keep", 5)
		only := e.person("only@del.org", site, "user")
		shared := e.person("shared@del.org", site, "user")
		e.must(e.s.Link(e.ctx, e.admin, core.PersonSite, shared.PersonID, keep, nil))
		n := e.node(site, "n.del.org")
		sl := e.slice(e.admin, "del_s")
		e.add(e.admin, core.Address, core.Record{"site_id": site, "city": "Paris"})
		e.add(e.admin, core.PCU, core.Record{"site_id": site, "ip": "192.0.2.1"})
		e.must(e.s.Delete(e.ctx, e.admin, core.Site, site))
		for _, c := range []struct {
			class core.Class
			f     any
		}{{core.Site, []any{site}}, {core.Node, []any{n}}, {core.Slice, []any{sl}}, {core.Person, []any{only.PersonID}},
			{core.Address, map[string]any{"site_id": site}}, {core.PCU, map[string]any{"site_id": site}}} {
			if got := get(t, e, e.admin, c.class, c.f); len(got) != 0 {
				t.Errorf("%s survived site deletion: %v", c.class, got)
			}
		}
		p := get(t, e, e.admin, core.Person, []any{shared.PersonID}, "site_ids")
		if len(p) != 1 || len(p[0]["site_ids"].([]int64)) != 1 || p[0]["site_ids"].([]int64)[0] != keep {
			t.Fatalf("shared person: %v", p)
		}
		again := e.site("del", 5)
		if again <= site {
			t.Fatal("site id reused")
		}
	})
}
