// Package traceroute is the parallel traceroute service, the first
// assignment of the 2003 PlanetLab course done on this platform: a server
// (cmd/traceroutesvr) runs in a slice on every node and traces the path
// from its node to a target with the sliver's raw sockets; a client
// (cmd/tracerouteclnt) asks every node of the slice at once and prints
// each path and, merged, the tree of paths toward the target.
// docs/tutorial.md deploys it on `pl dev`.
//
// This file is the wire format, a few text lines over TCP (try it with
// `nc <node> <port>`):
//
//	request   TRACE <target> [<max-hops> [<probes>]]
//	answer    PATH <server> <target-address>
//	          HOP <ttl> <address|*> <rtt-ms|*>...     one per TTL, from 1
//	          END reached|unreached
//	or        ERR <message>
//
// Every line ends in "\n" and is at most MaxLine bytes. The server's
// name is its node's host name; RTTs are milliseconds with up to three
// decimals, "*" for a probe that got no answer.
package traceroute

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits of the wire format; a line or value beyond them is refused.
const (
	MaxLine       = 1024 // bytes in one line, "\n" included
	MaxHops       = 64   // TTLs a trace may try
	MaxProbes     = 5    // probes per TTL
	DefaultHops   = 30
	DefaultProbes = 3
)

// Request asks a server for the path from its node to Target.
type Request struct {
	Target  string // an IPv4 address or a host name the server resolves
	MaxHops int    // 1..MaxHops
	Probes  int    // 1..MaxProbes
}

// Hop is what one TTL brought back: the address that answered (invalid
// when no probe was answered) and one RTT per probe, 0 for a lost probe.
type Hop struct {
	TTL  int
	Addr netip.Addr
	RTTs []time.Duration
}

// Path is one server's answer.
type Path struct {
	Server  string     // the node's host name
	Target  netip.Addr // the address traced to
	Hops    []Hop      // TTL 1, 2, ... in order
	Reached bool       // the target itself answered (the last hop)
}

// A wire error says what in the input was wrong.
var errWire = errors.New("traceroute wire")

func wireErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errWire, fmt.Sprintf(format, args...))
}

// IsWireError reports whether err is a malformed message (as opposed to an
// I/O error or an ERR answer).
func IsWireError(err error) bool { return errors.Is(err, errWire) }

// RemoteError is an ERR answer of a server.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "server: " + e.Message }

// readLine reads one line of at most MaxLine bytes, without its "\n".
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > MaxLine {
			return "", wireErr("line longer than %d bytes", MaxLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(b) > 0 {
			return "", wireErr("line %q not ended by a newline", truncate(string(b)))
		}
		return "", err
	}
	line := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	for _, c := range line {
		if c < ' ' && c != '\t' || c == 0x7f {
			return "", wireErr("control character %q in line %q", c, truncate(line))
		}
	}
	return line, nil
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// validTarget accepts an IPv4 address or a DNS host name.
func validTarget(t string) error {
	if a, err := netip.ParseAddr(t); err == nil {
		if !a.Is4() {
			return wireErr("target %s is not an IPv4 address", t)
		}
		return nil
	}
	if len(t) == 0 || len(t) > 253 {
		return wireErr("target %q is neither an IPv4 address nor a host name", truncate(t))
	}
	for _, label := range strings.Split(t, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return wireErr("target %q is neither an IPv4 address nor a host name", truncate(t))
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return wireErr("target %q is neither an IPv4 address nor a host name", truncate(t))
			}
		}
	}
	return nil
}

// Validate checks a request's fields; zero MaxHops and Probes take the
// defaults first (see Normalize).
func (q Request) Validate() error {
	if err := validTarget(q.Target); err != nil {
		return err
	}
	if q.MaxHops < 1 || q.MaxHops > MaxHops {
		return wireErr("max-hops %d is out of range 1..%d", q.MaxHops, MaxHops)
	}
	if q.Probes < 1 || q.Probes > MaxProbes {
		return wireErr("probes %d is out of range 1..%d", q.Probes, MaxProbes)
	}
	return nil
}

// Normalize fills zero MaxHops and Probes with the defaults.
func (q Request) Normalize() Request {
	if q.MaxHops == 0 {
		q.MaxHops = DefaultHops
	}
	if q.Probes == 0 {
		q.Probes = DefaultProbes
	}
	return q
}

// WriteRequest sends q (normalized) to a server.
func WriteRequest(w io.Writer, q Request) error {
	q = q.Normalize()
	if err := q.Validate(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "TRACE %s %d %d\n", q.Target, q.MaxHops, q.Probes)
	return err
}

// ReadRequest reads and checks one request line.
func ReadRequest(r *bufio.Reader) (Request, error) {
	line, err := readLine(r)
	if err != nil {
		return Request{}, err
	}
	f := strings.Fields(line)
	if len(f) < 2 || len(f) > 4 || f[0] != "TRACE" {
		return Request{}, wireErr("want \"TRACE <target> [<max-hops> [<probes>]]\", got %q", truncate(line))
	}
	q := Request{Target: f[1]}
	if len(f) > 2 {
		if q.MaxHops, err = smallInt("max-hops", f[2]); err != nil {
			return Request{}, err
		}
	}
	if len(f) > 3 {
		if q.Probes, err = smallInt("probes", f[3]); err != nil {
			return Request{}, err
		}
	}
	q = q.Normalize()
	return q, q.Validate()
}

