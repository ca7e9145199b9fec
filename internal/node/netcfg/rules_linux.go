package netcfg

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core/ports"
)

// A rule is one nftables rule, built once as both its kernel expressions
// and a canonical nft-like text line. The text is what unit tests compare
// against golden files; the expressions are what the kernel gets. Each
// builder method appends to both, so they cannot drift apart.
type rule struct {
	chain   string
	target  string // the chain a jump rule jumps to
	text    []string
	exprs   []expr.Any
	comment string
}

func newRule(chain string) *rule { return &rule{chain: chain} }

// String renders the rule as "chain: match... verdict [# comment]".
func (r *rule) String() string {
	s := r.chain + ": " + strings.Join(r.text, " ")
	if r.comment != "" {
		s += ` comment "` + r.comment + `"`
	}
	return s
}

func (r *rule) add(text string, e ...expr.Any) *rule {
	r.text = append(r.text, text)
	r.exprs = append(r.exprs, e...)
	return r
}

// withComment sets the nft comment (userdata), which also tags the rule.
func (r *rule) withComment(c string) *rule { r.comment = c; return r }

func (r *rule) userData() []byte {
	if r.comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, r.comment)
}

const reg = 1 // the one register the builder uses

func cmpEq(data []byte) *expr.Cmp  { return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data} }
func cmpNeq(data []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: data} }

func (r *rule) nfproto(v4 bool) *rule {
	p, name := byte(unix.NFPROTO_IPV4), "ipv4"
	if !v4 {
		p, name = unix.NFPROTO_IPV6, "ipv6"
	}
	return r.add("meta nfproto "+name, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg}, cmpEq([]byte{p}))
}

// ifname matches the input (in) or output interface name exactly, or by
// prefix when name ends in "*".
func (r *rule) ifname(in bool, name string) *rule {
	key, word := expr.MetaKeyOIFNAME, "oifname"
	if in {
		key, word = expr.MetaKeyIIFNAME, "iifname"
	}
	var data []byte
	if p, ok := strings.CutSuffix(name, "*"); ok {
		data = []byte(p)
	} else {
		data = make([]byte, unix.IFNAMSIZ)
		copy(data, name)
	}
	return r.add(fmt.Sprintf("%s %q", word, name), &expr.Meta{Key: key, Register: reg}, cmpEq(data))
}

// ipAddr matches the source (src) or destination address against an
// address or prefix, equal or not equal: IPv4 (ip saddr) or IPv6 (ip6
// saddr) by the prefix's family. The caller has matched nfproto.
func (r *rule) ipAddr(src, neq bool, p netip.Prefix) *rule {
	off, n, word := uint32(16), uint32(4), "ip daddr"
	if src {
		off, word = 12, "ip saddr"
	}
	if p.Addr().Is6() {
		off, n, word = 24, 16, "ip6 daddr"
		if src {
			off, word = 8, "ip6 saddr"
		}
	}
	return r.addrMatch(word, expr.PayloadBaseNetworkHeader, off, n, neq, p)
}

// addrMatch compares n bytes at off of a header with an address or prefix.
func (r *rule) addrMatch(word string, base expr.PayloadBase, off, n uint32, neq bool, p netip.Prefix) *rule {
	op := ""
	if neq {
		op = "!= "
	}
	e := []expr.Any{&expr.Payload{DestRegister: reg, Base: base, Offset: off, Len: n}}
	text := p.Addr().String()
	if p.Bits() < p.Addr().BitLen() {
		e = append(e, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: n, Mask: prefixMask(int(n), p.Bits()), Xor: make([]byte, n)})
		text = p.Masked().String()
	}
	data := p.Masked().Addr().AsSlice()
	if neq {
		e = append(e, cmpNeq(data))
	} else {
		e = append(e, cmpEq(data))
	}
	return r.add(word+" "+op+text, e...)
}

