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

// ipAddr matches the IPv4 source (src) or destination against an address
// or prefix, equal or not equal. The caller has matched nfproto ipv4.
func (r *rule) ipAddr(src, neq bool, p netip.Prefix) *rule {
	off, word := uint32(16), "ip daddr"
	if src {
		off, word = 12, "ip saddr"
	}
	op := ""
	if neq {
		op = "!= "
	}
	e := []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}}
	text := p.Addr().String()
	if p.Bits() < 32 {
		e = append(e, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: prefixMask4(p.Bits()), Xor: make([]byte, 4)})
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

func prefixMask4(bits int) []byte {
	m := make([]byte, 4)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

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
	return r.add("jump "+chain, &expr.Verdict{Kind: expr.VerdictJump, Chain: chain})
}

func (r *rule) nat(dst bool, to netip.Addr) *rule {
	t, word := expr.NATTypeSourceNAT, "snat"
	if dst {
		t, word = expr.NATTypeDestNAT, "dnat"
	}
	return r.add(word+" ip to "+to.String(),
		&expr.Immediate{Register: reg, Data: to.AsSlice()},
		&expr.NAT{Type: t, Family: unix.NFPROTO_IPV4, RegAddrMin: reg})
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
//     configured node services pass; everything else (node manager API, the
//     node's sshd, ...) is dropped.
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
	for _, p := range c.NodeServices {
		rs = append(rs, newRule("input").ifname(true, vp).dport(p).accept())
	}
	rs = append(rs,
		newRule("input").ifname(true, vp).counter().drop(),
		newRule("postrouting").nfproto(true).ipAddr(true, false, c.Prefix).ifname(false, c.Uplink).nat(false, c.NodeAddr),
		newRule("postrouting").nfproto(true).ipAddr(true, false, c.Prefix).ifname(false, vp).ctStatusDNAT().masquerade(),
	)
	return rs
}

// sliverRules are the rules of one sliver: its two chains and the jumps to
// them from the base chains (tagged with a comment naming the sliver).
//
// from-<xid> (every packet the sliver sends, forwarded or to the node):
// IPv6 is dropped (slivers are IPv4-only), a source other than the
// sliver's address is dropped (anti-spoofing), and the packet and its
// connection are marked with the xid and classified into its HTB class.
//
// ports-<xid> (nat): packets to the node address on a reserved port are
// forwarded to the sliver, whether they come from outside, from another
// sliver or from the node itself (output hook).
func sliverRules(c *Config, s Sliver, addr netip.Addr) (chains []string, rs []*rule) {
	from, pc := fromChain(s.XID), portsChain(s.XID)
	veth := vethName(c.VethPrefix, s.XID)
	tag := "sliver " + s.Name
	rs = []*rule{
		newRule("forward").ifname(true, veth).jump(from).withComment(tag),
		newRule("input").ifname(true, veth).jump(from).withComment(tag),
		newRule("prerouting").jump(pc).withComment(tag),
		newRule("output").jump(pc).withComment(tag),
		newRule(from).nfproto(false).counter().drop(),
		newRule(from).nfproto(true).ipAddr(true, true, host(addr)).counter().drop(),
		newRule(from).markSliver(s.XID),
	}
	for _, p := range ports.Sorted(s.Ports) {
		rs = append(rs, newRule(pc).nfproto(true).ipAddr(false, false, host(c.NodeAddr)).dport(p).nat(true, addr).withComment(p.String()))
	}
	return []string{from, pc}, rs
}
