package agent

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
)

func signTicket(t *testing.T, priv ed25519.PrivateKey, name string, id int64, nodes []int64, from, until int64, r rspec.RSpec) string {
	t.Helper()
	sv := sliverOf(name, id)
	sv.Instantiation = "delegated"
	w, err := ticket.Sign(ticket.Ticket{V: 1, Nonce: ticket.NewNonce(), NotBefore: from, NotAfter: until, Nodes: nodes, RSpec: r, Sliver: sv}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A ticket is honoured while PLC is unreachable, and forged, replayed,
// expired, other-node and over-capacity tickets are refused precisely
// and change nothing; the nonce set survives a restart; the sliver goes
// when the ticket ends.
func TestTicketsWithoutPLC(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, forger, _ := ed25519.GenerateKey(nil)
	deleg := sliverOf("pl_broker", 7)
	deleg.Instantiation = "delegated"
	h := newHarness(t, &core.NodeState{Version: "v0", NodeID: 3, TicketKeys: []core.TicketKey{ticket.NewPublicKey(pub, "plc")},
		Slivers: []core.Sliver{sliverOf("pl_a", 1, "cpu_pct", "50"), deleg}})
	h.start()
	h.eventually("pl_a created", func() bool { return h.exists("pl_a") })
	if h.exists("pl_broker") {
		t.Fatal("a delegated slice was instantiated without a ticket")
	}
	h.plc.setDown(true)
	h.eventually("offline", func() bool { return !h.m.Online() })

	now := h.clock.now().Unix()
	good := signTicket(t, priv, "pl_broker", 7, []int64{2, 3}, now-10, now+3600, rspec.RSpec{CPUShare: 2, CPUPct: 30})
	tk, err := h.m.RedeemTicket(good)
	if err != nil {
		t.Fatal(err)
	}
	if tk.Sliver.Name != "pl_broker" {
		t.Fatalf("%+v", tk)
	}
	h.eventually("ticketed sliver created while PLC is down", func() bool { return h.exists("pl_broker") })

	for _, c := range []struct {
		name, wire string
		code       core.Code
		want       string
	}{
		{"replay", good, core.Conflict, "already redeemed"},
		{"forged", signTicket(t, forger, "pl_c", 9, []int64{3}, now-10, now+60, rspec.RSpec{CPUShare: 1}), core.Unauthenticated, "does not trust"},
		{"other node", signTicket(t, priv, "pl_c", 9, []int64{4, 5}, now-10, now+60, rspec.RSpec{CPUShare: 1}), core.Forbidden, "for nodes [4 5], this is node 3"},
		{"expired", signTicket(t, priv, "pl_c", 9, []int64{3}, now-100, now, rspec.RSpec{CPUShare: 1}), core.Forbidden, "expired at"},
		{"not yet", signTicket(t, priv, "pl_c", 9, []int64{3}, now+10, now+60, rspec.RSpec{CPUShare: 1}), core.Forbidden, "valid from"},
		{"over capacity", signTicket(t, priv, "pl_c", 9, []int64{3}, now-10, now+60, rspec.RSpec{CPUShare: 1, CPUPct: 20}), core.Conflict, "cpu_pct: 100% promised in all, the node can guarantee 90%"},
		{"garbage", "pl1.x.y", core.Invalid, "payload is not base64url"},
	} {
		_, err := h.m.RedeemTicket(c.wire)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s %q", c.name, err, c.code, c.want)
		}
	}
	// A ticket replacing the holder's own allocation is counted once: 50
	// (pl_a) + 40 (pl_broker, instead of 30) fits 90.
	if _, err := h.m.RedeemTicket(signTicket(t, priv, "pl_broker", 7, []int64{3}, now-10, now+60, rspec.RSpec{CPUShare: 2, CPUPct: 40})); err != nil {
		t.Errorf("re-ticketing within capacity: %v", err)
	}
	if h.exists("pl_c") {
		t.Fatal("a refused ticket created a sliver")
	}

	// Restart: the book survives; the replay is still refused.
	h.stop()
	h.start()
	h.eventually("cached state loaded", func() bool { return h.m.Status().Version != "" })
	if _, err := h.m.RedeemTicket(good); core.ErrorCode(err) != core.Conflict {
		t.Fatalf("replay after restart: %v", err)
	}
	h.eventually("ticketed sliver kept across restart", func() bool { return h.exists("pl_broker") })

	// The second ticket ends at now+60: the sliver goes.
	h.clock.t.Add(61)
	h.eventually("sliver destroyed when the ticket ends", func() bool { return !h.exists("pl_broker") })
	if !h.exists("pl_a") {
		t.Fatal("pl_a went too")
	}
}

func TestWithTicketsIsPure(t *testing.T) {
	st := &core.NodeState{Slivers: []core.Sliver{sliverOf("pl_a", 1, "cpu_share", "1", "vref", "default")}}
	tk := ticket.Ticket{NotBefore: 10, NotAfter: 20, RSpec: rspec.RSpec{CPUShare: 5}, Sliver: sliverOf("pl_a", 1)}
	got := WithTickets(st, []ticket.Ticket{tk}, 15)
	if st.Slivers[0].Attributes[0].Value != "1" {
		t.Fatal("input modified")
	}
	r, _ := rspec.FromAttributes(got.Slivers[0].Attributes)
	if r.CPUShare != 5 || got.Slivers[0].Expires != 20 || got.Slivers[0].Attributes[0].TagName != "vref" {
		t.Fatalf("%+v", got.Slivers[0])
	}
	if WithTickets(st, []ticket.Ticket{tk}, 20).Slivers[0].Expires != 2000000000 {
		t.Fatal("an ended ticket still applies")
	}
}
