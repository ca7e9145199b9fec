package traceroute

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Server answers traceroute requests on a listener (cmd/traceroutesvr).
type Server struct {
	Name        string        // the node's host name, sent in every answer
	Tracer      Tracer        // how paths are traced
	MaxParallel int           // traces at once; more connections get "ERR busy"; default 4
	ReadTimeout time.Duration // for the request line; default 10s
	Log         *log.Logger   // nil: no log

	// trace replaces Tracer.Trace in tests.
	trace func(ctx context.Context, target netip.Addr, maxHops, probes int) (Path, error)
}

// Serve accepts connections until the listener is closed, answering one
// request per connection.
func (s *Server) Serve(ln net.Listener) error {
	n := s.MaxParallel
	if n <= 0 {
		n = 4
	}
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				s.handle(c)
			default:
				WriteError(c, "busy: too many traces in progress, try again")
			}
		}()
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log.Printf(format, args...)
	}
}

func (s *Server) handle(c net.Conn) {
	rt := s.ReadTimeout
	if rt <= 0 {
		rt = 10 * time.Second
	}
	c.SetReadDeadline(time.Now().Add(rt))
	q, err := ReadRequest(bufio.NewReaderSize(c, MaxLine))
	if err != nil {
		s.logf("%v: bad request: %v", c.RemoteAddr(), err)
		WriteError(c, err.Error())
		return
	}
	target, err := resolve(q.Target)
	if err != nil {
		WriteError(c, err.Error())
		return
	}
	// The whole trace: every round may wait its full time.
	wait := s.Tracer.Wait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(q.Probes)*(wait+time.Duration(q.MaxHops)*10*time.Millisecond)+5*time.Second)
	defer cancel()
	trace := s.trace
	if trace == nil {
		trace = s.Tracer.Trace
	}
	start := time.Now()
	p, err := trace(ctx, target, q.MaxHops, q.Probes)
	if err != nil {
		s.logf("%v: trace to %v: %v", c.RemoteAddr(), target, err)
		WriteError(c, fmt.Sprintf("trace to %v: %v", target, err))
		return
	}
	p.Server = s.Name
	c.SetWriteDeadline(time.Now().Add(rt))
	if err := WritePath(c, p); err != nil {
		s.logf("%v: answer: %v", c.RemoteAddr(), err)
		return
	}
	s.logf("%v: traced %v: %d hops, reached %v, in %v", c.RemoteAddr(), target, len(p.Hops), p.Reached, time.Since(start).Round(time.Millisecond))
}

func resolve(target string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(target); err == nil {
		return a, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", target)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("cannot resolve %q: %v", target, err)
	}
	return addrs[0].Unmap(), nil
}

// Ask sends q to the server at addr (host:port) and reads its answer,
// all within ctx.
func Ask(ctx context.Context, addr string, q Request) (Path, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Path{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := WriteRequest(c, q); err != nil {
		return Path{}, err
	}
	p, err := ReadPath(bufio.NewReaderSize(c, MaxLine))
	var ne net.Error
	if err != nil && (ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout()) {
		return Path{}, fmt.Errorf("no answer in time: %w", err)
	}
	return p, err
}

// Result is one server's outcome in AskAll.
type Result struct {
	Server string // as given (host name or address)
	Path   Path
	Err    error
	Took   time.Duration
}

// AskAll asks every server (a host, without port) for its path to q's
// target, at most parallel at once, each within timeout. Results are in
// the order of servers.
func AskAll(ctx context.Context, servers []string, port int, q Request, parallel int, timeout time.Duration) []Result {
	out := make([]Result, len(servers))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Result{Server: s, Err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			p, err := Ask(cctx, net.JoinHostPort(s, strconv.Itoa(port)), q)
			out[i] = Result{Server: s, Path: p, Err: err, Took: time.Since(start)}
		}()
	}
	wg.Wait()
	return out
}
