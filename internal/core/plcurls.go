package core

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// ParsePLCURLs parses PLC's base URL, or the base URLs of several PLC
// replicas separated by commas (docs/replicas.md), as nodes and the CLI
// take them: each must be absolute (scheme and host; a trailing slash is
// dropped); duplicates and empty items are refused with a FieldError on
// field.
func ParsePLCURLs(field, raw string) ([]*url.URL, error) {
	var out []*url.URL
	seen := map[string]bool{}
	for item := range strings.SplitSeq(raw, ",") {
		item = strings.TrimSpace(item)
		u, err := url.Parse(strings.TrimRight(item, "/"))
		if err != nil || u.Host == "" || u.Scheme == "" {
			return nil, FieldErrorf(field, "%q is not an absolute URL", item)
		}
		if seen[u.String()] {
			return nil, FieldErrorf(field, "%q is listed twice", item)
		}
		seen[u.String()] = true
		out = append(out, u)
	}
	return out, nil
}

// MayFailOver tells whether a request that failed with err (a transport
// error; nil: the answer could not be read) may be sent again to another
// PLC replica. Idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) may
// always; others only when the connection was never made (the first
// replica cannot have acted on it).
func MayFailOver(method string, err error) bool {
	if idempotent(method) {
		return true
	}
	var op *net.OpError
	return err != nil && errors.As(err, &op) && op.Op == "dial"
}

// StatusMayFailOver tells whether an answer with HTTP status code may be
// retried at another replica: 503 (a replica without its database, or a
// load balancer with no replica up) always, 502 and 504 for idempotent
// methods (the request may have been acted on).
func StatusMayFailOver(method string, code int) bool {
	switch code {
	case 503:
		return true
	case 502, 504:
		return idempotent(method)
	}
	return false
}

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS":
		return true
	}
	return false
}
