// Package client is a Go client of PLC's REST API that implements
// core.Registry, so the CLI and tests use the same contract as in-process
// callers. TLS can be pinned by the SHA-256 fingerprint of PLC's
// certificate (the way `pl login --fingerprint` and nodes trust a PLC with a
// self-signed certificate) or verified against a CA bundle.
//
// The client acts with the identity of its bearer token (Options.Token or
// Login); a *core.Caller passed to a method is used only for its Session,
// when set, which then replaces the token for that call.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/restapi"
	"github.com/planetlab/pl/internal/tlspin"
)

// DefaultTimeout bounds one request (long polls excepted).
const DefaultTimeout = 30 * time.Second

// Options configure a Client.
type Options struct {
	Token       string         // bearer session or API token
	Fingerprint string         // pin: hex SHA-256 of PLC's DER certificate (colons allowed)
	CAFile      string         // PEM bundle to verify PLC's certificate with
	RootCAs     *x509.CertPool // alternative to CAFile
	Timeout     time.Duration  // per request; 0 = DefaultTimeout
}

// Client talks to one PLC, possibly through several replicas: a request
// goes to the replica that answered last and, when it cannot be reached or
// answers 502, 503 or 504, to the next (docs/replicas.md).
type Client struct {
	bases   []*url.URL
	cur     atomic.Int32
	hc      *http.Client
	timeout time.Duration

	mu    sync.Mutex
	token string
}

var _ core.Registry = (*Client)(nil)

// New returns a client of the PLC at baseURL (https://host:port), or of
// several PLC replicas: comma-separated base URLs.
func New(baseURL string, opts Options) (*Client, error) {
	bases, err := core.ParsePLCURLs("url", baseURL)
	if err != nil {
		return nil, err
	}
	scheme := bases[0].Scheme
	for _, u := range bases {
		if u.Scheme != "https" && u.Scheme != "http" {
			return nil, core.FieldErrorf("url", "%q is not an http(s) URL", u.String())
		}
		if u.Scheme != scheme {
			return nil, core.FieldErrorf("url", "%q: all replicas must use one scheme", baseURL)
		}
	}
	u := bases[0]
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	if u.Scheme == "https" {
		cfg, err := tlsConfig(opts)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = cfg
	} else if opts.Fingerprint != "" || opts.CAFile != "" {
		return nil, core.FieldErrorf("url", "%q is plain HTTP: a certificate pin or CA makes no sense", baseURL)
	}
	t := opts.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return &Client{bases: bases, hc: &http.Client{Transport: tr}, timeout: t, token: opts.Token}, nil
}

