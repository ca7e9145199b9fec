// Package plcclient is the node side of the node API (package nodeapi): it
// joins a node to PLC, fetches and watches the node's desired state and
// reports the node's run level and sliver errors; Follower follows the
// desired state, reconnecting after an outage with jittered backoff.
//
// Transport security: PLC's TLS certificate is pinned by the SHA-256
// fingerprint of its DER encoding, taken from the join token and stored by
// the node; no certificate authority is consulted. A pinned client refuses
// plain-HTTP URLs (no silent downgrade). Only a PLC whose token carries no
// fingerprint may be reached over plain HTTP (development setups).
//
// Replicas: Config.URL may name several PLC replicas, comma-separated
// (docs/replicas.md). A request goes to the replica that answered last; on
// a connection failure, or an answer of 502, 503 or 504 (a load balancer
// or a replica without its database), it is sent to the next, each
// replica once, before the failure is returned.
//
// Errors are *core.Error values: the code comes from the HTTP status
// (401 -> Unauthenticated, 404 -> NotFound, 5xx -> Unavailable, ...), and
// network failures are Unavailable, so callers can tell "PLC refuses" from
// "PLC is unreachable" with core.ErrorCode.
package plcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/tlspin"
)

// DefaultTimeout bounds every request except the long poll, whose bound is
// its own timeout plus DefaultTimeout.
const DefaultTimeout = 20 * time.Second

// maxBody bounds what the client reads from PLC (a node state with many
// slivers and keys is at most a few MiB).
const maxBody = 64 << 20

// Config is what a node knows about its PLC.
type Config struct {
	URL         string // PLC base URL, e.g. https://plc.example.org:8443, or several comma-separated
	NodeID      int64
	NodeKey     string
	Fingerprint string        // lowercase hex SHA-256 of PLC's DER certificate; "" = not pinned
	Timeout     time.Duration // per request; 0 = DefaultTimeout
}

// Client talks to PLC's node API. It is safe for concurrent use.
type Client struct {
	bases   []*url.URL   // the replicas, in the configured order
	cur     atomic.Int32 // the index of the one that answered last
	nodeID  int64
	key     string
	timeout time.Duration
	hc      *http.Client

	clockMu    sync.Mutex
	clockMs    int64 // node clock minus PLC clock, last measurement
	clockKnown bool
}

// maxClockRTT bounds the round trip of a call used to measure the clock
// offset: the estimate is off by at most half of it.
const maxClockRTT = 2 * time.Second

// ClockOffset returns the node's clock minus PLC's in milliseconds, as
// measured on the last short call (state, report) whose answer carried
// nodeapi.TimeHeader with a round trip under 2 s; known is false until
// then.
func (c *Client) ClockOffset() (ms int64, known bool) {
	c.clockMu.Lock()
	defer c.clockMu.Unlock()
	return c.clockMs, c.clockKnown
}

// measureClock estimates the offset from PLC's time stamp and the call's
// start and end on the node's clock.
func (c *Client) measureClock(hdr string, start, end time.Time) {
	plc, err := time.Parse(time.RFC3339Nano, hdr)
	if err != nil || end.Sub(start) > maxClockRTT {
		return
	}
	mid := start.Add(end.Sub(start) / 2)
	c.clockMu.Lock()
	c.clockMs, c.clockKnown = mid.Sub(plc).Milliseconds(), true
	c.clockMu.Unlock()
}

