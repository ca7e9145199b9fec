package service

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

func attrs(sl core.Sliver) map[string][]string {
	m := map[string][]string{}
	for _, a := range sl.Attributes {
		m[a.TagName] = append(m[a.TagName], a.Value)
	}
	return m
}

func sliver(t *testing.T, st *core.NodeState, name string) core.Sliver {
	t.Helper()
	for _, s := range st.Slivers {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no sliver %s in %+v", name, st.Slivers)
	return core.Sliver{}
}

func TestNodeState(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("ns", 10)
		pi := e.person("pi@ns.org", site, "pi")
		tech := e.person("tech@ns.org", site, "tech")
		user := e.person("u@ns.org", site, "user")
		n1 := e.node(site, "n1.ns.org")
		n2 := e.node(site, "n2.ns.org")
		e.add(e.admin, core.Interface, core.Record{"node_id": n1, "method": "dhcp", "mac": "0:11:22:AA:bb:cc"})
		e.add(e.admin, core.Interface, core.Record{"node_id": n1, "method": "static", "ip": "10.0.0.5", "network": "10.0.0.0", "netmask": "255.255.255.0", "broadcast": "10.0.0.255"})
		_, err := e.s.Add(e.ctx, e.admin, core.Interface, core.Record{"node_id": n1, "method": "static", "ip": "10.0.1.5", "network": "10.0.0.0", "netmask": "255.255.255.0", "broadcast": "10.0.0.255"})
		wantCode(t, err, core.Invalid, "ip outside network")
		// Keys: pi and tech (site_admin), the admin (root), the user (slice).
		for _, c := range []*core.Caller{pi, tech, user, e.admin} {
			e.add(c, core.Key, core.Record{"person_id": c.PersonID, "key": sshKey(t)})
		}
		// Keys the original accepts but OpenSSH cannot use are stored and
		// never reach a node (issue 9.1).
		for _, c := range []*core.Caller{pi, user, e.admin} {
			e.add(c, core.Key, core.Record{"person_id": c.PersonID, "key": "ssh-rsa " + base64.StdEncoding.EncodeToString([]byte("not a key")) + " x@y"})
		}
		disabled := e.person("off@ns.org", site, "user")
		e.add(disabled, core.Key, core.Record{"person_id": disabled.PersonID, "key": sshKey(t)})
		sid := e.slice(pi, "ns_app")
		e.must(e.s.Link(e.ctx, pi, core.SlicePerson, sid, user.PersonID, nil))
		e.must(e.s.Link(e.ctx, pi, core.SlicePerson, sid, disabled.PersonID, nil))
		e.must(e.s.Update(e.ctx, pi, core.Person, disabled.PersonID, core.Record{"enabled": false}))
		e.must(e.s.Link(e.ctx, pi, core.SliceNode, sid, n1, nil))
		// Precedence: node > nodegroup > global per tagname; multi-valued globals.
		arch := e.tagType("arch")
		ng := e.add(e.admin, core.NodeGroup, core.Record{"groupname": "arm", "tag_type_id": arch, "value": "aarch64"})
		e.add(e.admin, core.NodeTag, core.Record{"node_id": n1, "tag_type_id": arch, "value": "aarch64"})
		e.tag(e.admin, sid, "cpu_share", "1")
		e.tag(e.admin, sid, "cpu_share", "5", "nodegroup_id", ng)
		e.tag(e.admin, sid, "disk_max", "100000")
		e.tag(e.admin, sid, "disk_max", "200000", "nodegroup_id", ng)
		e.tag(e.admin, sid, "disk_max", "300000", "node_id", n1)
		e.tag(e.admin, sid, "disk_max", "999000", "node_id", n2)
		e.tag(e.admin, sid, "vsys", "a")
		e.tag(e.admin, sid, "vsys", "b")
		e.tag(e.admin, sid, "vref", "debian")
		// System, delegated and nm-controller slices reach every node.
		sys := e.slice(e.admin, "pl_sys")
		e.tag(e.admin, sys, "system", "1")
		e.slice(e.admin, "pl_deleg", "instantiation", "delegated")
		e.slice(e.admin, "pl_other") // on no node
		// Init scripts and conf files.
		e.add(e.admin, core.InitScriptClass, core.Record{"name": "on", "script": "x"})
		e.add(e.admin, core.InitScriptClass, core.Record{"name": "off", "script": "y", "enabled": false})
		glob := e.add(e.admin, core.ConfFile, core.Record{"source": "g", "dest": "/etc/a"})
		grp := e.add(e.admin, core.ConfFile, core.Record{"source": "ng", "dest": "/etc/a"})
		nodeCF := e.add(e.admin, core.ConfFile, core.Record{"source": "n", "dest": "/etc/b"})
		e.add(e.admin, core.ConfFile, core.Record{"source": "n2", "dest": "/etc/b"})
		e.must(e.s.Link(e.ctx, e.admin, core.ConfFileNodeGroup, grp, ng, nil))
		e.must(e.s.Link(e.ctx, e.admin, core.ConfFileNode, nodeCF, n1, nil))
		_ = glob

		nc := e.nodeCaller(n1)
		st, err := e.s.NodeState(e.ctx, nc, n1)
		e.must(err)
		if st.Hostname != "n1.ns.org" || st.HRN == nil || *st.HRN != "plc.ns.n1" || st.ReservationPolicy != "none" || st.LeaseGranularity != 3600 {
			t.Fatalf("header %+v", st)
		}
		if len(st.Interfaces) != 2 || st.Interfaces[0]["is_primary"] != true || st.Interfaces[0]["mac"] != "00:11:22:aa:bb:cc" {
			t.Fatalf("interfaces %v", st.Interfaces)
		}
		if len(st.Groups) != 1 || st.Groups[0] != "arm" {
			t.Fatalf("groups %v", st.Groups)
		}
		if len(st.Slivers) != 3 {
			t.Fatalf("slivers %+v", st.Slivers)
		}
		app := sliver(t, st, "ns_app")
		a := attrs(app)
		if got := a["disk_max"]; len(got) != 1 || got[0] != "300000" {
			t.Errorf("disk_max %v (node scope wins)", got)
		}
		if got := a["cpu_share"]; len(got) != 1 || got[0] != "5" {
			t.Errorf("cpu_share %v (nodegroup beats global)", got)
		}
		if got := a["vsys"]; len(got) != 2 {
			t.Errorf("vsys %v", got)
		}
		if app.GetSliceFamily != "debian-f27-x86_64" {
			t.Errorf("family %s", app.GetSliceFamily)
		}
		if len(app.Keys) != 1 || app.Keys[0].KeyType != "ssh" {
			t.Errorf("keys of enabled members only: %+v", app.Keys)
		}
		sliver(t, st, "pl_sys")
		sliver(t, st, "pl_deleg")
		if len(st.InitScripts) != 1 || st.InitScripts[0].Name != "on" {
			t.Errorf("initscripts %+v", st.InitScripts)
		}
		if len(st.ConfFiles) != 2 || st.ConfFiles[0]["source"] != "ng" || st.ConfFiles[1]["source"] != "n" {
			t.Errorf("conf files %v", st.ConfFiles)
		}
		if st.Accounts[0].Name != "site_admin" || len(st.Accounts[0].Keys) != 2 || st.Accounts[1].Name != "root" || len(st.Accounts[1].Keys) != 1 {
			t.Errorf("accounts %+v", st.Accounts)
		}
		// n2 sees the global values and its own tag.
		st2 := e.state(n2)
		if len(st2.Slivers) != 2 {
			t.Fatalf("n2 slivers %+v", st2.Slivers)
		}
		// Version: stable without change, new after one; last_contact recorded.
		again, _ := e.s.NodeState(e.ctx, nc, n1)
		if again.Version != st.Version {
			t.Fatal("version changed without a change")
		}
		if got := get(t, e, e.admin, core.Node, []any{n1}, "last_contact"); got[0]["last_contact"] != e.clock.Now().Unix() {
			t.Fatalf("last_contact %v", got)
		}
		e.tag(e.admin, sid, "vsys", "c")
		if e.state(n1).Version == st.Version {
			t.Fatal("version unchanged after a tag")
		}
		_, err = e.s.NodeState(e.ctx, nc, n2)
		wantCode(t, err, core.Forbidden, "node fetches another node")
		_, err = e.s.NodeState(e.ctx, pi, n1)
		wantCode(t, err, core.Forbidden, "pi calls GetSlivers")
		// Report.
		e.must(e.s.ReportNode(e.ctx, nc, n1, core.NodeReport{RunLevel: "safeboot", SliverErrors: map[string]string{"ns_app": "bad"}}))
		if got := get(t, e, e.admin, core.Node, []any{n1}, "run_level"); got[0]["run_level"] != "safeboot" {
			t.Fatalf("run_level %v", got)
		}
		wantCode(t, e.s.ReportNode(e.ctx, nc, n1, core.NodeReport{RunLevel: "dancing"}), core.Invalid, "bad run level")
		wantCode(t, e.s.ReportNode(e.ctx, nc, n1, core.NodeReport{BootState: "dancing"}), core.Invalid, "bad boot state")
		// A new node is "reinstall" until it reports that it booted; then
		// the node manager's version shows.
		if got := get(t, e, e.admin, core.Node, []any{n1}, "boot_state"); got[0]["boot_state"] != "reinstall" {
			t.Fatalf("boot_state of a new node %v", got)
		}
		e.must(e.s.ReportNode(e.ctx, nc, n1, core.NodeReport{RunLevel: "boot", BootState: "boot", Version: "pl-node/v1.2.3+0123456789ab"}))
		if got := get(t, e, e.admin, core.Node, []any{n1}, "boot_state", "run_level", "version"); got[0]["boot_state"] != "boot" ||
			got[0]["run_level"] != "boot" || got[0]["version"] != "pl-node/v1.2.3+0123456789ab" {
			t.Fatalf("after a boot report: %v", got)
		}
		// The admin's safeboot (or disabled) stays when the node reports boot.
		e.must(e.s.Update(e.ctx, e.admin, core.Node, n1, core.Record{"boot_state": "safeboot"}))
		e.must(e.s.ReportNode(e.ctx, nc, n1, core.NodeReport{BootState: "boot"}))
		if got := get(t, e, e.admin, core.Node, []any{n1}, "boot_state"); got[0]["boot_state"] != "safeboot" {
			t.Fatalf("a boot report overrode the admin's safeboot: %v", got)
		}
	})
}

