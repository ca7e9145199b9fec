// Package server runs PLC (`pl plc`): it opens the registry store in a data
// directory (SQLite by default, PostgreSQL when given a DSN), keeps PLC's
// self-signed TLS certificate there, and serves the REST and node APIs at
// /api/v1, PLCAPI XML-RPC at /PLCAPI/ and the web portal at / over HTTPS (plain HTTP only when
// asked).
//
// Main is the program as a value: tests start it in-process on port 0 with a
// t.TempDir() data directory.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/plc/geniam"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/peering"
	"github.com/planetlab/pl/internal/plc/planet"
	"github.com/planetlab/pl/internal/plc/portal"
	"github.com/planetlab/pl/internal/plc/rest"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/restapi"
	"github.com/planetlab/pl/internal/sfa"
)

// DefaultListen is PLC's default listen address.
const DefaultListen = ":8443"

// DefaultShutdownTimeout bounds a graceful shutdown.
const DefaultShutdownTimeout = 10 * time.Second

// Config configures PLC.
type Config struct {
	DataDir         string        // "" = DefaultDataDir()
	Listen          string        // host:port; "" = DefaultListen; port 0 picks a free port
	DB              string        // store DSN; "" = SQLite file plc.db in DataDir
	HTTP            bool          // serve plain HTTP instead of HTTPS
	SANs            []string      // extra certificate names (DNS names or IPs)
	ShutdownTimeout time.Duration // "" = DefaultShutdownTimeout
	// HeaderTimeout bounds the TLS handshake and a request's headers;
	// BodyTimeout a request's body (limits.go). 0 = the defaults.
	HeaderTimeout time.Duration
	BodyTimeout   time.Duration
	// MaxConnsPerSource bounds the open connections of one source address;
	// 0 = DefaultMaxConnsPerSource, negative = no limit.
	MaxConnsPerSource int
	Log               *slog.Logger
	// NoReadCache turns off the cache of Get answers (service.Options
	// ReadCacheSize; docs/plcapi.md).
	NoReadCache bool
	// Monitor is the monitor's policy (zero fields: the defaults of
	// package planet; docs/monitoring.md).
	Monitor planet.Policy
	// Mail is the SMTP relay of PLC's outbox (nil: mail goes to the log).
	Mail *mail.Config
	// DevMailbox (pl dev, without Mail) opens the outbox to everyone: the
	// portal's /mailbox and GET /api/v1/outbox show what would have been
	// sent.
	DevMailbox bool
	// SupportEmail is where PLCAPI's NotifySupport mails ("": refused).
	SupportEmail string
	// PortalURL is the portal's public base URL in mailed links ("": the
	// URL PLC serves at).
	PortalURL string
	// GENIHost, when set, makes PLC the GENI slice authority of its users
	// with URNs urn:publicid:IDN+<GENIHost>+... (its key and certificate
	// are geni-sa.key and geni-sa.pem in the data directory; docs/geni.md).
	GENIHost string
	// GENIListen, when set (with GENIHost), serves the GENI AM API v3
	// aggregate there: HTTPS with client certificates that chain to the
	// slice authority's certificate or to one of GENITrust (PEM files of
	// federation roots).
	GENIListen string
	GENITrust  []string
	// GENIRefuse are GENI authorities whose slices the aggregate refuses
	// (--geni-refuse); GENIForeignMaxSlices the max_slices of the site it
	// makes for another authority on its first slice (0: 10).
	GENIRefuse           []string
	GENIForeignMaxSlices int64
	// LeaseGranularity is what lease times are rounded to (whole seconds;
	// 0: an hour, as the original; docs/brokering.md).
	LeaseGranularity time.Duration
	// TicketBrokers are the brokers whose tickets nodes honour besides
	// PLC's (ticket.ParseBrokers; docs/brokering.md): distributed in every
	// node's state.
	TicketBrokers []core.TicketKey
	// PeerRefresh is how often every peer PLC is refreshed besides its
	// notifications (0: service.DefaultPeerRefresh; docs/federation.md).
	PeerRefresh time.Duration
	// Extra mounts further handlers by ServeMux pattern (e.g. "/PLCAPI/").
	Extra map[string]http.Handler
}