// New returns a client for cfg, validating the URL and fingerprint.
func New(cfg Config) (*Client, error) {
	if cfg.NodeID <= 0 {
		return nil, core.FieldErrorf("node_id", "must be positive, got %d", cfg.NodeID)
	}
	if cfg.NodeKey == "" {
		return nil, core.FieldErrorf("node_key", "is empty")
	}
	c, err := newClient(cfg.URL, cfg.Fingerprint, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	c.nodeID, c.key = cfg.NodeID, cfg.NodeKey
	return c, nil
}

func newClient(rawURL, fingerprint string, timeout time.Duration) (*Client, error) {
	bases, err := core.ParsePLCURLs("plc_url", rawURL)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                 nil, // the node talks to its PLC directly
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // long polls wait for headers; bounded by request contexts
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	for _, u := range bases {
		switch u.Scheme {
		case "https":
		case "http":
			if fingerprint != "" {
				return nil, core.FieldErrorf("plc_url", "%q is plain HTTP but PLC's certificate is pinned; use https", u.String())
			}
		default:
			return nil, core.FieldErrorf("plc_url", "scheme %q: want https (or http for an unpinned development PLC)", u.Scheme)
		}
	}
	if fingerprint != "" {
		want, err := tlspin.Parse(fingerprint)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tlspin.Config(want)
	}
	return &Client{bases: bases, timeout: timeout, hc: &http.Client{Transport: tr}}, nil
}

// Join exchanges a one-time join token for the node's permanent key. plcURL
// is PLC's base URL; sshHostKey (authorized_keys format) is the node's SSH
// host key, recorded by PLC. The certificate is pinned by the token's
// fingerprint.
func Join(ctx context.Context, plcURL string, tok nodeapi.JoinToken, sshHostKey string) (nodeapi.JoinResponse, error) {
	c, err := newClient(plcURL, tok.Fingerprint, 0)
	if err != nil {
		return nodeapi.JoinResponse{}, err
	}
	defer c.hc.CloseIdleConnections()
	req := nodeapi.JoinRequest{NodeID: tok.NodeID, Secret: tok.Secret, SSHHostKey: sshHostKey}
	var resp nodeapi.JoinResponse
	if _, err := c.do(ctx, http.MethodPost, nodeapi.JoinPath, nil, req, &resp, c.timeout, false); err != nil {
		return nodeapi.JoinResponse{}, err
	}
	if resp.NodeID != tok.NodeID {
		return nodeapi.JoinResponse{}, core.Errorf(core.Internal, "join: PLC answered for node %d, asked for node %d", resp.NodeID, tok.NodeID)
	}
	if resp.NodeKey == "" {
		return nodeapi.JoinResponse{}, core.Errorf(core.Internal, "join: PLC returned an empty node key")
	}
	return resp, nil
}

// NodeID returns the node this client authenticates as.
func (c *Client) NodeID() int64 { return c.nodeID }

// State fetches the node's desired state.
func (c *Client) State(ctx context.Context) (*core.NodeState, error) {
	var st core.NodeState
	if _, err := c.do(ctx, http.MethodGet, nodeapi.StatePath, nil, nil, &st, c.timeout, true); err != nil {
		return nil, err
	}
	if err := c.check(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Watch long-polls for a desired state whose version differs from version.
// It returns the new state, or (nil, nil) when PLC's wait ended without a
// change (304). timeout is the server-side wait (0 = the server default).
func (c *Client) Watch(ctx context.Context, version string, timeout time.Duration) (*core.NodeState, error) {
	q := url.Values{}
	q.Set("version", version)
	wait := 55 * time.Second
	if timeout > 0 {
		secs := int((timeout + time.Second - 1) / time.Second)
		q.Set("timeout", strconv.Itoa(secs))
		wait = time.Duration(secs) * time.Second
	}
	var st core.NodeState
	status, err := c.do(ctx, http.MethodGet, nodeapi.WatchPath, q, nil, &st, wait+c.timeout, true)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotModified {
		return nil, nil
	}
	if err := c.check(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Report tells PLC about the node. A nil SliverErrors is sent as an empty
// object so that PLC clears errors that were fixed.
func (c *Client) Report(ctx context.Context, r nodeapi.Report) error {
	body := reportBody{Report: r, SliverErrors: r.SliverErrors}
	if body.SliverErrors == nil {
		body.SliverErrors = map[string]string{}
	}
	_, err := c.do(ctx, http.MethodPost, nodeapi.ReportPath, nil, body, nil, c.timeout, true)
	return err
}

// reportBody sends sliver_errors even when empty: an empty set of errors is
// information ("all fixed"), unlike the omitempty field of nodeapi.Report.
type reportBody struct {
	nodeapi.Report
	SliverErrors map[string]string `json:"sliver_errors"`
}

// CloseIdleConnections releases pooled connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// check rejects a state that is not for this node or carries no version.
func (c *Client) check(st *core.NodeState) error {
	if st.NodeID != c.nodeID {
		return core.Errorf(core.Internal, "PLC sent the state of node %d to node %d", st.NodeID, c.nodeID)
	}
	if st.Version == "" {
		return core.Errorf(core.Internal, "PLC sent a node state without a version")
	}
	return nil
}

// do performs one request. It returns the HTTP status of a successful
// (2xx or 304) answer, decoding a 200 body into out when out is non-nil.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any, timeout time.Duration, auth bool) (int, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, core.Errorf(core.Internal, "%s %s: encode request: %v", method, path, err)
		}
		body = b
	}
	first := int(c.cur.Load())
	var status int
	var err error
	for i := range c.bases {
		k := (first + i) % len(c.bases)
		var failover bool
		status, failover, err = c.doAt(ctx, c.bases[k], method, path, q, body, out, timeout, auth)
		if !failover || ctx.Err() != nil {
			if err == nil && k != first {
				c.cur.Store(int32(k))
			}
			return status, err
		}
		if len(c.bases) > 1 {
			// The next one is now the first to try, for every request.
			c.cur.CompareAndSwap(int32(k), int32((k+1)%len(c.bases)))
		}
	}
	return status, err
}

// URL returns the base URL of the replica requests go to first.
func (c *Client) URL() string { return c.bases[c.cur.Load()].String() }

// doAt performs one request at one replica; failover tells whether the
// next replica should be tried (no connection, or a 502/503/504 answer).
func (c *Client) doAt(ctx context.Context, base *url.URL, method, path string, q url.Values, in []byte, out any, timeout time.Duration, auth bool) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := *base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, false, core.Errorf(core.Invalid, "%s %s: %v", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", fmt.Sprintf("%s %d:%s", nodeapi.AuthScheme, c.nodeID, c.key))
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, core.MayFailOver(method, err), &core.Error{Code: core.Unavailable, Message: fmt.Sprintf("%s %s: PLC unreachable at %s", method, path, base.Host), Err: err}
	}
	defer resp.Body.Close()
	if h := resp.Header.Get(nodeapi.TimeHeader); h != "" && path != nodeapi.WatchPath {
		c.measureClock(h, start, time.Now())
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, core.MayFailOver(method, nil), &core.Error{Code: core.Unavailable, Message: fmt.Sprintf("%s %s: reading answer", method, path), Err: err}
	}
	if len(data) > maxBody {
		return 0, false, core.Errorf(core.Internal, "%s %s: answer larger than %d bytes", method, path, maxBody)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return resp.StatusCode, false, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if out != nil && resp.StatusCode != http.StatusNoContent {
			if err := json.Unmarshal(data, out); err != nil {
				return 0, false, core.Errorf(core.Internal, "%s %s: undecodable answer: %v", method, path, err)
			}
		}
		return resp.StatusCode, false, nil
	}
	return 0, core.StatusMayFailOver(method, resp.StatusCode), &core.Error{Code: statusCode(resp.StatusCode),
		Message: fmt.Sprintf("%s %s: PLC answered %d: %s", method, path, resp.StatusCode, errorMessage(data))}
}

// statusCode maps an HTTP error status to a domain code.
func statusCode(status int) core.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return core.Invalid
	case http.StatusUnauthorized:
		return core.Unauthenticated
	case http.StatusForbidden:
		return core.Forbidden
	case http.StatusNotFound:
		return core.NotFound
	case http.StatusConflict:
		return core.Conflict
	case http.StatusNotImplemented:
		return core.Unimplemented
	case http.StatusTooManyRequests:
		return core.Unavailable
	}
	if status >= 500 {
		return core.Unavailable
	}
	return core.Internal
}

// errorMessage extracts a human message from an error body: JSON
// {"error": {"message": ...}}, {"error": "..."}, {"message": ...}, or text.
func errorMessage(data []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(data, &v) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &inner) == nil && inner.Message != "":
			return inner.Message
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return s
		case v.Message != "":
			return v.Message
		}
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(no message)"
	}
	return s
}
