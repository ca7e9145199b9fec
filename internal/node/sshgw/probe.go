package sshgw

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Probe reports whether an SSH server answers at addr: it connects and
// reads the server's identification line ("SSH-2.0-...", RFC 4253 §4.2),
// giving up after timeout. The gateway sees a connection that ends before
// the key exchange (logged at debug level). The node manager probes its
// gateway for the ssh figure of its reports (core.NodeFigures.SSH).
func Probe(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// RFC 4253 allows other lines before the identification; bound them.
	r := bufio.NewReaderSize(io.LimitReader(c, 8<<10), 512)
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "SSH-") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ssh probe of %s: no SSH identification line: %w", addr, err)
		}
	}
}

// ProbeAddr turns a listen address into one to probe from the same
// network namespace: an unspecified host (":22", "0.0.0.0:22", "[::]:22")
// becomes the loopback address.
func ProbeAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("ssh listen address %q: %w", listen, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
