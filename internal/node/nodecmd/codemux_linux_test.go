package nodecmd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// TestNodeCodemux runs the node manager with --codemux in its own
// namespace (--netns, as a node of pl dev is not: there the process is in
// it): a real sliver serves busybox httpd on its port 8080, its slice
// claims www.example.org with the codemux tag, and a client on the node's
// network gets the sliver's page through the node's port 80 by host name
// (codemux listens on, and dials the slivers from, the node's namespace);
// an unknown name gets the node's page; the slice's claim of tcp/80
// through ports is refused.
func TestNodeCodemux(t *testing.T) {
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	l.codemux = true
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })

	script := "#!/bin/sh\nmkdir -p /tmp/w\necho \"hello from $(cat /etc/slicename)\" > /tmp/w/index.html\nexec busybox httpd -f -p 8080 -h /tmp/w\n"
	plc.Set([]core.Sliver{liveSliver("pltest_web", 1, "initscript_code", script, "codemux", "www.example.org,8080")})
	l.eventually("sliver running", 30*time.Second, func() bool { return l.running("pltest_web") })

	ns, err := netns.GetFromPath(l.sb.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// A client on the node's network: the uplink's peer address.
	get := func(host, path string) (string, error) {
		var c net.Conn
		err := netcfg.InNetNS(ns, func() (err error) {
			d := net.Dialer{Timeout: 3 * time.Second}
			c, err = d.Dial("tcp", l.sb.NodeAddr+":80") // the node itself, in the sandbox
			return err
		})
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b), err
	}
	var got string
	l.eventually("the sliver's page by name on port 80", 30*time.Second, func() bool {
		got, err = get("WWW.example.org", "/")
		return err == nil && got == "200 hello from pltest_web\n"
	})
	if got, err := get("nobody.example.org", "/"); err != nil || !strings.HasPrefix(got, "404 No slice serves \"nobody.example.org\"") {
		t.Errorf("unknown host: %q, %v", got, err)
	}

	plc.Set([]core.Sliver{liveSliver("pltest_web", 1, "initscript_code", script, "codemux", "www.example.org,8080", "ports", "tcp/80")})
	l.eventually("tcp/80 refused", 30*time.Second, func() bool {
		return strings.Contains(l.node.Agent.Status().SliverErrors["pltest_web"], "used by the node itself")
	})
}
