package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/plc/mail"
	"github.com/planetlab/pl/internal/plc/mail/mailtest"
)

func TestSMTPDelivery(t *testing.T) {
	srv := mailtest.Start(t, "")
	s, err := mail.NewSMTP(mail.Config{Relay: srv.Addr, From: "plc@example.org", TLS: mail.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), mail.Message{To: []string{"a@example.org", "b@example.org"},
		Subject: "Slice x\r\nBcc: evil@example.org", Body: "Hello,\nyour slice expires.\n"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Wait(1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "plc@example.org" || strings.Join(m.To, ",") != "a@example.org,b@example.org" {
		t.Fatalf("envelope: from %q to %v", m.From, m.To)
	}
	if m.Subject != "Slice x  Bcc: evil@example.org" || m.Header.Get("Bcc") != "" {
		t.Fatalf("header injection: subject %q, Bcc %q", m.Subject, m.Header.Get("Bcc"))
	}
	if !strings.Contains(m.Body, "your slice expires.") {
		t.Fatalf("body %q", m.Body)
	}
}

func TestSMTPRelayDown(t *testing.T) {
	srv := mailtest.Start(t, "")
	addr := srv.Addr
	srv.Close()
	s, err := mail.NewSMTP(mail.Config{Relay: addr, From: "plc@example.org", TLS: mail.TLSNone, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), mail.Message{To: []string{"a@example.org"}, Subject: "x", Body: "y"}); err == nil {
		t.Fatal("sending to a relay that is down succeeded")
	}
}

func TestNewSMTPRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  mail.Config
		want string
	}{
		{mail.Config{Relay: "mail.example.org", From: "a@b.org"}, "want host:port"},
		{mail.Config{Relay: "mail.example.org:x", From: "a@b.org"}, "bad port"},
		{mail.Config{Relay: "mail.example.org:25", From: "not an address"}, "smtp sender"},
		{mail.Config{Relay: "mail.example.org:25", From: "a@b.org", TLS: "ssl"}, "smtp tls"},
	} {
		if _, err := mail.NewSMTP(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
