package wan

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/planetlab/pl/internal/node/netcfg"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, veths and TUN devices")
	}
	for _, tool := range []string{"ping", "traceroute"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: ping traceroute
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// runIn runs a command in a namespace ("" = the host) and returns its output.
func runIn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) // hostdeps: ping traceroute
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var err error
	if ns == "" {
		err = cmd.Start()
	} else {
		err = StartIn(ns, cmd)
	}
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		t.Fatalf("%s in %q: %v\n%s", strings.Join(args, " "), ns, err, out.String())
	}
	return out.String()
}

var avgRE = regexp.MustCompile(`= [0-9.]+/([0-9.]+)/`)

func avgRTT(t *testing.T, out string) time.Duration {
	t.Helper()
	m := avgRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rtt in ping output:\n%s", out)
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

func TestWANLatencyAndHops(t *testing.T) {
	needRoot(t)
	sites := []Site{
		{"princeton", Location{40.3487, -74.6593}},
		{"tokyo", Location{35.7126, 139.7620}},
		{"ethz", Location{47.3763, 8.5480}},
	}
	p, err := NewPlan(Config{
		ID: "wt", Prefix: netip.MustParsePrefix("10.93.0.0/16"), Nodes: 4, Sites: sites,
		Host: sites[0].Location, Overhead: 2 * time.Millisecond, RateKbit: 100000,
	})
	if err != nil {
		t.Fatal(err)
	}
	Remove(p.Prefix) // leftovers of an earlier killed run of this test
	w, err := Up(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left, _ := Leftovers(p.Prefix); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	})
	n1, n2, n4 := p.Node(1), p.Node(2), p.Node(4)
	oneWay := p.Delay(Place(p.SiteOf(n1).Index), Place(p.SiteOf(n2).Index))

	// Site to site: RTT is twice the one-way delay.
	rtt := avgRTT(t, runIn(t, n1.NS, "ping", "-n", "-q", "-c", "5", "-i", "0.2", n2.Addr.String()))
	t.Logf("%s -> %s: ping RTT %v, emulated one-way %v (expected RTT %v)", p.SiteOf(n1).Site.Name, p.SiteOf(n2).Site.Name, rtt, oneWay, 2*oneWay)
	if rtt < 2*oneWay || rtt > 2*oneWay+50*time.Millisecond {
		t.Errorf("RTT %v outside [%v, %v]", rtt, 2*oneWay, 2*oneWay+50*time.Millisecond)
	}
	// Same site: no emulated delay.
	rtt = avgRTT(t, runIn(t, n1.NS, "ping", "-n", "-q", "-c", "3", "-i", "0.2", n4.Addr.String()))
	t.Logf("same site: RTT %v", rtt)
	if rtt > 20*time.Millisecond {
		t.Errorf("same-site RTT %v, want < 20ms", rtt)
	}
	// Host to a node: delayed once each way (downlink, then the node's uplink).
	hostWay := p.Delay(PlaceHost, Place(p.SiteOf(n2).Index))
	rtt = avgRTT(t, runIn(t, "", "ping", "-n", "-q", "-c", "3", "-i", "0.2", n2.Addr.String()))
	t.Logf("host -> %s: RTT %v, expected %v", p.SiteOf(n2).Site.Name, rtt, 2*hostWay)
	if rtt < 2*hostWay || rtt > 2*hostWay+50*time.Millisecond {
		t.Errorf("host RTT %v outside [%v, %v]", rtt, 2*hostWay, 2*hostWay+50*time.Millisecond)
	}
	// Traceroute between sites shows the three routers then the node.
	out := runIn(t, n1.NS, "traceroute", "-n", "-q", "1", "-w", "2", n2.Addr.String())
	t.Logf("traceroute:\n%s", out)
	want := []string{p.SiteOf(n1).Gateway.String(), p.SitePlans[0].CoreSide.String(), p.SiteOf(n2).SiteSide.String(), n2.Addr.String()}
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:]
	if len(lines) != len(want) {
		t.Fatalf("traceroute has %d hops, want %d (%v)", len(lines), len(want), want)
	}
	for i, hop := range want {
		if f := strings.Fields(lines[i]); len(f) < 2 || f[1] != hop {
			t.Errorf("hop %d: %q, want %s", i+1, lines[i], hop)
		}
	}
}

