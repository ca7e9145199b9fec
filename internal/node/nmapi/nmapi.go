// Package nmapi is the node manager's local API (reference
// nodemanager.md §4, in JSON instead of XML-RPC): HTTP on a Unix socket,
// one method per path (POST /<Method>, a JSON object of arguments,
// MaxRequest bytes at most), answered with a JSON result or an error body
// {code, field, message}. The caller is identified by the kernel: the
// peer credentials of the connection (SO_PEERCRED) give its uid, which the
// server maps to a slice (a sliver's uid range) or to the host's root;
// nothing the caller says about itself is believed.
package nmapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/planetlab/pl/internal/core"
)

// DefaultSocket is where the node manager listens by default (its
// state directory's api.sock).
const DefaultSocket = "/var/lib/pl/node/api.sock"

// MaxRequest bounds a request body (the original's forwarder read 1 MiB).
const MaxRequest = 1 << 20

// Caller is who called, as the kernel says.
type Caller struct {
	UID   uint32
	PID   int32
	Root  bool   // the host's root: may do anything
	Slice string // the calling sliver's slice ("" for root)
}

// Method is one API method. Anyone methods may be called by any
// identified caller (Ticket: the ticket is the credential); the others
// get the caller and decide.
type Method struct {
	Fn   func(ctx context.Context, c Caller, args json.RawMessage) (any, error)
	Help string
}

// Server serves Methods on a Unix socket.
type Server struct {
	Methods map[string]Method
	// Identify maps a peer uid other than 0 to its slice; false = not a
	// sliver's uid, refused.
	Identify func(uid uint32) (string, bool)
	Log      *slog.Logger
}

type peerKey struct{}

// Listen opens the socket at path (replacing a stale one), mode 0666: any
// local process may connect, identity comes from the kernel.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// Serve serves ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if uc, ok := c.(*net.UnixConn); ok {
				if cred, err := peerCred(uc); err == nil {
					return context.WithValue(ctx, peerKey{}, cred)
				}
			}
			return ctx
		},
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	return cred, cerr
}

// ErrorBody is the answer to a refused call.
type ErrorBody struct {
	Code    core.Code `json:"code"`
	Field   string    `json:"field,omitempty"`
	Message string    `json:"message"`
}

func status(code core.Code) int {
	switch code {
	case core.Invalid:
		return http.StatusBadRequest
	case core.NotFound:
		return http.StatusNotFound
	case core.Conflict:
		return http.StatusConflict
	case core.Unauthenticated:
		return http.StatusUnauthorized
	case core.Forbidden:
		return http.StatusForbidden
	case core.Unimplemented:
		return http.StatusNotImplemented
	case core.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			code := core.ErrorCode(err)
			w.WriteHeader(status(code))
			field := core.ErrorField(err)
			msg := strings.TrimPrefix(core.PublicMessage(err), field+": ") // the field goes apart
			json.NewEncoder(w).Encode(ErrorBody{Code: code, Field: field, Message: msg})
			return
		}
		json.NewEncoder(w).Encode(v)
	}
	cred, _ := r.Context().Value(peerKey{}).(*unix.Ucred)
	if cred == nil {
		reply(nil, core.Errorf(core.Unauthenticated, "no peer credentials: connect over the Unix socket"))
		return
	}
	c := Caller{UID: cred.Uid, PID: cred.Pid, Root: cred.Uid == 0}
	if !c.Root {
		slice, ok := s.Identify(cred.Uid)
		if !ok {
			s.Log.Warn("local API call refused: uid is no sliver's", "uid", cred.Uid, "pid", cred.Pid, "path", r.URL.Path)
			reply(nil, core.Errorf(core.Forbidden, "uid %d is not a sliver's", cred.Uid))
			return
		}
		c.Slice = slice
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	m, ok := s.Methods[name]
	if r.Method != http.MethodPost || !ok {
		reply(nil, core.Errorf(core.NotFound, "no method %q (POST /<Method>; methods: %s)", name, strings.Join(s.names(), ", ")))
		return
	}
	args, err := ReadArgs(r.Body)
	if err == nil {
		var v any
		v, err = m.Fn(r.Context(), c, args)
		if err == nil {
			s.Log.Info("local API call", "method", name, "uid", c.UID, "slice", c.Slice)
			reply(v, nil)
			return
		}
	}
	s.Log.Warn("local API call refused", "method", name, "uid", c.UID, "slice", c.Slice, "err", err)
	reply(nil, err)
}

func (s *Server) names() []string {
	var out []string
	for n := range s.Methods {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ReadArgs reads a request body: at most MaxRequest bytes of one JSON
// object (empty = {}), nothing after it.
func ReadArgs(r io.Reader) (json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRequest+1))
	if err != nil {
		return nil, core.Errorf(core.Invalid, "reading the request: %v", err)
	}
	if len(b) > MaxRequest {
		return nil, core.Errorf(core.Invalid, "request larger than %d bytes", MaxRequest)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return json.RawMessage("{}"), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, core.Errorf(core.Invalid, "the request is not one JSON object")
	}
	return b, nil
}

// Decode decodes args strictly into v: unknown fields are refused.
func Decode(args json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return core.Errorf(core.Invalid, "arguments: %v", err)
	}
	if dec.More() {
		return core.Errorf(core.Invalid, "arguments: data after the object")
	}
	return nil
}

// Call calls method on the API at socket with args and decodes the
// result into out (nil: ignored). A refusal is returned as a *core.Error.
func Call(ctx context.Context, socket, method string, args, out any) error {
	return CallWith(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}, method, args, out)
}

// CallWith is Call over connections from dial.
func CallWith(ctx context.Context, dial func(ctx context.Context) (net.Conn, error), method string, args, out any) error {
	socket := "the node manager's socket"
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://nm/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("node manager API at %s: %w", socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return fmt.Errorf("node manager API: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
		}
		return &core.Error{Code: e.Code, Field: e.Field, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}