// DefaultDataDir is $PL_PLC_DATA, /var/lib/pl/plc for root, and
// ~/.local/share/pl/plc otherwise.
func DefaultDataDir() string {
	if d := os.Getenv("PL_PLC_DATA"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/pl/plc"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "pl", "plc")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "pl-plc")
	}
	return filepath.Join(home, ".local", "share", "pl", "plc")
}

// DSN returns the store DSN of a configuration.
func (c Config) DSN() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.dataDir(), "plc.db")
}

func (c Config) dataDir() string {
	if c.DataDir != "" {
		return c.DataDir
	}
	return DefaultDataDir()
}

// Main is a PLC server.
type Main struct {
	Config

	log         *slog.Logger
	reg         *service.Service
	closer      io.Closer
	ln          net.Listener
	sources     *sourceLimit // nil without a per-source limit
	srv         *http.Server
	url         string
	fingerprint string
	stopBase    context.CancelFunc
	sender      mail.Sender // the outbox's
	geniLn      net.Listener
	geniSrv     *http.Server
	geniURL     string

	closeOnce sync.Once
}

// Open prepares PLC without serving: data directory, store, registry,
// certificate and listener. Run calls it when needed.
func (m *Main) Open(ctx context.Context) error {
	if m.srv != nil {
		return nil
	}
	// Each part adds its own subsystem attribute to the root logger: one
	// subsystem= per log line (issue 9.7).
	root := m.Log
	if root == nil {
		root = slog.Default()
	}
	m.log = root.With("subsystem", "plc")
	dir := m.dataDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	m.sender = mail.Log{Log: root.With("subsystem", "mail")}
	if m.Mail != nil {
		smtp, err := mail.NewSMTP(*m.Mail)
		if err != nil {
			return err
		}
		m.sender = smtp
	}
	var sa *sfa.Authority
	if m.GENIHost != "" {
		var err error
		if sa, err = sfa.LoadAuthority(dir, m.GENIHost); err != nil {
			return fmt.Errorf("GENI slice authority: %w", err)
		}
	}
	tkey, err := LoadOrCreateTicketKey(dir)
	if err != nil {
		return err
	}
	own := ticket.KeyID(tkey.Public().(ed25519.PublicKey))
	for _, b := range m.TicketBrokers {
		if b.ID == own {
			return core.FieldErrorf("ticket-broker", "broker %s has PLC's own ticket key %s", b.Issuer, own)
		}
	}
	peerKey, err := peering.LoadOrCreateKey(filepath.Join(dir, PeerKeyFile))
	if err != nil {
		return fmt.Errorf("peer signing key: %w", err)
	}
	reg, closer, err := openRegistry(ctx, m.DSN(), service.Options{Log: root, Monitor: m.Monitor, ReadCacheSize: readCacheSize(m.NoReadCache), SupportEmail: m.SupportEmail, PortalURL: m.PortalURL, GENI: sa, TicketKey: tkey, TicketBrokers: m.TicketBrokers, LeaseGranularity: int64(m.LeaseGranularity / time.Second), OpenOutbox: m.DevMailbox && m.Mail == nil, PeerKey: peerKey})
	if err != nil {
		return err
	}
	m.reg, m.closer = reg, closer

	listen := m.Listen
	if listen == "" {
		listen = DefaultListen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		m.closer.Close()
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	if max := m.MaxConnsPerSource; max >= 0 {
		if max == 0 {
			max = DefaultMaxConnsPerSource
		}
		m.sources = limitSources(ln, max, m.log)
		ln = m.sources
	}
	scheme := "http"
	var tlsCert tls.Certificate
	if !m.HTTP {
		cert, fp, missing, err := LoadOrCreateCert(dir, DefaultNames(m.SANs))
		tlsCert = cert
		if err != nil {
			ln.Close()
			m.closer.Close()
			return err
		}
		if len(missing) > 0 {
			m.log.Warn("the existing certificate does not cover some requested names; delete it to regenerate",
				"cert", filepath.Join(dir, CertFile), "missing", missing)
		}
		m.fingerprint = fp
		ln = tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
		scheme = "https"
	}
	m.ln = ln
	m.url = scheme + "://" + urlHost(ln.Addr().(*net.TCPAddr))
	if m.PortalURL == "" {
		m.reg.SetPortalURL(m.url)
	}

	mux := http.NewServeMux()
	api := rest.NewHandler(reg, root.With("subsystem", "rest"), rest.WithFingerprint(m.fingerprint), rest.WithPlanet(reg), rest.WithAuditor(reg), rest.WithAccounts(reg), rest.WithSliceAuthority(reg), rest.WithTickets(reg), rest.WithOutbox(reg), rest.WithPeering(reg))
	mux.Handle(restapi.Prefix+"/", api)
	mux.Handle(MetricsPath, metricsHandler(reg))
	mux.Handle("/"+peering.PathPrefix, peering.Handler(reg, peerKey, root.With("subsystem", "peering"), time.Now))
	if _, taken := m.Extra["/"]; !taken {
		mux.Handle("/", portal.New(reg, portal.Options{Planet: reg, Accounts: reg, Outbox: reg, Mailbox: m.DevMailbox && m.Mail == nil, InsecureCookies: m.HTTP, Log: root.With("subsystem", "portal")}))
	}
	for pattern, h := range m.Extra {
		mux.Handle(pattern, h)
	}
	for pattern, h := range extraHandlers(reg, root) {
		if _, taken := m.Extra[pattern]; !taken {
			mux.Handle(pattern, h)
		}
	}
	if m.GENIListen != "" {
		if err := m.openGENI(sa, tlsCert, root); err != nil {
			ln.Close()
			m.closer.Close()
			return err
		}
	}
	base, stop := context.WithCancel(context.Background())
	m.stopBase = stop
	headerTimeout, bodyTimeout := m.HeaderTimeout, m.BodyTimeout
	if headerTimeout <= 0 {
		headerTimeout = DefaultHeaderTimeout
	}
	if bodyTimeout <= 0 {
		bodyTimeout = DefaultBodyTimeout
	}
	m.srv = &http.Server{
		Handler:           boundBodies(withRemoteAddr(logRequests(mux, m.log)), bodyTimeout),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// urlHost formats a listen address for a URL, turning the unspecified
// address into 127.0.0.1.
func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

// URL returns PLC's base URL (valid after Open).
func (m *Main) URL() string { return m.url }

// PeerKey returns the text form of PLC's peer signing key (what a peer's
// admin gives AddPeer; valid after Open).
func (m *Main) PeerKey() string {
	return peering.FormatPublicKey(m.reg.PeerKey().Public().(ed25519.PublicKey))
}

// PeerKeyFile is where, below the data directory, PLC keeps its peer
// signing key (Ed25519, PKCS#8 PEM, created at first start).
const PeerKeyFile = "tls/peer-ed25519.pem"

// Fingerprint returns the SHA-256 fingerprint of PLC's certificate ("" for HTTP).
func (m *Main) Fingerprint() string { return m.fingerprint }

// Registry returns the registry PLC serves (valid after Open).
func (m *Main) Registry() *service.Service { return m.reg }

// Run serves until ctx ends, then shuts down gracefully within
// ShutdownTimeout and closes everything.
func (m *Main) Run(ctx context.Context) error {
	if err := m.Open(ctx); err != nil {
		return err
	}
	m.log.Info("PLC serving", "url", m.url, "fingerprint", m.fingerprint, "data", m.dataDir())
	mctx, stopMonitor := context.WithCancel(ctx)
	monitorDone := make(chan struct{})
	go func() { defer close(monitorDone); m.reg.RunMonitor(mctx) }()
	defer func() { stopMonitor(); <-monitorDone }()
	peersDone := make(chan struct{})
	go func() { defer close(peersDone); m.reg.RunPeers(mctx, m.PeerRefresh) }()
	defer func() { stopMonitor(); <-peersDone }()
	mailDone := make(chan struct{})
	go func() { defer close(mailDone); m.reg.RunMail(mctx, m.sender, 0) }()
	defer func() { stopMonitor(); <-mailDone }()
	changesDone := make(chan struct{})
	go func() {
		defer close(changesDone)
		if err := m.reg.RunChanges(mctx); err != nil {
			m.log.Error("replica change listener stopped", "err", err)
		}
	}()
	defer func() { stopMonitor(); <-changesDone }()
	errc := make(chan error, 1)
	go func() { errc <- m.srv.Serve(m.ln) }()
	if m.geniSrv != nil {
		m.log.Info("GENI aggregate serving", "url", m.geniURL)
		go func() {
			if err := m.geniSrv.Serve(m.geniLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.log.Error("GENI aggregate", "err", err)
			}
		}()
	}
	select {
	case err := <-errc:
		m.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	m.log.Info("PLC shutting down")
	timeout := m.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m.stopBase() // end long polls at once
	if m.geniSrv != nil {
		m.geniSrv.Shutdown(sctx)
	}
	err := m.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		m.log.Warn("graceful shutdown timed out; closing connections")
		err = nil
	}
	m.Close()
	<-errc
	return err
}

// Close stops serving at once and closes the store.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.stopBase != nil {
			m.stopBase()
		}
		if m.srv != nil {
			m.srv.Close()
		}
		if m.geniSrv != nil {
			m.geniSrv.Close()
		} else if m.geniLn != nil {
			m.geniLn.Close()
		}
		if m.closer != nil {
			err = m.closer.Close()
		}
	})
	return err
}