func prefixMask(n, bits int) []byte {
	m := make([]byte, n)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// ICMPv6 types the rules name.
const (
	icmp6EchoRequest = 128
	icmp6RouterAdv   = 134
	icmp6NeighSol    = 135
	icmp6NeighAdv    = 136
	icmp6Redirect    = 137
)

var icmp6Names = map[byte]string{
	icmp6EchoRequest: "echo-request", icmp6RouterAdv: "nd-router-advert", icmp6NeighSol: "nd-neighbor-solicit",
	icmp6NeighAdv: "nd-neighbor-advert", icmp6Redirect: "nd-redirect",
}

func (r *rule) icmp6Type(t byte) *rule {
	return r.add("icmpv6 type "+icmp6Names[t],
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}, cmpEq([]byte{unix.IPPROTO_ICMPV6}),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		cmpEq([]byte{t}))
}

// ndTarget matches the target address of a neighbour advertisement (or
// solicitation): 16 bytes at offset 8 of the ICMPv6 message.
func (r *rule) ndTarget(neq bool, p netip.Prefix) *rule {
	return r.addrMatch("nd target", expr.PayloadBaseTransportHeader, 8, 16, neq, p)
}

// linkLocal6 is fe80::/10: a sliver's own link-local addresses, used for
// neighbour discovery on its veth. The kernel never forwards packets from
// them.
var linkLocal6 = netip.MustParsePrefix("fe80::/10")

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// dport matches the layer 4 protocol and a destination port or range.
func (r *rule) dport(p Port) *rule {
	proto := byte(unix.IPPROTO_TCP)
	if p.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}, cmpEq([]byte{proto}),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
	text := fmt.Sprintf("%s dport %d", p.Proto, p.From)
	if p.To == p.From {
		e = append(e, cmpEq(binaryutil.BigEndian.PutUint16(p.From)))
	} else {
		text = fmt.Sprintf("%s dport %d-%d", p.Proto, p.From, p.To)
		e = append(e,
			&expr.Cmp{Op: expr.CmpOpGte, Register: reg, Data: binaryutil.BigEndian.PutUint16(p.From)},
			&expr.Cmp{Op: expr.CmpOpLte, Register: reg, Data: binaryutil.BigEndian.PutUint16(p.To)})
	}
	return r.add(text, e...)
}

func (r *rule) icmpEcho() *rule {
	return r.add("icmp type echo-request",
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}, cmpEq([]byte{unix.IPPROTO_ICMP}),
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		cmpEq([]byte{8}))
}

func (r *rule) ctStateEstablishedRelated() *rule {
	return r.add("ct state established,related",
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  make([]byte, 4)},
		cmpNeq(make([]byte, 4)))
}

// ipsDstNAT is IPS_DST_NAT of the conntrack status bits.
const ipsDstNAT = 1 << 5

func (r *rule) ctStatusDNAT() *rule {
	return r.add("ct status dnat",
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		cmpNeq(make([]byte, 4)))
}

// markSliver sets the packet mark and the connection mark to the xid (for
// attribution: conntrack shows which sliver owns every flow) and the skb
// priority to the sliver's HTB class (for shaping).
func (r *rule) markSliver(xid int) *rule {
	classid := uint32(htbMajor)<<16 | uint32(htbClassMinor(xid))
	return r.add(fmt.Sprintf("meta mark set %#x ct mark set %#x meta priority set %x:%x", xid, xid, htbMajor, htbClassMinor(xid)),
		&expr.Immediate{Register: reg, Data: binaryutil.NativeEndian.PutUint32(uint32(xid))},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg},
		&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg},
		&expr.Immediate{Register: reg, Data: binaryutil.NativeEndian.PutUint32(classid)},
		&expr.Meta{Key: expr.MetaKeyPRIORITY, SourceRegister: true, Register: reg})
}

func (r *rule) counter() *rule { return r.add("counter", &expr.Counter{}) }