func tlsConfig(opts Options) (*tls.Config, error) {
	if opts.Fingerprint != "" {
		want, err := tlspin.Parse(opts.Fingerprint)
		if err != nil {
			return nil, err
		}
		return tlspin.Config(want), nil
	}
	pool := opts.RootCAs
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, core.FieldErrorf("ca", "%v", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, core.FieldErrorf("ca", "%s holds no PEM certificate", opts.CAFile)
		}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// CloseIdleConnections closes the kept-alive connections (the next call
// connects afresh: through a load balancer, possibly to another replica).
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// URL returns the PLC base URL (of the replica requests go to first).
func (c *Client) URL() string { return c.bases[c.cur.Load()].String() }

// Token returns the bearer token in use.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// SetToken replaces the bearer token.
func (c *Client) SetToken(t string) {
	c.mu.Lock()
	c.token = t
	c.mu.Unlock()
}

// Login starts a session with email and password, makes it the client's
// token and returns it.
func (c *Client) Login(ctx context.Context, email, password string, ttl time.Duration) (core.SessionInfo, error) {
	var resp restapi.SessionResponse
	err := c.do(ctx, nil, http.MethodPost, "/sessions", nil,
		restapi.SessionRequest{Email: email, Password: password, TTL: int64(ttl / time.Second)}, &resp, "-")
	if err != nil {
		return core.SessionInfo{}, err
	}
	c.SetToken(resp.Token)
	return core.SessionInfo{ID: resp.Token, Expires: resp.Expires}, nil
}

// Logout deletes the client's session and forgets the token.
func (c *Client) Logout(ctx context.Context) error {
	err := c.do(ctx, nil, http.MethodDelete, "/sessions", nil, nil, nil, "")
	if err == nil {
		c.SetToken("")
	}
	return err
}

// Whoami describes the identity of the client's token.
func (c *Client) Whoami(ctx context.Context) (restapi.Whoami, error) {
	var w restapi.Whoami
	err := c.do(ctx, nil, http.MethodGet, "/whoami", nil, nil, &w, "")
	return w, err
}

// Authenticate checks credentials with PLC and returns the caller. Password
// credentials start a session (the returned caller's Session), which does
// not replace the client's token.
func (c *Client) Authenticate(ctx context.Context, cred core.Credentials, roles []string) (*core.Caller, error) {
	var auth string
	switch cred.Method {
	case "password":
		var resp restapi.SessionResponse
		err := c.do(ctx, nil, http.MethodPost, "/sessions", nil,
			restapi.SessionRequest{Email: cred.Username, Password: cred.Password}, &resp, "-")
		if err != nil {
			return nil, err
		}
		cred.Session = resp.Token
		auth = "Bearer " + resp.Token
	case "session":
		auth = "Bearer " + cred.Session
	case "node_key":
		auth = fmt.Sprintf("%s %d:%s", nodeapi.AuthScheme, cred.NodeID, cred.NodeKey)
	case "anonymous", "":
		auth = "-"
	default:
		return nil, core.FieldErrorf("AuthMethod", "unsupported method %q", cred.Method)
	}
	var w restapi.Whoami
	if err := c.do(ctx, nil, http.MethodGet, "/whoami", nil, nil, &w, auth); err != nil {
		return nil, err
	}
	caller := &core.Caller{PersonID: w.PersonID, Email: w.Email, Roles: w.Roles, SiteIDs: w.SiteIDs, NodeID: w.NodeID, Session: cred.Session}
	switch w.Kind {
	case "person":
		caller.Kind = core.PersonCaller
	case "node":
		caller.Kind = core.NodeCaller
	default:
		caller.Kind = core.Anonymous
	}
	if len(roles) > 0 && caller.Kind == core.PersonCaller {
		ok := false
		for _, r := range roles {
			ok = ok || caller.HasRole(r)
		}
		if !ok {
			return nil, core.Errorf(core.Unauthenticated, "caller holds none of the roles %v", roles)
		}
	}
	return caller, nil
}

// VerifyNodeHMAC is not available remotely.
func (c *Client) VerifyNodeHMAC(ctx context.Context, nodeID int64, value, message string) (*core.Caller, error) {
	return nil, core.Errorf(core.Unimplemented, "VerifyNodeHMAC is not available over REST")
}

// OpRoles returns the role set of a PLCAPI operation (nil if PLC cannot be asked).
func (c *Client) OpRoles(op string) []string {
	var resp restapi.RolesResponse
	if err := c.do(context.Background(), nil, http.MethodGet, "/op-roles/"+url.PathEscape(op), nil, nil, &resp, "-"); err != nil {
		return nil
	}
	return resp.Roles
}

// CreateSession starts another session (an API token) for the client's identity.
func (c *Client) CreateSession(ctx context.Context, caller *core.Caller, ttl time.Duration) (core.SessionInfo, error) {
	var resp restapi.SessionResponse
	err := c.do(ctx, caller, http.MethodPost, "/tokens", nil, restapi.TokenRequest{TTL: int64(ttl / time.Second)}, &resp, "")
	return core.SessionInfo{ID: resp.Token, Expires: resp.Expires}, err
}

// DeleteSession deletes a session.
func (c *Client) DeleteSession(ctx context.Context, caller *core.Caller, id string) error {
	return c.do(ctx, caller, http.MethodDelete, "/sessions/"+url.PathEscape(id), nil, nil, nil, "")
}

// Resolve turns an id (int64) or a name (string) into an id.
func (c *Client) Resolve(ctx context.Context, caller *core.Caller, class core.Class, ref any) (int64, error) {
	q := url.Values{"class": {string(class)}}
	switch r := ref.(type) {
	case int64:
		q.Set("id", strconv.FormatInt(r, 10))
	case int:
		q.Set("id", strconv.Itoa(r))
	case string:
		q.Set("name", r)
	default:
		return 0, core.FieldErrorf(string(class), "want an id or a name, got %T", ref)
	}
	var resp restapi.ResolveResponse
	err := c.do(ctx, caller, http.MethodGet, "/resolve", q, nil, &resp, "")
	return resp.ID, err
}

func classPath(class core.Class) (string, error) {
	p := restapi.ClassPath(class)
	if p == "" {
		return "", core.Errorf(core.Invalid, "class %q has no REST collection", class)
	}
	return "/" + p, nil
}

// Get lists objects.
func (c *Client) Get(ctx context.Context, caller *core.Caller, class core.Class, f *core.Filter, fields []string) ([]core.Record, error) {
	p, err := classPath(class)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if f != nil {
		spec, err := EncodeFilter(f)
		if err != nil {
			return nil, err
		}
		q.Set("filter", spec)
	}
	if len(fields) > 0 {
		q.Set("fields", strings.Join(fields, ","))
	}
	var raw []map[string]any
	if err := c.do(ctx, caller, http.MethodGet, p, q, nil, &raw, ""); err != nil {
		return nil, err
	}
	out := make([]core.Record, len(raw))
	for i, m := range raw {
		rec, err := restapi.ConvertValue("", m)
		if err != nil {
			return nil, fmt.Errorf("decoding %s %d from PLC: %w", class, i, err)
		}
		out[i] = rec.(core.Record)
	}
	return out, nil
}

// Add creates an object.
func (c *Client) Add(ctx context.Context, caller *core.Caller, class core.Class, fields core.Record) (int64, error) {
	if class == core.Lease {
		return 0, core.Errorf(core.Invalid, "leases are added with AddLeases")
	}
	p, err := classPath(class)
	if err != nil {
		return 0, err
	}
	var resp restapi.Created
	err = c.do(ctx, caller, http.MethodPost, p, nil, fields, &resp, "")
	return resp.ID, err
}

// Update changes fields of an object.
func (c *Client) Update(ctx context.Context, caller *core.Caller, class core.Class, id int64, fields core.Record) error {
	p, err := classPath(class)
	if err != nil {
		return err
	}
	return c.do(ctx, caller, http.MethodPatch, p+"/"+strconv.FormatInt(id, 10), nil, fields, nil, "")
}

// Delete removes an object.
func (c *Client) Delete(ctx context.Context, caller *core.Caller, class core.Class, id int64) error {
	p, err := classPath(class)
	if err != nil {
		return err
	}
	return c.do(ctx, caller, http.MethodDelete, p+"/"+strconv.FormatInt(id, 10), nil, nil, nil, "")
}

func relPath(rel core.Relation, a, b int64) (string, error) {
	ap, sub, ok := restapi.RelationPath(rel)
	if !ok {
		return "", core.Errorf(core.Invalid, "unknown relation %q", rel)
	}
	return fmt.Sprintf("/%s/%d/%s/%d", ap, a, sub, b), nil
}

// Link adds a relation member.
func (c *Client) Link(ctx context.Context, caller *core.Caller, rel core.Relation, a, b int64, extra core.Record) error {
	p, err := relPath(rel, a, b)
	if err != nil {
		return err
	}
	var body any
	if extra != nil {
		body = extra
	}
	return c.do(ctx, caller, http.MethodPut, p, nil, body, nil, "")
}

// Unlink removes a relation member.
func (c *Client) Unlink(ctx context.Context, caller *core.Caller, rel core.Relation, a, b int64) error {
	p, err := relPath(rel, a, b)
	if err != nil {
		return err
	}
	return c.do(ctx, caller, http.MethodDelete, p, nil, nil, nil, "")
}

// SetPersonPrimarySite makes siteID the person's primary site.
func (c *Client) SetPersonPrimarySite(ctx context.Context, caller *core.Caller, personID, siteID int64) error {
	return c.do(ctx, caller, http.MethodPut, fmt.Sprintf("/persons/%d/primary-site/%d", personID, siteID), nil, nil, nil, "")
}

// BlacklistKey blacklists a key's material.
func (c *Client) BlacklistKey(ctx context.Context, caller *core.Caller, keyID int64) error {
	return c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/keys/%d/blacklist", keyID), nil, nil, nil, "")
}

// RenewSlice sets a slice's expiry and returns the expiry granted.
func (c *Client) RenewSlice(ctx context.Context, caller *core.Caller, sliceID, expires int64) (int64, error) {
	var resp restapi.RenewResponse
	err := c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/slices/%d/renew", sliceID), nil, restapi.RenewRequest{Expires: expires}, &resp, "")
	return resp.Expires, err
}

// AddLeases reserves nodes for a slice.
func (c *Client) AddLeases(ctx context.Context, caller *core.Caller, nodeIDs []int64, sliceID, from, until int64) ([]int64, []string, error) {
	var resp restapi.LeasesResponse
	err := c.do(ctx, caller, http.MethodPost, "/leases", nil,
		restapi.LeasesRequest{NodeIDs: nodeIDs, SliceID: sliceID, TFrom: from, TUntil: until}, &resp, "")
	return resp.NewIDs, resp.Errors, err
}

// IssueJoinToken creates a node's one-time join secret.
func (c *Client) IssueJoinToken(ctx context.Context, caller *core.Caller, nodeID int64) (string, error) {
	resp, err := c.JoinToken(ctx, nodeID)
	return resp.Secret, err
}

// JoinToken issues a node's one-time join secret and returns it with the
// complete token string for `pl node join`.
func (c *Client) JoinToken(ctx context.Context, nodeID int64) (restapi.JoinTokenResponse, error) {
	var resp restapi.JoinTokenResponse
	err := c.do(ctx, nil, http.MethodPost, fmt.Sprintf("/nodes/%d/join-token", nodeID), nil, nil, &resp, "")
	return resp, err
}

// JoinNode exchanges a join secret for the node's permanent key.
func (c *Client) JoinNode(ctx context.Context, nodeID int64, secret, sshHostKey string) (string, error) {
	var resp nodeapi.JoinResponse
	err := c.do(ctx, nil, http.MethodPost, strings.TrimPrefix(nodeapi.JoinPath, restapi.Prefix), nil,
		nodeapi.JoinRequest{NodeID: nodeID, Secret: secret, SSHHostKey: sshHostKey}, &resp, "-")
	return resp.NodeKey, err
}

// NodeState returns a node's desired state.
func (c *Client) NodeState(ctx context.Context, caller *core.Caller, nodeID int64) (*core.NodeState, error) {
	var st core.NodeState
	if err := c.do(ctx, caller, http.MethodGet, fmt.Sprintf("/nodes/%d/state", nodeID), nil, nil, &st, ""); err != nil {
		return nil, err
	}
	for _, recs := range [][]core.Record{st.Interfaces, st.ConfFiles} {
		for i, r := range recs {
			v, err := restapi.ConvertValue("", map[string]any(r))
			if err != nil {
				return nil, fmt.Errorf("decoding node state: %w", err)
			}
			recs[i] = v.(core.Record)
		}
	}
	return &st, nil
}

// WatchNodeState long-polls PLC and closes the returned channel when the
// node's state differs from version, when a poll fails (the caller then
// re-reads the state and sees the error) or when ctx ends.
func (c *Client) WatchNodeState(ctx context.Context, caller *core.Caller, nodeID int64, version string) (<-chan struct{}, error) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		q := url.Values{"version": {version}, "timeout": {"55"}}
		for ctx.Err() == nil {
			var st core.NodeState
			status, err := c.doStatus(ctx, caller, http.MethodGet, fmt.Sprintf("/nodes/%d/watch", nodeID), q, nil, &st, "", 60*time.Second+c.timeout)
			if err != nil || status != http.StatusNotModified {
				return
			}
		}
	}()
	return ch, nil
}

