// Package plcapi serves PlanetLab's XML-RPC API (PLCAPI) at /PLCAPI/ as a
// thin transport over core.Registry: it decodes calls with package xmlrpc,
// checks argument counts and types with the original's strictness,
// authenticates the Auth struct (password, session, anonymous and the
// node's HMAC BootAuth), maps each method onto Registry operations and
// maps errors to the original fault codes and messages. It implements no
// policy: who may do what is decided by the service.
//
// Request flow, as the original PLC/Method.py:
//
//	decode -> method lookup (fault 100) -> argument count (101)
//	  -> type-check and authenticate the Auth struct (102, 103, 108)
//	  -> type-check the other arguments (102) -> call the Registry
//	  -> errors to faults "<caller>: <Method>: <message>", or HTTP 500
package plcapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// Options configure the handler.
type Options struct {
	Logger *slog.Logger
	// PLCName names the operator in internal-error faults ("PlanetLab Central").
	PLCName string
	// Release is reported by GetPlcRelease as its "build" struct.
	Release map[string]string
	// LeaseGranularity (seconds) is what GetLeaseGranularity answers; it
	// must equal the service's rounding granularity. 0 = 3600.
	LeaseGranularity int64
	// Limits bound request decoding (zero fields = xmlrpc.DefaultLimits).
	Limits xmlrpc.Limits
}

// Handler is the PLCAPI HTTP handler.
type Handler struct {
	reg     core.Registry
	opts    Options
	log     *slog.Logger
	methods map[string]*method
	names   []string // sorted method names
	answers *answerMemo
}

// NewHandler returns the PLCAPI handler over reg. Mount it at /PLCAPI/
// and /PLCAPI.
func NewHandler(reg core.Registry, opts Options) http.Handler {
	return newHandler(reg, opts)
}

func newHandler(reg core.Registry, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.PLCName == "" {
		opts.PLCName = "PlanetLab Central"
	}
	if opts.LeaseGranularity <= 0 {
		opts.LeaseGranularity = 3600
	}
	h := &Handler{reg: reg, opts: opts, log: opts.Logger.With("subsystem", "plcapi"), methods: map[string]*method{}}
	h.answers = newAnswerMemo(64, 64<<20)
	for _, m := range methodTable() {
		if _, dup := h.methods[m.name]; dup {
			panic("plcapi: duplicate method " + m.name)
		}
		// The service owns the role sets; the table's own sets (which a
		// test keeps equal) only serve operations the service does not name.
		if r := reg.OpRoles(m.name); len(r) > 0 {
			m.roles = r
		}
		h.methods[m.name] = m
		h.names = append(h.names, m.name)
	}
	sort.Strings(h.names)
	return h
}

const getPage = `<html><head>
<title>PLCAPI XML-RPC/SOAP Interface</title>
</head><body>
<h1>PLCAPI XML-RPC/SOAP Interface</h1>
<p>Please use XML-RPC or SOAP to access the PLCAPI.</p>
</body></html>
`

// responseBuffers keeps response buffers between calls: a large answer
// (GetNodes over a thousand nodes is megabytes) then costs no buffer
// growth nor zeroing.
var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putResponseBuffer(b *bytes.Buffer) {
	if b.Cap() > 64<<20 {
		return // let a rare huge buffer go
	}
	b.Reset()
	responseBuffers.Put(b)
}

// ServeHTTP answers one XML-RPC call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, getPage)
		return
	}
	call, err := xmlrpc.DecodeCall(r.Body, h.opts.Limits)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, xmlrpc.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), status)
		return
	}
	ctx := r.Context()
	start := time.Now()
	res, err := h.Call(ctx, call.Method, call.Params)
	h.log.Debug("call", "method", call.Method, "remote", r.RemoteAddr, "ok", err == nil, "dur", time.Since(start))
	var body []byte
	recs, _ := res.([]core.Record)
	if err == nil && h.answers != nil {
		body = h.answers.lookup(recs)
	}
	if err == nil && body == nil {
		buf := responseBuffers.Get().(*bytes.Buffer)
		defer putResponseBuffer(buf)
		err = xmlrpc.WriteResponse(buf, res)
		body = buf.Bytes()
		if err == nil && h.answers != nil {
			h.answers.encoded(recs, body)
		}
		if err != nil {
			err = &errUnexpected{fmt.Errorf("encode %s result: %w", call.Method, err)}
			h.log.Error("encoding response", "method", call.Method, "err", err)
		}
	}
	if err != nil {
		var f *Fault
		if !errors.As(err, &f) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>\n")
			return
		}
		body = xmlrpc.EncodeFault(f.Code, f.String)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = w.Write(body)
}

