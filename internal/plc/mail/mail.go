// Package mail delivers PLC's messages: an SMTP relay client (over
// github.com/wneessen/go-mail: STARTTLS or implicit TLS, authentication as
// relays expect) and, without a relay, the log. The outbox that keeps the
// messages until they are delivered is the service's (service/outbox.go);
// this package only sends one message.
package mail

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one mail to send.
type Message struct {
	To      []string
	Subject string
	Body    string // plain text
}

// Sender sends one message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// TLS modes of a relay.
const (
	TLSStartTLS = "starttls" // STARTTLS required (the default)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // plain: only for a relay on the same host or in tests
)

// Config is an SMTP relay.
type Config struct {
	Relay    string // host:port
	From     string // sender address
	Username string // "" = no authentication
	Password string
	TLS      string // TLSStartTLS (""), TLSImplicit, TLSNone
	// InsecureSkipVerify accepts any relay certificate (tests).
	InsecureSkipVerify bool
	Timeout            time.Duration // per delivery; 0 = 30 s
}

// SMTP sends through a relay.
type SMTP struct {
	cfg  Config
	host string
	port int
}

// NewSMTP checks a relay configuration.
func NewSMTP(cfg Config) (*SMTP, error) {
	host, ps, err := net.SplitHostPort(cfg.Relay)
	if err != nil {
		return nil, fmt.Errorf("smtp relay %q: want host:port", cfg.Relay)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("smtp relay %q: bad port", cfg.Relay)
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp sender %q: %v", cfg.From, err)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("smtp tls %q: want %s, %s or %s", cfg.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &SMTP{cfg: cfg, host: host, port: port}, nil
}

// Send implements Sender.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if err := msg.To(m.To...); err != nil {
		return fmt.Errorf("recipients: %w", err)
	}
	msg.Subject(OneLine(m.Subject))
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.cfg.InsecureSkipVerify})}
	switch s.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, msg)
}

// Log "sends" to the log: PLC without a relay.
type Log struct{ Log *slog.Logger }

// Send implements Sender.
func (l Log) Send(_ context.Context, m Message) error {
	l.Log.Info("mail (no relay configured)", "to", strings.Join(m.To, ","), "subject", OneLine(m.Subject), "body", m.Body)
	return nil
}

// OneLine replaces line breaks and other control characters by spaces,
// so that nothing put into a header can start another header.
func OneLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s))
}
