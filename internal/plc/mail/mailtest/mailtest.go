// Package mailtest is a real SMTP server for tests (over
// github.com/emersion/go-smtp): it accepts every message on 127.0.0.1
// without TLS and keeps them.
package mailtest

import (
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one received message.
type Message struct {
	From    string
	To      []string
	Subject string
	Header  mail.Header
	Body    string
	Raw     string
}

// Server is a running test SMTP server.
type Server struct {
	Addr string // host:port

	mu   sync.Mutex
	msgs []Message
	srv  *smtp.Server
	ln   net.Listener
	done chan struct{}
	once sync.Once
}

// Start runs a server on a free port (or on addr when given, to restart
// one at the same address) until the test ends or Close.
func Start(t testing.TB, addr string) *Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // a just-closed port may linger briefly
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	go func() { defer close(s.done); s.srv.Serve(ln) }()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() {
	s.once.Do(func() {
		s.ln.Close() // Serve may not have taken the listener yet
		s.srv.Close()
		<-s.done
	})
}

// Messages returns what was received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Wait waits until n messages arrived (or d passed) and returns them.
func (s *Server) Wait(n int, d time.Duration) []Message {
	deadline := time.Now().Add(d)
	for {
		m := s.Messages()
		if len(m) >= n || time.Now().After(deadline) {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return errors.New("bad message: " + err.Error())
	}
	var br io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		br = quotedprintable.NewReader(br)
	}
	body, _ := io.ReadAll(br)
	dec := new(mime.WordDecoder)
	subj, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, Message{From: x.from, To: x.to, Subject: subj, Header: m.Header, Body: string(body), Raw: string(raw)})
	x.s.mu.Unlock()
	return nil
}
func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