func smallInt(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1000 || len(s) > 4 {
		return 0, wireErr("%s %q is not a small number", what, truncate(s))
	}
	return n, nil
}

// WriteError sends an ERR answer (one line; control characters become
// spaces).
func WriteError(w io.Writer, msg string) error {
	msg = strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return ' '
		}
		return c
	}, msg)
	if len(msg) > MaxLine-5 {
		msg = msg[:MaxLine-5]
	}
	_, err := fmt.Fprintf(w, "ERR %s\n", msg)
	return err
}

// WritePath sends a server's answer.
func WritePath(w io.Writer, p Path) error {
	if err := p.Validate(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "PATH %s %s\n", p.Server, p.Target)
	for _, h := range p.Hops {
		addr := "*"
		if h.Addr.IsValid() {
			addr = h.Addr.String()
		}
		fmt.Fprintf(bw, "HOP %d %s", h.TTL, addr)
		for _, d := range h.RTTs {
			if d <= 0 {
				bw.WriteString(" *")
			} else {
				fmt.Fprintf(bw, " %s", strconv.FormatFloat(float64(max(d.Microseconds(), 1))/1000, 'f', -1, 64))
			}
		}
		bw.WriteString("\n")
	}
	if p.Reached {
		bw.WriteString("END reached\n")
	} else {
		bw.WriteString("END unreached\n")
	}
	return bw.Flush()
}

// Validate checks what WritePath sends and ReadPath accepts.
func (p Path) Validate() error {
	if err := validTarget(p.Server); err != nil || strings.ContainsAny(p.Server, " \t") {
		return wireErr("server name %q is not a host name", truncate(p.Server))
	}
	if !p.Target.Is4() {
		return wireErr("target %v is not an IPv4 address", p.Target)
	}
	if len(p.Hops) > MaxHops {
		return wireErr("%d hops, more than %d", len(p.Hops), MaxHops)
	}
	for i, h := range p.Hops {
		if h.TTL != i+1 {
			return wireErr("hop %d has TTL %d, want %d", i+1, h.TTL, i+1)
		}
		if h.Addr.IsValid() && !h.Addr.Is4() {
			return wireErr("hop %d: %v is not an IPv4 address", h.TTL, h.Addr)
		}
		if len(h.RTTs) == 0 || len(h.RTTs) > MaxProbes {
			return wireErr("hop %d has %d probes, want 1..%d", h.TTL, len(h.RTTs), MaxProbes)
		}
		answered := false
		for _, d := range h.RTTs {
			if d < 0 || d > time.Minute {
				return wireErr("hop %d: RTT %v is out of range 0..1m", h.TTL, d)
			}
			answered = answered || d > 0
		}
		if answered != h.Addr.IsValid() {
			return wireErr("hop %d: an address needs an answered probe and an answered probe an address", h.TTL)
		}
	}
	if p.Reached && (len(p.Hops) == 0 || p.Hops[len(p.Hops)-1].Addr != p.Target) {
		return wireErr("reached, but the last hop is not the target %v", p.Target)
	}
	return nil
}

// ReadPath reads a server's answer: a Path, a *RemoteError for ERR, or a
// wire error naming what was malformed.
func ReadPath(r *bufio.Reader) (Path, error) {
	line, err := readLine(r)
	if err != nil {
		return Path{}, err
	}
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return Path{}, &RemoteError{Message: msg}
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "PATH" {
		return Path{}, wireErr("want \"PATH <server> <target>\" or \"ERR <message>\", got %q", truncate(line))
	}
	p := Path{Server: f[1]}
	if p.Target, err = netip.ParseAddr(f[2]); err != nil {
		return Path{}, wireErr("target %q is not an address", truncate(f[2]))
	}
	for {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Path{}, wireErr("answer ended after %d hops without END", len(p.Hops))
			}
			return Path{}, err
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "END" && (f[1] == "reached" || f[1] == "unreached"):
			p.Reached = f[1] == "reached"
			return p, p.Validate()
		case len(f) >= 4 && f[0] == "HOP":
			if len(p.Hops) == MaxHops {
				return Path{}, wireErr("more than %d hops", MaxHops)
			}
			h, err := parseHop(f)
			if err != nil {
				return Path{}, err
			}
			p.Hops = append(p.Hops, h)
		default:
			return Path{}, wireErr("want \"HOP <ttl> <address|*> <rtt|*>...\" or \"END reached|unreached\", got %q", truncate(line))
		}
	}
}

func parseHop(f []string) (Hop, error) {
	ttl, err := smallInt("ttl", f[1])
	if err != nil {
		return Hop{}, err
	}
	h := Hop{TTL: ttl}
	if f[2] != "*" {
		if h.Addr, err = netip.ParseAddr(f[2]); err != nil {
			return Hop{}, wireErr("hop %d: address %q is not an address", ttl, truncate(f[2]))
		}
	}
	if len(f)-3 > MaxProbes {
		return Hop{}, wireErr("hop %d has %d probes, more than %d", ttl, len(f)-3, MaxProbes)
	}
	for _, s := range f[3:] {
		if s == "*" {
			h.RTTs = append(h.RTTs, 0)
			continue
		}
		ms, err := strconv.ParseFloat(s, 64)
		if err != nil || ms <= 0 || ms > 60000 || len(s) > 12 {
			return Hop{}, wireErr("hop %d: RTT %q is not a number of milliseconds in (0, 60000]", ttl, truncate(s))
		}
		h.RTTs = append(h.RTTs, time.Duration(ms*float64(time.Millisecond)))
	}
	return h, nil
}