// Call runs one PLCAPI method. The error is a *Fault with the original's
// code and prefixed message, or (for unexpected failures, already logged)
// another error, which a server answers with HTTP 500.
func (h *Handler) Call(ctx context.Context, name string, params []any) (any, error) {
	m := h.methods[name]
	if m == nil {
		return nil, invalidMethod(name)
	}
	x := &call{ctx: ctx, h: h, m: m}
	res, err := h.run(x, params)
	if err == nil {
		return res, nil
	}
	f, ref := toFault(err, h.opts.PLCName)
	if f == nil {
		h.log.Error("unexpected error", "method", name, "caller", callerString(x.caller), "err", err)
		return nil, &errUnexpected{err}
	}
	if ref != "" {
		h.log.Error("internal error", "method", name, "caller", callerString(x.caller), "ref", ref, "err", err)
	}
	return nil, &Fault{Code: f.Code, String: callerString(x.caller) + ": " + m.name + ": " + f.String}
}

func callerString(c *core.Caller) string {
	switch {
	case c == nil:
		return ""
	case c.Kind == core.PersonCaller:
		return fmt.Sprintf("person_id %d", c.PersonID)
	case c.Kind == core.NodeCaller:
		return fmt.Sprintf("node_id %d", c.NodeID)
	}
	return ""
}

// run checks the argument count, authenticates, type-checks and calls.
func (h *Handler) run(x *call, params []any) (any, error) {
	m := x.m
	nauth := 0
	if m.auth != authNone {
		nauth = 1
	}
	min, max := nauth, nauth+len(m.params)
	for _, p := range m.params {
		if !p.optional {
			min++
		}
	}
	if len(params) < min || len(params) > max {
		return nil, argCountFault(len(params), min, max)
	}
	args := params[nauth:]
	if nauth == 1 {
		c, err := h.authenticate(x, params[0], args)
		if err != nil {
			return nil, err
		}
		x.caller = c
	}
	for i, a := range args {
		if err := check(m.params[i].name, a, m.params[i].t); err != nil {
			return nil, err
		}
	}
	full := make([]any, len(m.params))
	copy(full, args)
	return m.fn(x, full)
}

// Auth structs (PLC/Auth.py).
var (
	authT        = structOf(map[string]*typ{"AuthMethod": tStr}, "AuthMethod")
	passwordAuth = structOf(map[string]*typ{"AuthMethod": tStr, "Username": tStr, "AuthString": tStr}, "AuthMethod", "Username", "AuthString")
	sessionAuth  = structOf(map[string]*typ{"AuthMethod": tStr, "session": tStr}, "AuthMethod", "session")
	bootAuth     = structOf(map[string]*typ{"AuthMethod": tStr, "node_id": tInt, "value": tStr}, "AuthMethod", "node_id", "value")
	gpgAuth      = structOf(map[string]*typ{"AuthMethod": tStr, "name": tStr, "signature": tStr}, "AuthMethod", "name", "signature")
)

