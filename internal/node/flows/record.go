// Package flows is the node's flow log (PlanetFlow, nodemanager.md §5.5):
// every connection a sliver (or the node itself) takes part in, read from
// the kernel's connection tracking through netlink events and periodic
// dumps, attributed to its slice by the conntrack mark (the sliver's xid,
// set by netcfg), and kept in an on-node store indexed by time and by the
// remote address, so that "which slice sent packets to X at time T" is
// answered from the node's records. See docs/audit.md.
package flows

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Direction tells who opened a flow.
type Direction uint8

const (
	// Out: the sliver (or the node) opened the flow to a remote address.
	Out Direction = 0
	// In: a remote address opened it to a port of the node (a reserved
	// port forwarded to a sliver, or a node service).
	In Direction = 1
)

func (d Direction) String() string {
	if d == In {
		return "in"
	}
	return "out"
}

// Record flags.
const (
	// FlagOpen: the flow was still alive at the last read; counters and
	// End are those of that read.
	FlagOpen uint8 = 1 << iota
	// FlagLost: the flow ended while the recorder was not running (or its
	// end event was lost); counters and End are those of the last read.
	FlagLost
)

// Record is one flow as the node saw it.
type Record struct {
	// Key identifies the record in the store (start time and conntrack id).
	Key Key `json:"-"`
	// Start and End bound the flow; End is the last read for open flows.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Proto uint8     `json:"proto"` // IP protocol number (6 tcp, 17 udp, 1 icmp)
	Dir   Direction `json:"-"`
	// Inside is the sliver's (private) end; Public is the node's end as
	// the world sees it (after NAT); Remote is the other end. Ports are
	// 0 for protocols without ports (ICMP: Remote's port is the type).
	Inside netip.AddrPort `json:"inside"`
	Public netip.AddrPort `json:"public"`
	Remote netip.AddrPort `json:"remote"`
	// Sent is from the node's side to Remote; Received the other way.
	BytesSent       uint64 `json:"bytes_sent"`
	PacketsSent     uint64 `json:"packets_sent"`
	BytesReceived   uint64 `json:"bytes_received"`
	PacketsReceived uint64 `json:"packets_received"`
	// XID is the conntrack mark (0: the node itself); Slice and SliceID
	// the slice that held the xid when the flow was recorded.
	XID     int    `json:"xid"`
	Slice   string `json:"slice"`
	SliceID int64  `json:"slice_id"`
	Flags   uint8  `json:"-"`
}

// Open reports whether the flow was alive at its last read.
func (r Record) Open() bool { return r.Flags&FlagOpen != 0 }

// Key orders records by start time; the conntrack id breaks ties.
type Key [12]byte

// MakeKey builds the key of a flow.
func MakeKey(start time.Time, id uint32) Key {
	var k Key
	binary.BigEndian.PutUint64(k[:8], uint64(start.UnixNano()))
	binary.BigEndian.PutUint32(k[8:], id)
	return k
}

// Time returns the start time encoded in the key.
func (k Key) Time() time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC() }

// String renders the key as 24 hex digits (the pagination cursor).
func (k Key) String() string { return fmt.Sprintf("%x", k[:]) }

// ParseKey parses what Key.String returns.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != 24 {
		return k, fmt.Errorf("cursor %q: want 24 hex digits", s)
	}
	for i := 0; i < 12; i++ {
		var b byte
		for j := 0; j < 2; j++ {
			c := s[2*i+j]
			switch {
			case c >= '0' && c <= '9':
				b = b<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				b = b<<4 | (c - 'a' + 10)
			default:
				return Key{}, fmt.Errorf("cursor %q: want 24 hex digits", s)
			}
		}
		k[i] = b
	}
	return k, nil
}

// recordVersion is the first byte of an encoded record.
const recordVersion = 1

// maxSliceName bounds the slice name in an encoded record.
const maxSliceName = 255

