package sshgw

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
)

// dialInNetNS connects to addr from inside the network namespace at
// nsPath. The socket is created by a goroutine locked to an OS thread that
// temporarily joins the namespace; a socket keeps the namespace it was
// created in, so the connection can then be used from any goroutine. If
// the thread cannot return to the original namespace it is not unlocked,
// so the Go runtime discards it with the goroutine.
func dialInNetNS(ctx context.Context, nsPath string, addr netip.AddrPort) (*net.TCPConn, error) {
	type result struct {
		c   *net.TCPConn
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, err, restored := dialLocked(ctx, nsPath, addr)
		if restored {
			runtime.UnlockOSThread()
		}
		res <- result{c, err}
	}()
	r := <-res
	return r.c, r.err
}

func dialLocked(ctx context.Context, nsPath string, addr netip.AddrPort) (c *net.TCPConn, err error, restored bool) {
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("netns: current: %w", err), true
	}
	defer orig.Close()
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", nsPath, err), true
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, fmt.Errorf("netns %s: enter: %w", nsPath, err), true
	}
	var d net.Dialer
	nc, derr := d.DialContext(ctx, "tcp", addr.String())
	restored = netns.Set(orig) == nil
	if derr != nil {
		return nil, derr, restored
	}
	return nc.(*net.TCPConn), nil, restored
}
