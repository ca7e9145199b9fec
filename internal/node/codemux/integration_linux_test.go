package codemux

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// planet is a node namespace with real sliver networks (package netcfg)
// and a client namespace on its uplink:
//
//	client ns (eth0 192.0.2.2)  <--veth-->  node ns (up0 192.0.2.1, codemux on :80 :443)
//	                                           veths to the slivers a_www, b_shop (10.42.x.2)
type planet struct {
	node, client netns.NsHandle
	net          *netcfg.Linux
	mux          *Mux
	slivers      map[string]netcfg.Attachment
}

const (
	nodeAddr   = "192.0.2.1"
	clientAddr = "192.0.2.2"
)

func newNS(t testing.TB) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func inNS(t testing.TB, h netns.NsHandle, fn func() error) {
	t.Helper()
	if err := netcfg.InNetNS(h, fn); err != nil {
		t.Fatal(err)
	}
}

func newPlanet(t testing.TB) *planet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and nftables tables")
	}
	p := &planet{node: newNS(t), client: newNS(t), slivers: map[string]netcfg.Attachment{}}
	nh, err := netlink.NewHandleAt(p.node)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	ch, err := netlink.NewHandleAt(p.client)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(p.client))}))
	for _, side := range []struct {
		h          *netlink.Handle
		link, addr string
	}{{nh, "up0", nodeAddr}, {ch, "eth0", clientAddr}} {
		l, err := side.h.LinkByName(side.link)
		must(err)
		must(side.h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(side.addr).To4(), Mask: net.CIDRMask(24, 32)}}))
		must(side.h.LinkSetUp(l))
		lo, err := side.h.LinkByName("lo")
		must(err)
		must(side.h.LinkSetUp(lo))
		if side.link == "up0" {
			must(side.h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: net.ParseIP(clientAddr).To4()}))
		}
	}
	p.net, err = netcfg.New(netcfg.Config{StateDir: t.TempDir(), NetNS: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(p.node)),
		Table: "hncmux", VethPrefix: "hncm", NodePorts: append([]netcfg.Port{{Proto: "tcp", From: 22, To: 22}},
			netcfg.Port{Proto: "tcp", From: 80, To: 80}, netcfg.Port{Proto: "tcp", From: 443, To: 443})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.net.Teardown(context.Background())
		p.net.Close()
	})
	// codemux dials the slivers from the node's namespace (as pl node,
	// which runs in it); nothing here may reach beyond these namespaces.
	p.mux = New(Config{Node: "n1.example.org", Dial: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		if ap, perr := netip.ParseAddrPort(addr); perr != nil || !netip.MustParsePrefix("10.42.0.0/16").Contains(ap.Addr()) {
			return nil, fmt.Errorf("test guard: codemux dials %s, not a sliver", addr)
		}
		err = netcfg.InNetNS(p.node, func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}})
	for _, port := range []string{"80", "443"} {
		var l net.Listener
		inNS(t, p.node, func() (err error) { l, err = net.Listen("tcp", net.JoinHostPort(nodeAddr, port)); return err })
		if port == "80" {
			go p.mux.ServeHTTPOn(l)
		} else {
			go p.mux.ServeTLSOn(l)
		}
		t.Cleanup(func() { l.Close() })
	}
	t.Cleanup(func() { p.mux.Close() })
	return p
}

