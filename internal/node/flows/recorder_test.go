package flows

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ti-mo/conntrack"
)

func tuple(proto uint8, src, dst string) conntrack.Tuple {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	t := conntrack.Tuple{IP: conntrack.IPTuple{SourceAddress: s.Addr(), DestinationAddress: d.Addr()},
		Proto: conntrack.ProtoTuple{Protocol: proto, SourcePort: s.Port(), DestinationPort: d.Port()}}
	if proto == 1 {
		t.Proto = conntrack.ProtoTuple{Protocol: 1, ICMPv4: true, ICMPID: s.Port(), ICMPType: uint8(d.Port())}
	}
	return t
}

func ctFlow(id uint32, proto uint8, orig, reply [2]string, mark uint32, sent, recv uint64) conntrack.Flow {
	return conntrack.Flow{ID: id, Mark: mark,
		TupleOrig: tuple(proto, orig[0], orig[1]), TupleReply: tuple(proto, reply[0], reply[1]),
		CountersOrig: conntrack.Counter{Bytes: sent, Packets: sent / 100}, CountersReply: conntrack.Counter{Bytes: recv, Packets: recv / 100}}
}

func TestFromFlow(t *testing.T) {
	local := func(a netip.Addr) bool { return a == netip.MustParseAddr("192.0.2.1") }
	sliver := func(a netip.Addr) bool { return netip.MustParsePrefix("2001:db8:7::/64").Contains(a) }
	for _, tc := range []struct {
		name                   string
		f                      conntrack.Flow
		dir                    Direction
		inside, public, remote string
		sent, recv             uint64
	}{
		{"sliver out, masqueraded", ctFlow(1, 6, [2]string{"10.42.0.6:40000", "203.0.113.7:22"}, [2]string{"203.0.113.7:22", "192.0.2.1:61000"}, 5, 1000, 300),
			Out, "10.42.0.6:40000", "192.0.2.1:61000", "203.0.113.7:22", 1000, 300},
		{"reserved port forwarded in", ctFlow(2, 6, [2]string{"203.0.113.7:50000", "192.0.2.1:8080"}, [2]string{"10.42.0.6:8080", "203.0.113.7:50000"}, 5, 200, 5000),
			In, "10.42.0.6:8080", "192.0.2.1:8080", "203.0.113.7:50000", 5000, 200},
		{"node's own", ctFlow(3, 17, [2]string{"192.0.2.1:5353", "198.51.100.1:53"}, [2]string{"198.51.100.1:53", "192.0.2.1:5353"}, 0, 60, 120),
			Out, "192.0.2.1:5353", "192.0.2.1:5353", "198.51.100.1:53", 60, 120},
		// A slice's virtual link: VXLAN from the node's own source port,
		// and the peer's tunnel arriving, both marked by vlink.
		{"slice's tunnel out", ctFlow(9, 17, [2]string{"192.0.2.1:30001", "198.51.100.9:4789"}, [2]string{"198.51.100.9:4789", "192.0.2.1:30001"}, 7, 5000, 0),
			Out, "192.0.2.1:30001", "192.0.2.1:30001", "198.51.100.9:4789", 5000, 0},
		{"slice's tunnel in", ctFlow(10, 17, [2]string{"198.51.100.9:30004", "192.0.2.1:4789"}, [2]string{"192.0.2.1:4789", "198.51.100.9:30004"}, 7, 4000, 0),
			In, "192.0.2.1:4789", "192.0.2.1:4789", "198.51.100.9:30004", 0, 4000},
		{"into the node", ctFlow(4, 6, [2]string{"198.51.100.1:40000", "192.0.2.1:22"}, [2]string{"192.0.2.1:22", "198.51.100.1:40000"}, 0, 60, 120),
			In, "192.0.2.1:22", "192.0.2.1:22", "198.51.100.1:40000", 120, 60},
		{"icmp echo masqueraded", ctFlow(5, 1, [2]string{"10.42.0.6:77", "203.0.113.7:8"}, [2]string{"203.0.113.7:99", "192.0.2.1:0"}, 5, 840, 840),
			Out, "10.42.0.6:77", "192.0.2.1:99", "203.0.113.7:8", 840, 840},
		// IPv6 slivers have their own addresses: nothing is translated.
		{"sliver out over IPv6", ctFlow(6, 6, [2]string{"[2001:db8:7::1:5]:40000", "[2001:db8:ff::2]:80"}, [2]string{"[2001:db8:ff::2]:80", "[2001:db8:7::1:5]:40000"}, 5, 700, 9000),
			Out, "[2001:db8:7::1:5]:40000", "[2001:db8:7::1:5]:40000", "[2001:db8:ff::2]:80", 700, 9000},
		{"into a sliver's reserved port over IPv6", ctFlow(7, 6, [2]string{"[2001:db8:ff::2]:50000", "[2001:db8:7::1:5]:8080"}, [2]string{"[2001:db8:7::1:5]:8080", "[2001:db8:ff::2]:50000"}, 5, 300, 4000),
			In, "[2001:db8:7::1:5]:8080", "[2001:db8:7::1:5]:8080", "[2001:db8:ff::2]:50000", 4000, 300},
		{"sliver to sliver over IPv6 (the caller's)", ctFlow(8, 6, [2]string{"[2001:db8:7::1:5]:40001", "[2001:db8:7::1:6]:9090"}, [2]string{"[2001:db8:7::1:6]:9090", "[2001:db8:7::1:5]:40001"}, 5, 10, 20),
			Out, "[2001:db8:7::1:5]:40001", "[2001:db8:7::1:5]:40001", "[2001:db8:7::1:6]:9090", 10, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fromFlow(&tc.f, local, sliver)
			if r.Dir != tc.dir || r.Inside.String() != tc.inside || r.Public.String() != tc.public || r.Remote.String() != tc.remote ||
				r.BytesSent != tc.sent || r.BytesReceived != tc.recv || r.XID != int(tc.f.Mark) {
				t.Fatalf("got %s inside %s public %s remote %s sent %d recv %d xid %d", r.Dir, r.Inside, r.Public, r.Remote, r.BytesSent, r.BytesReceived, r.XID)
			}
		})
	}
}