func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestWatch(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("w", 10)
		n1, n2 := e.node(site, "n1.w.org"), e.node(site, "n2.w.org")
		s1 := e.slice(e.admin, "w_one")
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		nc1, nc2 := e.nodeCaller(n1), e.nodeCaller(n2)
		v1, v2 := e.state(n1).Version, e.state(n2).Version
		// Stale version: closed at once.
		ch, err := e.s.WatchNodeState(ctx, nc1, n1, "stale")
		e.must(err)
		if !waitClosed(ch, time.Second) {
			t.Fatal("stale watch not closed")
		}
		w1, err := e.s.WatchNodeState(ctx, nc1, n1, v1)
		e.must(err)
		w2, err := e.s.WatchNodeState(ctx, nc2, n2, v2)
		e.must(err)
		_, err = e.s.WatchNodeState(ctx, nc1, n2, v2)
		wantCode(t, err, core.Forbidden, "watch another node")
		e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, s1, n1, nil))
		if !waitClosed(w1, time.Second) {
			t.Fatal("n1 watcher not woken by its slice change")
		}
		if waitClosed(w2, 100*time.Millisecond) {
			t.Fatal("n2 watcher woken by an unrelated change")
		}
		// A member's key reaches the slice's nodes.
		v1 = e.state(n1).Version
		w1, _ = e.s.WatchNodeState(ctx, nc1, n1, v1)
		u := e.person("u@w.org", 0, "user")
		e.must(e.s.Link(e.ctx, e.admin, core.SlicePerson, s1, u.PersonID, nil))
		if !waitClosed(w1, time.Second) {
			t.Fatal("membership change not notified")
		}
		v1 = e.state(n1).Version
		w1, _ = e.s.WatchNodeState(ctx, nc1, n1, v1)
		e.add(u, core.Key, core.Record{"person_id": u.PersonID, "key": sshKey(t)})
		if !waitClosed(w1, time.Second) {
			t.Fatal("key change not notified")
		}
		if e.state(n1).Version == v1 {
			t.Fatal("key did not change the state")
		}
		// Global objects reach everyone.
		e.add(e.admin, core.InitScriptClass, core.Record{"name": "i", "script": "x"})
		if !waitClosed(w2, time.Second) {
			t.Fatal("global change not notified")
		}
		// Cancelling the context releases the watcher.
		v2 = e.state(n2).Version
		wctx, wcancel := context.WithCancel(e.ctx)
		w2, _ = e.s.WatchNodeState(wctx, nc2, n2, v2)
		wcancel()
		if !waitClosed(w2, time.Second) {
			t.Fatal("cancel did not close")
		}
		// Expiry wakes watchers without any write.
		e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, s1, n2, nil))
	})
}

