package netcfg

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBandwidthFidelity measures what the HTB shaping promises brokers
// (docs/brokering.md): a sliver's net_max_rate over a 30 s window, and
// net_min_rate when two slivers send as fast as they can through a node
// cap they both exceed. Bytes are counted by the receiver (the peer), from
// 2 s after the senders start. It prints measured against target and
// fails only when nothing was measured. Run: PL_BENCH_NET=1 go test -run
// TestBandwidthFidelity -v ./internal/node/netcfg (root; about a minute).
func TestBandwidthFidelity(t *testing.T) {
	if os.Getenv("PL_BENCH_NET") == "" {
		t.Skip("a measurement, not a check: set PL_BENCH_NET=1 to run it")
	}
	const capKbit = 20_000
	window := 30 * time.Second
	tn := newTestNet(t)
	m := newTestManager(t, tn, func(c *Config) { c.CapKbit = capKbit })
	ctx := context.Background()

	// The sink counts bytes per sending sliver (by source address).
	var mu sync.Mutex
	count := map[string]*atomic.Int64{}
	counter := func(src string) *atomic.Int64 {
		mu.Lock()
		defer mu.Unlock()
		if count[src] == nil {
			count[src] = &atomic.Int64{}
		}
		return count[src]
	}
	sink := listen(t, tn.peer, "tcp4", testPeerAddr+":7002")
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			// The node masquerades slivers: tell them apart by the source
			// port range each one's connection gets (one connection each).
			n := counter(c.RemoteAddr().String())
			go func() {
				buf := make([]byte, 64<<10)
				for {
					k, err := c.Read(buf)
					n.Add(int64(k))
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	// blast sends from ns until stop; it returns its connection's local
	// address as the peer sees it once connected.
	blast := func(ns string, stop <-chan struct{}) {
		c, err := dial(t, ns, "tcp4", testPeerAddr+":7002", 5*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		go func() { <-stop; c.Close() }()
		io.Copy(c, zeroes{})
	}
	rate := func(before, after map[string]int64, d time.Duration) map[string]int64 {
		out := map[string]int64{}
		for k, v := range after {
			out[k] = (v - before[k]) * 8 / 1000 * int64(time.Second) / int64(d)
		}
		return out
	}
	snapshot := func() map[string]int64 {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int64{}
		for k, v := range count {
			out[k] = v.Load()
		}
		return out
	}
	var rows []string
	verdict := func(ok bool) string {
		if ok {
			return "holds"
		}
		return "MISS"
	}

	// 1. net_max_rate 8000 kbit/s, alone.
	a, err := m.Ensure(ctx, Sliver{Name: "pltest_fmax", XID: 30, MaxRateKbit: 8000})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go blast(a.NetNS, stop)
	time.Sleep(2 * time.Second)
	c0, _ := m.ClassBytes()
	b0, t0 := snapshot(), time.Now()
	time.Sleep(window)
	r := rate(b0, snapshot(), time.Since(t0))
	c1, _ := m.ClassBytes()
	wire := int64(c1[30]-c0[30]) * 8 / 1000 * int64(time.Second) / int64(time.Since(t0))
	close(stop)
	var got int64
	for _, v := range r {
		got += v
	}
	if got == 0 {
		t.Fatal("nothing received")
	}
	rows = append(rows,
		fmt.Sprintf("net_max_rate 8000\tpltest_fmax (HTB class, frames)\t8000 kbit/s ±3%%\t%d kbit/s\t%s", wire, verdict(wire >= 8000*97/100 && wire <= 8000*103/100)),
		fmt.Sprintf("net_max_rate 8000\tpltest_fmax (TCP payload at the peer)\t-\t%d kbit/s\t%.1f%% of the frames", got, 100*float64(got)/float64(max(wire, 1))))
	time.Sleep(time.Second)

	// 2. net_min_rate 12000 against a greedy neighbour (min 1000), both
	// above the node's 20000 kbit/s cap.
	mu.Lock()
	count = map[string]*atomic.Int64{}
	mu.Unlock()
	g, err := m.Ensure(ctx, Sliver{Name: "pltest_fmin", XID: 31, MinRateKbit: 12000})
	if err != nil {
		t.Fatal(err)
	}
	o, err := m.Ensure(ctx, Sliver{Name: "pltest_fgreedy", XID: 32, MinRateKbit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	stop = make(chan struct{})
	go blast(g.NetNS, stop)
	time.Sleep(100 * time.Millisecond)
	first := snapshot() // the guaranteed sliver's connection is the only one so far
	go blast(o.NetNS, stop)
	time.Sleep(2 * time.Second)
	c0, _ = m.ClassBytes()
	b0, t0 = snapshot(), time.Now()
	time.Sleep(window)
	r = rate(b0, snapshot(), time.Since(t0))
	c1, _ = m.ClassBytes()
	wireOf := func(xid int) int64 {
		return int64(c1[xid]-c0[xid]) * 8 / 1000 * int64(time.Second) / int64(time.Since(t0))
	}
	close(stop)
	var min, other int64
	for k, v := range r {
		if _, ok := first[k]; ok {
			min = v
		} else {
			other = v
		}
	}
	wg, wo := wireOf(31), wireOf(32)
	rows = append(rows,
		fmt.Sprintf("net_min_rate 12000 vs 1000, cap 20000\tpltest_fmin\t≥ 12000 kbit/s\t%d kbit/s frames (%d payload)\t%s", wg, min, verdict(wg >= 12000*97/100)),
		fmt.Sprintf("net_min_rate 12000 vs 1000, cap 20000\tpltest_fgreedy\t≥ 1000 kbit/s\t%d kbit/s frames (%d payload)\t%s", wo, other, verdict(wo >= 1000*97/100)),
		fmt.Sprintf("net_min_rate 12000 vs 1000, cap 20000\t(both)\t≤ 20000 kbit/s ±3%%\t%d kbit/s frames (%d payload)\t%s", wg+wo, min+other, verdict(wg+wo <= 20000*103/100)))
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("bandwidth fidelity, window %v, load average %s\nSCENARIO\tSLIVER\tTARGET\tMEASURED\n%s", window, strings.Join(strings.Fields(string(load))[:3], " "), strings.Join(rows, "\n"))
}

type zeroes struct{}

func (zeroes) Read(p []byte) (int, error) { clear(p); return len(p), nil }

var _ net.Conn = (*net.TCPConn)(nil)