func TestTableLifecycle(t *testing.T) {
	c := &clock{t0}
	slices := map[int]SliceRef{5: {Name: "pl_a", SliceID: 42}}
	tab := newTable(c.now, func(x int) (SliceRef, bool) { r, ok := slices[x]; return r, ok }, nil)
	out := ctFlow(1, 6, [2]string{"10.42.0.6:40000", "203.0.113.7:22"}, [2]string{"203.0.113.7:22", "192.0.2.1:61000"}, 5, 0, 0)
	tab.newFlow(&out)
	if len(tab.live) != 1 || len(tab.take()) != 0 {
		t.Fatal("new flow not followed")
	}
	// A dump reads counters and writes the flow as open.
	c.t = t0.Add(30 * time.Second)
	out.CountersOrig = conntrack.Counter{Bytes: 5000, Packets: 50}
	tab.dump([]conntrack.Flow{out})
	recs := tab.take()
	if len(recs) != 1 || !recs[0].Open() || recs[0].BytesSent != 5000 || recs[0].Slice != "pl_a" || recs[0].SliceID != 42 || !recs[0].Start.Equal(t0) {
		t.Fatalf("after dump: %+v", recs)
	}
	// The slice is destroyed: the record keeps its attribution.
	delete(slices, 5)
	c.t = t0.Add(40 * time.Second)
	out.CountersOrig = conntrack.Counter{Bytes: 7000, Packets: 70}
	out.Timestamp.Stop = t0.Add(39 * time.Second)
	tab.destroy(&out)
	recs = tab.take()
	if len(recs) != 1 || recs[0].Open() || recs[0].BytesSent != 7000 || recs[0].Slice != "pl_a" || !recs[0].End.Equal(t0.Add(39*time.Second)) || recs[0].Key != MakeKey(t0, 1) {
		t.Fatalf("after destroy: %+v", recs)
	}
	if len(tab.live) != 0 {
		t.Fatal("destroyed flow still followed")
	}
	// A flow whose DESTROY event is lost is closed after two dumps without it.
	lost := ctFlow(2, 17, [2]string{"10.42.0.6:5000", "203.0.113.8:53"}, [2]string{"203.0.113.8:53", "192.0.2.1:5000"}, 5, 100, 0)
	tab.newFlow(&lost)
	tab.dump(nil)
	if len(tab.take()) != 0 || len(tab.live) != 1 {
		t.Fatal("closed after one dump without it")
	}
	tab.dump(nil)
	recs = tab.take()
	if len(recs) != 1 || recs[0].Flags&FlagLost == 0 || recs[0].Open() {
		t.Fatalf("lost flow: %+v", recs)
	}
	// A destroy for a flow never seen (started before the recorder)
	// makes a complete record from the event.
	late := ctFlow(3, 6, [2]string{"10.42.0.6:40001", "203.0.113.9:80"}, [2]string{"203.0.113.9:80", "192.0.2.1:61001"}, 5, 10, 20)
	late.Timestamp.Start = t0.Add(-time.Hour)
	slices[5] = SliceRef{Name: "pl_b", SliceID: 43}
	tab.destroy(&late)
	recs = tab.take()
	if len(recs) != 1 || !recs[0].Start.Equal(t0.Add(-time.Hour)) || recs[0].Slice != "pl_b" {
		t.Fatalf("late destroy: %+v", recs)
	}
	// Loopback flows are not recorded.
	lo := ctFlow(4, 6, [2]string{"127.0.0.1:1", "127.0.0.1:2"}, [2]string{"127.0.0.1:2", "127.0.0.1:1"}, 0, 1, 1)
	tab.newFlow(&lo)
	if len(tab.live) != 0 {
		t.Fatal("loopback flow followed")
	}
}

func TestTableResume(t *testing.T) {
	c := &clock{t0.Add(time.Hour)}
	tab := newTable(c.now, nil, nil)
	still := ctFlow(1, 6, [2]string{"10.42.0.6:40000", "203.0.113.7:22"}, [2]string{"203.0.113.7:22", "192.0.2.1:61000"}, 5, 9000, 0)
	still.Timestamp.Start = t0
	gone := ctFlow(2, 6, [2]string{"10.42.0.6:40001", "203.0.113.7:22"}, [2]string{"203.0.113.7:22", "192.0.2.1:61001"}, 5, 100, 0)
	o1 := fromFlow(&still, nil, nil)
	o1.Start, o1.Key, o1.Flags, o1.Slice = t0, MakeKey(t0, 1), FlagOpen, "pl_a"
	o2 := fromFlow(&gone, nil, nil)
	o2.Start, o2.Key, o2.Flags, o2.Slice = t0, MakeKey(t0, 2), FlagOpen, "pl_a"
	tab.resume([]Record{o1, o2}, []conntrack.Flow{still})
	recs := tab.take()
	if len(recs) != 1 || recs[0].Key != o2.Key || recs[0].Flags != FlagLost {
		t.Fatalf("gone while down: %+v", recs)
	}
	l := tab.live[1]
	if l == nil || l.rec.Key != o1.Key || l.rec.BytesSent != 9000 || l.rec.Slice != "pl_a" {
		t.Fatalf("resumed: %+v", l)
	}
}
