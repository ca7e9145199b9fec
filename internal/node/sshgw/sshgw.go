// Package sshgw is the node's SSH gateway: `ssh <slice>@<node>` lands in
// the slice's sliver.
//
// The gateway is an SSH server (golang.org/x/crypto/ssh) run by the node
// manager. The login name is the slice name; a client authenticates with a
// public key of one of the slice's enabled members, as PLC currently says
// (every attempt consults Slices, so key and membership changes apply to the
// next login). Sessions run their processes inside the sliver through
// Runtime.Command (runc exec), so they live in the sliver's namespaces and
// cgroup and never on the host. Supported: PTY shells with terminal modes
// and window changes, exec with separate stdout/stderr and exit status,
// streamed stdin, env (LANG, LC_*, TERM), signals, the sftp subsystem (run
// inside the sliver, see Config.SFTPServer) and local port forwarding
// (direct-tcpip) dialed from inside the sliver's network namespace.
// Everything else (X11, agent and remote forwarding, other channel types,
// passwords) is refused without affecting other sessions.
//
// See docs/ssh.md for the user's view.
package sshgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/node/sliver"
	"golang.org/x/crypto/ssh"
)

// SliceAccess is what the gateway needs to know about one slice on this
// node, as the node agent currently sees it.
type SliceAccess struct {
	// Keys are the ssh public keys of the slice's enabled members, in
	// authorized_keys format (PLC's key strings). Unparseable lines are
	// ignored (and logged).
	Keys []string `json:"keys"`
	// Enabled is false when the slice is suspended (enabled=0).
	Enabled bool `json:"enabled"`
	// Running is true when the sliver exists and its init is alive.
	Running bool `json:"running"`
	// Expires is the slice's expiry; zero means unknown/never.
	Expires time.Time `json:"expires,omitzero"`
	// NetNS is the path of the sliver's network namespace, used to dial
	// forwarded ports; "" disables port forwarding for the slice.
	NetNS string `json:"netns,omitempty"`
}

// refusal returns why logins to the slice are refused, or "" if they are
// allowed.
func (a SliceAccess) refusal(now time.Time) string {
	switch {
	case !a.Enabled:
		return "is disabled"
	case !a.Expires.IsZero() && now.After(a.Expires):
		return "has expired"
	case !a.Running:
		return "is not running"
	}
	return ""
}

// Slices is the gateway's live view of the node's slices, provided by the
// node agent. Lookup must be cheap and safe for concurrent use; it is
// called on every authentication attempt and every new channel.
type Slices interface {
	Lookup(name string) (SliceAccess, bool)
}

// Runtime starts processes inside slivers; sliver.Runtime implements it.
type Runtime interface {
	Command(ctx context.Context, name string, p sliver.Process) (*exec.Cmd, error)
}

// Defaults of the limits in Config.
const (
	DefaultMaxSessionsPerSlice = 64
	DefaultMaxUnauthPerSource  = 10
	DefaultMaxUnauth           = 256
	DefaultAuthTimeout         = 30 * time.Second
	DefaultMaxAuthTries        = 6
)

// DefaultSFTPServer is the command run inside the sliver for the sftp
// subsystem: the first OpenSSH sftp-server found in the usual places.
var DefaultSFTPServer = []string{"/bin/sh", "-c",
	`for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server ` +
		`/usr/libexec/sftp-server /usr/lib/sftp-server /usr/bin/sftp-server; do ` +
		`if [ -x "$p" ]; then exec "$p"; fi; done; ` +
		`echo "pl: no sftp-server in this sliver's image" >&2; exit 127`}