// ReportNode records what a node says about itself.
func (c *Client) ReportNode(ctx context.Context, caller *core.Caller, nodeID int64, r core.NodeReport) error {
	return c.do(ctx, caller, http.MethodPost, fmt.Sprintf("/nodes/%d/report", nodeID), nil,
		restapi.ReportRequest{RunLevel: r.RunLevel, BootState: r.BootState, SSHHostKey: r.SSHHostKey, Version: r.Version, SliverErrors: r.SliverErrors}, nil, "")
}

// do performs one API call. auth overrides the Authorization header: ""
// uses the caller's session or the client token, "-" sends none.
func (c *Client) do(ctx context.Context, caller *core.Caller, method, path string, q url.Values, in, out any, auth string) error {
	_, err := c.doStatus(ctx, caller, method, path, q, in, out, auth, c.timeout)
	return err
}

func (c *Client) doStatus(ctx context.Context, caller *core.Caller, method, path string, q url.Values, in, out any, auth string, timeout time.Duration) (int, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(keepFloats(in))
		if err != nil {
			return 0, core.Errorf(core.Invalid, "encoding request: %v", err)
		}
		body = b
	}
	first := int(c.cur.Load())
	var status int
	var err error
	for i := range c.bases {
		k := (first + i) % len(c.bases)
		var failover bool
		status, failover, err = c.doAt(ctx, c.bases[k], caller, method, path, q, body, out, auth, timeout)
		if !failover || ctx.Err() != nil {
			if err == nil && k != first {
				c.cur.Store(int32(k))
			}
			return status, err
		}
		if len(c.bases) > 1 {
			c.cur.CompareAndSwap(int32(k), int32((k+1)%len(c.bases)))
		}
	}
	return status, err
}

