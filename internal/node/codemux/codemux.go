// Package codemux shares a node's port 80 (HTTP, by Host header) and port
// 443 (TLS, by the server name of the ClientHello, unterminated) among the
// slices that claim host names with the codemux slice tag (package
// core/tags: Route). A request for a host no slice claims gets a small
// page naming the node. The sliver sees the client's address in
// X-Forwarded-For (HTTP) and, when its route asks for it, in a PROXY
// protocol v1 header before the forwarded bytes (HTTP and TLS).
//
// The routing table is replaced atomically (Set): connections already
// forwarded keep going, whatever the change; new ones see the new table.
// Clients that send malformed HTTP get 400, oversized request heads 431,
// and slow ones (slowloris) are cut off after Config.HeaderTimeout.
package codemux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

// Backend is where the traffic of one host name goes: a sliver's address
// and ports.
type Backend struct {
	Slice   string
	Addr    netip.Addr
	Port    uint16 // HTTP
	TLSPort uint16 // TLS passed through; 0 = none
	Proxy   bool   // PROXY protocol v1 header first
}

// Claim is one slice's claim of a host name (a codemux tag value on a
// sliver whose address is known).
type Claim struct {
	Slice string
	Addr  netip.Addr
	Route tags.Route
}

// Config configures a Mux. Zero fields take the defaults.
type Config struct {
	Node          string        // the node's name, on the unknown-host page
	HeaderTimeout time.Duration // to read a request head or a ClientHello; 10s
	IdleTimeout   time.Duration // keep-alive between requests; 60s
	MaxHeader     int           // bytes of a request head; 16 KiB
	MaxConns      int           // open client connections per listener; 4096
	DialTimeout   time.Duration // to reach a sliver; 5s
	// Dial connects to slivers; it must dial from the node's network
	// namespace (the listeners' may be elsewhere: `pl node --netns`).
	// Default: a net.Dialer in the calling thread's namespace, i.e. the
	// process's.
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger
}

// Mux is the demultiplexer of one node.
type Mux struct {
	cfg    Config
	log    *slog.Logger
	routes atomic.Pointer[map[string]Backend]
	node   atomic.Pointer[string]
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	mu    sync.Mutex
	lns   []net.Listener
	conns map[net.Conn]bool // HTTP client connections, cut by Close
}

// New returns a Mux with an empty table.
func New(cfg Config) *Mux {
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.MaxHeader <= 0 {
		cfg.MaxHeader = 16 << 10
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4096
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Mux{cfg: cfg, log: cfg.Logger.With("subsystem", "codemux")}
	empty := map[string]Backend{}
	m.routes.Store(&empty)
	m.node.Store(&cfg.Node)
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
		return cfg.Dial(ctx, network, addr)
	}
	m.dial = dial
	return m
}

// SetNode changes the node name of the pages codemux answers itself.
func (m *Mux) SetNode(name string) { m.node.Store(&name) }

// Set replaces the routing table with the given claims and returns the
// ones it refuses: a host claimed by two slices (PLC refuses that; this is
// the node's own check) stays with the slice that holds it now, or else
// with the first claim in order; a claim of a bad host name is refused
// too. Connections already forwarded are not touched.
func (m *Mux) Set(claims []Claim) (refused map[string]error) {
	old := *m.routes.Load()
	next := map[string]Backend{}
	refused = map[string]error{}
	// Current holders first, so a conflict never moves a host.
	ordered := append([]Claim(nil), claims...)
	sort.SliceStable(ordered, func(i, j int) bool {
		hi := old[ordered[i].Route.Host].Slice == ordered[i].Slice
		hj := old[ordered[j].Route.Host].Slice == ordered[j].Slice
		return hi && !hj
	})
	for _, c := range ordered {
		host, err := tags.NormalizeHost(c.Route.Host)
		if err != nil || !c.Addr.IsValid() || c.Route.Port == 0 {
			refused[c.Slice] = core.FieldErrorf(tags.Codemux, "route %q of slice %q: bad host name, address or port", c.Route, c.Slice)
			continue
		}
		if b, ok := next[host]; ok && b.Slice != c.Slice {
			refused[c.Slice] = core.Errorf(core.Conflict, "%s: host %s is served by slice %q on this node", tags.Codemux, host, b.Slice)
			continue
		}
		next[host] = Backend{Slice: c.Slice, Addr: c.Addr, Port: c.Route.Port, TLSPort: c.Route.TLSPort, Proxy: c.Route.Proxy}
	}
	m.routes.Store(&next)
	return refused
}

