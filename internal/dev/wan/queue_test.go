package wan

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

func TestQueueOrder(t *testing.T) {
	q := NewQueue(1 << 20)
	t0 := time.Unix(1000, 0)
	push := func(name string, after time.Duration) {
		if !q.Push([]byte(name), t0.Add(after)) {
			t.Fatalf("push %s refused", name)
		}
	}
	// Different destinations, different delays: later arrivals with a
	// shorter delay overtake; equal release times keep arrival order.
	push("tokyo1", 80*time.Millisecond)
	push("mit1", 5*time.Millisecond)
	push("tokyo2", 80*time.Millisecond)
	push("mit2", 5*time.Millisecond)
	push("now", 0)

	if _, next, ok := q.Pop(t0.Add(-time.Millisecond)); ok || !next.Equal(t0) {
		t.Fatalf("Pop before due: ok=%v next=%v, want not ok and next=%v", ok, next, t0)
	}
	var got []string
	for _, at := range []time.Duration{0, 5 * time.Millisecond, 79 * time.Millisecond, 80 * time.Millisecond} {
		for {
			pkt, next, ok := q.Pop(t0.Add(at))
			if !ok {
				if q.Len() > 0 && !next.After(t0.Add(at)) {
					t.Fatalf("at %v: next %v is not in the future", at, next)
				}
				break
			}
			got = append(got, string(pkt))
		}
		got = append(got, "|")
	}
	want := "now | mit1 mit2 | | tokyo1 tokyo2 |"
	if g := join(got); g != want {
		t.Fatalf("release order %q, want %q", g, want)
	}
	if _, next, ok := q.Pop(t0.Add(time.Hour)); ok || !next.IsZero() {
		t.Fatalf("empty queue: ok=%v next=%v", ok, next)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestQueueOverflow(t *testing.T) {
	q := NewQueue(10)
	now := time.Now()
	if !q.Push(make([]byte, 6), now) {
		t.Fatal("first push refused")
	}
	if q.Push(make([]byte, 6), now) {
		t.Fatal("push beyond capacity accepted")
	}
	if !q.Push(make([]byte, 4), now) {
		t.Fatal("push up to capacity refused")
	}
	q.Pop(now)
	if !q.Push(make([]byte, 6), now) {
		t.Fatal("push after pop refused")
	}
}

// chanReader delivers packets from a channel, one per Read.
type chanReader chan []byte

func (c chanReader) Read(b []byte) (int, error) {
	p, ok := <-c
	if !ok {
		return 0, io.EOF
	}
	return copy(b, p), nil
}

type recorder struct {
	mu   sync.Mutex
	pkts []string
	at   []time.Time
	got  chan struct{}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.pkts = append(r.pkts, string(b))
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	r.got <- struct{}{}
	return len(b), nil
}

func TestPumpDelays(t *testing.T) {
	src := make(chanReader)
	rec := &recorder{got: make(chan struct{}, 10)}
	delays := map[string]time.Duration{"slow": 60 * time.Millisecond, "fast": 10 * time.Millisecond, "drop": 0}
	delay := func(p []byte) (time.Duration, bool) { return delays[string(p)], string(p) == "drop" }
	st := new(PumpStats)
	errc := make(chan error, 1)
	go func() { errc <- Pump(context.Background(), src, rec, delay, 1<<20, st) }()
	start := time.Now()
	src <- []byte("slow")
	src <- []byte("drop")
	src <- []byte("fast")
	<-rec.got
	<-rec.got
	close(src)
	if err := <-errc; err != nil {
		t.Fatalf("Pump: %v", err)
	}
	if join(rec.pkts) != "fast slow" {
		t.Fatalf("delivered %q, want fast then slow", rec.pkts)
	}
	// Lower bounds only: a packet never leaves before its release time.
	if d := rec.at[0].Sub(start); d < 10*time.Millisecond {
		t.Errorf("fast packet after %v, want >= 10ms", d)
	}
	if d := rec.at[1].Sub(start); d < 60*time.Millisecond {
		t.Errorf("slow packet after %v, want >= 60ms", d)
	}
	t.Logf("fast after %v, slow after %v", rec.at[0].Sub(start), rec.at[1].Sub(start))
	if st.Packets.Load() != 2 || st.Dropped.Load() != 1 {
		t.Errorf("stats: %d packets, %d dropped; want 2, 1", st.Packets.Load(), st.Dropped.Load())
	}
}
