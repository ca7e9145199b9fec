package wan

import (
	"container/heap"
	"sync"
	"time"
)

// Queue holds packets until their release time. It is safe for one or more
// producers and one consumer. Packets with equal release times leave in
// arrival order. A full queue drops new packets, as a router's buffer does.
type Queue struct {
	mu       sync.Mutex
	h        pktHeap
	seq      uint64
	bytes    int
	maxBytes int
	wake     chan struct{}
}

// NewQueue returns a queue holding at most maxBytes of packets.
func NewQueue(maxBytes int) *Queue {
	return &Queue{maxBytes: maxBytes, wake: make(chan struct{}, 1)}
}

// Push schedules pkt for release at at. It reports false (and drops the
// packet) when the queue is full.
func (q *Queue) Push(pkt []byte, at time.Time) bool {
	q.mu.Lock()
	if q.bytes+len(pkt) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.seq++
	heap.Push(&q.h, item{pkt: pkt, at: at, seq: q.seq})
	q.bytes += len(pkt)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// Pop returns the earliest packet due at now. When none is due it returns
// ok=false and the next release time (zero if the queue is empty).
func (q *Queue) Pop(now time.Time) (pkt []byte, next time.Time, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 {
		return nil, time.Time{}, false
	}
	if top := q.h[0]; top.at.After(now) {
		return nil, top.at, false
	}
	it := heap.Pop(&q.h).(item)
	q.bytes -= len(it.pkt)
	return it.pkt, time.Time{}, true
}

// Len returns the number of queued packets.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// Wake is signalled after every successful Push.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

type item struct {
	pkt []byte
	at  time.Time
	seq uint64
}

type pktHeap []item

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *pktHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*h = old[:len(old)-1]
	return it
}