// doAt performs one call at one replica; failover tells whether the next
// replica should be tried (no connection, or a 502/503/504 answer).
func (c *Client) doAt(ctx context.Context, base *url.URL, caller *core.Caller, method, path string, q url.Values, in []byte, out any, auth string, timeout time.Duration) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := *base
	u.Path = base.Path + restapi.Prefix + path
	u.RawQuery = q.Encode()
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return 0, false, core.Errorf(core.Invalid, "building request: %v", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case auth == "-":
	case auth != "":
		req.Header.Set("Authorization", auth)
	case caller != nil && caller.Session != "":
		req.Header.Set("Authorization", "Bearer "+caller.Session)
	default:
		if t := c.Token(); t != "" {
			req.Header.Set("Authorization", "Bearer "+t)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, core.MayFailOver(method, err), &core.Error{Code: core.Unavailable, Message: fmt.Sprintf("%s %s", method, u.Redacted()), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, core.MayFailOver(method, nil), &core.Error{Code: core.Unavailable, Message: "reading PLC answer", Err: err}
	}
	if resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, false, nil
	}
	if resp.StatusCode >= 300 {
		s := resp.StatusCode
		return s, core.StatusMayFailOver(method, s), decodeError(s, data)
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.StatusCode, false, core.Errorf(core.Internal, "decoding PLC answer to %s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, false, nil
}

// decodeError turns an error answer into a *core.Error.
func decodeError(status int, data []byte) error {
	var eb restapi.ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error.Code != "" {
		msg := eb.Error.Message
		if eb.Error.Field != "" {
			msg = strings.TrimPrefix(msg, eb.Error.Field+": ")
		}
		return &core.Error{Code: eb.Error.Code, Field: eb.Error.Field, Message: msg, RetryAfter: time.Duration(eb.Error.RetryAfter) * time.Second}
	}
	code := core.Internal
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		code = core.Invalid
	case http.StatusNotFound:
		code = core.NotFound
	case http.StatusConflict:
		code = core.Conflict
	case http.StatusUnauthorized:
		code = core.Unauthenticated
	case http.StatusForbidden:
		code = core.Forbidden
	case http.StatusTooManyRequests:
		code = core.RateLimited
	case http.StatusNotImplemented:
		code = core.Unimplemented
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		code = core.Unavailable
	}
	text := strings.TrimSpace(string(data))
	if len(text) > 200 {
		text = text[:200]
	}
	return &core.Error{Code: code, Message: fmt.Sprintf("PLC answered HTTP %d: %s", status, text)}
}

// DeleteLookup deletes a name from a lookup table (boot states, node
// types, ...), which Delete's int ids cannot name.
func (c *Client) DeleteLookup(ctx context.Context, caller *core.Caller, class core.Class, name string) error {
	p, err := classPath(class)
	if err != nil {
		return err
	}
	return c.do(ctx, caller, http.MethodDelete, p+"/"+url.PathEscape(name), nil, nil, nil, "")
}

// jsonFloat marshals a float64 so that it reads back as a float: integral
// values keep a ".0" (PLC types JSON integer literals as integers and
// refuses them for float fields such as latitude).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("%v is not a finite number", v)
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}

// keepFloats replaces float64 values of records (recursively) by jsonFloat.
func keepFloats(v any) any {
	switch x := v.(type) {
	case float64:
		return jsonFloat(x)
	case core.Record:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = keepFloats(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = keepFloats(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = keepFloats(e)
		}
		return out
	case []core.Record:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = keepFloats(e)
		}
		return out
	case []float64:
		out := make([]jsonFloat, len(x))
		for i, e := range x {
			out[i] = jsonFloat(e)
		}
		return out
	}
	return v
}
