package codemux

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeConn is a client connection whose bytes are given; what codemux
// writes back is kept.
type fakeConn struct {
	r   io.Reader
	out bytes.Buffer
	mu  sync.Mutex
}

func (c *fakeConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *fakeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}
func (c *fakeConn) Close() error        { return nil }
func (c *fakeConn) CloseWrite() error   { return nil }
func (c *fakeConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80} }
func (c *fakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000}
}
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// sink is a sliver's side: it keeps what it receives and answers
// nothing until closed.
type sink struct {
	fakeConn
	closed chan struct{}
	once   sync.Once
}

func newSink() *sink { return &sink{closed: make(chan struct{})} }
func (s *sink) Read([]byte) (int, error) {
	<-s.closed
	return 0, io.EOF
}
func (s *sink) Close() error      { s.once.Do(func() { close(s.closed) }); return nil }
func (s *sink) CloseWrite() error { return s.Close() }

// FuzzHTTPDemux feeds any bytes to codemux as a client connection. It
// never hangs or panics, and whatever reaches a sliver is a sequence of
// well-formed requests for the host it serves, each with exactly one
// X-Forwarded-For naming the real client and no Forwarded header: a
// client cannot smuggle a request past the header, whatever framing it
// tries (until a connection upgrade, after which the bytes are the
// sliver's protocol, not HTTP; a body cut short by the client ends the
// stream).
func FuzzHTTPDemux(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: www.example.org\r\nX-Forwarded-For: 6.6.6.6\r\n\r\nGET /2 HTTP/1.1\r\nHost: www.example.org\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: www.example.org\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: www.example.org\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: other.example.org\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: www.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw bytes"))
	f.Fuzz(func(t *testing.T, in []byte) {
		sinks := map[string]*sink{}
		var mu sync.Mutex
		m := New(Config{Node: "n1", MaxHeader: 1024, IdleTimeout: time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			defer mu.Unlock()
			s := newSink()
			sinks[addr] = s
			return s, nil
		}})
		m.Set([]Claim{claim("a_www", "10.42.0.6", "www.example.org,8080")})
		done := make(chan struct{})
		go func() {
			m.serveHTTPConn(&fakeConn{r: bytes.NewReader(in)})
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("codemux still busy with %q", in)
		}
		for addr, s := range sinks {
			if addr != "10.42.0.6:8080" {
				t.Fatalf("dialed %s", addr)
			}
			r := bufio.NewReader(bytes.NewReader(s.out.Bytes()))
			for {
				if _, err := r.Peek(1); err == io.EOF {
					break
				}
				req, err := http.ReadRequest(r)
				if err != nil {
					t.Fatalf("the sliver got a malformed request (%v) from %q:\n%q", err, in, s.out.String())
				}
				if h, _ := HostOf(req.Host); h != "www.example.org" {
					t.Fatalf("the sliver got a request for %q", req.Host)
				}
				if xff := req.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "198.51.100.7" || req.Header.Get("Forwarded") != "" {
					t.Fatalf("request %s %s reached the sliver with X-Forwarded-For %q, Forwarded %q; input %q", req.Method, req.URL, xff, req.Header.Get("Forwarded"), in)
				}
				if _, err := io.Copy(io.Discard, req.Body); err != nil {
					// The client went away in the middle of a body: it
					// ends the stream, nothing follows it.
					if err != io.ErrUnexpectedEOF || r.Buffered() > 0 {
						t.Fatalf("body of %s %s: %v", req.Method, req.URL, err)
					}
					break
				}
				if req.Header.Get("Upgrade") != "" && strings.EqualFold(req.Header.Get("Connection"), "upgrade") {
					break
				}
			}
		}
	})
}