func (r *rule) accept() *rule {
	return r.add("accept", &expr.Verdict{Kind: expr.VerdictAccept})
}
func (r *rule) drop() *rule { return r.add("drop", &expr.Verdict{Kind: expr.VerdictDrop}) }
func (r *rule) jump(chain string) *rule {
	r.target = chain
	return r.add("jump "+chain, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
}

func (r *rule) nat(dst bool, to netip.Addr) *rule {
	t, word := expr.NATTypeSourceNAT, "snat"
	if dst {
		t, word = expr.NATTypeDestNAT, "dnat"
	}
	fam, ip := uint32(unix.NFPROTO_IPV4), "ip"
	if to.Is6() {
		fam, ip = unix.NFPROTO_IPV6, "ip6"
	}
	return r.add(word+" "+ip+" to "+to.String(),
		&expr.Immediate{Register: reg, Data: to.AsSlice()},
		&expr.NAT{Type: t, Family: fam, RegAddrMin: reg})
}

func (r *rule) masquerade() *rule { return r.add("masquerade", &expr.Masq{}) }

// baseChain describes one of the node-wide base chains of the table.
type baseChain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
}

func (c baseChain) String() string {
	hooks := map[*nftables.ChainHook]string{
		nftables.ChainHookPrerouting: "prerouting", nftables.ChainHookInput: "input",
		nftables.ChainHookForward: "forward", nftables.ChainHookOutput: "output",
		nftables.ChainHookPostrouting: "postrouting",
	}
	return fmt.Sprintf("chain %s { type %s hook %s priority %d; policy accept; }", c.name, c.typ, hooks[c.hook], *c.priority)
}

