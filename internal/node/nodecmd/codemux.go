package nodecmd

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netns"

	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/codemux"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// CodemuxPorts are the node's ports codemux takes when it runs: no slice
// may reserve them (netcfg.Config.NodePorts).
var CodemuxPorts = []netcfg.Port{{Proto: "tcp", From: 80, To: 80}, {Proto: "tcp", From: 443, To: 443}}

// openCodemux listens on the node's ports 80 and 443 (in the node's
// namespace) for the port demultiplexer.
func (n *Node) openCodemux(opts Options) error {
	listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	var dial func(ctx context.Context, network, addr string) (net.Conn, error) // default: ours
	if opts.NetNS != "" {
		// Listen on, and dial the slivers from, the node's namespace.
		h, err := netns.GetFromPath(opts.NetNS)
		if err != nil {
			return fmt.Errorf("codemux: node netns: %w", err)
		}
		n.codemuxNS = &h
		listen = func(addr string) (l net.Listener, err error) {
			err = netcfg.InNetNS(h, func() error { l, err = net.Listen("tcp", addr); return err })
			return l, err
		}
		dial = func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = netcfg.InNetNS(h, func() error {
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}
	}
	var err error
	if n.codemuxHTTP, err = listen(opts.CodemuxHTTP); err != nil {
		return fmt.Errorf("codemux: %w", err)
	}
	if n.codemuxTLS, err = listen(opts.CodemuxTLS); err != nil {
		n.codemuxHTTP.Close()
		return fmt.Errorf("codemux: %w", err)
	}
	n.Codemux = codemux.New(codemux.Config{Logger: opts.Logger, Dial: dial})
	return nil
}

// setCodemux hands the agent's codemux routes to the demultiplexer, each
// to the address of its sliver.
func (n *Node) setCodemux(node string, routes []agent.CodemuxRoute) {
	n.Codemux.SetNode(node)
	claims := make([]codemux.Claim, 0, len(routes))
	for _, r := range routes {
		_, _, addr, err := netcfg.SliverSubnet(n.Net.Config().Prefix, r.XID)
		if err != nil {
			n.log.Warn("codemux: no address for sliver", "sliver", r.Slice, "xid", r.XID, "err", err)
			continue
		}
		claims = append(claims, codemux.Claim{Slice: r.Slice, Addr: addr, Route: r.Route})
	}
	for slice, err := range n.Codemux.Set(claims) {
		n.log.Warn("codemux: route refused", "sliver", slice, "err", err)
	}
}
