package server

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// What PLC's HTTP server bounds, so that slow or many connections from one
// place cannot hold it (docs/plc.md "Limits"). No global read or write
// timeout: the node API's watch legitimately holds a response open for
// minutes, and net/http would cancel it on a connection read deadline.
const (
	// DefaultHeaderTimeout bounds the TLS handshake and reading a
	// request's headers.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds reading a request's body, from the end of
	// its headers.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultMaxConnsPerSource bounds the open connections of one source
	// address.
	DefaultMaxConnsPerSource = 256
)

// boundBodies gives every request with a body a read deadline of timeout
// from now, lifted when the body has been read to its end so that the
// connection can then wait on a long response (a watch) as long as it
// needs. A client that stalls in its body is cut at the deadline (its read
// fails; the handler answers 400 or the connection closes).
func boundBodies(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { rc.SetReadDeadline(time.Time{}) }}
			}
		}
		h.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.lift)
	}
	return n, err
}

// sourceLimit is a listener that keeps at most max connections open per
// source address: further ones are closed as soon as they are accepted
// (before TLS), and a warning is logged at most once a minute.
type sourceLimit struct {
	net.Listener
	max int
	log *slog.Logger

	mu       sync.Mutex
	open     map[string]int
	refused  int
	lastWarn time.Time
}

func limitSources(ln net.Listener, max int, log *slog.Logger) *sourceLimit {
	return &sourceLimit{Listener: ln, max: max, log: log, open: map[string]int{}}
}

func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Accept returns the next connection within its source's limit.
func (l *sourceLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c.RemoteAddr())
		l.mu.Lock()
		if l.open[src] >= l.max {
			l.refused++
			warn := time.Since(l.lastWarn) >= time.Minute
			n := l.refused
			if warn {
				l.lastWarn, l.refused = time.Now(), 0
			}
			l.mu.Unlock()
			c.Close()
			if warn {
				l.log.Warn("refusing connections beyond the per-source limit", "source", src, "limit", l.max, "refused_since_last_warning", n)
			}
			continue
		}
		l.open[src]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(src) }}, nil
	}
}

func (l *sourceLimit) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}

// openFrom returns the number of open connections of a source (tests).
func (l *sourceLimit) openFrom(src string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[src]
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