// authenticate checks the Auth struct v of method x.m; rest are the other
// arguments (covered by a BootAuth HMAC).
func (h *Handler) authenticate(x *call, v any, rest []any) (*core.Caller, error) {
	m := x.m
	// Methods that accept a single auth class (SessionAuth, BootAuth)
	// check the struct against that class whatever its AuthMethod says.
	method := ""
	switch m.auth {
	case authSession:
		method = "session"
	case authBoot:
		method = "hmac"
	default:
		if err := check("auth", v, authT); err != nil {
			return nil, err
		}
		method, _ = v.(map[string]any)["AuthMethod"].(string)
		if m.auth == authBootOrSession && method != "session" {
			method = "hmac"
		}
	}
	a, _ := v.(map[string]any)
	switch method {
	case "password", "capability":
		if err := check("auth", v, passwordAuth); err != nil {
			return nil, err
		}
		return h.reg.Authenticate(x.ctx, core.Credentials{
			Method: "password", Username: a["Username"].(string), Password: a["AuthString"].(string),
		}, m.roles)
	case "session":
		if err := check("auth", v, sessionAuth); err != nil {
			return nil, err
		}
		return h.reg.Authenticate(x.ctx, core.Credentials{Method: "session", Session: a["session"].(string)}, m.roles)
	case "hmac", "hmac_dummybox":
		if err := check("auth", v, bootAuth); err != nil {
			return nil, err
		}
		if !slices.Contains(m.roles, core.RoleNode) {
			return nil, authFailure("BootAuth: Not allowed to call method, missing 'node' role")
		}
		nodeID, _ := core.AsInt(a["node_id"])
		return h.reg.VerifyNodeHMAC(x.ctx, nodeID, a["value"].(string), BootAuthMessage(rest))
	case "anonymous":
		if !slices.Contains(m.roles, core.RoleAnonymous) {
			return nil, authFailure("AnonymousAuth: method cannot be called anonymously")
		}
		return h.reg.Authenticate(x.ctx, core.Credentials{Method: "anonymous"}, m.roles)
	case "gpg":
		if err := check("auth", v, gpgAuth); err != nil {
			return nil, err
		}
		return nil, authFailure("GPGAuth: not supported: peer PLCs authenticate with Ed25519 signatures at /api/v1/peer/ (docs/federation.md)")
	}
	return nil, invalidArg("AuthMethod", "must be 'session', 'hmac', 'hmac_dummybox', 'password', 'capability', 'anonymous' or 'gpg'")
}

// multicall runs system.multicall's sub-calls (PLC/Methods/system/multicall.py).
func (h *Handler) multicall(ctx context.Context, calls []any) []any {
	out := make([]any, 0, len(calls))
	for _, c := range calls {
		s, _ := c.(map[string]any)
		name, ok1 := s["methodName"].(string)
		params, ok2 := s["params"].([]any)
		var res any
		var err error
		switch {
		case !ok1:
			err = &Fault{Code: 1, String: "KeyError: 'methodName' missing or not a string"}
		case !ok2:
			err = &Fault{Code: 1, String: "KeyError: 'params' missing or not an array"}
		case name == "system.multicall":
			err = &Fault{Code: -507, String: "Recursive system.multicall forbidden"}
		default:
			res, err = h.Call(ctx, name, params)
		}
		if err != nil {
			var f *Fault
			if !errors.As(err, &f) {
				f = &Fault{Code: 1, String: "internal error"}
			}
			out = append(out, map[string]any{"faultCode": f.Code, "faultString": f.String})
			continue
		}
		out = append(out, []any{res})
	}
	return out
}

// help returns the text of system.methodHelp.
func (m *method) helpText() string {
	var sb strings.Builder
	names := []string{}
	if m.auth != authNone {
		names = append(names, "auth")
	}
	for _, p := range m.params {
		n := p.name
		if p.optional {
			n = "[" + n + "]"
		}
		names = append(names, n)
	}
	fmt.Fprintf(&sb, "%s(%s) -> %s\n\n%s\n", m.name, strings.Join(names, ", "), m.returns.name(), m.help)
	if len(m.roles) > 0 {
		fmt.Fprintf(&sb, "\nRoles: %s\n", strings.Join(m.roles, ", "))
	}
	return sb.String()
}

// signatures returns system.methodSignature's list of possible
// signatures [return type, arg types...] for every accepted arg count.
func (m *method) signatures() []any {
	types := []*typ{}
	if m.auth != authNone {
		types = append(types, authT)
	}
	nreq := len(types)
	for _, p := range m.params {
		types = append(types, p.t)
		if !p.optional {
			nreq++
		}
	}
	var out []any
	for n := nreq; n <= len(types); n++ {
		sigs := [][]string{{m.returns.name()}}
		for _, t := range types[:n] {
			alts := []string{t.name()}
			if t.kind == kMixed {
				alts = alts[:0]
				for _, a := range t.alts {
					alts = append(alts, a.name())
				}
			}
			var next [][]string
			for _, s := range sigs {
				for _, a := range alts {
					next = append(next, append(slices.Clone(s), a))
				}
			}
			sigs = next
		}
		for _, s := range sigs {
			row := make([]any, len(s))
			for i, t := range s {
				row[i] = t
			}
			out = append(out, row)
		}
	}
	return out
}
