// Package rest serves PLC's REST API under /api/v1 and the node API of
// package nodeapi over a core.Registry. It is a thin transport: it parses
// requests, authenticates the caller through the Registry, calls one
// Registry method and maps errors (StatusOf); all policy lives in the
// service.
//
// Objects are addressed by id or name (/api/v1/slices/princeton_codeen): a
// path reference made only of digits is an id, anything else a name. List
// endpoints take ?filter=<PLCAPI JSON filter>, simple ?field=value equality
// parameters, ?fields=a,b, ?sort=-name,+x, ?limit= and ?offset=. The route
// table (routes) is the single source of the mux and of the OpenAPI
// document served at /api/v1/openapi.json.
package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/restapi"
)

// Option configures the handler.
type Option func(*Handler)

// WithFingerprint sets the SHA-256 fingerprint (lowercase hex) of PLC's TLS
// certificate, embedded in the join tokens the API issues.
func WithFingerprint(fp string) Option { return func(h *Handler) { h.fingerprint = fp } }

// Handler is the REST API handler.
type Handler struct {
	reg         core.Registry
	log         *slog.Logger
	fingerprint string
	planet      core.Planet
	accounts    core.Accounts
	outbox      core.Outbox
	auditor     core.Auditor
	sa          core.SliceAuthority
	tickets     ticket.Issuer
	peering     core.Peering
	mux         *http.ServeMux
	routes      []route
}

// auth says how a route authenticates its caller.
type auth int

const (
	authCaller auth = iota // bearer session/token or anonymous, checked against op's roles
	authNode               // PLNode node credentials only
	authNone               // no caller (join: the token is the credential)
)

// result is what a route handler returns besides an error.
type result struct {
	status int // 0 = 200 (or 204 when body is nil)
	body   any
}

type handlerFunc func(ctx context.Context, r *request) (result, error)

// route is one entry of the route table.
type route struct {
	method  string
	path    string // ServeMux pattern without method, e.g. /api/v1/sites/{ref}
	op      string // PLCAPI operation whose role set guards the route
	auth    auth
	summary string
	list    bool   // takes list query parameters (filter, fields, sort, ...)
	body    string // request body schema name in the OpenAPI document; "" = none
	resp    string // response schema name; "" = none (204)
	h       handlerFunc
}

// request carries what a route handler needs.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	caller *core.Caller
}

func (q *request) path(name string) string { return q.r.PathValue(name) }

// NewHandler returns the REST API and node API handler over reg.
func NewHandler(reg core.Registry, log *slog.Logger, opts ...Option) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{reg: reg, log: log, mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	h.routes = h.buildRoutes()
	for _, rt := range h.routes {
		h.mux.Handle(rt.method+" "+rt.path, h.wrap(rt))
	}
	h.mux.HandleFunc("GET "+restapi.Prefix+"/openapi.json", h.serveOpenAPI)
	h.mux.HandleFunc(restapi.Prefix+"/", h.noRoute)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &request{w: w, r: r}
		ctx := r.Context()
		if rt.auth == authNode {
			w.Header().Set(nodeapi.TimeHeader, time.Now().UTC().Format(time.RFC3339Nano))
		}
		if rt.auth != authNone {
			cred, err := credentials(r, rt.auth)
			if err != nil {
				writeError(w, r, h.log, err)
				return
			}
			var roles []string
			if rt.op != "" {
				roles = h.reg.OpRoles(rt.op)
			}
			c, err := h.reg.Authenticate(ctx, cred, roles)
			if err != nil {
				writeError(w, r, h.log, namingOp(rt.op, err))
				return
			}
			q.caller = c
		}
		res, err := rt.h(ctx, q)
		if err != nil {
			if ctx.Err() != nil && core.ErrorCode(err) == core.Internal {
				return // client went away
			}
			writeError(w, r, h.log, err)
			return
		}
		switch {
		case res.status == http.StatusNotModified:
			w.WriteHeader(http.StatusNotModified)
		case res.body == nil:
			w.WriteHeader(http.StatusNoContent)
		default:
			st := res.status
			if st == 0 {
				st = http.StatusOK
			}
			writeJSON(w, st, res.body)
		}
	})
}

// namingOp prefixes an authentication or role-gate refusal with the
// operation it guards ("AddSlice: Permission denied: needs role ..."), as
// PLCAPI prefixes its faults with the method name.
func namingOp(op string, err error) error {
	var ce *core.Error
	if op == "" || !errors.As(err, &ce) || (ce.Code != core.Forbidden && ce.Code != core.Unauthenticated) {
		return err
	}
	named := *ce
	named.Message = op + ": " + ce.Message
	return &named
}

// credentials extracts the caller's credentials from the Authorization header.
func credentials(r *http.Request, a auth) (core.Credentials, error) {
	hdr := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, val, _ := strings.Cut(hdr, " ")
	val = strings.TrimSpace(val)
	if a == authNode {
		if !strings.EqualFold(scheme, nodeapi.AuthScheme) || val == "" {
			return core.Credentials{}, core.Errorf(core.Unauthenticated, "node API: want Authorization: %s <node_id>:<node_key>", nodeapi.AuthScheme)
		}
		ids, key, ok := strings.Cut(val, ":")
		id, err := strconv.ParseInt(ids, 10, 64)
		if !ok || err != nil || id <= 0 || key == "" {
			return core.Credentials{}, core.Errorf(core.Unauthenticated, "node API: malformed %s credentials", nodeapi.AuthScheme)
		}
		return core.Credentials{Method: "node_key", NodeID: id, NodeKey: key}, nil
	}
	switch {
	case hdr == "":
		return core.Credentials{Method: "anonymous"}, nil
	case strings.EqualFold(scheme, "Bearer") && val != "":
		return core.Credentials{Method: "session", Session: val}, nil
	case strings.EqualFold(scheme, nodeapi.AuthScheme):
		ids, key, ok := strings.Cut(val, ":")
		id, err := strconv.ParseInt(ids, 10, 64)
		if !ok || err != nil || id <= 0 || key == "" {
			return core.Credentials{}, core.Errorf(core.Unauthenticated, "malformed %s credentials", nodeapi.AuthScheme)
		}
		return core.Credentials{Method: "node_key", NodeID: id, NodeKey: key}, nil
	}
	return core.Credentials{}, core.Errorf(core.Unauthenticated, "unsupported Authorization scheme %q (want Bearer)", scheme)
}

// parseRef turns a path reference into an id (all digits) or a name.
func parseRef(s string) any {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			return id
		}
	}
	return s
}

// resolve resolves the path value name of class.
func (h *Handler) resolve(ctx context.Context, q *request, class core.Class, name string) (int64, error) {
	return h.reg.Resolve(ctx, q.caller, class, parseRef(q.path(name)))
}

// noRoute answers requests no route matches: 405 with Allow when the path
// exists for other methods, 404 otherwise.
func (h *Handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := h.mux.Handler(r2); pat != "" && pat != restapi.Prefix+"/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, r, h.log, &MethodError{Method: r.Method, Allow: allow})
		return
	}
	writeError(w, r, h.log, core.Errorf(core.NotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
}

// MethodError is a request with a method the path does not serve.
type MethodError struct {
	Method string
	Allow  []string
}

func (e *MethodError) Error() string {
	return "method " + e.Method + " not allowed here (allowed: " + strings.Join(e.Allow, ", ") + ")"
}
