package codemux

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// The HTTP side works per client connection, as the original CoDemux: the
// first request's Host chooses the sliver, codemux opens one connection
// to it (with the PROXY line first when the route asks for it) and from
// then on parses only request heads on their way in (to set
// X-Forwarded-For on every request and keep the head limits) while the
// sliver's responses flow back unparsed. A later request on the same
// connection for a host served elsewhere ends the connection: clients
// open a new one (browsers only reuse a connection for one host anyway).
// An upgraded connection (WebSocket) is spliced both ways after its
// request.

// ServeHTTPOn demultiplexes HTTP on ln until Close.
func (m *Mux) ServeHTTPOn(ln net.Listener) error {
	return m.serve(ln, func(c net.Conn) {
		m.mu.Lock()
		if m.conns == nil {
			m.conns = map[net.Conn]bool{}
		}
		m.conns[c] = true
		m.mu.Unlock()
		go func() {
			m.serveHTTPConn(c)
			m.mu.Lock()
			delete(m.conns, c)
			m.mu.Unlock()
		}()
	})
}

// headLimit counts the bytes read from the client while a request head is
// being read; past the limit reads fail with errHeadTooLarge. Outside
// heads (bodies, idle time) each read gives the client IdleTimeout more.
type headLimit struct {
	c      net.Conn
	idle   time.Duration
	left   int
	inHead bool
}

var errHeadTooLarge = errors.New("request head too large")

func (l *headLimit) Read(p []byte) (int, error) {
	if l.inHead {
		if l.left <= 0 {
			return 0, errHeadTooLarge
		}
		if len(p) > l.left {
			p = p[:l.left]
		}
	}
	if !l.inHead {
		l.c.SetReadDeadline(time.Now().Add(l.idle))
	}
	n, err := l.c.Read(p)
	if l.inHead {
		l.left -= n
	}
	return n, err
}

func (m *Mux) serveHTTPConn(c net.Conn) {
	defer c.Close()
	lim := &headLimit{c: c, idle: m.cfg.IdleTimeout}
	br := bufio.NewReaderSize(lim, 4096)
	var (
		backend  net.Conn
		current  Backend
		upstream = make(chan struct{}) // closed when the sliver's side is done
	)
	defer func() {
		if backend != nil { // let the sliver finish its answers, then close
			closeWrite(backend)
			select {
			case <-upstream:
			case <-time.After(m.cfg.IdleTimeout):
			}
			backend.Close()
			<-upstream
		}
	}()
	client := c.RemoteAddr()
	clientIP := ""
	if ta, ok := client.(*net.TCPAddr); ok {
		clientIP = ta.IP.String()
	}
	for first := true; ; first = false {
		// The head: within HeaderTimeout of its first byte (IdleTimeout
		// before it on a kept-alive connection), at most MaxHeader bytes.
		if !first {
			if _, err := br.Peek(1); err != nil {
				return
			}
		}
		c.SetReadDeadline(time.Now().Add(m.cfg.HeaderTimeout))
		lim.inHead, lim.left = true, m.cfg.MaxHeader
		req, err := http.ReadRequest(br)
		lim.inHead = false
		if err != nil {
			if first || !errors.Is(err, io.EOF) {
				m.refuse(c, backend, err)
			}
			return
		}
		b, ok := m.Lookup(req.Host)
		switch {
		case !ok && backend == nil:
			m.answer(c, http.StatusNotFound, fmt.Sprintf("No slice serves %q on node %s.", req.Host, *m.node.Load()))
			return
		case backend != nil && (!ok || b != current):
			return // another site: the client reconnects
		}
		if backend == nil {
			current = b
			if backend, err = m.dial(context.Background(), "tcp", netip.AddrPortFrom(b.Addr, b.Port).String()); err != nil {
				m.log.Debug("sliver unreachable", "slice", b.Slice, "host", req.Host, "err", err)
				m.answer(c, http.StatusBadGateway, fmt.Sprintf("The site %s of slice %s on node %s does not answer.", req.Host, b.Slice, *m.node.Load()))
				backend = nil
				return
			}
			if b.Proxy {
				if _, err := io.WriteString(backend, proxyHeader(client, c.LocalAddr())); err != nil {
					return
				}
			}
			go func() { // the sliver's responses, unparsed
				io.Copy(c, backend)
				closeWrite(c)
				close(upstream)
			}()
		}
		// The client's address, whatever the client claimed.
		req.Header.Del("Forwarded")
		req.Header.Set("X-Forwarded-For", clientIP)
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Del("X-Forwarded-Host")
		upgrade := req.Header.Get("Upgrade") != "" && strings.EqualFold(req.Header.Get("Connection"), "upgrade")
		// The body flows with the request; a stalled client is cut
		// after IdleTimeout without progress (headLimit).
		if err := req.Write(backend); err != nil {
			return
		}
		if upgrade {
			c.SetReadDeadline(time.Time{})
			if n := br.Buffered(); n > 0 {
				buf, _ := br.Peek(n)
				backend.Write(buf)
			}
			io.Copy(backend, c)
			return // the deferred close lets the sliver finish, for IdleTimeout at most
		}
		if req.Close {
			return // likewise
		}
	}
}

// refuse answers a request head codemux cannot use (before any response
// of a sliver flowed on the connection).
func (m *Mux) refuse(c net.Conn, backend net.Conn, err error) {
	if backend != nil {
		return // responses of the sliver may be on their way: just close
	}
	code, msg := http.StatusBadRequest, "Bad request: "+err.Error()
	var ne net.Error
	switch {
	case errors.Is(err, errHeadTooLarge):
		code, msg = http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("Request head larger than %d bytes.", m.cfg.MaxHeader)
	case errors.As(err, &ne) && ne.Timeout():
		code, msg = http.StatusRequestTimeout, "Request head not received in time."
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return
	}
	m.answer(c, code, msg)
}

// answer writes codemux's own small text response and ends the
// connection.
func (m *Mux) answer(c net.Conn, code int, msg string) {
	body := msg + "\n(PlanetLab CoDemux)\n"
	c.SetWriteDeadline(time.Now().Add(m.cfg.HeaderTimeout))
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
}

// closeWrite half-closes a connection (the whole of it when it cannot).
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
