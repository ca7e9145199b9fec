package traceroute

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Tracer traces paths with ICMP echo requests of increasing TTL sent from
// a raw socket: the routers on the way answer "time exceeded", the target
// an echo reply. A sliver may open raw sockets: its root holds CAP_NET_RAW
// in the sliver's own network namespace (docs/slivers.md), and the node's
// rules let out only packets from the sliver's own address.
//
// Each round sends one probe for every TTL at once, so a trace takes
// about Probes times the longest round trip, not Probes times the sum.
type Tracer struct {
	Wait time.Duration // how long a round waits for its answers; default 2s
	Gap  time.Duration // pause between two probes of a round; default 2ms
}

// probe is one echo request in flight.
type probe struct {
	ttl, round int
	sent       time.Time
}

// Trace traces the path to target (at most maxHops TTLs, probes rounds).
// The Path's Server field is left for the caller.
func (t Tracer) Trace(ctx context.Context, target netip.Addr, maxHops, probes int) (Path, error) {
	q := Request{Target: target.String(), MaxHops: maxHops, Probes: probes}
	if err := q.Validate(); err != nil {
		return Path{}, err
	}
	wait, gap := t.Wait, t.Gap
	if wait <= 0 {
		wait = 2 * time.Second
	}
	if gap <= 0 {
		gap = 2 * time.Millisecond
	}
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return Path{}, fmt.Errorf("raw ICMP socket: %w (needs CAP_NET_RAW: run as the sliver's root)", err)
		}
		return Path{}, fmt.Errorf("raw ICMP socket: %w", err)
	}
	defer c.Close()

	var idb [2]byte
	rand.Read(idb[:])
	id := int(binary.BigEndian.Uint16(idb[:]))
	p4 := c.IPv4PacketConn()
	dst := &net.IPAddr{IP: target.AsSlice()}

	// Answers are read and timestamped as they come, while probes go out.
	type answer struct {
		seq        int
		fromTarget bool
		addr       netip.Addr
		at         time.Time
	}
	answers := make(chan answer, 4*MaxHops)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			now := time.Now()
			if err != nil {
				readErr <- err
				close(answers)
				return
			}
			seq, fromTarget, ok := match(buf[:n], id)
			if !ok {
				continue
			}
			ip, _ := from.(*net.IPAddr)
			addr, _ := netip.AddrFromSlice(ip.IP.To4())
			select {
			case answers <- answer{seq, fromTarget, addr, now}:
			default: // a flood of answers: drop the excess
			}
		}
	}()
	defer func() {
		c.SetReadDeadline(time.Now())
		for range answers {
		}
	}()

	hops := make([]Hop, maxHops)
	for i := range hops {
		hops[i] = Hop{TTL: i + 1, RTTs: make([]time.Duration, probes)}
	}
	reachedAt := 0 // lowest TTL whose probe the target answered
	inflight := map[int]probe{}
	record := func(a answer) {
		pr, ok := inflight[a.seq]
		if !ok {
			return
		}
		delete(inflight, a.seq)
		h := &hops[pr.ttl-1]
		if !h.Addr.IsValid() {
			h.Addr = a.addr
		}
		h.RTTs[pr.round] = max(a.at.Sub(pr.sent), time.Microsecond)
		if a.fromTarget && (reachedAt == 0 || pr.ttl < reachedAt) {
			reachedAt = pr.ttl
		}
	}
	for round := range probes {
		last := maxHops
		if reachedAt > 0 {
			last = reachedAt
		}
		timer := time.NewTimer(0)
		for ttl := 1; ttl <= last; ttl++ {
			seq := round<<8 | ttl
			msg, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("pl-traceroute")}}).Marshal(nil)
			if err := p4.SetTTL(ttl); err != nil {
				return Path{}, fmt.Errorf("set TTL %d: %w", ttl, err)
			}
			inflight[seq] = probe{ttl: ttl, round: round, sent: time.Now()}
			if _, err := c.WriteTo(msg, dst); err != nil {
				return Path{}, fmt.Errorf("send probe (TTL %d) to %v: %w", ttl, target, err)
			}
			// Record what came meanwhile, then pause before the next probe.
			timer.Reset(gap)
		pause:
			for {
				select {
				case a, ok := <-answers:
					if !ok {
						return Path{}, fmt.Errorf("read ICMP: %w", <-readErr)
					}
					record(a)
				case <-timer.C:
					break pause
				}
			}
		}
		timer.Reset(wait)
	collect:
		for {
			if len(inflight) == 0 {
				break
			}
			select {
			case a, ok := <-answers:
				if !ok {
					if ctx.Err() != nil {
						return Path{}, ctx.Err()
					}
					return Path{}, fmt.Errorf("read ICMP: %w", <-readErr)
				}
				record(a)
			case <-timer.C:
				break collect
			case <-ctx.Done():
				return Path{}, ctx.Err()
			}
		}
		timer.Stop()
		clear(inflight)
	}
	p := Path{Target: target, Hops: hops, Reached: reachedAt > 0}
	if p.Reached {
		p.Hops = hops[:reachedAt]
		p.Hops[reachedAt-1].Addr = target
	} else {
		// Beyond the last hop that answered, nothing is known.
		for len(p.Hops) > 1 && !p.Hops[len(p.Hops)-1].Addr.IsValid() && !p.Hops[len(p.Hops)-2].Addr.IsValid() {
			p.Hops = p.Hops[:len(p.Hops)-1]
		}
	}
	return p, nil
}

// match finds our probe's sequence number in an ICMP message: an echo
// reply with our id (from the target), or a time exceeded / destination
// unreachable quoting our echo request.
func match(b []byte, id int) (seq int, fromTarget, ok bool) {
	m, err := icmp.ParseMessage(1, b)
	if err != nil {
		return 0, false, false
	}
	var quoted []byte
	switch body := m.Body.(type) {
	case *icmp.Echo:
		if m.Type != ipv4.ICMPTypeEchoReply || body.ID != id {
			return 0, false, false
		}
		return body.Seq, true, true
	case *icmp.TimeExceeded:
		quoted = body.Data
	case *icmp.DstUnreach:
		quoted = body.Data
	default:
		return 0, false, false
	}
	// The quoted packet: our IPv4 header, then the first 8 bytes of the
	// echo request (type, code, checksum, id, seq).
	if len(quoted) < 20 || quoted[0]>>4 != 4 {
		return 0, false, false
	}
	ihl := int(quoted[0]&0x0f) * 4
	if ihl < 20 || len(quoted) < ihl+8 || quoted[9] != 1 || quoted[ihl] != byte(ipv4.ICMPTypeEcho) {
		return 0, false, false
	}
	if int(binary.BigEndian.Uint16(quoted[ihl+4:])) != id {
		return 0, false, false
	}
	return int(binary.BigEndian.Uint16(quoted[ihl+6:])), false, true
}
