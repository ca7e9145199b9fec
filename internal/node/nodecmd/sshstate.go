package nodecmd

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sshgw"
)

// sshProbe answers the ssh figure of the node's reports
// (core.NodeFigures.SSH, the planet table's ssh and ssh_ok columns): off
// without a gateway; up when the gateway runs (its process holds the
// lock, or the in-process one exists) and its port answers with an SSH
// identification line; down otherwise. The answer is kept for a few
// seconds, as the sensor server may collect often.
type sshProbe struct {
	listen string          // --ssh-listen; "-" = no gateway
	state  string          // the gateway process's state directory; "" = in-process gateway
	inproc func() net.Addr // the in-process gateway's address (nil until it exists)
	probe  func(addr string) error
	now    func() time.Time
	mu     sync.Mutex
	at     time.Time
	last   string
}

const (
	sshProbeTimeout = time.Second
	sshProbeKeep    = 5 * time.Second
)

func newSSHProbe(listen, state string, inproc func() net.Addr) *sshProbe {
	return &sshProbe{listen: listen, state: state, inproc: inproc, now: time.Now,
		probe: func(addr string) error { return sshgw.Probe(context.Background(), addr, sshProbeTimeout) }}
}

// State returns core.SSHUp, SSHDown or SSHOff.
func (p *sshProbe) State() string {
	if p.listen == "-" {
		return core.SSHOff
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := p.now(); p.last == "" || now.Sub(p.at) >= sshProbeKeep || now.Before(p.at) {
		p.last, p.at = p.check(), now
	}
	return p.last
}

func (p *sshProbe) check() string {
	listen := p.listen
	if p.state != "" {
		if running, _ := gatewayRunning(p.state); !running {
			return core.SSHDown
		}
	} else {
		a := p.inproc()
		if a == nil {
			return core.SSHDown
		}
		listen = a.String()
	}
	addr, err := sshgw.ProbeAddr(listen)
	if err != nil || p.probe(addr) != nil {
		return core.SSHDown
	}
	return core.SSHUp
}
