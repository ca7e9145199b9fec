package service

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestAuditSlice: PLC asks every node for a slice's traffic (signed),
// merges the answers (days, top destinations, nodes), lists the node that
// does not answer, and answers only the slice's members, its site's PIs
// and admins.
func TestAuditSlice(t *testing.T) {
	e := newEnv(t, t.TempDir()+"/plc.db")
	siteA, siteB := e.site("aa", 10), e.site("bb", 10)
	piA := e.person("pi@aa.test", siteA, core.RolePI)
	piB := e.person("pi@bb.test", siteB, core.RolePI)
	member := e.person("member@aa.test", siteA, core.RoleUser)
	other := e.person("other@aa.test", siteA, core.RoleUser)
	sliceA := e.slice(piA, "aa_exp")
	e.must(e.s.Link(e.ctx, e.admin, core.SlicePerson, sliceA, member.PersonID, nil))

	iface := func(node int64, ip string) {
		e.add(e.admin, core.Interface, core.Record{"node_id": node, "method": "static", "ip": ip, "network": "127.0.0.0", "netmask": "255.0.0.0", "broadcast": "127.255.255.255", "gateway": "127.0.0.254", "dns1": "127.0.0.53", "is_primary": true})
	}
	n1, n2, n3 := e.node(siteA, "n1.aa.test"), e.node(siteB, "n2.bb.test"), e.node(siteB, "n3.bb.test")
	iface(n1, "127.0.0.1")
	iface(n2, "127.0.0.2")
	iface(n3, "127.0.0.3")
	keys := map[int64]string{}
	for _, n := range []int64{n1, n2} {
		var k string
		e.must(e.s.db.Read(e.ctx, func(tx *store.Tx) error {
			_, err := tx.QueryRow(e.ctx, "SELECT key FROM nodes WHERE node_id = ?", []any{n}, &k)
			return err
		}))
		keys[n] = k
	}
	dst := func(a string, sent uint64) core.TrafficDest {
		return core.TrafficDest{Remote: netip.MustParseAddr(a), Traffic: core.Traffic{BytesSent: sent, BytesReceived: 10, Flows: 1}}
	}
	answers := map[int64]core.TrafficSummary{
		n1: {Total: core.Traffic{BytesSent: 300, BytesReceived: 20, Flows: 2}, Days: []core.TrafficDay{{Day: "2026-12-02", Traffic: core.Traffic{BytesSent: 300, BytesReceived: 20, Flows: 2}}},
			Top: []core.TrafficDest{dst("203.0.113.7", 200), dst("198.51.100.1", 100)}},
		n2: {Total: core.Traffic{BytesSent: 150, BytesReceived: 20, Flows: 2}, Days: []core.TrafficDay{{Day: "2026-12-01", Traffic: core.Traffic{BytesSent: 150, BytesReceived: 20, Flows: 2}}},
			Top: []core.TrafficDest{dst("198.51.100.1", 120), dst("192.0.2.9", 30)}},
	}
	// n1 and n2 answer on the same port (checking PLC's signature and the
	// query); n3 does not listen.
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strings.Split(ln1.Addr().String(), ":")[1]
	ln2, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Skipf("no second loopback address on port %s: %v", port, err)
	}
	serve := func(ln net.Listener, node int64) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := nodeapi.VerifyPLC(keys[node], node, r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), e.clock.Now()); err != nil {
				http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusUnauthorized)
				return
			}
			q, err := core.ParseTrafficQuery(r.URL.Query(), e.clock.Now())
			if r.URL.Path != nodeapi.FlowSummaryPath || err != nil || q.Slice != "aa_exp" || q.Top != core.TrafficTopMax {
				http.Error(w, `{"error":"bad query"}`, http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(answers[node])
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	serve(ln1, n1)
	serve(ln2, n2)
	e.s.opts.Audit = AuditOptions{Port: port, Timeout: 3 * time.Second}

	q := core.TrafficQuery{Slice: "aa_exp", Since: e.clock.Now().Add(-48 * time.Hour), Until: e.clock.Now(), Top: 2}
	for _, c := range []*core.Caller{e.admin, piA, member} {
		a, err := e.s.AuditSlice(e.ctx, c, q)
		if err != nil {
			t.Fatalf("%s: %v", c.Email, err)
		}
		if a.Asked != 3 || len(a.NotAnswering) != 1 || a.NotAnswering[0].NodeID != n3 {
			t.Fatalf("%s: asked %d, not answering %+v", c.Email, a.Asked, a.NotAnswering)
		}
		if a.Total != (core.Traffic{BytesSent: 450, BytesReceived: 40, Flows: 4}) || len(a.Days) != 2 || a.Days[0].Day != "2026-12-01" {
			t.Errorf("%s: total %+v days %+v", c.Email, a.Total, a.Days)
		}
		if len(a.Top) != 2 || a.Top[0].Remote.String() != "198.51.100.1" || a.Top[0].BytesSent != 220 || a.Top[1].Remote.String() != "203.0.113.7" {
			t.Errorf("%s: top %+v", c.Email, a.Top)
		}
		if len(a.Nodes) != 2 || a.Nodes[0].Hostname != "n1.aa.test" || a.Nodes[1].Hostname != "n2.bb.test" {
			t.Errorf("%s: nodes %+v", c.Email, a.Nodes)
		}
	}
	for _, c := range []*core.Caller{other, piB} {
		_, err := e.s.AuditSlice(e.ctx, c, q)
		wantCode(t, err, core.Forbidden, c.Email)
	}
	_, err = e.s.AuditSlice(e.ctx, member, core.TrafficQuery{Slice: "aa_none", Since: q.Since, Until: q.Until, Top: 2})
	wantCode(t, err, core.NotFound, "unknown slice")
}