// Config configures a Gateway. Zero limits take the defaults above.
type Config struct {
	// Addr is the listen address (":22" on a real node; "127.0.0.1:0" in
	// tests). Ignored when Listener is set.
	Addr     string
	Listener net.Listener
	// HostKeyPath is the node's persistent host key (OpenSSH format),
	// created as ed25519 if absent. HostKey, if set, is used instead.
	HostKeyPath string
	HostKey     ssh.Signer

	Runtime Runtime
	Slices  Slices
	Logger  *slog.Logger

	// MaxSessionsPerSlice caps the open channels (sessions and forwarded
	// connections) of one slice across all its connections.
	MaxSessionsPerSlice int
	// MaxUnauthPerSource and MaxUnauth cap connections that have not yet
	// authenticated, per source IP and in total; excess ones are closed at
	// once.
	MaxUnauthPerSource int
	MaxUnauth          int
	// AuthTimeout closes connections that have not authenticated in time.
	AuthTimeout time.Duration
	// MaxAuthTries is the number of failed attempts per connection.
	MaxAuthTries int
	// SFTPServer is the command run inside the sliver for "subsystem
	// sftp" (default DefaultSFTPServer).
	SFTPServer []string
	// DialTimeout bounds connecting a forwarded port (default 10 s).
	DialTimeout time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// Gateway is a running SSH gateway.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	hostKey ssh.Signer
	server  *ssh.ServerConfig

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	unauth      map[string]int // source IP -> connections not yet authenticated
	unauthTotal int
	conns       map[net.Conn]string // all connections -> slice ("" before auth)
	channels    map[string]int      // slice -> open channels
}

// New validates cfg, loads (or creates) the host key and starts listening.
// Call Serve to accept connections.
func New(cfg Config) (*Gateway, error) {
	if cfg.Runtime == nil {
		return nil, errors.New("sshgw: Config.Runtime is required")
	}
	if cfg.Slices == nil {
		return nil, errors.New("sshgw: Config.Slices is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxSessionsPerSlice <= 0 {
		cfg.MaxSessionsPerSlice = DefaultMaxSessionsPerSlice
	}
	if cfg.MaxUnauthPerSource <= 0 {
		cfg.MaxUnauthPerSource = DefaultMaxUnauthPerSource
	}
	if cfg.MaxUnauth <= 0 {
		cfg.MaxUnauth = DefaultMaxUnauth
	}
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = DefaultAuthTimeout
	}
	if cfg.MaxAuthTries <= 0 {
		cfg.MaxAuthTries = DefaultMaxAuthTries
	}
	if len(cfg.SFTPServer) == 0 {
		cfg.SFTPServer = DefaultSFTPServer
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := cfg.HostKey
	if key == nil {
		if cfg.HostKeyPath == "" {
			return nil, errors.New("sshgw: Config.HostKeyPath or HostKey is required")
		}
		var err error
		if key, err = LoadOrCreateHostKey(cfg.HostKeyPath); err != nil {
			return nil, fmt.Errorf("sshgw: %w", err)
		}
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("sshgw: listen: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		cfg:      cfg,
		log:      cfg.Logger,
		ln:       ln,
		hostKey:  key,
		ctx:      ctx,
		cancel:   cancel,
		unauth:   map[string]int{},
		conns:    map[net.Conn]string{},
		channels: map[string]int{},
	}
	g.server = &ssh.ServerConfig{
		ServerVersion:     "SSH-2.0-pl-sshgw",
		MaxAuthTries:      cfg.MaxAuthTries,
		PublicKeyCallback: g.checkKey,
		AuthLogCallback:   g.logAuth,
		BannerCallback:    g.banner,
	}
	g.server.AddHostKey(key)
	return g, nil
}

// Addr is the address the gateway listens on.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// HostKey is the gateway's public host key.
func (g *Gateway) HostKey() ssh.PublicKey { return g.hostKey.PublicKey() }

// Serve accepts connections until ctx is done or Close is called. It
// returns nil after a Close or a cancellation.
func (g *Gateway) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { g.Close() })
	defer stop()
	for {
		nc, err := g.ln.Accept()
		if err != nil {
			g.mu.Lock()
			closed := g.closed
			g.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("sshgw: accept: %w", err)
		}
		if !g.admit(nc) {
			nc.Close()
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.handleConn(nc)
		}()
	}
}

// Close stops listening, ends every connection (their processes get a
// hangup) and waits for the gateway's goroutines.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		g.wg.Wait()
		return nil
	}
	g.closed = true
	err := g.ln.Close()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
	return err
}

