package vlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// Delay without netem. A kernel without the netem qdisc (this project's
// machines) cannot hold packets back, so a delayed link sends through a
// relay of the node manager: a TAP device <p>t<V> in the link's bridge,
// read by the relay, which holds each frame for the link's delay, puts the
// VXLAN header on it and sends it from the node's own address to the
// peer's VXLAN port, where it is an ordinary tunnel packet (the isolation
// rules see it as such). The link's kernel tunnel then only receives: it
// has no remote, and the bridge does not learn addresses on it, so frames
// toward the peer reach the TAP. (A tunnel cannot send to a local relay
// socket instead: for a local destination VXLAN skips the encapsulation
// and looks for a local tunnel with that VNI.) The peer delays what it
// sends, so each direction gets the delay once. A link's delay is
// constant, so the queue is FIFO; it holds at most relayQueue frames. A
// delayed LAN's relay sends every frame to every other member (a hub: it
// does not learn where addresses are), so a delayed LAN of n members
// carries each frame n-1 times. The relay sends from the end's tunnel
// source port, as the kernel tunnel does (flow attribution).
//
// The relay lives in the node manager's process and the TAP dies with it:
// while it is stopped, a delayed link sends nothing (links without delay
// are kernel state and keep working); New restarts the relays of the
// recorded links.

const relayQueue = 4096

type relay struct {
	tap   *os.File
	tapFd int            // tap's descriptor (non-blocking), polled by run
	stop  int            // eventfd: close() wakes run with it
	out   *net.UDPConn   // bound to the end's tunnel source port
	peers []*net.UDPAddr // a link's peer, or a LAN's members: each frame goes to every one
	port  uint16
	vni   uint32
	delay time.Duration
	wg    sync.WaitGroup
	rt    atomic.Bool // the thread got real-time priority
}

type held struct {
	at  time.Time
	pkt []byte
}

// startRelay opens a relay for link e: its TAP joins the bridge br.
func (m *Manager) startRelay(e vlinks.End, br netlink.Link) (*relay, error) {
	r := &relay{vni: e.VNI, port: m.ports[e.VNI], delay: time.Duration(e.DelayUS) * time.Microsecond, stop: -1}
	for _, p := range e.Peers {
		r.peers = append(r.peers, &net.UDPAddr{IP: p.AsSlice(), Port: int(m.cfg.Port)})
	}
	name := m.cfg.devName('t', e.VNI)
	err := netcfg.InNetNS(m.nodeNS, func() error {
		_ = netlink.LinkDel(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}}) // a leftover
		t := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: m.cfg.MTU}, Mode: netlink.TUNTAP_MODE_TAP,
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE, NonPersist: true, Queues: 1}
		if err := netlink.LinkAdd(t); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		r.tap = t.Fds[0]
		laddr := &net.UDPAddr{Port: int(r.port)}
		if m.cfg.LocalAddr.IsValid() {
			laddr.IP = m.cfg.LocalAddr.AsSlice()
		}
		var err error
		r.out, err = net.ListenUDP("udp4", laddr)
		return err
	})
	if err == nil {
		err = m.attachTAP(r, name, br)
	}
	if err != nil {
		r.release()
		return nil, fmt.Errorf("delay relay %s: %w", name, err)
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

func (m *Manager) attachTAP(r *relay, name string, br netlink.Link) error {
	// The descriptor without os.File.Fd, which would make it blocking.
	sc, err := r.tap.SyscallConn()
	if err != nil {
		return err
	}
	if err := sc.Control(func(fd uintptr) { r.tapFd = int(fd) }); err != nil {
		return err
	}
	if r.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return err
	}
	tap, err := m.nl.LinkByName(name)
	if err != nil {
		return err
	}
	if err := m.nl.LinkSetMaster(tap, br); err != nil {
		return err
	}
	if err := m.nl.LinkSetIsolated(tap, true); err != nil { // see ensureLink
		return err
	}
	return m.nl.LinkSetUp(tap)
}

// run is the relay: one goroutine on a thread of its own, waiting in ppoll
// for frames from the TAP or the release time of the oldest held frame,
// whichever comes first (the kernel's high-resolution timeout: no extra
// wake-up between reading a frame and sending it, which on a loaded
// machine would add scheduling delay to each direction).
//
// The thread runs with real-time priority (SCHED_FIFO 1, where permitted),
// as netem's timer does in the kernel: on a loaded node a normal thread
// waits for the CPU after each wake-up, which adds to the link's delay. It
// sleeps in ppoll between frames, so it takes little CPU; the kernel's
// real-time throttling bounds it in any case. The thread is never returned
// to Go's pool (the goroutine ends locked to it, so it exits with it).
func (r *relay) run() {
	defer r.wg.Done()
	runtime.LockOSThread()
	r.rt.Store(unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0) == nil)
	var q []held
	buf := make([]byte, 65536)
	hdr := []byte{0x08, 0, 0, 0, byte(r.vni >> 16), byte(r.vni >> 8), byte(r.vni), 0}
	fds := []unix.PollFd{{Fd: int32(r.tapFd), Events: unix.POLLIN}, {Fd: int32(r.stop), Events: unix.POLLIN}}
	for {
		var timeout *unix.Timespec
		if len(q) > 0 {
			ts := unix.NsecToTimespec(max(time.Until(q[0].at), 0).Nanoseconds())
			timeout = &ts
		}
		if _, err := unix.Ppoll(fds, timeout, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			return
		}
		for fds[0].Revents&unix.POLLIN != 0 {
			n, err := unix.Read(r.tapFd, buf)
			if err != nil || n <= 0 {
				break // EAGAIN: all read
			}
			if len(q) < relayQueue { // else dropped, as by a full router buffer
				q = append(q, held{at: time.Now().Add(r.delay), pkt: append(append(make([]byte, 0, len(hdr)+n), hdr...), buf[:n]...)})
			}
		}
		now := time.Now()
		i := 0
		for ; i < len(q) && !q[i].at.After(now); i++ {
			for _, p := range r.peers {
				_, _ = r.out.WriteToUDP(q[i].pkt, p)
			}
		}
		q = append(q[:0], q[i:]...)
	}
}

// sendsTo reports whether the relay sends from port to exactly peers.
func (r *relay) sendsTo(peers []netip.Addr, port uint16) bool {
	if r.port != port || len(peers) != len(r.peers) {
		return false
	}
	for i, p := range peers {
		if r.peers[i].IP.String() != p.String() {
			return false
		}
	}
	return true
}

// close stops the relay; its TAP device disappears with its descriptor.
func (r *relay) close() {
	_, _ = unix.Write(r.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	r.wg.Wait()
	r.release()
}

func (r *relay) release() {
	if r.tap != nil {
		r.tap.Close()
	}
	if r.out != nil {
		r.out.Close()
	}
	if r.stop >= 0 {
		unix.Close(r.stop)
	}
}

// hasNetem reports (once) whether the kernel has the netem qdisc, trying
// it on a throwaway veth in the node's namespace.
func (m *Manager) hasNetem() bool {
	if m.netem != nil {
		return *m.netem
	}
	name := m.cfg.DevPrefix + "probe"
	_ = m.nl.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}})
	has := false
	if err := m.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}); err == nil {
		if l, err := m.nl.LinkByName(name); err == nil {
			err := m.nl.QdiscAdd(netlink.NewNetem(netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
				netlink.NetemQdiscAttrs{Latency: 1000}))
			has = err == nil || !errors.Is(err, unix.ENOENT)
			_ = m.nl.LinkDel(l)
		}
	}
	m.netem = &has
	m.log.Info("link delays", "netem", has)
	return has
}
