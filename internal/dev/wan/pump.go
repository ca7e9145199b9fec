package wan

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// DelayFunc decides the delay of one IP packet; drop=true discards it.
type DelayFunc func(pkt []byte) (delay time.Duration, drop bool)

// PumpStats counts what a pump did.
type PumpStats struct {
	Packets, Dropped, Overflow atomic.Uint64
}

// Pump copies whole packets from src to dst (each Read returns one packet,
// each Write sends one, as a TUN device does), holding each for the delay
// delay returns. It stops when ctx is cancelled or src fails; it returns
// nil on cancellation.
func Pump(ctx context.Context, src io.Reader, dst io.Writer, delay DelayFunc, maxQueueBytes int, st *PumpStats) error {
	if st == nil {
		st = new(PumpStats)
	}
	q := NewQueue(maxQueueBytes)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeLoop(ctx, q, dst)
	}()
	var err error
	for {
		buf := make([]byte, 65536)
		n, rerr := src.Read(buf)
		if rerr != nil {
			if ctx.Err() == nil && !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
		if n == 0 {
			continue
		}
		pkt := buf[:n:n]
		d, drop := delay(pkt)
		if drop {
			st.Dropped.Add(1)
			continue
		}
		if !q.Push(pkt, time.Now().Add(d)) {
			st.Overflow.Add(1)
			continue
		}
		st.Packets.Add(1)
	}
	cancel()
	<-done
	return err
}

func writeLoop(ctx context.Context, q *Queue, dst io.Writer) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pkt, next, ok := q.Pop(time.Now())
		if ok {
			// A failed write is a lost packet, as on a real link.
			_, _ = dst.Write(pkt)
			continue
		}
		var tc <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-q.Wake():
		case <-tc:
		}
	}
}

// uplinkDelay is the DelayFunc of packets leaving site `from` towards the
// core: the delay to the destination's place, with random loss.
func (p *Plan) uplinkDelay(from Place) DelayFunc {
	return func(pkt []byte) (time.Duration, bool) {
		if lossy(p.Loss) {
			return 0, true
		}
		dst, ok := p.locatePacket(pkt, false)
		if !ok {
			return 0, false
		}
		return p.Delay(from, dst), false
	}
}

// downlinkDelay is the DelayFunc of packets entering site `to` from the
// core: only packets from the host (which has no uplink of its own) are
// delayed here; site-to-site packets were delayed at the source uplink.
func (p *Plan) downlinkDelay(to Place) DelayFunc {
	return func(pkt []byte) (time.Duration, bool) {
		src, ok := p.locatePacket(pkt, true)
		if !ok || src != PlaceHost {
			return 0, false
		}
		if lossy(p.Loss) {
			return 0, true
		}
		return p.Delay(PlaceHost, to), false
	}
}

func lossy(p float64) bool { return p > 0 && rand.Float64() < p }

// locatePacket returns the place of an IPv4 or IPv6 packet's source (src)
// or destination.
func (p *Plan) locatePacket(pkt []byte, src bool) (Place, bool) {
	if len(pkt) >= 40 && pkt[0]>>4 == 6 {
		off := 24
		if src {
			off = 8
		}
		return p.Locate6([16]byte(pkt[off : off+16])), true
	}
	off := 16
	if src {
		off = 12
	}
	a, ok := ipv4Addr(pkt, off)
	if !ok {
		return 0, false
	}
	return p.Locate(a), true
}

// ipv4Addr returns the address at offset off (12 source, 16 destination) of
// an IPv4 packet.
func ipv4Addr(pkt []byte, off int) ([4]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return [4]byte{}, false
	}
	return [4]byte(pkt[off : off+4]), true
}
