package sshgw

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"
)

// forward serves a direct-tcpip channel (ssh -L): the connection is made
// from inside the sliver's network namespace, so the client reaches exactly
// what the sliver itself reaches (its own loopback, its address), never the
// host's services.
//
// Only IP literals and "localhost" are accepted as targets: resolving other
// names would happen in the host's namespace, with the host's resolver.
func (c *conn) forward(ctx context.Context, acc SliceAccess, nch ssh.NewChannel) {
	d, err := parseDirectTCPIP(nch.ExtraData())
	if err != nil {
		c.log.Info("ssh forwarding refused", "err", err)
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	log := c.log.With("target", net.JoinHostPort(d.Host, strconv.Itoa(int(d.Port))))
	if acc.NetNS == "" {
		log.Info("ssh forwarding refused: sliver has no network namespace")
		nch.Reject(ssh.Prohibited, "port forwarding is not available for this sliver")
		return
	}
	ip, err := forwardTarget(d.Host)
	if err != nil {
		log.Info("ssh forwarding refused", "err", err)
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	dctx, cancel := context.WithTimeout(ctx, c.g.cfg.DialTimeout)
	tc, err := dialInNetNS(dctx, acc.NetNS, netip.AddrPortFrom(ip, uint16(d.Port)))
	cancel()
	if err != nil {
		log.Info("ssh forwarding: connect failed", "err", err)
		nch.Reject(ssh.ConnectionFailed, "connect failed")
		return
	}
	defer tc.Close()
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	log.Info("ssh forwarding open")
	stop := context.AfterFunc(ctx, func() { ch.Close(); tc.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(tc, ch)
		tc.CloseWrite()
	}()
	io.Copy(ch, tc)
	ch.CloseWrite()
	wg.Wait()
}

// forwardTarget turns a direct-tcpip host into an address.
func forwardTarget(host string) (netip.Addr, error) {
	if host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("direct-tcpip: target %q must be an IP address or localhost", host)
	}
	return ip.Unmap(), nil
}
