package service

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/plc/store"
)

func TestAuditWho(t *testing.T) {
	e := newEnv(t, t.TempDir()+"/plc.db")
	siteA, siteB := e.site("aa", 10), e.site("bb", 10)
	piA := e.person("pi@aa.test", siteA, core.RolePI)
	piB := e.person("pi@bb.test", siteB, core.RolePI)
	member := e.person("member@aa.test", siteA, core.RoleUser)
	other := e.person("other@aa.test", siteA, core.RoleUser)
	sliceA := e.slice(piA, "aa_exp")
	sliceB := e.slice(piB, "bb_exp")
	e.must(e.s.Link(e.ctx, e.admin, core.SlicePerson, sliceA, member.PersonID, nil))

	n1 := e.node(siteA, "n1.aa.test")
	e.add(e.admin, core.Interface, core.Record{"node_id": n1, "method": "static", "ip": "127.0.0.1", "network": "127.0.0.0", "netmask": "255.0.0.0", "broadcast": "127.255.255.255", "gateway": "127.0.0.254", "dns1": "127.0.0.53", "is_primary": true})
	n2 := e.node(siteB, "n2.bb.test")
	e.add(e.admin, core.Interface, core.Record{"node_id": n2, "method": "static", "ip": "127.0.0.2", "network": "127.0.0.0", "netmask": "255.0.0.0", "broadcast": "127.255.255.255", "gateway": "127.0.0.254", "dns1": "127.0.0.53", "is_primary": true})
	var key1 string
	e.must(e.s.db.Read(e.ctx, func(tx *store.Tx) error {
		_, err := tx.QueryRow(e.ctx, "SELECT key FROM nodes WHERE node_id = ?", []any{n1}, &key1)
		return err
	}))

	// Node 1 answers (checking PLC's signature); node 2 does not listen.
	start := e.clock.Now().Add(-time.Hour)
	flow := func(xid int, slice string, id int64, port uint16) core.Flow {
		return core.Flow{Start: start, End: start.Add(time.Minute), Proto: 6, Dir: "out",
			Inside: netip.MustParseAddrPort("10.42.0.6:40000"), Public: netip.MustParseAddrPort("127.0.0.1:40000"),
			Remote: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.7"), port), BytesSent: 100, XID: xid, Slice: slice, SliceID: id}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := nodeapi.VerifyPLC(key1, n1, r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), e.clock.Now()); err != nil {
			http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusUnauthorized)
			return
		}
		q, err := core.ParseFlowQuery(r.URL.Query(), e.clock.Now())
		if err != nil || q.Addr.String() != "203.0.113.7" || q.Port != 22 {
			http.Error(w, "bad query", http.StatusBadRequest)
			return
		}
		asked++
		_ = json.NewEncoder(w).Encode(nodeapi.FlowPage{Flows: []core.Flow{
			flow(5, "aa_exp", sliceA, 22), flow(6, "bb_exp", sliceB, 22), flow(0, "", 0, 22), flow(7, "aa_gone", 999, 22)}})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	e.s.opts.Audit = AuditOptions{Port: strings.Split(ln.Addr().String(), ":")[1], Timeout: 3 * time.Second}

	q, err := core.ParseFlowQuery(map[string][]string{"addr": {"203.0.113.7"}, "port": {"22"}, "since": {"2h"}}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	who := func(c *core.Caller) *core.AuditAnswer {
		t.Helper()
		a, err := e.s.AuditWho(e.ctx, c, q)
		if err != nil {
			t.Fatal(err)
		}
		if a.Asked != 2 || len(a.NotAnswering) != 1 || a.NotAnswering[0].NodeID != n2 || !strings.Contains(a.NotAnswering[0].Error, "not answering") {
			t.Fatalf("nodes: asked %d, not answering %+v", a.Asked, a.NotAnswering)
		}
		return a
	}
	slices := func(a *core.AuditAnswer) string {
		var s []string
		for _, f := range a.Flows {
			s = append(s, f.Slice+"@"+f.SiteName)
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	a := who(e.admin)
	if got := slices(a); got != "@Site aa aa_exp@Site aa aa_gone@Site aa bb_exp@Site bb" {
		t.Errorf("admin sees %q", got)
	}
	for _, f := range a.Flows {
		if f.Hostname != "n1.aa.test" || f.NodeID != n1 {
			t.Errorf("flow node %d %s", f.NodeID, f.Hostname)
		}
		wantPI := "pi@aa.test"
		if f.Slice == "bb_exp" {
			wantPI = "pi@bb.test"
		}
		if len(f.PIs) != 1 || f.PIs[0].Email != wantPI {
			t.Errorf("%s: PIs %+v, want %s", f.Slice, f.PIs, wantPI)
		}
		if f.SliceGone != (f.Slice == "aa_gone") {
			t.Errorf("%s: slice_gone %v", f.Slice, f.SliceGone)
		}
	}
	if got := slices(who(piA)); got != "@Site aa aa_exp@Site aa aa_gone@Site aa" {
		t.Errorf("PI of aa sees %q", got)
	}
	if got := slices(who(piB)); got != "bb_exp@Site bb" {
		t.Errorf("PI of bb sees %q", got)
	}
	if got := slices(who(member)); got != "aa_exp@Site aa" {
		t.Errorf("member sees %q", got)
	}
	if got := slices(who(other)); got != "" {
		t.Errorf("a user of no slice sees %q", got)
	}
	if _, err := e.s.AuditWho(e.ctx, &core.Caller{Kind: core.Anonymous, Roles: []string{core.RoleAnonymous}}, q); err == nil {
		t.Error("anonymous caller allowed")
	}
	if asked != 5 {
		t.Errorf("node asked %d times, want 5", asked)
	}
}
