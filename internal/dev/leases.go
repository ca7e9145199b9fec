package dev

import (
	"context"
	"fmt"
	"io"

	"github.com/planetlab/pl/internal/core"
)

// LeaseGranularity is the lease granularity of the planet's PLC: a minute,
// so a lease taken now starts within a minute (PLC's default is an hour).
const LeaseGranularity = "1m"

// makeReservable turns the last node into a reservable one (node_type
// reservable at PLC). Its node manager then runs only the slivers of the
// slice holding a lease and freezes the others, the demo's included, until
// one does (docs/brokering.md).
func (p *Planet) makeReservable(ctx context.Context) error {
	reg, err := p.AdminClient(ctx)
	if err != nil {
		return err
	}
	n := p.Nodes[len(p.Nodes)-1]
	if err := reg.Update(ctx, nil, core.Node, n.NodeID, core.Record{"node_type": "reservable"}); err != nil {
		return err
	}
	p.Reservable = n
	return nil
}

// regular returns the nodes that are not reservable: the demo runs on
// them whatever the leases.
func (p *Planet) regular() []*Node {
	var out []*Node
	for _, n := range p.Nodes {
		if n != p.Reservable {
			out = append(out, n)
		}
	}
	return out
}

// printLeases tells how to reserve the reservable node for the demo slice
// and watch its sliver thaw.
func (p *Planet) printLeases(w io.Writer) {
	n := p.Reservable
	if n == nil || p.Demo == nil {
		return
	}
	iv := p.invoker
	pl := func(args ...string) string {
		return iv.command(true, p.cliEnv(), append([]string{p.Binary}, args...)...)
	}
	fmt.Fprintf(w, "\nTry a lease: %s is reservable; the demo sliver there is frozen until the slice holds a lease (rounded to %s):\n", n.Hostname, LeaseGranularity)
	fmt.Fprintf(w, "  %s\n", pl("lease", "add", p.Demo.Slice, n.Hostname, "--from", "+0s", "--until", "+30m"))
	fmt.Fprintf(w, "  %s\n", pl("lease", "list", "--node", n.Hostname))
	fmt.Fprintf(w, "  curl http://%s:%d/   # answers within a minute, once the lease starts\n", n.Addr, p.Demo.Port)
}
