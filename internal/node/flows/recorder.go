package flows

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/ti-mo/conntrack"
)

// fromFlow turns a conntrack entry into a record (without key and slice).
// local tells the node's own addresses (for flows without NAT).
//
// Which end is which follows the NAT the kernel applied:
//   - source NAT (a sliver's outgoing flow, masqueraded): the original
//     source is the sliver (Inside), the reply's destination the node's
//     public end, the original destination the remote;
//   - destination NAT (a reserved port forwarded to a sliver): the
//     original source is the remote, its destination the public end, the
//     reply's source the sliver;
//   - no NAT (the node's own flows, a sliver talking to a node service):
//     the end that is the node's (or marked) is Inside and Public; a
//     marked flow from elsewhere to the node's address is inbound (a
//     slice's virtual link tunnel arriving, package vlink).
//
// ICMP has no ports: Inside and Public carry the echo id before and after
// NAT, Remote the ICMP type.
//
// local tells the node's own addresses, sliver the slivers' own routable
// addresses (their IPv6, not translated): a connection to one of those
// from elsewhere is inbound although the sliver's replies marked it.
func fromFlow(f *conntrack.Flow, local, sliver func(netip.Addr) bool) Record {
	o, rp := f.TupleOrig, f.TupleReply
	r := Record{Proto: o.Proto.Protocol, XID: int(f.Mark)}
	port := func(t conntrack.Tuple, src bool) uint16 {
		if t.Proto.ICMPv4 || t.Proto.ICMPv6 {
			if src {
				return t.Proto.ICMPID
			}
			return uint16(t.Proto.ICMPType)
		}
		if src {
			return t.Proto.SourcePort
		}
		return t.Proto.DestinationPort
	}
	ap := func(a netip.Addr, p uint16) netip.AddrPort { return netip.AddrPortFrom(a.Unmap(), p) }
	orig, reply := f.CountersOrig, f.CountersReply
	switch {
	case rp.IP.DestinationAddress.IsValid() && o.IP.SourceAddress != rp.IP.DestinationAddress:
		r.Dir = Out
		r.Inside = ap(o.IP.SourceAddress, port(o, true))
		if o.Proto.ICMPv4 || o.Proto.ICMPv6 {
			r.Public = ap(rp.IP.DestinationAddress, rp.Proto.ICMPID)
		} else {
			r.Public = ap(rp.IP.DestinationAddress, rp.Proto.DestinationPort)
		}
		r.Remote = ap(o.IP.DestinationAddress, port(o, false))
		r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived = orig.Bytes, orig.Packets, reply.Bytes, reply.Packets
	case rp.IP.SourceAddress.IsValid() && o.IP.DestinationAddress != rp.IP.SourceAddress:
		r.Dir = In
		r.Remote = ap(o.IP.SourceAddress, o.Proto.SourcePort)
		r.Public = ap(o.IP.DestinationAddress, o.Proto.DestinationPort)
		r.Inside = ap(rp.IP.SourceAddress, rp.Proto.SourcePort)
		r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived = reply.Bytes, reply.Packets, orig.Bytes, orig.Packets
	case sliver != nil && sliver(o.IP.DestinationAddress.Unmap()) && !sliver(o.IP.SourceAddress.Unmap()):
		r.Dir = In
		r.Remote = ap(o.IP.SourceAddress, port(o, true))
		r.Inside = ap(o.IP.DestinationAddress, port(o, false))
		r.Public = r.Inside
		r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived = reply.Bytes, reply.Packets, orig.Bytes, orig.Packets
	case f.Mark != 0 && local != nil && local(o.IP.DestinationAddress.Unmap()) && !local(o.IP.SourceAddress.Unmap()):
		// Marked, to the node's own address from elsewhere, untranslated:
		// a slice's tunnel packets arriving over a virtual link (vlink
		// marks their conntrack entry with the sliver's xid).
		r.Dir = In
		r.Remote = ap(o.IP.SourceAddress, port(o, true))
		r.Inside = ap(o.IP.DestinationAddress, port(o, false))
		r.Public = r.Inside
		r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived = reply.Bytes, reply.Packets, orig.Bytes, orig.Packets
	case f.Mark != 0 || (local != nil && local(o.IP.SourceAddress.Unmap())):
		r.Dir = Out
		r.Inside = ap(o.IP.SourceAddress, port(o, true))
		r.Public = r.Inside
		r.Remote = ap(o.IP.DestinationAddress, port(o, false))
		r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived = orig.Bytes, orig.Packets, reply.Bytes, reply.Packets
	default:
		r.Dir = In
		r.Remote = ap(o.IP.SourceAddress, port(o, true))
		r.Inside = ap(o.IP.DestinationAddress, port(o, false))
		r.Public = r.Inside
		r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived = reply.Bytes, reply.Packets, orig.Bytes, orig.Packets
	}
	return r
}

// ignored tells flows the log does not keep: the node talking to itself.
func ignored(f *conntrack.Flow) bool {
	return f.TupleOrig.IP.SourceAddress.IsLoopback() && f.TupleOrig.IP.DestinationAddress.IsLoopback()
}

// live is a flow the recorder follows.
type live struct {
	rec     Record
	missing int // dumps in a row that did not list it
}

// table is the recorder's view of the kernel's flows: pure logic, fed by
// events and dumps, emitting records. Not safe for concurrent use.
type table struct {
	now    func() time.Time
	local  func(netip.Addr) bool
	sliver func(netip.Addr) bool // a sliver's own routable address
	slices func(xid int) (SliceRef, bool)
	live   map[uint32]*live
	out    []Record // finished or to be written (open) records
	log    *slog.Logger
}

