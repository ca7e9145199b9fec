package peering

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/tlspin"
)

// Backend is what the peer endpoints need from the registry.
type Backend interface {
	// PeerByKey returns the peer whose key is the given text form; an
	// unknown key is an error.
	PeerByKey(ctx context.Context, key string) (peerID int64, pub ed25519.PublicKey, err error)
	// PeerData is this PLC's data for the peer.
	PeerData(ctx context.Context, peerID int64) (*Data, error)
	// PeerNotified records that the peer asks to be refreshed.
	PeerNotified(peerID int64)
}

// Handler serves DataPath and NotifyPath (mounted at the root of the PLC's
// URL): requests must be signed by the key of a known peer; answers are
// signed with key.
func Handler(b Backend, key ed25519.PrivateKey, log *slog.Logger, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	serve := func(method, path string, fn func(ctx context.Context, peer int64) (any, error)) {
		mux.HandleFunc(method+" /"+path, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
				return
			}
			refuse := func(code int, msg string) {
				log.Warn("peer request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "why", msg)
				http.Error(w, msg, code)
			}
			claimed, err := SignedKey(r.Header)
			if err != nil {
				refuse(http.StatusUnauthorized, err.Error())
				return
			}
			peer, pub, err := b.PeerByKey(r.Context(), claimed)
			if err != nil {
				refuse(http.StatusUnauthorized, err.Error())
				return
			}
			if err := Verify(r.Header, pub, KindRequest, r.Method, r.URL.RequestURI(), now(), body); err != nil {
				refuse(http.StatusUnauthorized, fmt.Sprintf("peer %d: %v", peer, err))
				return
			}
			v, err := fn(r.Context(), peer)
			if err != nil {
				log.Error("peer request failed", "peer", peer, "path", r.URL.Path, "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			out, err := json.Marshal(v)
			if err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			Sign(w.Header(), key, KindResponse, r.Method, r.URL.RequestURI(), now(), out)
			w.Header().Set("Content-Type", "application/json")
			w.Write(out)
		})
	}
	mux.HandleFunc("GET /"+KeyPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"key": FormatPublicKey(key.Public().(ed25519.PublicKey))})
	})
	serve(http.MethodGet, DataPath, func(ctx context.Context, peer int64) (any, error) {
		return b.PeerData(ctx, peer)
	})
	serve(http.MethodPost, NotifyPath, func(ctx context.Context, peer int64) (any, error) {
		b.PeerNotified(peer)
		return map[string]int{"ok": 1}, nil
	})
	return mux
}

// Client calls a peer's endpoints, signing with this PLC's key and
// checking the answer's signature against the peer's key.
type Client struct {
	Key ed25519.PrivateKey
	// Now is the clock (default time.Now); Timeout bounds a call (default
	// 30 s).
	Now     func() time.Time
	Timeout time.Duration
}

// Peer is where and who a peer is.
type Peer struct {
	URL string // the peer's base URL (ends with '/')
	Key ed25519.PublicKey
	Pin []byte // SHA-256 of its TLS certificate; nil: any certificate (the signatures authenticate)
}

func (c *Client) call(ctx context.Context, p Peer, method, path string, out any) error {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} // the answer's signature authenticates it
	if p.Pin != nil {
		tc = tlspin.Config(p.Pin)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
	u := strings.TrimSuffix(p.URL, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, method, u, http.NoBody)
	if err != nil {
		return err
	}
	Sign(req.Header, c.Key, KindRequest, method, req.URL.RequestURI(), now(), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDataBytes+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := Verify(resp.Header, p.Key, KindResponse, method, req.URL.RequestURI(), now(), body); err != nil {
		return fmt.Errorf("answer of %s: %w", u, err)
	}
	if d, ok := out.(**Data); ok {
		*d, err = DecodeData(body)
		return err
	}
	return nil
}

// Fetch gets the peer's data for this PLC.
func (c *Client) Fetch(ctx context.Context, p Peer) (*Data, error) {
	var d *Data
	if err := c.call(ctx, p, http.MethodGet, DataPath, &d); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, errors.New("empty peer data")
	}
	return d, nil
}

// Notify asks the peer to refresh this PLC soon.
func (c *Client) Notify(ctx context.Context, p Peer) error {
	return c.call(ctx, p, http.MethodPost, NotifyPath, nil)
}