// encode renders a record compactly: a version byte, varints for times
// (start in ns, duration in ns), counters and ids, addresses as 4 or 16
// bytes behind a length byte, and the slice name behind a length byte.
// About 50 bytes for a typical IPv4 flow.
func (r Record) encode(buf []byte) []byte {
	b := append(buf[:0], recordVersion, r.Flags, r.Proto, byte(r.Dir))
	b = binary.AppendVarint(b, r.Start.UnixNano())
	b = binary.AppendUvarint(b, uint64(max(r.End.Sub(r.Start), 0)))
	for _, ap := range []netip.AddrPort{r.Inside, r.Public, r.Remote} {
		a := ap.Addr()
		switch {
		case !a.IsValid():
			b = append(b, 0)
		case a.Is4():
			a4 := a.As4()
			b = append(b, 4)
			b = append(b, a4[:]...)
		default:
			a16 := a.As16()
			b = append(b, 16)
			b = append(b, a16[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	for _, v := range []uint64{r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived, uint64(r.XID), uint64(r.SliceID)} {
		b = binary.AppendUvarint(b, v)
	}
	name := r.Slice
	if len(name) > maxSliceName {
		name = name[:maxSliceName]
	}
	b = append(b, byte(len(name)))
	return append(b, name...)
}

var errShort = errors.New("truncated")

// decodeRecord parses what encode produced. Stored data is checked like
// any input: a damaged value is an error, never a panic.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 4 {
		return r, fmt.Errorf("flow record: %w", errShort)
	}
	if b[0] != recordVersion {
		return r, fmt.Errorf("flow record: version %d, want %d", b[0], recordVersion)
	}
	r.Flags, r.Proto, r.Dir = b[1], b[2], Direction(b[3])
	if r.Dir > In {
		return r, fmt.Errorf("flow record: direction %d", b[3])
	}
	b = b[4:]
	start, n := binary.Varint(b)
	if n <= 0 {
		return r, fmt.Errorf("flow record: start: %w", errShort)
	}
	b = b[n:]
	dur, n := binary.Uvarint(b)
	if n <= 0 || dur > uint64(1<<62) {
		return r, fmt.Errorf("flow record: duration: %w", errShort)
	}
	b = b[n:]
	r.Start = time.Unix(0, start).UTC()
	r.End = r.Start.Add(time.Duration(dur))
	for _, ap := range []*netip.AddrPort{&r.Inside, &r.Public, &r.Remote} {
		if len(b) < 1 {
			return r, fmt.Errorf("flow record: address: %w", errShort)
		}
		l := int(b[0])
		if l != 0 && l != 4 && l != 16 {
			return r, fmt.Errorf("flow record: address length %d", l)
		}
		if len(b) < 1+l+2 {
			return r, fmt.Errorf("flow record: address: %w", errShort)
		}
		var a netip.Addr
		switch l {
		case 4:
			a = netip.AddrFrom4([4]byte(b[1:5]))
		case 16:
			a = netip.AddrFrom16([16]byte(b[1:17]))
		}
		port := binary.BigEndian.Uint16(b[1+l:])
		if a.IsValid() {
			*ap = netip.AddrPortFrom(a, port)
		}
		b = b[1+l+2:]
	}
	var vs [6]uint64
	for i := range vs {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return r, fmt.Errorf("flow record: counters: %w", errShort)
		}
		vs[i] = v
		b = b[n:]
	}
	if vs[4] > 1<<31 || vs[5] > 1<<62 {
		return r, fmt.Errorf("flow record: xid %d or slice id %d out of range", vs[4], vs[5])
	}
	r.BytesSent, r.PacketsSent, r.BytesReceived, r.PacketsReceived, r.XID, r.SliceID = vs[0], vs[1], vs[2], vs[3], int(vs[4]), int64(vs[5])
	if len(b) < 1 || len(b) != 1+int(b[0]) {
		return r, fmt.Errorf("flow record: slice name: %w", errShort)
	}
	r.Slice = string(b[1:])
	return r, nil
}
