package nodecmd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/nodeapi"
)

// A ticket from PLC is redeemed through the node's local API socket while
// PLC is stopped: the node verifies it with the key its cached state
// carries and creates the delegated slice's sliver with the ticket's
// rspec; a replay is refused.
func TestTicketWhilePLCStopped(t *testing.T) {
	needRoot(t)
	p := startPLC(t)
	site := p.add(core.Site, core.Record{"login_base": "tk", "name": "TK", "abbreviated_name": "tk", "max_slices": int64(10)})
	nodeID := p.add(core.Node, core.Record{"site_id": site, "hostname": "n1.tk.test"})
	secret, err := p.reg.IssueJoinToken(p.ctx, p.admin, nodeID)
	p.must(err)
	l := newLiveNode(t, nil)
	tok := nodeapi.JoinToken{NodeID: nodeID, Secret: secret, Fingerprint: p.m.Fingerprint()}
	if _, err := Join(context.Background(), l.state, p.m.URL(), tok.String()); err != nil {
		t.Fatal(err)
	}
	sl := p.add(core.Slice, core.Record{"name": "tk_broker", "url": "http://x.test", "description": "d", "instantiation": "delegated"})
	l.start()
	l.eventually("online", 30*time.Second, func() bool { return l.node.Agent.Online() && l.node.Agent.Status().Passes > 0 })
	if l.running("tk_broker") {
		t.Fatal("delegated slice instantiated without a ticket")
	}
	w, err := p.reg.(ticket.Issuer).SliceTicket(p.ctx, p.admin, ticket.Request{SliceID: sl, NodeIDs: []int64{nodeID}, Duration: time.Hour, RSpec: &rspec.RSpec{CPUShare: 2, CPUPct: 10}})
	p.must(err)

	p.stop()
	l.eventually("offline", 30*time.Second, func() bool { return !l.node.Agent.Online() })
	sock := filepath.Join(l.state, APISocketName)
	var res agent.TicketResult
	if err := nmapi.Call(context.Background(), sock, "Ticket", agent.TicketArgs{Ticket: w}, &res); err != nil {
		t.Fatalf("redeem: %v", err)
	}
	if res.Slice != "tk_broker" || res.RSpec.CPUPct != 10 {
		t.Fatalf("result %+v", res)
	}
	took := l.eventually("ticketed sliver running with PLC stopped", 60*time.Second, func() bool { return l.running("tk_broker") })
	t.Logf("redeem -> sliver running (PLC down): %v", took)
	// cpu_pct 10 of the node's CPU with one sliver: its weight is at least
	// the share of cpu_share 2.
	if s := l.cgroupFile("cpu", "tk_broker", "cpu.shares"); s == "" || s == "0" {
		t.Fatalf("cpu.shares %q", s)
	}
	err = nmapi.Call(context.Background(), sock, "Ticket", agent.TicketArgs{Ticket: w}, nil)
	if core.ErrorCode(err) != core.Conflict || !strings.Contains(err.Error(), "already redeemed") {
		t.Fatalf("replay: %v", err)
	}
}
