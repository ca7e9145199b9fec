package codemux

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"www.example.org":        "www.example.org",
		"WWW.Example.ORG.":       "www.example.org",
		"www.example.org:80":     "www.example.org",
		"www.example.org.:8080":  "www.example.org",
		"www.example.org:":       "",
		"www.example.org:99999":  "",
		"www.example.org:80:80":  "",
		"[::1]:80":               "",
		"":                       "",
		"a b":                    "",
		"exa_mple.org":           "",
		strings.Repeat("a", 300): "",
	} {
		got, ok := HostOf(in)
		if got != want || ok != (want != "") {
			t.Errorf("HostOf(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// FuzzHostOf: whatever a client puts in Host or SNI, the demultiplexer's
// key is a normal DNS name or nothing, and normalizing it again changes
// nothing.
func FuzzHostOf(f *testing.F) {
	for _, s := range []string{"www.example.org", "WWW.EXAMPLE.ORG.:8080", "[::1]:80", "a..b", "x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, ok := HostOf(in)
		if !ok {
			return
		}
		if n, err := tags.NormalizeHost(h); err != nil || n != h {
			t.Fatalf("HostOf(%q) = %q, not normal (%q, %v)", in, h, n, err)
		}
		if again, ok := HostOf(h); !ok || again != h {
			t.Fatalf("HostOf(HostOf(%q)) = %q, %v", in, again, ok)
		}
	})
}

func claim(slice, addr, route string) Claim {
	r, err := tags.ParseRoute(route)
	if err != nil {
		panic(err)
	}
	return Claim{Slice: slice, Addr: netip.MustParseAddr(addr), Route: r}
}

func TestSetRefusesDoubleClaims(t *testing.T) {
	m := New(Config{Node: "n1"})
	refused := m.Set([]Claim{
		claim("a_web", "10.42.0.6", "www.example.org,8080"),
		claim("b_web", "10.42.0.10", "WWW.example.org.,80"),
		claim("b_web", "10.42.0.10", "shop.example.org,80,tls=443,proxy"),
	})
	if len(refused) != 1 || core.ErrorCode(refused["b_web"]) != core.Conflict ||
		!strings.Contains(refused["b_web"].Error(), `host www.example.org is served by slice "a_web" on this node`) {
		t.Fatalf("refused %v", refused)
	}
	if b, ok := m.Lookup("www.example.org:80"); !ok || b.Slice != "a_web" || b.Port != 8080 {
		t.Fatalf("www: %+v %v", b, ok)
	}
	if b, ok := m.Lookup("SHOP.example.org"); !ok || b != (Backend{Slice: "b_web", Addr: netip.MustParseAddr("10.42.0.10"), Port: 80, TLSPort: 443, Proxy: true}) {
		t.Fatalf("shop: %+v %v", b, ok)
	}
	// The holder keeps its host whatever the order of the next claims.
	refused = m.Set([]Claim{
		claim("b_web", "10.42.0.10", "www.example.org,80"),
		claim("a_web", "10.42.0.6", "www.example.org,8080"),
	})
	if b, _ := m.Lookup("www.example.org"); b.Slice != "a_web" || refused["b_web"] == nil {
		t.Fatalf("holder lost the host: %+v, refused %v", b, refused)
	}
	m.Set(nil)
	if _, ok := m.Lookup("www.example.org"); ok || len(m.Routes()) != 0 {
		t.Fatalf("empty table still routes")
	}
}

func TestProxyHeader(t *testing.T) {
	c := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 51000}
	d := &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 80}
	if got := proxyHeader(c, d); got != "PROXY TCP4 192.0.2.7 198.51.100.1 51000 80\r\n" {
		t.Errorf("v4: %q", got)
	}
	c6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 1}
	d6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}
	if got := proxyHeader(c6, d6); got != "PROXY TCP6 2001:db8::7 2001:db8::1 1 443\r\n" {
		t.Errorf("v6: %q", got)
	}
	if got := proxyHeader(c6, d); got != "PROXY UNKNOWN\r\n" {
		t.Errorf("mixed: %q", got)
	}
	if got := proxyHeader(nil, d); got != "PROXY UNKNOWN\r\n" {
		t.Errorf("nil: %q", got)
	}
}

