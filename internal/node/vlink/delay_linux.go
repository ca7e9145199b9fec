package vlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
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
// The TAP is persistent (the manager creates it, puts it in the bridge,
// isolated, and shapes it); a relay attaches to it by name. The relays run
// in the node manager's process, or, with Config.RelayCommand, in a
// process of their own (relayproc_linux.go) that outlives the node
// manager. While no relay is attached, a TAP has no carrier and the
// delayed link carries nothing (links without delay are kernel state and
// keep working).

const relayQueue = 4096

// relaySpec is one relay as the manager wants it: what the in-process
// relays and the relay process are made from (and what the relay file
// holds).
type relaySpec struct {
	VNI     uint32   `json:"vni"`
	TAP     string   `json:"tap"`
	Peers   []string `json:"peers"`    // the nodes' addresses: each frame goes to every one
	Port    uint16   `json:"port"`     // their VXLAN port
	SrcPort uint16   `json:"src_port"` // the end's tunnel source port
	Local   string   `json:"local,omitempty"`
	DelayUS int64    `json:"delay_us"`
}

func (s relaySpec) equal(o relaySpec) bool {
	return s.VNI == o.VNI && s.TAP == o.TAP && slices.Equal(s.Peers, o.Peers) && s.Port == o.Port && s.SrcPort == o.SrcPort &&
		s.Local == o.Local && s.DelayUS == o.DelayUS
}

// relaySpec is the relay of end e.
func (m *Manager) relaySpec(e vlinks.End) relaySpec {
	s := relaySpec{VNI: e.VNI, TAP: m.cfg.devName('t', e.VNI), Port: m.cfg.Port, SrcPort: m.ports[e.VNI], DelayUS: e.DelayUS}
	for _, p := range e.Peers {
		s.Peers = append(s.Peers, p.String())
	}
	if m.cfg.LocalAddr.IsValid() {
		s.Local = m.cfg.LocalAddr.String()
	}
	return s
}

type relay struct {
	spec  relaySpec
	tapFd int            // the TAP's descriptor (non-blocking), polled by run
	stop  int            // eventfd: close() wakes run with it
	out   *net.UDPConn   // bound to the end's tunnel source port
	peers []*net.UDPAddr // a link's peer, or a LAN's members: each frame goes to every one
	delay time.Duration
	wg    sync.WaitGroup
	done  chan struct{} // closed when run returns
	rt    atomic.Bool   // the thread got real-time priority
}

type held struct {
	at  time.Time
	pkt []byte
}

// ensureTAP makes a delayed link's persistent TAP, a port of bridge br
// isolated from the tunnel's (see ensureLink), and up.
func (m *Manager) ensureTAP(vni uint32, br netlink.Link) (netlink.Link, error) {
	name := m.cfg.devName('t', vni)
	tap, err := m.nl.LinkByName(name)
	if err == nil {
		if t, ok := tap.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TAP || t.NonPersist {
			if err := m.nl.LinkDel(tap); err != nil {
				return nil, fmt.Errorf("delete stale %s: %w", name, err)
			}
			tap = nil
		}
	} else {
		tap = nil
	}
	if tap == nil {
		// A TAP is made through /dev/net/tun, in the calling thread's
		// namespace (not the netlink handle's).
		t := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: m.cfg.MTU}, Mode: netlink.TUNTAP_MODE_TAP,
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE}
		if err := netcfg.InNetNS(m.nodeNS, func() error { return netlink.LinkAdd(t) }); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		if tap, err = m.nl.LinkByName(name); err != nil {
			return nil, err
		}
	}
	if tap.Attrs().MasterIndex != br.Attrs().Index {
		if err := m.nl.LinkSetMaster(tap, br); err != nil {
			return nil, fmt.Errorf("%s into %s: %w", name, br.Attrs().Name, err)
		}
	}
	if err := m.nl.LinkSetIsolated(tap, true); err != nil {
		return nil, fmt.Errorf("isolate %s: %w", name, err)
	}
	if err := m.nl.LinkSetUp(tap); err != nil {
		return nil, fmt.Errorf("up %s: %w", name, err)
	}
	return tap, nil
}

// openRelay attaches a relay to its TAP (which must exist) in the node's
// namespace nodeNS and starts it.
func openRelay(nodeNS netns.NsHandle, s relaySpec) (*relay, error) {
	r := &relay{spec: s, delay: time.Duration(s.DelayUS) * time.Microsecond, tapFd: -1, stop: -1, done: make(chan struct{})}
	for _, p := range s.Peers {
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("delay relay %s: peer %q: %w", s.TAP, p, err)
		}
		r.peers = append(r.peers, &net.UDPAddr{IP: a.AsSlice(), Port: int(s.Port)})
	}
	err := netcfg.InNetNS(nodeNS, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		r.tapFd = fd
		ifr, err := unix.NewIfreq(s.TAP)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_ONE_QUEUE)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			return fmt.Errorf("attach to %s: %w", s.TAP, err)
		}
		laddr := &net.UDPAddr{Port: int(s.SrcPort)}
		if s.Local != "" {
			a, err := netip.ParseAddr(s.Local)
			if err != nil {
				return err
			}
			laddr.IP = a.AsSlice()
		}
		r.out, err = net.ListenUDP("udp4", laddr)
		return err
	})
	if err == nil {
		r.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	}
	if err != nil {
		r.release()
		return nil, fmt.Errorf("delay relay %s: %w", s.TAP, err)
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// exited reports whether the relay's loop has ended (its TAP went away).
func (r *relay) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
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
	defer close(r.done)
	runtime.LockOSThread()
	r.rt.Store(unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0) == nil)
	var q []held
	buf := make([]byte, 65536)
	vni := r.spec.VNI
	hdr := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
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

// close stops the relay (its TAP stays, without carrier).
func (r *relay) close() {
	_, _ = unix.Write(r.stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	r.wg.Wait()
	r.release()
}

func (r *relay) release() {
	if r.tapFd >= 0 {
		unix.Close(r.tapFd)
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
