// Package amclient is a Go client of the GENI AM API v3: XML-RPC over
// HTTPS with a client certificate. The aggregate's contract tests use it;
// it speaks to any AM API v3 aggregate.
package amclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// Client calls one aggregate.
type Client struct {
	URL  string
	HTTP *http.Client
}

// New returns a client of the aggregate at url; tc holds the client
// certificate and how to trust the aggregate's.
func New(url string, tc *tls.Config) *Client {
	return &Client{URL: url, HTTP: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}
}

// Result is an answer: its geni_code, output and value.
type Result struct {
	Code   geni.Code
	Output string
	Value  any
	Raw    map[string]any
}

// Err is the answer as an error (nil on success).
func (r *Result) Err() error {
	if r.Code == geni.Success {
		return nil
	}
	return &geni.Error{Code: r.Code, Message: r.Output}
}

// Map is the value as a struct.
func (r *Result) Map() map[string]any { m, _ := r.Value.(map[string]any); return m }

// List is the value as an array.
func (r *Result) List() []any { l, _ := r.Value.([]any); return l }

// Call calls method with args; err is a transport or encoding failure
// only, the AM API's own failures are in the Result.
func (c *Client) Call(ctx context.Context, method string, args ...any) (*Result, error) {
	body, err := xmlrpc.EncodeCall(method, args...)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: HTTP %s: %s", method, resp.Status, b)
	}
	v, err := xmlrpc.DecodeResponse(resp.Body, xmlrpc.Limits{MaxBytes: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: answer is %T, not a struct", method, v)
	}
	code, _ := m["code"].(map[string]any)
	n, _ := code["geni_code"].(int64)
	out, _ := m["output"].(string)
	return &Result{Code: geni.Code(n), Output: out, Value: m["value"], Raw: m}, nil
}

// Cred wraps a signed credential as AM API v3 wants it.
func Cred(signed string) map[string]any {
	return map[string]any{"geni_type": geni.CredentialSFA, "geni_version": geni.CredentialVersion, "geni_value": signed}
}

// Creds wraps credentials.
func Creds(signed ...string) []any {
	out := make([]any, len(signed))
	for i, s := range signed {
		out[i] = Cred(s)
	}
	return out
}

// V3 is the geni_rspec_version option of GENI RSpec v3.
func V3() map[string]any {
	return map[string]any{"type": geni.RSpecType, "version": geni.RSpecVersion}
}

// Strs turns URNs into an XML-RPC array.
func Strs(s ...string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// GetVersion calls GetVersion.
func (c *Client) GetVersion(ctx context.Context) (*Result, error) {
	return c.Call(ctx, "GetVersion", map[string]any{})
}

// ListResources calls ListResources.
func (c *Client) ListResources(ctx context.Context, creds []any, opts map[string]any) (*Result, error) {
	return c.Call(ctx, "ListResources", creds, opts)
}

// Allocate calls Allocate.
func (c *Client) Allocate(ctx context.Context, slice string, creds []any, rspec string, opts map[string]any) (*Result, error) {
	return c.Call(ctx, "Allocate", slice, creds, rspec, opts)
}

// Provision calls Provision.
func (c *Client) Provision(ctx context.Context, urns []string, creds []any, opts map[string]any) (*Result, error) {
	return c.Call(ctx, "Provision", Strs(urns...), creds, opts)
}

// Status calls Status.
func (c *Client) Status(ctx context.Context, urns []string, creds []any) (*Result, error) {
	return c.Call(ctx, "Status", Strs(urns...), creds, map[string]any{})
}

// Describe calls Describe.
func (c *Client) Describe(ctx context.Context, urns []string, creds []any, opts map[string]any) (*Result, error) {
	return c.Call(ctx, "Describe", Strs(urns...), creds, opts)
}

// Renew calls Renew.
func (c *Client) Renew(ctx context.Context, urns []string, creds []any, until time.Time, opts map[string]any) (*Result, error) {
	return c.Call(ctx, "Renew", Strs(urns...), creds, until.UTC().Format(time.RFC3339), opts)
}

// PerformOperationalAction calls PerformOperationalAction.
func (c *Client) PerformOperationalAction(ctx context.Context, urns []string, creds []any, action string, opts map[string]any) (*Result, error) {
	return c.Call(ctx, "PerformOperationalAction", Strs(urns...), creds, action, opts)
}

// Delete calls Delete.
func (c *Client) Delete(ctx context.Context, urns []string, creds []any) (*Result, error) {
	return c.Call(ctx, "Delete", Strs(urns...), creds, map[string]any{})
}

// Shutdown calls Shutdown.
func (c *Client) Shutdown(ctx context.Context, slice string, creds []any) (*Result, error) {
	return c.Call(ctx, "Shutdown", slice, creds, map[string]any{})
}
