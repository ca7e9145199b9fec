package sshgw

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// newTestNetNS creates a named network namespace with loopback up.
func newTestNetNS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	name := fmt.Sprintf("pltest-sshgw-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	return "/var/run/netns/" + name
}

// listenInNetNS opens a TCP listener inside the namespace at path.
func listenInNetNS(t *testing.T, path string) net.Listener {
	t.Helper()
	type res struct {
		ln  net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath(path)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			ch <- res{nil, err}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ch <- res{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.ln.Close() })
	return r.ln
}

// echoUpper answers each line with its text and a suffix.
func serveLines(ln net.Listener, suffix string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				fmt.Fprintf(c, "%s %s\n", sc.Text(), suffix)
			}
		}()
	}
}

func TestLocalForwardingInsideSliverNetNS(t *testing.T) {
	requireTool(t, "ssh")
	nsPath := newTestNetNS(t)
	inside := listenInNetNS(t, nsPath)
	go serveLines(inside, "from-sliver")
	host, err := net.Listen("tcp", "127.0.0.1:0") // a host service the sliver must not reach
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go serveLines(host, "from-host")

	e := newEnv(t, nil)
	e.slices.update(testSlice, func(a *SliceAccess) { a.NetNS = nsPath })

	// OpenSSH -L to the sliver's loopback.
	lport := freePort(t)
	insidePort := inside.Addr().(*net.TCPAddr).Port
	args := append(e.sshOpts(e.key.path), "-p", strconv.Itoa(e.port), "-N", "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:localhost:%d", lport, insidePort), testSlice+"@127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	var c net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forwarded port never opened: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping from-sliver\n" {
		t.Fatalf("through -L: %q %v", line, err)
	}

	// The host's loopback service is not reachable: the dial happens in
	// the sliver's namespace. Names other than localhost are refused.
	gc, err := e.goClient(testSlice)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	if conn, err := gc.Dial("tcp", host.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("forwarding reached a host-namespace service")
	}
	if conn, err := gc.Dial("tcp", "example.com:80"); err == nil {
		conn.Close()
		t.Fatal("forwarding to a host name accepted")
	}
	// Without a namespace, forwarding is refused.
	e.slices.update(testSlice, func(a *SliceAccess) { a.NetNS = "" })
	if conn, err := gc.Dial("tcp", inside.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("forwarding accepted for a sliver without a netns")
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
