package vlink

import (
	"io"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// BenchmarkLink compares, in one run on two emulated nodes, a sliver-to-
// sliver virtual link with the same two nodes' path without it:
//
//	rtt/direct      UDP round trip node 1 -> node 2 over the "WAN" veth
//	rtt/nat         sliver on node 1 -> node 2's address (the path slivers had before links: netcfg's NAT)
//	rtt/vlink       sliver -> sliver over the link (VXLAN, bridge, veths)
//	tcp/direct      TCP stream node 1 -> node 2
//	tcp/vlink       TCP stream over a link shaped at its maximum rate (1 Gbit/s)
//	tcp/vlink-unshaped  the same with the tbf removed: the tunnel's own cost
//	rtt/relayed, tcp/relayed  a link with a 1 µs delay: through the delay relay (no netem here)
//
// rtt ns/op is one round trip; tcp MB/s is the stream's payload rate.
func BenchmarkLink(b *testing.B) {
	n1, n2 := newPair(b)
	a1, a2 := n1.sliver(b, "hva", 11), n2.sliver(b, "hva", 11)
	relayed := end("rl", 66, "10.200.0.5/30", "", n2.addr, 1_000_000)
	relayed.DelayUS = 1
	link(b, n1, n2, a1, a2, "hva", end("ab", 65, "10.200.0.1/30", "", n2.addr, 1_000_000), relayed)
	direct := udpListen(b, n2.ns, "192.0.2.2:7000")
	go echo(direct)
	over := udpListen(b, a2, "10.200.0.2:7000")
	go echo(over)
	overRelay := udpListen(b, a2, "10.200.0.6:7000")
	go echo(overRelay)
	for _, c := range []struct{ name, from, to string }{
		{"rtt/direct", n1.ns, "192.0.2.2:7000"},
		{"rtt/nat", a1, "192.0.2.2:7000"},
		{"rtt/vlink", a1, "10.200.0.2:7000"},
		{"rtt/relayed", a1, "10.200.0.6:7000"},
	} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := rtt(b, c.from, c.to); err != nil { // warm ARP
				b.Fatal(err)
			}
			var conn net.Conn
			in(b, c.from, func() (err error) { conn, err = net.Dial("udp4", c.to); return err })
			defer conn.Close()
			buf := make([]byte, 64)
			for b.Loop() {
				if _, err := conn.Write(buf[:32]); err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	stream := func(b *testing.B, from, to, addr string) {
		var l net.Listener
		in(b, to, func() (err error) { l, err = net.Listen("tcp4", addr); return err })
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
		var c net.Conn
		in(b, from, func() (err error) { c, err = net.Dial("tcp4", addr); return err })
		defer c.Close()
		buf := make([]byte, 64<<10)
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("tcp/direct", func(b *testing.B) { stream(b, n1.ns, n2.ns, "192.0.2.2:7100") })
	b.Run("tcp/vlink", func(b *testing.B) { stream(b, a1, a2, "10.200.0.2:7101") })
	b.Run("tcp/relayed", func(b *testing.B) { stream(b, a1, a2, "10.200.0.6:7103") })
	for _, n := range []*testNode{n1, n2} {
		vx, err := n.vl.nl.LinkByName("vlx65")
		must(b, err)
		must(b, n.vl.nl.QdiscDel(&netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: vx.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}}))
	}
	b.Run("tcp/vlink-unshaped", func(b *testing.B) { stream(b, a1, a2, "10.200.0.2:7102") })
}
