package tags

import (
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Route is one value of the codemux slice tag: the node's shared port 80
// hands HTTP requests for Host to the sliver's Port, and (with TLSPort)
// its port 443 hands TLS connections whose SNI is Host to the sliver's
// TLSPort, unterminated. Proxy asks for a PROXY protocol (v1) header
// naming the client before the forwarded bytes.
//
// Syntax: <host>,<port>[,tls=<port>][,proxy], e.g. "www.example.org,8080"
// or "shop.example.org,8080,tls=8443,proxy". The host is a DNS name (case
// and a trailing dot do not matter); ports are 1-65535.
type Route struct {
	Host    string // lower case, no trailing dot
	Port    uint16
	TLSPort uint16 // 0: no TLS on 443 for this host
	Proxy   bool
}

// String renders r in the tag's syntax.
func (r Route) String() string {
	s := r.Host + "," + strconv.Itoa(int(r.Port))
	if r.TLSPort != 0 {
		s += ",tls=" + strconv.Itoa(int(r.TLSPort))
	}
	if r.Proxy {
		s += ",proxy"
	}
	return s
}

// ParseRoute parses a codemux tag value; the error names what is wrong.
func ParseRoute(value string) (Route, error) {
	f := strings.Split(strings.TrimSpace(value), ",")
	if len(f) < 2 || len(f) > 4 {
		return Route{}, core.FieldErrorf(Codemux, "%q is not <host>,<port>[,tls=<port>][,proxy]", value)
	}
	host, err := NormalizeHost(strings.TrimSpace(f[0]))
	if err != nil {
		return Route{}, err
	}
	r := Route{Host: host}
	if r.Port, err = routePort("port", f[1]); err != nil {
		return Route{}, err
	}
	for _, opt := range f[2:] {
		opt = strings.TrimSpace(opt)
		switch {
		case opt == "proxy" && !r.Proxy:
			r.Proxy = true
		case strings.HasPrefix(opt, "tls=") && r.TLSPort == 0:
			if r.TLSPort, err = routePort("tls port", opt[len("tls="):]); err != nil {
				return Route{}, err
			}
		default:
			return Route{}, core.FieldErrorf(Codemux, "unknown or repeated option %q: want tls=<port> or proxy", opt)
		}
	}
	return r, nil
}

func routePort(what, s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, core.FieldErrorf(Codemux, "%s %q is not a port from 1 to 65535", what, strings.TrimSpace(s))
	}
	return uint16(n), nil
}

// NormalizeHost checks a DNS host name and returns it in lower case
// without a trailing dot: how codemux compares the names slices claim
// with the Host headers and SNI names clients send.
func NormalizeHost(h string) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(h, "."))
	if n == "" || len(n) > 253 {
		return "", core.FieldErrorf(Codemux, "host %q is not a DNS name of 1 to 253 characters", h)
	}
	for _, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", core.FieldErrorf(Codemux, "host %q is not a DNS name (label %q)", h, label)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", core.FieldErrorf(Codemux, "host %q is not a DNS name (character %q)", h, c)
			}
		}
	}
	return n, nil
}
