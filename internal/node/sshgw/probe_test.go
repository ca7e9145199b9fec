package sshgw

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProbe: a real gateway answers the probe; a closed port, a server
// speaking another protocol and a silent one do not.
func TestProbe(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if err := Probe(ctx, e.gw.Addr().String(), 2*time.Second); err != nil {
		t.Fatalf("gateway: %v", err)
	}
	listen := func(greeting string) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { ln.Close(); <-done })
		go func() {
			defer close(done)
			var held []net.Conn // a silent server holds its connections open
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if greeting == "" {
					held = append(held, c)
					continue
				}
				c.Write([]byte(greeting))
				c.Close()
			}
		}()
		return ln.Addr().String()
	}
	// RFC 4253 §4.2: lines before the identification are allowed.
	if err := Probe(ctx, listen("hello\r\nSSH-2.0-other\r\n"), 2*time.Second); err != nil {
		t.Errorf("banner after a line: %v", err)
	}
	closed := listen("x")
	// A port nobody listens on: take one and close it.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	free := ln.Addr().String()
	ln.Close()
	for _, c := range []struct{ name, addr string }{
		{"http", listen("HTTP/1.1 400 Bad Request\r\n\r\n")},
		{"closed after junk", closed},
		{"silent", listen("")},
		{"nobody", free},
	} {
		start := time.Now()
		err := Probe(ctx, c.addr, 300*time.Millisecond)
		if err == nil {
			t.Errorf("%s: probe succeeded", c.name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: probe took %v with a 300 ms timeout", c.name, d)
		}
	}
}

func TestProbeAddr(t *testing.T) {
	for in, want := range map[string]string{
		":22": "127.0.0.1:22", "0.0.0.0:2222": "127.0.0.1:2222", "[::]:22": "[::1]:22",
		"10.0.0.5:22": "10.0.0.5:22", "[fd00::1]:22": "[fd00::1]:22",
	} {
		if got, err := ProbeAddr(in); err != nil || got != want {
			t.Errorf("ProbeAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ProbeAddr("22"); err == nil || !strings.Contains(err.Error(), `"22"`) {
		t.Errorf("ProbeAddr(22): %v", err)
	}
}