// The base chains. Per-sliver jump rules are inserted at the top of
// forward/input (filter) and prerouting/output (nat); node-wide rules
// follow them.
var baseChains = []baseChain{
	{"forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter},
	{"input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter},
	{"prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
	{"output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest},
	{"postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
}

// nodeRules are the node-wide rules appended to the base chains by Setup.
//
// Policy (forward):
//   - traffic to a sliver passes only if it belongs to a connection the
//     sliver started (established/related) or was forwarded to one of its
//     reserved ports (DNAT); in particular nothing reaches a sliver's
//     private address directly, from another sliver or from outside.
//
// Policy (input, i.e. from a sliver to any address of the node itself):
//   - replies to connections the node started pass (the node can reach
//     slivers' reserved ports), ICMP echo passes (ping the gateway), and the
//     configured node services pass; with an IPv6 prefix, ICMPv6 neighbour
//     solicitations and advertisements and echo requests pass too;
//     everything else (node manager API, the node's sshd, router
//     advertisements, ...) is dropped.
//
// NAT: sliver traffic leaving through the uplink is source-NATed to the
// node address; hairpin traffic (a sliver reaching a reserved port through
// the node address) is masqueraded to the gateway so replies return
// through the node even when a sliver reaches its own port. (iifname is
// not available in postrouting, hence the source prefix match.)
func nodeRules(c *Config) []*rule {
	vp := c.VethPrefix + "*"
	rs := []*rule{
		newRule("forward").ifname(false, vp).ctStateEstablishedRelated().accept(),
		newRule("forward").ifname(false, vp).ctStatusDNAT().accept(),
		newRule("forward").ifname(false, vp).counter().drop(),
		newRule("input").ifname(true, vp).ctStateEstablishedRelated().accept(),
		newRule("input").ifname(true, vp).nfproto(true).icmpEcho().accept(),
	}
	if c.Prefix6.IsValid() {
		// Neighbour discovery with the node (the from-<xid> chains have
		// dropped what a sliver may not send) and ping of the gateway.
		for _, t := range []byte{icmp6NeighSol, icmp6NeighAdv, icmp6EchoRequest} {
			rs = append(rs, newRule("input").ifname(true, vp).nfproto(false).icmp6Type(t).accept())
		}
	}
	for _, p := range c.NodeServices {
		rs = append(rs, newRule("input").ifname(true, vp).dport(p).accept())
	}
	rs = append(rs,
		newRule("input").ifname(true, vp).counter().drop(),
		newRule("postrouting").nfproto(true).ipAddr(true, false, c.Prefix).ifname(false, c.Uplink).nat(false, c.NodeAddr),
		newRule("postrouting").nfproto(true).ipAddr(true, false, c.Prefix).ifname(false, vp).ctStatusDNAT().masquerade(),
	)
	if c.Prefix6.IsValid() && c.NodeAddr6.IsValid() {
		// Hairpin on the node's IPv6 address, as for IPv4: a sliver
		// reaching its own reserved port there gets the reply from the
		// node.
		rs = append(rs, newRule("postrouting").nfproto(false).ipAddr(true, false, c.Prefix6).ifname(false, vp).ctStatusDNAT().masquerade())
	}
	return rs
}

// sliverRules are the rules of one sliver: its three chains and the jumps
// to them from the base chains (tagged with a comment naming the sliver).
// addr6 is the sliver's IPv6 address, invalid when the node has no IPv6
// prefix.
//
// from-<xid> (every packet the sliver sends, forwarded or to the node):
// a source other than the sliver's address is dropped (anti-spoofing), and
// the packet and its connection are marked with the xid and classified
// into its HTB class. Without addr6 all IPv6 is dropped. With it, IPv6 from
// another source than addr6 or a link-local address (neighbour discovery
// on the veth) is dropped, and so are router advertisements, redirects and
// neighbour advertisements for a target other than addr6 or a link-local
// address: a sliver cannot pose as a router or claim another's address.
//
// to-<xid> (filter, forwarded packets toward the sliver; IPv6 only, since
// IPv4 reaches a sliver only by the node's DNAT): new connections to the
// sliver's reserved ports on addr6, and ICMPv6 echo requests, are
// accepted; anything else falls to the node rules (replies only).
//
// ports-<xid> (nat): packets to the node address on a reserved port are
// forwarded to the sliver, whether they come from outside, from another
// sliver or from the node itself (output hook); with addr6 and the node's
// IPv6 address (Config.NodeAddr6) the same ports on that address are
// forwarded to addr6.
func sliverRules(c *Config, s Sliver, addr, addr6 netip.Addr) (chains []string, rs []*rule) {
	from, pc, to := fromChain(s.XID), portsChain(s.XID), toChain(s.XID)
	veth := vethName(c.VethPrefix, s.XID)
	tag := "sliver " + s.Name
	rs = []*rule{
		newRule("forward").ifname(true, veth).jump(from).withComment(tag),
		newRule("forward").ifname(false, veth).jump(to).withComment(tag),
		newRule("input").ifname(true, veth).jump(from).withComment(tag),
		newRule("prerouting").jump(pc).withComment(tag),
		newRule("output").jump(pc).withComment(tag),
	}
	if addr6.IsValid() {
		rs = append(rs,
			newRule(from).nfproto(false).icmp6Type(icmp6RouterAdv).counter().drop().withComment("router advertisement"),
			newRule(from).nfproto(false).icmp6Type(icmp6Redirect).counter().drop().withComment("redirect"),
			newRule(from).nfproto(false).icmp6Type(icmp6NeighAdv).ndTarget(true, host(addr6)).ndTarget(true, linkLocal6).counter().drop().withComment("neighbour advertisement"),
			newRule(from).nfproto(false).ipAddr(true, true, host(addr6)).ipAddr(true, true, linkLocal6).counter().drop(),
		)
	} else {
		rs = append(rs, newRule(from).nfproto(false).counter().drop())
	}
	rs = append(rs,
		newRule(from).nfproto(true).ipAddr(true, true, host(addr)).counter().drop(),
		newRule(from).markSliver(s.XID),
	)
	for _, p := range ports.Sorted(s.Ports) {
		rs = append(rs, newRule(pc).nfproto(true).ipAddr(false, false, host(c.NodeAddr)).dport(p).nat(true, addr).withComment(p.String()))
	}
	if addr6.IsValid() && c.NodeAddr6.IsValid() {
		for _, p := range ports.Sorted(s.Ports) {
			rs = append(rs, newRule(pc).nfproto(false).ipAddr(false, false, host(c.NodeAddr6)).dport(p).nat(true, addr6).withComment(p.String()))
		}
	}
	if addr6.IsValid() {
		rs = append(rs, newRule(to).nfproto(false).ipAddr(false, false, host(addr6)).icmp6Type(icmp6EchoRequest).accept())
		for _, p := range ports.Sorted(s.Ports) {
			rs = append(rs, newRule(to).nfproto(false).ipAddr(false, false, host(addr6)).dport(p).accept().withComment(p.String()))
		}
	}
	return []string{from, pc, to}, rs
}