func newTable(now func() time.Time, slices func(int) (SliceRef, bool), log *slog.Logger) *table {
	return &table{now: now, slices: slices, live: map[uint32]*live{}, log: log}
}

// update merges a fresh read of f into the live entry (creating it).
func (t *table) update(f *conntrack.Flow) *live {
	now := t.now().UTC()
	r := fromFlow(f, t.local, t.sliver)
	l, ok := t.live[f.ID]
	if ok && l.rec.Proto == r.Proto && l.rec.Remote.Addr() == r.Remote.Addr() {
		// Counters only grow; an event without counters (acct off at its
		// time) must not erase what a dump read.
		if r.BytesSent+r.BytesReceived >= l.rec.BytesSent+l.rec.BytesReceived {
			l.rec.BytesSent, l.rec.PacketsSent, l.rec.BytesReceived, l.rec.PacketsReceived = r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived
		}
		if l.rec.XID == 0 && r.XID != 0 {
			l.rec.XID = r.XID
			t.attribute(&l.rec)
		}
		l.rec.End = now
		l.missing = 0
		return l
	}
	start := f.Timestamp.Start
	if start.IsZero() || start.After(now) {
		start = now
	}
	r.Start, r.End = start.UTC(), now
	r.Key = MakeKey(r.Start, f.ID)
	r.Flags = FlagOpen
	t.attribute(&r)
	l = &live{rec: r}
	t.live[f.ID] = l
	return l
}

func (t *table) attribute(r *Record) {
	if r.XID == 0 || t.slices == nil {
		return
	}
	if ref, ok := t.slices(r.XID); ok {
		r.Slice, r.SliceID = ref.Name, ref.SliceID
	}
}

// newFlow handles a NEW event.
func (t *table) newFlow(f *conntrack.Flow) {
	if ignored(f) {
		return
	}
	t.update(f)
}

// destroy handles a DESTROY event: the flow's final counters.
func (t *table) destroy(f *conntrack.Flow) {
	if ignored(f) {
		return
	}
	l := t.update(f)
	if stop := f.Timestamp.Stop; !stop.IsZero() && !stop.Before(l.rec.Start) {
		l.rec.End = stop.UTC()
	}
	l.rec.Flags &^= FlagOpen
	t.out = append(t.out, l.rec)
	delete(t.live, f.ID)
}

// dump merges a full read of the kernel's table: every flow listed is
// updated and its record written as open; a followed flow missing from
// two dumps in a row ended without its event reaching us (lost events)
// and is closed with what was last read.
func (t *table) dump(flows []conntrack.Flow) {
	seen := make(map[uint32]bool, len(flows))
	for i := range flows {
		f := &flows[i]
		if ignored(f) {
			continue
		}
		seen[f.ID] = true
		t.update(f)
	}
	for id, l := range t.live {
		if seen[id] {
			t.out = append(t.out, l.rec)
			continue
		}
		l.missing++
		if l.missing >= 2 {
			l.rec.Flags = (l.rec.Flags &^ FlagOpen) | FlagLost
			t.out = append(t.out, l.rec)
			delete(t.live, id)
		}
	}
}

// resume takes the open records of the store (the recorder's previous
// run) and matches them with the kernel's table: a flow still there goes
// on under its old key; one that is gone ended while the recorder was
// down and is closed with its last read (FlagLost).
func (t *table) resume(open []Record, flows []conntrack.Flow) {
	byID := map[uint32]Record{}
	for _, r := range open {
		byID[uint32(r.Key[8])<<24|uint32(r.Key[9])<<16|uint32(r.Key[10])<<8|uint32(r.Key[11])] = r
	}
	for i := range flows {
		f := &flows[i]
		if ignored(f) {
			continue
		}
		r, ok := byID[f.ID]
		fr := fromFlow(f, t.local, t.sliver)
		if ok && r.Proto == fr.Proto && r.Remote == fr.Remote && r.Inside == fr.Inside {
			delete(byID, f.ID)
			t.live[f.ID] = &live{rec: r}
		}
		t.update(f)
	}
	for _, r := range byID {
		r.Flags = (r.Flags &^ FlagOpen) | FlagLost
		t.out = append(t.out, r)
	}
}

// keepLive queues every followed flow not already queued as an open
// record (at shutdown).
func (t *table) keepLive() {
	queued := map[Key]bool{}
	for _, r := range t.out {
		queued[r.Key] = true
	}
	for _, l := range t.live {
		if !queued[l.rec.Key] {
			t.out = append(t.out, l.rec)
		}
	}
}

// take returns and clears the pending records.
func (t *table) take() []Record {
	out := t.out
	t.out = nil
	return out
}

// Stats are the recorder's counters.
type Stats struct {
	Events    uint64 `json:"events"`
	Dumps     uint64 `json:"dumps"`
	Written   uint64 `json:"written"`
	Live      int    `json:"live"`
	Overruns  uint64 `json:"overruns"` // event socket overruns (events lost, recovered by dumps)
	WriteErrs uint64 `json:"write_errors"`
}

// sliceMap is the recorder's xid -> slice map, persisted in the store.
type sliceMap struct {
	mu sync.Mutex
	m  map[int]SliceRef
}

func (s *sliceMap) get(xid int) (SliceRef, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[xid]
	return r, ok
}