// withRemoteAddr tells the service, for every request whatever its
// transport (REST, node API, PLCAPI), which address it comes from (the
// login backoff counts failures per source).
func withRemoteAddr(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		h.ServeHTTP(w, r.WithContext(service.WithRemoteAddr(r.Context(), host)))
	})
}

// logRequests logs each request at debug level.
func logRequests(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		if !strings.HasSuffix(r.URL.Path, "/watch") || sw.status >= 400 {
			log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start), "remote", r.RemoteAddr)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readCacheSize is the service's ReadCacheSize for Config.NoReadCache.
func readCacheSize(off bool) int {
	if off {
		return -1
	}
	return 0
}

// openGENI prepares the GENI aggregate's listener and server.
func (m *Main) openGENI(sa *sfa.Authority, cert tls.Certificate, root *slog.Logger) error {
	if sa == nil {
		return errors.New("the GENI aggregate needs the slice authority: give GENIHost (--geni-host) too")
	}
	if m.HTTP {
		return errors.New("the GENI aggregate needs HTTPS (client certificates): not with plain HTTP")
	}
	roots, err := sfa.LoadRoots(m.GENITrust...)
	if err != nil {
		return fmt.Errorf("GENI trusted roots: %w", err)
	}
	ln, err := net.Listen("tcp", m.GENIListen)
	if err != nil {
		return fmt.Errorf("listen %s (GENI aggregate): %w", m.GENIListen, err)
	}
	m.geniURL = "https://" + urlHost(ln.Addr().(*net.TCPAddr)) + "/"
	agg := geniam.New(geniam.Config{Host: m.GENIHost, Registry: m.reg, Persons: m.reg, Planet: m.reg, URL: m.geniURL,
		Verifier: &sfa.Verifier{Roots: sfa.NewRoots(append([]*sfa.Cert{sa.Cert}, roots.Certs()...)...)},
		Refuse:   m.GENIRefuse, ForeignMaxSlices: m.GENIForeignMaxSlices,
		Log: root.With("subsystem", "geni-am")})
	m.geniLn = tls.NewListener(ln, geniam.TLSConfig(cert))
	m.geniSrv = &http.Server{
		Handler:           boundBodies(withRemoteAddr(agg), DefaultBodyTimeout),
		ReadHeaderTimeout: DefaultHeaderTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// GENIURL is the GENI aggregate's URL ("" when it is not served).
func (m *Main) GENIURL() string { return m.geniURL }