// Disconnect ends every connection logged into slice and returns how many
// there were. The agent calls it when a sliver is disabled or destroyed.
func (g *Gateway) Disconnect(slice string) int {
	if slice == "" {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for c, s := range g.conns {
		if s == slice {
			c.Close()
			n++
		}
	}
	return n
}

// admit applies the limits on unauthenticated connections.
func (g *Gateway) admit(nc net.Conn) bool {
	ip := sourceIP(nc.RemoteAddr())
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	if g.unauth[ip] >= g.cfg.MaxUnauthPerSource || g.unauthTotal >= g.cfg.MaxUnauth {
		g.log.Warn("ssh connection refused: too many unauthenticated connections",
			"remote", nc.RemoteAddr().String(), "from_source", g.unauth[ip], "total", g.unauthTotal)
		return false
	}
	g.unauth[ip]++
	g.unauthTotal++
	g.conns[nc] = ""
	return true
}

func (g *Gateway) authDone(nc net.Conn) {
	ip := sourceIP(nc.RemoteAddr())
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unauthTotal--
	if g.unauth[ip]--; g.unauth[ip] <= 0 {
		delete(g.unauth, ip)
	}
}

func sourceIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (g *Gateway) handleConn(nc net.Conn) {
	defer func() {
		g.mu.Lock()
		delete(g.conns, nc)
		g.mu.Unlock()
		nc.Close()
	}()
	nc.SetDeadline(time.Now().Add(g.cfg.AuthTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(nc, g.server)
	g.authDone(nc)
	if err != nil {
		g.log.Debug("ssh handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	nc.SetDeadline(time.Time{})
	slice := sconn.User()
	g.mu.Lock()
	if _, ok := g.conns[nc]; !ok || g.closed { // Close ran during the handshake
		g.mu.Unlock()
		sconn.Close()
		return
	}
	g.conns[nc] = slice
	g.mu.Unlock()

	c := &conn{g: g, slice: slice, local: sconn.LocalAddr(), remote: sconn.RemoteAddr(),
		log: g.log.With("slice", slice, "remote", nc.RemoteAddr().String())}
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	// Global requests: remote forwarding (tcpip-forward) and everything
	// else is refused; keepalives get the failure reply OpenSSH expects.
	go func() {
		for r := range reqs {
			if r.Type == "tcpip-forward" || r.Type == "streamlocal-forward@openssh.com" {
				c.log.Info("ssh remote forwarding refused", "request", r.Type)
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
	}()
	var wg sync.WaitGroup
	for nch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.handleChannel(ctx, nch)
		}()
	}
	// The connection is gone: channels see their requests end and hang up.
	wg.Wait()
	c.log.Info("ssh connection closed")
}

// conn is one authenticated connection.
type conn struct {
	g             *Gateway
	slice         string
	local, remote net.Addr
	log           *slog.Logger
}

func (c *conn) handleChannel(ctx context.Context, nch ssh.NewChannel) {
	switch nch.ChannelType() {
	case "session", "direct-tcpip":
	default:
		c.log.Info("ssh channel refused: unsupported type", "type", nch.ChannelType())
		nch.Reject(ssh.UnknownChannelType, "unsupported channel type")
		return
	}
	// Re-check the sliver: it may have been disabled or destroyed since
	// the login.
	acc, ok := c.g.cfg.Slices.Lookup(c.slice)
	if !ok {
		nch.Reject(ssh.Prohibited, "the sliver no longer exists")
		return
	}
	if why := acc.refusal(c.g.cfg.Now()); why != "" {
		nch.Reject(ssh.Prohibited, "the sliver "+why)
		return
	}
	if !c.g.acquireChannel(c.slice) {
		c.log.Warn("ssh channel refused: session limit reached", "limit", c.g.cfg.MaxSessionsPerSlice)
		nch.Reject(ssh.ResourceShortage, fmt.Sprintf("too many sessions for slice %s (limit %d)", c.slice, c.g.cfg.MaxSessionsPerSlice))
		return
	}
	defer c.g.releaseChannel(c.slice)
	switch nch.ChannelType() {
	case "session":
		ch, reqs, err := nch.Accept()
		if err != nil {
			return
		}
		newSession(ctx, c, ch).run(reqs)
	case "direct-tcpip":
		c.forward(ctx, acc, nch)
	}
}

func (g *Gateway) acquireChannel(slice string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.channels[slice] >= g.cfg.MaxSessionsPerSlice {
		return false
	}
	g.channels[slice]++
	return true
}

func (g *Gateway) releaseChannel(slice string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.channels[slice]--; g.channels[slice] <= 0 {
		delete(g.channels, slice)
	}
}