// TestWANSixteenNodes builds the 16-node layout pl bench planet uses (8
// sites) and pings from the first node to one node of every other site,
// printing measured RTT beside the emulated one.
func TestWANSixteenNodes(t *testing.T) {
	needRoot(t)
	sites := []Site{
		{"princeton", Location{40.3487, -74.6593}}, {"ethz", Location{47.3763, 8.5480}},
		{"tokyo", Location{35.7126, 139.7620}}, {"usp", Location{-23.5613, -46.7308}},
		{"sydney", Location{-33.8888, 151.1872}}, {"uct", Location{-33.9577, 18.4612}},
		{"mit", Location{42.3601, -71.0942}}, {"inria", Location{43.6163, 7.0686}},
	}
	p, err := NewPlan(Config{ID: "w16", Prefix: netip.MustParsePrefix("10.92.0.0/16"), Nodes: 16, Sites: sites,
		Host: sites[0].Location, Overhead: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	Remove(p.Prefix)
	start := time.Now()
	w, err := Up(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("16 nodes, 8 sites up in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	from := p.Node(1)
	type res struct {
		to       NodePlan
		rtt, exp time.Duration
	}
	results := make(chan res, len(p.SitePlans))
	for i := 2; i <= len(p.SitePlans); i++ {
		to := p.Node(i)
		go func() {
			rtt := avgRTT(t, runIn(t, from.NS, "ping", "-n", "-q", "-c", "3", "-i", "0.2", to.Addr.String()))
			results <- res{to, rtt, 2 * p.Delay(Place(p.SiteOf(from).Index), Place(p.SiteOf(to).Index))}
		}()
	}
	for i := 2; i <= len(p.SitePlans); i++ {
		r := <-results
		t.Logf("%s -> %-9s RTT %7.1fms  emulated %7.1fms", p.SiteOf(from).Site.Name, p.SiteOf(r.to).Site.Name,
			float64(r.rtt)/1e6, float64(r.exp)/1e6)
		if r.rtt < r.exp || r.rtt > r.exp+100*time.Millisecond {
			t.Errorf("RTT to %s %v outside [%v, %v]", p.SiteOf(r.to).Site.Name, r.rtt, r.exp, r.exp+100*time.Millisecond)
		}
	}
}

// TestWANRateLimit sends 2 MB over TCP between two sites whose uplinks are
// limited to 8 Mbit/s and prints the throughput; it must not exceed the
// limit by much (the TBF works) and full-size packets must pass.
func TestWANRateLimit(t *testing.T) {
	needRoot(t)
	sites := []Site{{"princeton", Location{40.3487, -74.6593}}, {"mit", Location{42.3601, -71.0942}}}
	const kbit = 8000
	p, err := NewPlan(Config{ID: "wr", Prefix: netip.MustParsePrefix("10.87.0.0/16"), Nodes: 2, Sites: sites,
		Host: sites[0].Location, Overhead: time.Millisecond, RateKbit: kbit})
	if err != nil {
		t.Fatal(err)
	}
	Remove(p.Prefix)
	w, err := Up(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	// Full-size packets pass the shaper.
	if out, err := exec.Command("ip", "netns", "exec", p.SitePlans[0].NS, "tc", "-s", "qdisc", "show", "dev", SiteUpIf).CombinedOutput(); err == nil {
		t.Logf("site uplink qdisc:\n%s", out)
	}
	runIn(t, p.Node(1).NS, "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-s", "1472", p.Node(2).Addr.String())

	var ln net.Listener
	if err := InNS(p.Node(2).NS, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(p.Node(2).Addr.String(), "5001"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	var conn net.Conn
	if err := InNS(p.Node(1).NS, func() (err error) {
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(p.Node(2).Addr.String(), "5001"), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const size = 2 << 20
	start := time.Now()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write(make([]byte, size)); err != nil {
		t.Fatalf("write: %v", err)
	}
	conn.Close()
	n := <-got
	d := time.Since(start)
	if n != size {
		t.Fatalf("received %d bytes, want %d", n, size)
	}
	mbit := float64(size*8) / d.Seconds() / 1e6
	t.Logf("2 MB through an %d kbit/s uplink in %v: %.2f Mbit/s", kbit, d.Round(time.Millisecond), mbit)
	if mbit > 1.5*kbit/1000 {
		t.Errorf("throughput %.2f Mbit/s exceeds the %d kbit/s limit by more than 50%%", mbit, kbit)
	}
}

// TestWANIPv6SliversAcrossSites: the WAN carries IPv6 with a unique-local
// /48 per site; two nodes on different sites give their slivers IPv6
// (netcfg, each node's sliver /64 routed to it by its site), and a sliver
// on one site reaches a sliver's reserved port on the other from its own
// address, with the emulated delay.
func TestWANIPv6SliversAcrossSites(t *testing.T) {
	needRoot(t)
	sites := []Site{{"princeton", Location{40.3487, -74.6593}}, {"ethz", Location{47.3763, 8.5480}}}
	p, err := NewPlan(Config{ID: "w6", Prefix: netip.MustParsePrefix("10.91.0.0/16"), Nodes: 2, Sites: sites,
		Host: sites[0].Location, Overhead: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	Remove(p.Prefix)
	w, err := Up(context.Background(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	n1, n2 := p.Node(1), p.Node(2)
	oneWay := p.Delay(Place(p.SiteOf(n1).Index), Place(p.SiteOf(n2).Index))
	rtt := avgRTT(t, runIn(t, n1.NS, "ping", "-6", "-n", "-q", "-c", "3", "-i", "0.2", n2.Addr6.String()))
	t.Logf("node %s -> node %s: RTT %v, emulated one-way %v", n1.Addr6, n2.Addr6, rtt, oneWay)
	if rtt < 2*oneWay || rtt > 2*oneWay+50*time.Millisecond {
		t.Errorf("node RTT %v outside [%v, %v]", rtt, 2*oneWay, 2*oneWay+50*time.Millisecond)
	}
	hostWay := p.Delay(PlaceHost, Place(p.SiteOf(n2).Index))
	if rtt := avgRTT(t, runIn(t, "", "ping", "-6", "-n", "-q", "-c", "2", "-i", "0.2", n2.Addr6.String())); rtt < 2*hostWay {
		t.Errorf("host -> node RTT %v, want >= %v", rtt, 2*hostWay)
	}

	// A sliver on each node.
	var att []netcfg.Attachment
	for _, n := range []NodePlan{n1, n2} {
		m, err := netcfg.New(netcfg.Config{StateDir: t.TempDir(), NetNS: filepath.Join(NetnsDir, n.NS), Table: "plw6", VethPrefix: "pw",
			Prefix6: n.SliverPrefix6, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Teardown(context.Background()); m.Close() })
		a, err := m.Ensure(context.Background(), netcfg.Sliver{Name: "pl_six", XID: 7, Ports: []netcfg.Port{{Proto: "tcp", From: 8080, To: 8080}}})
		if err != nil {
			t.Fatal(err)
		}
		if !n.SliverPrefix6.Contains(a.Addr6) {
			t.Fatalf("sliver address %v outside the node's prefix %v", a.Addr6, n.SliverPrefix6)
		}
		att = append(att, a)
	}
	inNS := func(path string, fn func() error) {
		t.Helper()
		h, err := netns.GetFromPath(path)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := netcfg.InNetNS(h, fn); err != nil {
			t.Fatal(err)
		}
	}
	var l net.Listener
	inNS(att[1].NetNS, func() (err error) { l, err = net.Listen("tcp6", "[::]:8080"); return err })
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().String()+"\n")
			c.Close()
		}
	}()
	var c net.Conn
	start := time.Now()
	inNS(att[0].NetNS, func() (err error) {
		c, err = net.DialTimeout("tcp6", net.JoinHostPort(att[1].Addr6.String(), "8080"), 5*time.Second)
		return err
	})
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(strings.TrimSpace(string(b)))
	t.Logf("sliver %s -> sliver %s:8080: the server saw %s; connect and answer took %v (emulated RTT %v)", att[0].Addr6, att[1].Addr6, host, took, 2*oneWay)
	if host != att[0].Addr6.String() {
		t.Errorf("the server saw %s, want the client sliver's address %s", host, att[0].Addr6)
	}
	if took < 2*oneWay {
		t.Errorf("connect and answer took %v, below the emulated round trip %v", took, 2*oneWay)
	}
	// Not a reserved port: refused by node 2's rules.
	inNS(att[0].NetNS, func() error {
		if c, err := net.DialTimeout("tcp6", net.JoinHostPort(att[1].Addr6.String(), "2222"), 500*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("sliver reached an unreserved port of the other sliver")
		}
		return nil
	})
}
