package vlink

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// rule is one nftables rule as kernel expressions and as a canonical
// nft-like text line (what unit tests compare); each builder step appends
// to both.
type rule struct {
	chain string
	text  string
	exprs []expr.Any
}

func (r *rule) add(text string, e ...expr.Any) *rule {
	if r.text != "" {
		r.text += " "
	}
	r.text += text
	r.exprs = append(r.exprs, e...)
	return r
}

func (r *rule) String() string { return r.chain + ": " + r.text }

const reg = 1

func eq(b []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: b} }

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// vxlan matches IPv4 UDP to the tunnel port.
func (r *rule) vxlan(port uint16) *rule {
	return r.add(fmt.Sprintf("ip udp dport %d", port),
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg}, eq([]byte{unix.NFPROTO_IPV4}),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}, eq([]byte{unix.IPPROTO_UDP}),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, eq(be16(port)))
}

// addr matches the IPv4 source or destination address.
func (r *rule) addr(src bool, a netip.Addr) *rule {
	off, word := uint32(16), "ip daddr"
	if src {
		off, word = 12, "ip saddr"
	}
	return r.add(word+" "+a.String(), &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}, eq(a.AsSlice()))
}

// vni matches the VXLAN network identifier: bytes 4-6 of the VXLAN
// header, which follows the 8-byte UDP header.
func (r *rule) vni(v uint32) *rule {
	return r.add(fmt.Sprintf("vxlan vni %d", v), &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 12, Len: 3}, eq(be32(v)[1:]))
}

// loss matches a random ppm parts per million of packets.
func (r *rule) loss(ppm int64) *rule {
	return r.add(fmt.Sprintf("numgen random mod 1000000 < %d", ppm),
		&expr.Numgen{Register: reg, Modulus: 1_000_000, Type: unix.NFT_NG_RANDOM},
		&expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpLt, Register: reg, Data: be32(uint32(ppm))})
}

// sliver marks a packet and its conntrack entry as sliver xid's (the
// marks netcfg gives its own packets) and classifies it into the sliver's
// uplink HTB class.
func (r *rule) sliver(xid int) *rule {
	class := netcfg.ClassID(xid)
	return r.add(fmt.Sprintf("meta mark set %#x ct mark set %#x meta priority set %x:%x", xid, xid, class>>16, class&0xffff),
		&expr.Immediate{Register: reg, Data: binaryutil.NativeEndian.PutUint32(uint32(xid))},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg},
		&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg},
		&expr.Immediate{Register: reg, Data: binaryutil.NativeEndian.PutUint32(class)},
		&expr.Meta{Key: expr.MetaKeyPRIORITY, SourceRegister: true, Register: reg})
}

// ctMark marks a packet's conntrack entry as sliver xid's: the flow log
// attributes the flow to its slice by it.
func (r *rule) ctMark(xid int) *rule {
	return r.add(fmt.Sprintf("ct mark set %#x", xid),
		&expr.Immediate{Register: reg, Data: binaryutil.NativeEndian.PutUint32(uint32(xid))},
		&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg})
}

func (r *rule) counter() *rule { return r.add("counter", &expr.Counter{}) }
func (r *rule) accept() *rule  { return r.add("accept", &expr.Verdict{Kind: expr.VerdictAccept}) }
func (r *rule) drop() *rule    { return r.add("drop", &expr.Verdict{Kind: expr.VerdictDrop}) }
func (r *rule) jump(chain string) *rule {
	return r.add("jump "+chain, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
}

// Chains of the table: three base chains and two regular ones.
const (
	chainIn   = "vx-in"
	chainOut  = "vx-out"
	hookIn    = "input"
	hookOut   = "output"
	hookFwd   = "forward"
	prioFirst = -10 // before the node's filter chains
)

type baseChain struct {
	name string
	hook *nftables.ChainHook
}

var baseChains = []baseChain{{hookIn, nftables.ChainHookInput}, {hookOut, nftables.ChainHookOutput}, {hookFwd, nftables.ChainHookForward}}

// sliverEnd is a link end and the xid of its sliver.
type sliverEnd struct {
	vlinks.End
	xid int
}

// rules are the whole table's rules for the link ends of every sliver on
// the node, in a canonical order (by VNI, then peer). Tunnel packets
// leaving for a sliver's link are marked and classified as that sliver's
// (netcfg's HTB class): they count against its rates and its daily budget.
// Tunnel packets in both directions mark their conntrack entry with the
// sliver's xid: each link end has a UDP source port of its own on the node
// (Manager.ports), so a conntrack entry never holds two slices' tunnels
// and the flow log names the slice of each. A LAN end has one rule per
// peer (the other members' nodes).
func rules(port uint16, all map[string][]vlinks.End, xids map[string]int) []*rule {
	var ends []sliverEnd
	for s, es := range all {
		for _, e := range es {
			ends = append(ends, sliverEnd{e, xids[s]})
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].VNI < ends[j].VNI })
	rs := []*rule{
		(&rule{chain: hookIn}).vxlan(port).jump(chainIn),
		(&rule{chain: hookOut}).vxlan(port).jump(chainOut),
		(&rule{chain: hookFwd}).vxlan(port).counter().drop(),
	}
	for _, e := range ends {
		for _, p := range e.Peers {
			rs = append(rs, (&rule{chain: chainIn}).addr(true, p).vni(e.VNI).ctMark(e.xid).accept())
		}
	}
	rs = append(rs, (&rule{chain: chainIn}).counter().drop())
	for _, e := range ends {
		for _, p := range e.Peers {
			if e.LossPPM > 0 {
				rs = append(rs, (&rule{chain: chainOut}).addr(false, p).vni(e.VNI).loss(e.LossPPM).counter().drop())
			}
			rs = append(rs, (&rule{chain: chainOut}).addr(false, p).vni(e.VNI).sliver(e.xid).accept())
		}
	}
	rs = append(rs, (&rule{chain: chainOut}).counter().drop())
	return rs
}
