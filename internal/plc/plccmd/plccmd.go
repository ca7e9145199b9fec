// Package plccmd attaches PLC's server commands to the pl command tree:
// `pl plc` (run the registry server) and `pl plc init` (create the first
// admin). The registry commands users run (login, site, slice, ...) are in
// internal/cli, which talks to PLC over the network and does not link the
// server.
package plccmd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/planetlab/pl/internal/cli"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/planet"
	"github.com/planetlab/pl/internal/plc/server"
	"github.com/spf13/cobra"
)

// serverFlags are the flags `pl plc` and `pl plc init` share.
type serverFlags struct {
	data, db string
}

func (f *serverFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.data, "data", "", "data directory (default $PL_PLC_DATA, /var/lib/pl/plc as root, ~/.local/share/pl/plc)")
	cmd.Flags().StringVar(&f.db, "db", "", "store: postgres://... DSN (default: SQLite file plc.db in the data directory)")
}

// Attach adds `pl plc` and `pl plc init` to the pl command tree.
func Attach(root *cobra.Command) {
	root.AddCommand(plcCmd())
}

func plcCmd() *cobra.Command {
	var sf serverFlags
	var listen, logLevel, geniHost, geniListen string
	var geniTrust, geniRefuse []string
	var geniMaxSlices int64
	var downAfter, siteGrace, suspendAfter time.Duration
	var plainHTTP, readCache bool
	var maxConns int
	var sans []string
	var smtp mail.Config
	var supportEmail, portalURL string
	var devMailbox bool
	var brokerSpecs []string
	var leaseGranularity time.Duration
	cmd := &cobra.Command{
		Use:   "plc",
		Short: "Run PLC, the central registry server",
		Long: `Run PlanetLab Central: the registry (sites, persons, nodes, slices, ...),
its REST API at /api/v1 (OpenAPI at /api/v1/openapi.json), the node API,
PLCAPI XML-RPC at /PLCAPI/ and the web portal at /.

Mail (notices, sign-up, slice expiry warnings) goes through an outbox to
the SMTP relay given by --smtp-relay (password in $PL_SMTP_PASSWORD);
without one it goes to the log; with --dev-mailbox (what 'pl dev' runs)
anyone may read what would have been sent at /mailbox and GET
/api/v1/outbox.

PLC needs no configuration: on an empty data directory it creates its
SQLite store and a self-signed TLS certificate, and prints the certificate's
SHA-256 fingerprint (give it to 'pl login --fingerprint'). Create the first
admin with 'pl plc init'.

The first SIGINT/SIGTERM shuts down gracefully (bounded); a second one exits
at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context(), log)
			defer stop()
			brokers, err := ticket.ParseBrokers(brokerSpecs)
			if err != nil {
				return cli.Usagef("--ticket-broker: %v", err)
			}
			if leaseGranularity < time.Second || leaseGranularity%time.Second != 0 {
				return cli.Usagef("--lease-granularity %s: want whole seconds, at least 1s", leaseGranularity)
			}
			var mailCfg *mail.Config
			if devMailbox && smtp.Relay != "" {
				return fmt.Errorf("--dev-mailbox shows the mail PLC only logs: not with --smtp-relay")
			}
			if smtp.Relay != "" {
				smtp.Password = os.Getenv("PL_SMTP_PASSWORD")
				mailCfg = &smtp
			}
			m := &server.Main{Config: server.Config{Mail: mailCfg, DevMailbox: devMailbox, SupportEmail: supportEmail, PortalURL: portalURL, DataDir: sf.data, DB: sf.db, Listen: listen, HTTP: plainHTTP, SANs: sans, Log: log, MaxConnsPerSource: maxConns, NoReadCache: !readCache,
				Monitor: planet.Policy{DownAfter: downAfter, SiteGrace: siteGrace, SuspendAfter: suspendAfter}, GENIHost: geniHost, GENIListen: geniListen, GENITrust: geniTrust, GENIRefuse: geniRefuse, GENIForeignMaxSlices: geniMaxSlices, TicketBrokers: brokers, LeaseGranularity: leaseGranularity}}
			if err := m.Open(ctx); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "PLC serving at %s\n", m.URL())
			if fp := m.Fingerprint(); fp != "" {
				fmt.Fprintf(out, "certificate SHA-256 fingerprint: %s\n", fp)
				fmt.Fprintf(out, "log in with: pl login %s --email <admin> --fingerprint %s\n", m.URL(), fp)
			}
			fmt.Fprintf(out, "peer key (for 'pl peer add' at a peer PLC): %s\n", m.PeerKey())
			if u := m.GENIURL(); u != "" {
				fmt.Fprintf(out, "GENI aggregate at %s (urn:publicid:IDN+%s+authority+am)\n", u, geniHost)
			}
			return m.Run(ctx)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", server.DefaultListen, "listen address host:port (port 0 picks a free port)")
	cmd.Flags().BoolVar(&plainHTTP, "http", false, "serve plain HTTP instead of HTTPS (development only)")
	cmd.Flags().StringArrayVar(&sans, "san", nil, "extra DNS name or IP for the generated certificate; repeatable")
	cmd.Flags().IntVar(&maxConns, "max-conns-per-source", server.DefaultMaxConnsPerSource, "open connections allowed per source address (-1 = no limit)")
	cmd.Flags().BoolVar(&readCache, "read-cache", true, "keep answers of reads until a write changes them (SQLite store only; --read-cache=false reads the store every time)")
	cmd.Flags().StringVar(&geniListen, "geni-listen", "", "serve the GENI AM API v3 aggregate at host:port (HTTPS, client certificates; needs --geni-host)")
	cmd.Flags().StringArrayVar(&geniTrust, "geni-trust", nil, "PEM file of federation roots the GENI aggregate trusts besides this PLC's slice authority; repeatable")
	cmd.Flags().StringArrayVar(&geniRefuse, "geni-refuse", nil, "a GENI authority (the authority part of its URNs) whose slices the aggregate refuses, even under a trusted root; repeatable")
	cmd.Flags().Int64Var(&geniMaxSlices, "geni-max-slices", 0, "max_slices of the site the aggregate makes for another GENI authority on its first slice (default 10; change it on the site afterwards)")
	cmd.Flags().StringVar(&geniHost, "geni-host", "", "be the GENI slice authority of this PLC's users, with URNs urn:publicid:IDN+<host>+... (docs/geni.md; default: off)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&smtp.Relay, "smtp-relay", "", "SMTP relay host:port for PLC's mail (default: mail goes to the log)")
	cmd.Flags().StringVar(&smtp.From, "smtp-from", "planetlab@localhost", "sender address of PLC's mail")
	cmd.Flags().StringVar(&smtp.Username, "smtp-user", "", "SMTP user name (password in $PL_SMTP_PASSWORD)")
	cmd.Flags().StringVar(&smtp.TLS, "smtp-tls", mail.TLSStartTLS, "starttls, tls (implicit, port 465) or none")
	cmd.Flags().StringVar(&supportEmail, "support-email", "", "support address PLCAPI's NotifySupport mails (default: NotifySupport is refused)")
	cmd.Flags().StringVar(&portalURL, "portal-url", "", "public base URL of the portal in mailed links (default: the URL PLC serves at)")
	cmd.Flags().BoolVar(&devMailbox, "dev-mailbox", false, "development only: mail goes to the log and anyone, logged in or not, may read it at /mailbox (not with --smtp-relay)")
	cmd.Flags().StringArrayVar(&brokerSpecs, "ticket-broker", nil, "<name>=<base64 Ed25519 public key> of a broker whose slice tickets nodes honour besides PLC's; repeatable (docs/brokering.md)")
	cmd.Flags().DurationVar(&leaseGranularity, "lease-granularity", time.Hour, "leases of reservable nodes are rounded to this (whole seconds)")
	cmd.Flags().DurationVar(&downAfter, "monitor-down-after", planet.DefaultDownAfter, "the monitor marks a node down after this long without a report")
	cmd.Flags().DurationVar(&siteGrace, "monitor-site-grace", planet.DefaultSiteGrace, "a site whose nodes are all down this long may create no slices")
	cmd.Flags().DurationVar(&suspendAfter, "monitor-suspend-after", planet.DefaultSuspendAfter, "a site whose nodes are all down this long has its slices suspended")
	cmd.AddCommand(plcInitCmd())
	return cmd
}

func plcInitCmd() *cobra.Command {
	var sf serverFlags
	var email, passwordFile string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the first admin and the system site",
		Long: `Create PLC's first admin account and its system site in the store (run it
on the PLC host; PLC may be running). The admin's password is read from
--password-file or $PL_ADMIN_PASSWORD; otherwise a random one is generated
and printed once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			password := ""
			generated := false
			if passwordFile != "" || os.Getenv("PL_ADMIN_PASSWORD") != "" {
				var err error
				if password, err = cli.ReadPassword(passwordFile, "PL_ADMIN_PASSWORD", ""); err != nil {
					return err
				}
			} else {
				b := make([]byte, 15)
				if _, err := rand.Read(b); err != nil {
					return err
				}
				password, generated = base64.RawURLEncoding.EncodeToString(b), true
			}
			res, err := server.Init(cmd.Context(), server.Config{DataDir: sf.data, DB: sf.db, Log: slog.New(slog.DiscardHandler)},
				server.InitOptions{Email: email, Password: password})
			if err != nil {
				return err
			}
			if cli.JSONFlag(cmd) {
				v := map[string]any{"person_id": res.PersonID, "email": email, "site_id": res.SiteID, "login_base": res.LoginBase}
				if generated {
					v["password"] = password
				}
				return cli.PrintJSON(cmd.OutOrStdout(), v)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created admin %s (person %d) and system site %s (site %d)\n", email, res.PersonID, res.LoginBase, res.SiteID)
			if generated {
				fmt.Fprintf(out, "admin password (shown only now): %s\n", password)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&email, "email", "admin@localhost.localdomain", "the admin's email")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the admin password from this file (first line)")
	return cmd
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, cli.Usagef("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one
// exits the process at once.
func signalContext(parent context.Context, log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			log.Info("signal received; shutting down (send again to exit at once)", "signal", s.String())
			cancel()
		case <-ctx.Done():
			return
		}
		s := <-ch
		log.Warn("second signal; exiting now", "signal", s.String())
		os.Exit(cli.ExitError)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