// TestWatchExpiry uses the real clock: a slice expiring wakes watchers.
func TestWatchExpiry(t *testing.T) {
	e := newEnv(t, "")
	site := e.site("we", 10)
	n := e.node(site, "n.we.org")
	s := e.slice(e.admin, "we_s")
	e.must(e.s.Link(e.ctx, e.admin, core.SliceNode, s, n, nil))
	// Expire it 1 s after the (fake) now, then move the fake clock and the
	// timer's reference together: the timer uses real time, so set expiry
	// relative to the real clock.
	realNow := time.Now().Unix()
	e.clock.mu.Lock()
	e.clock.t = time.Unix(realNow, 0)
	e.clock.mu.Unlock()
	e.must(e.s.Update(e.ctx, e.admin, core.Slice, s, core.Record{"expires": realNow + 1}))
	nc := e.nodeCaller(n)
	v := e.state(n).Version
	w, err := e.s.WatchNodeState(e.ctx, nc, n, v)
	e.must(err)
	e.clock.Add(3 * time.Second)
	if !waitClosed(w, 5*time.Second) {
		t.Fatal("expiry did not wake the watcher")
	}
	if len(e.state(n).Slivers) != 0 {
		t.Fatal("expired sliver still there")
	}
}

// TestNodeStateIPv6Prefix: the sliversipv6prefix interface tag is checked
// when written (each refusal names the tag and changes nothing), set by
// the node's site (PI, tech) and admins only, and delivered in the node
// state, the primary interface's winning; a change changes the version.
func TestNodeStateIPv6Prefix(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("v6", 10)
		tech := e.person("tech@v6.org", site, "tech")
		user := e.person("u@v6.org", site, "user")
		other := e.site("ot", 10)
		otherTech := e.person("tech@ot.org", other, "tech")
		n1 := e.node(site, "n1.v6.org")
		primary := e.add(e.admin, core.Interface, core.Record{"node_id": n1, "method": "dhcp"})
		second := e.add(e.admin, core.Interface, core.Record{"node_id": n1, "method": "static", "ip": "10.0.0.5", "network": "10.0.0.0", "netmask": "255.255.255.0", "broadcast": "10.0.0.255"})
		tt := e.tagType(tags.SliversIPv6Prefix)
		st0 := e.state(n1)
		if st0.IPv6Prefix != "" {
			t.Fatalf("prefix %q before any tag", st0.IPv6Prefix)
		}
		for _, bad := range []struct{ value, msg string }{
			{"2001:db8::/80", "longer than a /64"},
			{"2001:db8::1/64", "did you mean 2001:db8::/64?"},
			{"fe80::/64", "not inside the global unicast range"},
			{"10.1.0.0/16", "is not an IPv6 prefix"},
			{"2001:db8::", "has no prefix length"},
		} {
			_, err := e.s.Add(e.ctx, tech, core.InterfaceTag, core.Record{"interface_id": second, "tag_type_id": tt, "value": bad.value})
			wantCode(t, err, core.Invalid, bad.value)
			if core.ErrorField(err) != tags.SliversIPv6Prefix || !strings.Contains(err.Error(), bad.msg) {
				t.Errorf("%s: %v, want the tag named and %q", bad.value, err, bad.msg)
			}
			// The accessor's path: the tag as a pseudo-field of the interface.
			err = e.s.Update(e.ctx, e.admin, core.Interface, primary, core.Record{tags.SliversIPv6Prefix: bad.value})
			wantCode(t, err, core.Invalid, "update "+bad.value)
		}
		_, err := e.s.Add(e.ctx, user, core.InterfaceTag, core.Record{"interface_id": second, "tag_type_id": tt, "value": "2001:db8:7::/64"})
		wantCode(t, err, core.Forbidden, "a user")
		_, err = e.s.Add(e.ctx, otherTech, core.InterfaceTag, core.Record{"interface_id": second, "tag_type_id": tt, "value": "2001:db8:7::/64"})
		wantCode(t, err, core.Forbidden, "another site's tech")
		if st := e.state(n1); st.Version != st0.Version || st.IPv6Prefix != "" {
			t.Fatalf("refused writes changed the state: %q %q", st.Version, st.IPv6Prefix)
		}
		e.add(tech, core.InterfaceTag, core.Record{"interface_id": second, "tag_type_id": tt, "value": "2001:db8:7::/64"})
		st1 := e.state(n1)
		if st1.IPv6Prefix != "2001:db8:7::/64" || st1.Version == st0.Version {
			t.Fatalf("second interface's prefix: %q (version %s, was %s)", st1.IPv6Prefix, st1.Version, st0.Version)
		}
		e.must(e.s.Update(e.ctx, e.admin, core.Interface, primary, core.Record{tags.SliversIPv6Prefix: "fd00:1:2:3::/64"}))
		if st := e.state(n1); st.IPv6Prefix != "fd00:1:2:3::/64" {
			t.Fatalf("the primary interface's prefix does not win: %q", st.IPv6Prefix)
		}
		e.must(e.s.Update(e.ctx, e.admin, core.Interface, primary, core.Record{tags.SliversIPv6Prefix: nil}))
		if st := e.state(n1); st.IPv6Prefix != "2001:db8:7::/64" {
			t.Fatalf("after deleting the primary's tag: %q", st.IPv6Prefix)
		}
	})
}
