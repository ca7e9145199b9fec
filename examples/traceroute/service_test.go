package traceroute

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve starts a Server with a fake tracer on a loopback port.
func serve(t *testing.T, s *Server) (port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go s.Serve(ln)
	return ln.Addr().(*net.TCPAddr).Port
}

func TestAskAll(t *testing.T) {
	var inflight, most atomic.Int32
	s := &Server{Name: "n1.example", MaxParallel: 8, trace: func(ctx context.Context, target netip.Addr, maxHops, probes int) (Path, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		return Path{Target: target, Reached: true, Hops: []Hop{{TTL: 1, Addr: target, RTTs: make([]time.Duration, probes)}}}, nil
	}}
	// The fake answers every probe.
	inner := s.trace
	s.trace = func(ctx context.Context, target netip.Addr, maxHops, probes int) (Path, error) {
		p, err := inner(ctx, target, maxHops, probes)
		for i := range p.Hops[0].RTTs {
			p.Hops[0].RTTs[i] = time.Millisecond
		}
		return p, err
	}
	port := serve(t, s)
	// A closed port on 127.0.0.2 stands for a node whose server is down.
	servers := []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"}
	res := AskAll(context.Background(), servers, port, Request{Target: "10.0.0.9", Probes: 2}, 3, 5*time.Second)
	for i, r := range res[:6] {
		if r.Err != nil || r.Path.Server != "n1.example" || !r.Path.Reached || len(r.Path.Hops[0].RTTs) != 2 {
			t.Errorf("server %d: %+v", i, r)
		}
	}
	if res[6].Err == nil || res[6].Server != "127.0.0.2" {
		t.Errorf("down server: %+v", res[6])
	}
	if most.Load() > 3 || most.Load() < 2 {
		t.Errorf("%d traces at once, want at most --parallel 3 (and some parallelism)", most.Load())
	}
}

func TestServerRefusals(t *testing.T) {
	block, started := make(chan struct{}), make(chan struct{}, 1)
	defer close(block)
	s := &Server{Name: "n1", MaxParallel: 1, ReadTimeout: 300 * time.Millisecond, trace: func(ctx context.Context, target netip.Addr, maxHops, probes int) (Path, error) {
		if target == netip.MustParseAddr("10.0.0.66") {
			return Path{}, errors.New("boom")
		}
		started <- struct{}{}
		<-block
		return Path{}, errors.New("unblocked")
	}}
	port := serve(t, s)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ask := func(line string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(line))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}
	// The slot of the last request is freed just after its answer.
	askFree := func(line string) string {
		for range 50 {
			if got := ask(line); !strings.HasPrefix(got, "ERR busy") {
				return got
			}
			time.Sleep(20 * time.Millisecond)
		}
		return "always busy"
	}
	if got := ask("GET / HTTP/1.1\r\n"); !strings.HasPrefix(got, `ERR traceroute wire: want "TRACE`) {
		t.Errorf("malformed request: %q", got)
	}
	if got := askFree("TRACE 10.0.0.66\n"); got != "ERR trace to 10.0.0.66: boom\n" {
		t.Errorf("failed trace: %q", got)
	}
	if got := askFree(""); !strings.Contains(got, "timeout") {
		t.Errorf("silent client: %q, want a read timeout", got)
	}
	// One trace holds the only slot (once the last request freed it); the
	// next is told so at once.
	var c net.Conn
	for held := false; !held; {
		var err error
		if c, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("TRACE 10.0.0.1\n"))
		select {
		case <-started:
			held = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got := ask("TRACE 10.0.0.2\n"); !strings.HasPrefix(got, "ERR busy") {
		t.Errorf("over the limit: %q", got)
	}
	// A client gives up on a server that does not answer in time.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			<-block
			c.Close()
		}
	}()
	if _, err := Ask(ctx, ln.Addr().String(), Request{Target: "10.0.0.1"}); err == nil || !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("silent server: %v", err)
	}
}

// TestTraceLoopback traces to the loopback address over a real raw
// socket: the target answers the first probe.
func TestTraceLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_RAW) for a raw ICMP socket")
	}
	p, err := Tracer{Wait: time.Second}.Trace(context.Background(), netip.MustParseAddr("127.0.0.1"), 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Reached || len(p.Hops) != 1 || p.Hops[0].Addr != netip.MustParseAddr("127.0.0.1") || p.Hops[0].RTTs[0] <= 0 || p.Hops[0].RTTs[1] <= 0 {
		t.Fatalf("trace to 127.0.0.1: %+v", p)
	}
	p.Server = "localhost"
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}