// sliver gives slice its network and returns its namespace.
func (p *planet) sliver(t testing.TB, name string, xid int, ps ...netcfg.Port) netns.NsHandle {
	t.Helper()
	a, err := p.net.Ensure(context.Background(), netcfg.Sliver{Name: name, XID: xid, Ports: ps})
	if err != nil {
		t.Fatal(err)
	}
	p.slivers[name] = a
	h, err := netns.GetFromPath(a.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func listenIn(t testing.TB, h netns.NsHandle, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	inNS(t, h, func() (err error) { l, err = net.Listen("tcp", addr); return err })
	t.Cleanup(func() { l.Close() })
	return l
}

// dial dials from the client namespace, only to the node.
func (p *planet) dial(ctx context.Context, network, addr string) (c net.Conn, err error) {
	if ap, perr := netip.ParseAddrPort(addr); perr != nil || ap.Addr() != netip.MustParseAddr(nodeAddr) {
		return nil, fmt.Errorf("test guard: the client dials %s, not the node", addr)
	}
	err = netcfg.InNetNS(p.client, func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func (p *planet) httpClient(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: p.dial, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
}

func (p *planet) claim(slice, route string) Claim {
	r, err := tags.ParseRoute(route)
	if err != nil {
		panic(err)
	}
	return Claim{Slice: slice, Addr: p.slivers[slice].Addr, Route: r}
}

// TestTwoSlicesOnOneNode: on a node with real sliver networks, two host
// names go to two slices' slivers over port 80, with the client's real
// address in X-Forwarded-For; TLS to the second host passes through port
// 443 by SNI to the sliver, which holds the certificate; an unknown name
// gets the node's page; and no slice may reserve port 80 or 443 itself.
func TestTwoSlicesOnOneNode(t *testing.T) {
	p := newPlanet(t)
	a := p.sliver(t, "a_www", 3101)
	b := p.sliver(t, "b_shop", 3102)
	serve := func(l net.Listener, name string) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s host=%s xff=%s", name, r.Host, r.Header.Get("X-Forwarded-For"))
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	serve(listenIn(t, a, ":8080"), "slice a")
	serve(listenIn(t, b, ":8080"), "slice b")
	pool := tlsBackendOn(t, listenIn(t, b, ":8443"), "slice b tls", "shop.example.org")

	if refused := p.mux.Set([]Claim{p.claim("a_www", "www.example.org,8080"), p.claim("b_shop", "shop.example.org,8080,tls=8443")}); len(refused) != 0 {
		t.Fatal(refused)
	}
	hc := p.httpClient(4)
	get := func(host string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+nodeAddr+"/", nil)
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET Host %s: %v", host, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for host, want := range map[string]string{
		"www.example.org":  "slice a host=www.example.org xff=" + clientAddr,
		"shop.example.org": "slice b host=shop.example.org xff=" + clientAddr,
	} {
		if code, body := get(host); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", host, code, body, want)
		}
	}
	if code, body := get("nobody.example.org"); code != 404 || !strings.Contains(body, "on node n1.example.org") {
		t.Errorf("unknown host: %d %q", code, body)
	}

	raw, err := p.dial(context.Background(), "tcp", nodeAddr+":443")
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(raw, &tls.Config{ServerName: "shop.example.org", RootCAs: pool})
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(tc, "hi\n")
	if line, err := bufio.NewReader(tc).ReadString('\n'); err != nil || line != "slice b tls: hi\n" {
		t.Errorf("TLS by SNI to the sliver: %q, %v", line, err)
	}

	for _, port := range []uint16{80, 443} {
		_, err := p.net.Ensure(context.Background(), netcfg.Sliver{Name: "c_greedy", XID: 3103, Ports: []netcfg.Port{{Proto: "tcp", From: port, To: port}}})
		if core.ErrorCode(err) != core.Conflict || !strings.Contains(err.Error(), "used by the node itself") {
			t.Errorf("a slice reserving tcp/%d: %v, want a conflict with the node", port, err)
		}
	}
}

// tlsBackendOn serves TLS for host on l (see tlsBackend).
func tlsBackendOn(t testing.TB, l net.Listener, name, host string) *x509.CertPool {
	t.Helper()
	cfg, pool := selfSigned(t, host)
	tl := tls.NewListener(l, cfg)
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
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
	return pool
}

// BenchmarkCodemuxVsDirect measures, in one run on real namespaces, HTTP
// requests from a client namespace to a sliver's web server directly (its
// reserved port, DNAT by the node) and through codemux (port 80, by Host):
// requests per second and the 99th percentile latency of each, with 16
// keep-alive clients. Target: codemux within 2x of direct.
//
//	go test -run '^$' -bench CodemuxVsDirect -benchtime 1x ./internal/node/codemux/
func BenchmarkCodemuxVsDirect(b *testing.B) {
	p := newPlanet(b)
	a := p.sliver(b, "a_www", 3111, netcfg.Port{Proto: "tcp", From: 8080, To: 8080})
	body := strings.Repeat("x", 512)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(listenIn(b, a, ":8080"))
	b.Cleanup(func() { srv.Close() })
	p.mux.Set([]Claim{p.claim("a_www", "www.example.org,8080")})

	const clients, perClient = 16, 250
	run := func(url string) (rps float64, p99 time.Duration) {
		hc := p.httpClient(clients)
		defer hc.CloseIdleConnections()
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perClient {
					req, _ := http.NewRequest("GET", url, nil)
					req.Host = "www.example.org"
					t0 := time.Now()
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lat[c] = append(lat[c], time.Since(t0))
				}
			}()
		}
		wg.Wait()
		took := time.Since(start)
		all := slices.Concat(lat...)
		slices.Sort(all)
		return float64(len(all)) / took.Seconds(), all[len(all)*99/100]
	}
	direct, via := "http://"+nodeAddr+":8080/", "http://"+nodeAddr+"/"
	run(direct) // warm up both paths
	run(via)
	var dRPS, mRPS float64
	var dP99, mP99 time.Duration
	for range b.N {
		r, q := run(direct)
		dRPS, dP99 = dRPS+r, dP99+q
		r, q = run(via)
		mRPS, mP99 = mRPS+r, mP99+q
	}
	n := float64(b.N)
	dRPS, mRPS = dRPS/n, mRPS/n
	dP99, mP99 = dP99/time.Duration(b.N), mP99/time.Duration(b.N)
	b.ReportMetric(dRPS, "direct_req/s")
	b.ReportMetric(mRPS, "codemux_req/s")
	b.ReportMetric(float64(dP99.Microseconds())/1000, "direct_p99_ms")
	b.ReportMetric(float64(mP99.Microseconds())/1000, "codemux_p99_ms")
	b.Logf("%d clients x %d requests of %d bytes: direct %.0f req/s p99 %v; codemux %.0f req/s p99 %v; codemux throughput %.2fx of direct, p99 %.2fx (target: within 2x)",
		clients, perClient, len(body), dRPS, dP99.Round(10*time.Microsecond), mRPS, mP99.Round(10*time.Microsecond), mRPS/dRPS, float64(mP99)/float64(dP99))
}