// Routes returns a copy of the table.
func (m *Mux) Routes() map[string]Backend {
	out := map[string]Backend{}
	for h, b := range *m.routes.Load() {
		out[h] = b
	}
	return out
}

// Lookup finds the backend of a Host header value or SNI name: case,
// a trailing dot and a port do not matter.
func (m *Mux) Lookup(host string) (Backend, bool) {
	h, ok := HostOf(host)
	if !ok {
		return Backend{}, false
	}
	b, ok := (*m.routes.Load())[h]
	return b, ok
}

// HostOf turns a Host header value (or SNI name) into the form slices
// claim: lower case, no port, no trailing dot. ok is false for values
// that are no DNS name (IP literals included: no slice claims those).
func HostOf(v string) (string, bool) {
	if i := strings.LastIndexByte(v, ':'); i >= 0 && !strings.Contains(v[:i], ":") {
		if _, err := strconv.ParseUint(v[i+1:], 10, 16); err != nil {
			return "", false
		}
		v = v[:i]
	}
	h, err := tags.NormalizeHost(v)
	if err != nil {
		return "", false
	}
	return h, true
}

// ServeTLSOn passes TLS connections on ln through to slivers by SNI until
// Close. A connection without a known server name gets a TLS alert
// (unrecognized_name) and is closed.
func (m *Mux) ServeTLSOn(ln net.Listener) error {
	return m.serve(ln, func(c net.Conn) { go m.passTLS(c) })
}

// serve accepts connections on ln (at most MaxConns at once) and hands
// each to accept, which must not block (it starts the connection's
// goroutine), until ln is closed.
func (m *Mux) serve(ln net.Listener, accept func(net.Conn)) error {
	ln = netutil.LimitListener(ln, m.cfg.MaxConns)
	m.mu.Lock()
	m.lns = append(m.lns, ln)
	m.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		accept(c)
	}
}

// alertUnrecognizedName is a fatal TLS alert record, unrecognized_name (112).
var alertUnrecognizedName = []byte{21, 3, 1, 0, 2, 2, 112}

func (m *Mux) passTLS(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(m.cfg.HeaderTimeout))
	sni, raw, err := ReadClientHello(c)
	if err != nil {
		m.log.Debug("tls: no usable ClientHello", "client", c.RemoteAddr(), "err", err)
		return
	}
	b, ok := m.Lookup(sni)
	if !ok || b.TLSPort == 0 {
		m.log.Debug("tls: unknown server name", "client", c.RemoteAddr(), "sni", sni)
		c.SetWriteDeadline(time.Now().Add(m.cfg.HeaderTimeout))
		c.Write(alertUnrecognizedName)
		return
	}
	c.SetReadDeadline(time.Time{})
	s, err := m.dial(context.Background(), "tcp", netip.AddrPortFrom(b.Addr, b.TLSPort).String())
	if err != nil {
		m.log.Debug("tls: sliver unreachable", "slice", b.Slice, "err", err)
		return
	}
	defer s.Close()
	if b.Proxy {
		raw = append([]byte(proxyHeader(c.RemoteAddr(), c.LocalAddr())), raw...)
	}
	if _, err := s.Write(raw); err != nil {
		return
	}
	splice(c, s)
}

// splice copies both ways until both directions are done (each half
// closed in turn), so either side may finish sending first.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}

// proxyHeader is the PROXY protocol v1 line naming the client (src) and
// the address it connected to (dst).
func proxyHeader(src, dst net.Addr) string {
	s, ok1 := src.(*net.TCPAddr)
	d, ok2 := dst.(*net.TCPAddr)
	if !ok1 || !ok2 || s == nil || d == nil {
		return "PROXY UNKNOWN\r\n"
	}
	sa, _ := netip.AddrFromSlice(s.IP)
	da, _ := netip.AddrFromSlice(d.IP)
	sa, da = sa.Unmap(), da.Unmap()
	fam := "TCP4"
	if !sa.Is4() || !da.Is4() {
		if sa.Is4() || da.Is4() {
			return "PROXY UNKNOWN\r\n"
		}
		fam = "TCP6"
	}
	return fmt.Sprintf("PROXY %s %s %s %d %d\r\n", fam, sa, da, s.Port, d.Port)
}

// Close stops the listeners and cuts the HTTP connections; TLS
// connections already passed through go on until one of their ends
// closes.
func (m *Mux) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for c := range m.conns {
		c.Close()
	}
	for _, l := range m.lns {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