// clientHello returns the first flight of a real TLS client asking for
// serverName.
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""}).Handshake()
		a.Close()
	}()
	var buf bytes.Buffer
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, err := ReadClientHello(io.TeeReader(b, &buf))
	b.Close()
	if err != nil {
		t.Fatalf("reading a real ClientHello: %v", err)
	}
	return raw
}

func TestReadClientHello(t *testing.T) {
	raw := clientHello(t, "shop.example.org")
	sni, got, err := ReadClientHello(bytes.NewReader(append(raw, "rest"...)))
	if err != nil || sni != "shop.example.org" || !bytes.Equal(got, raw) {
		t.Fatalf("SNI %q, %d of %d bytes, %v", sni, len(got), len(raw), err)
	}
	// The same hello split over two records.
	body := raw[5:]
	split := append([]byte{22, 3, 1, 0, 10}, body[:10]...)
	split = append(split, 22, 3, 1, byte((len(body)-10)>>8), byte(len(body)-10))
	split = append(split, body[10:]...)
	if sni, _, err := ReadClientHello(bytes.NewReader(split)); err != nil || sni != "shop.example.org" {
		t.Fatalf("two records: %q, %v", sni, err)
	}
	if sni, _, err := ReadClientHello(bytes.NewReader(clientHello(t, ""))); err != nil || sni != "" {
		t.Fatalf("no SNI: %q, %v", sni, err)
	}
	for in, want := range map[string]string{
		"GET / HTTP/1.1\r\n\r\n":               "not a TLS handshake (record type 71)",
		"\x16\x02\x00\x00\x05hello":            "not TLS (record version 2.0)",
		"\x16\x03\x01\x00\x00":                 "length 0 out of range",
		"\x16\x03\x01\x50\x00":                 "length 20480 out of range",
		"\x16\x03\x01\x00\x04\x02\x00\x00":     "tls record: unexpected EOF",
		"\x16\x03\x01\x00\x04\x02\x00\x00\x00": "type 2, not a ClientHello",
		"\x16\x03\x01\x00\x04\x01\x00\x00\x00": "malformed ClientHello",
		"\x16\x03\x01\x00\x04\x01\xff\xff\xff": "ClientHello longer than",
		"\x16\x03":                             "tls record header: unexpected EOF",
	} {
		if _, _, err := ReadClientHello(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// FuzzReadClientHello: the bytes of any client; the reader returns what it
// consumed (a prefix of the input, at most MaxHello) and never panics.
func FuzzReadClientHello(f *testing.F) {
	f.Add(clientHello(f, "www.example.org"))
	f.Add([]byte("\x16\x03\x01\x00\x04\x01\x00\x00\x00"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		sni, raw, err := ReadClientHello(bytes.NewReader(in))
		if !bytes.HasPrefix(in, raw) || len(raw) > MaxHello+5 {
			t.Fatalf("consumed %d bytes that are not a prefix of the input", len(raw))
		}
		if err != nil && sni != "" {
			t.Fatalf("error %v with SNI %q", err, sni)
		}
	})
}

// backend is an HTTP server standing for a sliver's web site; it answers
// with its name, the Host it saw, X-Forwarded-For and the PROXY line.
func backend(t testing.TB, name string, proxy bool) (addr netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if proxy {
		l = &proxyListener{ln}
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(proxyLineKey{}).(string)
		fmt.Fprintf(w, "%s host=%s xff=%s proxy=%q", name, r.Host, r.Header.Get("X-Forwarded-For"), strings.TrimSpace(p))
	}), ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		if pc, ok := c.(*proxyConn); ok {
			return context.WithValue(ctx, proxyLineKey{}, pc.line)
		}
		return ctx
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

type proxyLineKey struct{}

// proxyListener reads the PROXY line of each connection before HTTP.
type proxyListener struct{ net.Listener }

type proxyConn struct {
	net.Conn
	r    *bufio.Reader
	line string
}

func (c *proxyConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (l *proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := r.ReadString('\n')
	c.SetReadDeadline(time.Time{})
	return &proxyConn{Conn: c, r: r, line: line}, nil
}

// tlsBackend is a TLS server for host (self-signed) answering each line
// with "name: line", after a line "proxy: <PROXY line>" when proxy is set;
// its certificate pool lets clients verify it.
func tlsBackend(t testing.TB, name, host string, proxy bool) (netip.AddrPort, *x509.CertPool) {
	t.Helper()
	cfg, pool := selfSigned(t, host)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	var inner net.Listener = tcp
	if proxy {
		inner = &proxyListener{tcp}
	}
	ln := tls.NewListener(inner, cfg)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if proxy {
					tc := c.(*tls.Conn)
					if err := tc.Handshake(); err != nil {
						return
					}
					fmt.Fprintf(c, "proxy: %s\n", strings.TrimSpace(tc.NetConn().(*proxyConn).line))
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%s: %s", name, line)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(tcp.Addr().String()), pool
}

// startMux serves m on loopback listeners and returns their addresses.
func startMux(t testing.TB, m *Mux) (httpAddr, tlsAddr string) {
	t.Helper()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go m.ServeHTTPOn(hl)
	go m.ServeTLSOn(tl)
	t.Cleanup(func() { m.Close() })
	return hl.Addr().String(), tl.Addr().String()
}

func get(t testing.TB, addr, host string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s Host %s: %v", addr, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDemultiplex(t *testing.T) {
	a := backend(t, "slice-a", false)
	b := backend(t, "slice-b", true)
	bTLS, pool := tlsBackend(t, "slice-b-tls", "shop.example.org", true)
	m := New(Config{Node: "n1.example.org", HeaderTimeout: 500 * time.Millisecond, MaxHeader: 4096})
	route := func(s string, ap netip.AddrPort, r string) Claim {
		c := claim(s, ap.Addr().String(), r)
		c.Route.Port = ap.Port()
		return c
	}
	shop := route("b_shop", b, "shop.example.org,1,proxy")
	shop.Route.TLSPort = bTLS.Port()
	if refused := m.Set([]Claim{route("a_www", a, "www.example.org,1"), shop}); len(refused) != 0 {
		t.Fatal(refused)
	}
	httpAddr, tlsAddr := startMux(t, m)

	code, body := get(t, httpAddr, "WWW.example.org:80", "X-Forwarded-For", "6.6.6.6")
	if code != 200 || !strings.HasPrefix(body, "slice-a host=WWW.example.org:80 xff=127.0.0.1 ") {
		t.Errorf("www: %d %q (want slice a, the client's address, not the forged one)", code, body)
	}
	code, body = get(t, httpAddr, "shop.example.org")
	if code != 200 || !strings.HasPrefix(body, "slice-b host=shop.example.org xff=127.0.0.1 proxy=\"PROXY TCP4 127.0.0.1 127.0.0.1 ") {
		t.Errorf("shop: %d %q", code, body)
	}
	code, body = get(t, httpAddr, "nobody.example.org")
	if code != 404 || !strings.Contains(body, `No slice serves "nobody.example.org" on node n1.example.org.`) {
		t.Errorf("unknown host: %d %q", code, body)
	}

	raw := func(in string) string {
		c, err := net.Dial("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, in)
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if got := raw("GARBAGE\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Errorf("malformed request: %q", got)
	}
	if got := raw("GET / HTTP/1.1\r\nHost: www.example.org\r\nX-Big: " + strings.Repeat("x", 20000) + "\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Errorf("oversized head: %q", got)
	}
	// Slowloris: a head that never ends is cut off after HeaderTimeout.
	c, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: www.example.org\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; ; i++ {
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(c, "X-A: b\r\n"); err != nil {
			break
		}
		if i > 40 {
			t.Fatalf("a slow client still connected after %v", time.Since(start))
		}
	}
	c.Close()

	// TLS by SNI, unterminated: the client verifies the sliver's own
	// certificate; the sliver got the PROXY line first (it answers it
	// back as a line, not being an HTTP server).
	tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "shop.example.org", RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS through codemux: %v", err)
	}
	defer tc.Close()
	r := bufio.NewReader(tc)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "proxy: PROXY TCP4 127.0.0.1 127.0.0.1 ") {
		t.Errorf("the sliver got no PROXY line before the TLS bytes: %q", line)
	}
	io.WriteString(tc, "hello\n")
	if line, _ := r.ReadString('\n'); line != "slice-b-tls: hello\n" {
		t.Errorf("TLS answer %q", line)
	}
	// Unknown or absent SNI: an alert, no connection to anyone.
	for _, name := range []string{"www.example.org", "nobody.example.org"} { // www has no TLS port
		_, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: name, RootCAs: pool})
		if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("TLS to %s: %v, want an unrecognized_name alert", name, err)
		}
	}

	// A change of the table leaves forwarded connections alone: the TLS
	// connection above still works after www moves and shop goes.
	other := backend(t, "slice-c", false)
	m.Set([]Claim{route("c_www", other, "www.example.org,1")})
	io.WriteString(tc, "still there\n")
	if line, _ := r.ReadString('\n'); line != "slice-b-tls: still there\n" {
		t.Errorf("TLS connection after the change: %q", line)
	}
	if _, body := get(t, httpAddr, "www.example.org"); !strings.HasPrefix(body, "slice-c ") {
		t.Errorf("new route not used: %q", body)
	}
	if code, _ := get(t, httpAddr, "shop.example.org"); code != 404 {
		t.Errorf("removed route still served: %d", code)
	}
}

func TestUnreachableSliver(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	m := New(Config{Node: "n1"})
	c := claim("a_www", "127.0.0.1", "www.example.org,1")
	c.Route.Port = dead.Port()
	m.Set([]Claim{c})
	httpAddr, _ := startMux(t, m)
	if code, body := get(t, httpAddr, "www.example.org"); code != 502 || !strings.Contains(body, "slice a_www on node n1 does not answer") {
		t.Errorf("dead sliver: %d %q", code, body)
	}
}

// selfSigned returns a server configuration with a fresh self-signed
// certificate for host and the pool that trusts it.
func selfSigned(t testing.TB, host string) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestKeepAliveAndUpgrade: several requests on one connection (pipelined)
// each reach the sliver with X-Forwarded-For; a request for another site
// on it ends the connection after the answers already due; an upgraded
// connection carries the sliver's own protocol both ways.
func TestKeepAliveAndUpgrade(t *testing.T) {
	a := backend(t, "slice-a", false)
	other := backend(t, "slice-o", false)
	ws, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ws.Close()
	go func() { // a minimal upgrading server: 101, then echo in upper case
		c, err := ws.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\nX-Seen-XFF: %s\r\n\r\n", req.Header.Get("Upgrade"), req.Header.Get("X-Forwarded-For"))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			io.WriteString(c, strings.ToUpper(line))
		}
	}()
	wsAddr := netip.MustParseAddrPort(ws.Addr().String())
	m := New(Config{Node: "n1"})
	route := func(s string, ap netip.AddrPort, host string) Claim {
		c := claim(s, ap.Addr().String(), host+",1")
		c.Route.Port = ap.Port()
		return c
	}
	m.Set([]Claim{route("a_www", a, "www.example.org"), route("o_www", other, "other.example.org"), route("w_ws", wsAddr, "ws.example.org")})
	httpAddr, _ := startMux(t, m)

	c, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: www.example.org\r\n\r\nGET /2 HTTP/1.1\r\nHost: www.example.org\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"+
		"GET /3 HTTP/1.1\r\nHost: other.example.org\r\n\r\n")
	r := bufio.NewReader(c)
	for i := 1; i <= 2; i++ {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(body), "slice-a host=www.example.org xff=127.0.0.1 ") {
			t.Errorf("answer %d: %q", i, body)
		}
	}
	if _, err := http.ReadResponse(r, nil); err == nil {
		t.Errorf("a request for another site was answered on the same connection")
	}

	u, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(u, "GET /chat HTTP/1.1\r\nHost: ws.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nhello\n")
	ur := bufio.NewReader(u)
	resp, err := http.ReadResponse(ur, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("X-Seen-XFF") != "127.0.0.1" {
		t.Fatalf("upgrade: %v %+v", err, resp)
	}
	if line, _ := ur.ReadString('\n'); line != "HELLO\n" {
		t.Errorf("upgraded stream: %q", line)
	}
	io.WriteString(u, "again\n")
	if line, _ := ur.ReadString('\n'); line != "AGAIN\n" {
		t.Errorf("upgraded stream, second line: %q", line)
	}
}
