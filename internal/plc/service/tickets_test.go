package service

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/ticket"
)

func TestSliceTicket(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("tk", 10)
		pi := e.person("pi@tk.org", site, "pi")
		other := e.person("o@tk.org", e.site("ot", 10), "pi")
		n1 := e.node(site, "n1.tk.org")
		n2 := e.node(site, "n2.tk.org")
		sid := e.slice(pi, "tk_app")
		e.must(e.s.Link(e.ctx, pi, core.SliceNode, sid, n1, nil))
		e.tag(e.admin, sid, "cpu_pct", "20")
		e.tag(e.admin, sid, "cpu_share", "3")
		deleg := e.slice(e.admin, "tk_deleg", "instantiation", "delegated")

		_, err := e.s.SliceTicket(e.ctx, pi, ticket.Request{SliceID: sid})
		wantCode(t, err, core.Unimplemented, "no ticket key")

		pub, priv, _ := ed25519.GenerateKey(nil)
		e.s.opts.TicketKey = priv
		e.s.ForgetStates() // options are fixed while PLC runs; a cached state would not have the key
		// Nodes learn the key with their state.
		st := e.state(n1)
		trusted, err := ticket.Trusted(st.TicketKeys)
		if err != nil || len(trusted) != 1 || !trusted[ticket.KeyID(pub)].Equal(pub) {
			t.Fatalf("state ticket keys %+v: %v", st.TicketKeys, err)
		}
		// Brokers the admin trusts (pl plc --ticket-broker) follow PLC's key.
		bpub, bpriv, _ := ed25519.GenerateKey(nil)
		brokers, err := ticket.ParseBrokers([]string{"gush=" + base64.StdEncoding.EncodeToString(bpub)})
		e.must(err)
		e.s.opts.TicketBrokers = brokers
		e.s.ForgetStates()
		st = e.state(n1)
		if len(st.TicketKeys) != 2 || st.TicketKeys[0].Issuer != "plc" || st.TicketKeys[1] != ticket.NewPublicKey(bpub, "gush") {
			t.Fatalf("state ticket keys with a broker %+v", st.TicketKeys)
		}
		bw, err := ticket.Sign(ticket.Ticket{V: 1, Nonce: ticket.NewNonce(), NotBefore: 1, NotAfter: 2, Nodes: []int64{n1}, Sliver: core.Sliver{Name: "tk_app", SliceID: sid}}, bpriv)
		e.must(err)
		withBroker, err := ticket.Trusted(st.TicketKeys)
		e.must(err)
		if _, err := ticket.Verify(bw, withBroker); err != nil {
			t.Fatalf("broker's ticket against the state's keys: %v", err)
		}
		if _, err := ticket.Verify(bw, trusted); core.ErrorCode(err) != core.Unauthenticated {
			t.Fatalf("broker's ticket against PLC's key alone: %v", err)
		}
		e.s.opts.TicketBrokers = nil
		e.s.ForgetStates()

		w, err := e.s.SliceTicket(e.ctx, pi, ticket.Request{SliceID: sid})
		e.must(err)
		tk, err := ticket.Verify(w, trusted)
		e.must(err)
		now := e.clock.Now().Unix()
		if tk.Sliver.Name != "tk_app" || len(tk.Nodes) != 1 || tk.Nodes[0] != n1 || tk.NotBefore != now || tk.NotAfter != now+86400 ||
			tk.RSpec.CPUPct != 20 || tk.RSpec.CPUShare != 3 {
			t.Fatalf("ticket %+v", tk)
		}
		// A node the slice is not on; a delegated slice anywhere.
		_, err = e.s.SliceTicket(e.ctx, pi, ticket.Request{SliceID: sid, NodeIDs: []int64{n2}})
		wantCode(t, err, core.Conflict, "slice not on n2")
		w, err = e.s.SliceTicket(e.ctx, e.admin, ticket.Request{SliceID: deleg, NodeIDs: []int64{n2, n1}, Duration: time.Hour, RSpec: &rspec.RSpec{CPUShare: 2, CPUPct: 50}})
		e.must(err)
		tk, err = ticket.Verify(w, trusted)
		e.must(err)
		if tk.Nodes[0] != n1 || tk.Nodes[1] != n2 || tk.RSpec.CPUPct != 50 || tk.NotAfter != now+3600 || tk.Sliver.Instantiation != "delegated" {
			t.Fatalf("delegated ticket %+v", tk)
		}
		// Only admins set the rspec; outsiders get nothing; bad input.
		_, err = e.s.SliceTicket(e.ctx, pi, ticket.Request{SliceID: sid, RSpec: &rspec.RSpec{CPUPct: 90}})
		wantCode(t, err, core.Forbidden, "pi sets rspec")
		_, err = e.s.SliceTicket(e.ctx, other, ticket.Request{SliceID: sid})
		wantCode(t, err, core.Forbidden, "other site's pi")
		_, err = e.s.SliceTicket(e.ctx, pi, ticket.Request{SliceID: sid, Duration: 31 * 24 * time.Hour})
		wantCode(t, err, core.Invalid, "too long")
		_, err = e.s.SliceTicket(e.ctx, e.admin, ticket.Request{SliceID: deleg})
		wantCode(t, err, core.Invalid, "delegated slice on no node")
		_, err = e.s.SliceTicket(e.ctx, e.admin, ticket.Request{SliceID: deleg, NodeIDs: []int64{n1, n1}})
		wantCode(t, err, core.Invalid, "node twice")
		_, err = e.s.SliceTicket(e.ctx, e.admin, ticket.Request{SliceID: sid, NodeIDs: []int64{999}})
		wantCode(t, err, core.NotFound, "unknown node")
	})
}
