// Package portal is PLC's web portal, served by `pl plc` under / beside the
// REST API (/api/v1) and PLCAPI (/PLCAPI/). It is a thin transport like
// them: html/template pages over the same service contract (core.Registry
// and core.Planet), never the store; every permission is the service's.
// Every asset is embedded; the pages need no JavaScript.
//
// Sessions are the service's: logging in creates a session (the same one
// `pl login` gets) kept in a Secure, HttpOnly, SameSite=Strict cookie.
// Every form carries a CSRF token: under a session it is derived from the
// session id (which the page's scripts and other sites cannot read); the
// login and sign-up forms, which have no session yet, use a double-submit
// cookie. Failed logins count in the service's login backoff, by source
// address, as for the APIs.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/rest"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names.
const (
	SessionCookie = "pl_session"
	CSRFCookie    = "pl_csrf" // double-submit token of the forms without a session
	csrfField     = "csrf"
)

// maxForm bounds a form body (a pasted key is the largest field).
const maxForm = 64 << 10

// Options configure the portal.
type Options struct {
	// Planet, when set, gives each node's state and health (the planet
	// table); without it the node tables show last contact and boot state.
	Planet core.Planet
	// Accounts serves sign-up; without it the sign-up form is refused.
	Accounts core.Accounts
	// Outbox serves the outbox page (outbox.go).
	Outbox core.Outbox
	// Mailbox serves the outbox to anyone at /mailbox: `pl dev`, where
	// mail only goes to the log (the service's OpenOutbox must be set
	// too, or the service refuses anonymous callers).
	Mailbox bool
	// InsecureCookies leaves the Secure flag off the cookies: only for
	// PLC serving plain HTTP (pl plc --http), where browsers would drop
	// Secure cookies.
	InsecureCookies bool
	Log             *slog.Logger
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// Handler serves the portal.
type Handler struct {
	reg     core.Registry
	opts    Options
	log     *slog.Logger
	tmpl    map[string]*template.Template
	mux     *http.ServeMux
	handler http.Handler // mux, compressed (gzip.go)
}

// New returns the portal over reg.
func New(reg core.Registry, opts Options) *Handler {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{reg: reg, opts: opts, log: opts.Log, mux: http.NewServeMux()}
	h.tmpl = parseTemplates()
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /{$}", h.home)
	h.mux.HandleFunc("GET /login", h.loginPage)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.withSession(h.logout))
	h.mux.HandleFunc("GET /slices", h.withSession(h.slicesPage))
	h.mux.HandleFunc("GET /slices/new", h.withSession(h.newSlicePage)) // newslice.go
	h.mux.HandleFunc("POST /slices/new", h.withSession(h.createSlice))
	h.mux.HandleFunc("POST /slices/{name}/members", h.withSession(h.addMember))
	h.mux.HandleFunc("POST /slices/{name}/members/remove", h.withSession(h.removeMember))
	h.mux.HandleFunc("GET /slices/{name}", h.withSession(h.slicePage))
	h.mux.HandleFunc("POST /slices/{name}/renew", h.withSession(h.renew))
	h.mux.HandleFunc("GET /slices/{name}/add", h.withSession(h.addPage))
	h.mux.HandleFunc("POST /slices/{name}/nodes/add", h.withSession(h.addNodes))
	h.mux.HandleFunc("POST /slices/{name}/nodes/select", h.withSession(h.selectNodes))
	h.mux.HandleFunc("POST /slices/{name}/nodes/remove", h.withSession(h.removeNodes))
	h.mux.HandleFunc("GET /keys", h.withSession(h.keysPage))
	h.mux.HandleFunc("POST /keys", h.withSession(h.addKey))
	h.mux.HandleFunc("POST /keys/{id}/delete", h.withSession(h.deleteKey))
	h.mux.HandleFunc("GET /account", h.withSession(h.accountPage))
	h.mux.HandleFunc("POST /account/password", h.withSession(h.changePassword))
	h.mux.HandleFunc("GET /signup", h.signupPage)
	h.mux.HandleFunc("POST /signup", h.signup)
	h.mux.HandleFunc("GET /forgot", h.forgotPage) // links.go
	h.mux.HandleFunc("POST /forgot", h.forgot)
	h.mux.HandleFunc("GET /reset", h.resetPage)
	h.mux.HandleFunc("POST /reset", h.reset)
	h.mux.HandleFunc("GET /verify", h.verifyPage)
	h.mux.HandleFunc("POST /verify", h.verify)
	h.mux.HandleFunc("GET /pending", h.withSession(h.pendingPage))
	h.mux.HandleFunc("POST /pending/{id}/{verb}", h.withSession(h.decide))
	h.mux.HandleFunc("GET /sites", h.withSession(h.sitesPage)) // sites.go
	h.mux.HandleFunc("GET /sites/{name}", h.withSession(h.sitePage))
	h.mux.HandleFunc("POST /sites/{id}/approve", h.withSession(h.approveSite))
	h.mux.HandleFunc("GET /people", h.withSession(h.peoplePage))
	h.mux.HandleFunc("POST /people/{id}/enabled", h.withSession(h.setPersonEnabled))
	h.mux.HandleFunc("POST /people/{id}/roles/{verb}", h.withSession(h.personRole))
	h.mux.HandleFunc("GET /nodes", h.withSession(h.nodesPage))
	h.mux.HandleFunc("POST /nodes/boot", h.withSession(h.setBootState))
	h.mux.HandleFunc("GET /planet", h.withSession(h.planetPage)) // overview.go
	h.mux.HandleFunc("GET /outbox", h.withSession(h.outboxPage)) // outbox.go
	h.mux.HandleFunc("GET /mailbox", h.mailbox)
	h.mux.HandleFunc("/", h.notFound)
	h.handler = compress(h.mux)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	h.handler.ServeHTTP(w, r)
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title  string
	Caller *core.Caller
	Name   string // the caller's name
	CSRF   string
	Flash  string
	Error  string
	Data   any
	// Mailbox: the portal serves /mailbox (pl dev).
	Mailbox bool
	// May are the operations the caller's roles allow, by PLCAPI name
	// (pageOps; roles.go): what the menu and the pages offer.
	May map[string]bool
}

// render writes a page with status st.
func (h *Handler) render(w http.ResponseWriter, st int, name string, p page) {
	t, ok := h.tmpl[name]
	if !ok {
		h.log.Error("portal: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Mailbox = h.opts.Mailbox
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(st)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		h.log.Error("portal: render", "page", name, "err", err)
	}
}

// session is an authenticated request.
type session struct {
	caller *core.Caller
	csrf   string
	name   string
	may    map[string]bool
}

func (s *session) page(title string, data any) page {
	return page{Title: title, Caller: s.caller, Name: s.name, CSRF: s.csrf, Data: data, May: s.may}
}

// pageOps are the operations whose links and buttons the pages show only
// to callers whose roles allow them.
var pageOps = []string{"AddSlice", "AddPersonToSlice", "UpdatePerson", "UpdateNode", "UpdateSite", "AddRoleToPerson",
	"GetMonitorActions", "GetOutbox", "GetPlanetHistory"}

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// withSession authenticates the session cookie; without a valid one a GET
// goes to the login page and anything else is refused. A POST must carry
// the session's CSRF token.
func (h *Handler) withSession(f sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(SessionCookie)
		var c *core.Caller
		if err == nil && ck.Value != "" {
			c, err = h.reg.Authenticate(r.Context(), core.Credentials{Method: "session", Session: ck.Value}, nil)
		}
		if c == nil || err != nil || c.Kind != core.PersonCaller {
			if err != nil && core.ErrorCode(err) == core.RateLimited {
				h.fail(w, r, nil, err)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+urlEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			h.render(w, http.StatusUnauthorized, "error", page{Title: "Not logged in", Error: "Your session has ended: log in again."})
			return
		}
		s := &session{caller: c, csrf: sessionCSRF(ck.Value), name: c.Email, may: h.mayAll(c, pageOps...)}
		if r.Method != http.MethodGet {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			var err error
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				err = r.ParseMultipartForm(maxForm) // an uploaded key: kept in memory, the body bounded above
			} else {
				err = r.ParseForm()
			}
			if err != nil {
				h.render(w, http.StatusBadRequest, "error", s.page("Bad request", nil).withError("the form could not be read: "+err.Error()))
				return
			}
			if !tokenEqual(r.PostForm.Get(csrfField), s.csrf) {
				h.render(w, http.StatusForbidden, "error", s.page("Refused", nil).withError("The form's security token is missing or wrong (CSRF): reload the page and try again."))
				return
			}
		}
		f(w, r, s)
	}
}

func (p page) withError(msg string) page { p.Error = msg; return p }

// sessionCSRF is the CSRF token of a session: a hash of its id, which
// only the holder of the HttpOnly cookie knows.
func sessionCSRF(sessionID string) string {
	sum := sha256.Sum256([]byte("pl portal csrf\x00" + sessionID))
	return hex.EncodeToString(sum[:])
}

func tokenEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *Handler) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: !h.opts.InsecureCookies, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
}

// formCSRF returns the double-submit token of a form without a session,
// setting its cookie when the browser has none.
func (h *Handler) formCSRF(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(CSRFCookie); err == nil && len(ck.Value) == 64 {
		return ck.Value
	}
	tok := randomToken()
	http.SetCookie(w, h.cookie(CSRFCookie, tok, 0))
	return tok
}

// checkFormCSRF parses a form without a session and checks its
// double-submit token.
func (h *Handler) checkFormCSRF(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.render(w, http.StatusBadRequest, "error", page{Title: "Bad request", Error: "the form could not be read: " + err.Error()})
		return false
	}
	ck, err := r.Cookie(CSRFCookie)
	if err != nil || !tokenEqual(r.PostForm.Get(csrfField), ck.Value) {
		h.render(w, http.StatusForbidden, "error", page{Title: "Refused", Error: "The form's security token is missing or wrong (CSRF): reload the page and try again."})
		return false
	}
	return true
}

// fail shows a service error: its public message, with the status the
// APIs use for its code.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	st := statusOf(err)
	if st == http.StatusInternalServerError {
		h.log.Error("portal", "path", r.URL.Path, "err", err)
	}
	p := page{Title: "Error"}
	if s != nil {
		p = s.page("Error", nil)
	}
	if d := core.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+0.999)))
	}
	h.render(w, st, "error", p.withError(core.PublicMessage(err)))
}

// statusOf is the HTTP status of an error: the REST API's mapping.
func statusOf(err error) int {
	status, _ := rest.StatusOf(err)
	return status
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusNotFound, "error", page{Title: "Not found", Error: "There is no page " + r.URL.Path + "."})
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(SessionCookie); err == nil && ck.Value != "" {
		http.Redirect(w, r, "/slices", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

type loginData struct {
	Email string
	Next  string
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Log in", CSRF: h.formCSRF(w, r), Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}}
	if r.URL.Query().Get("out") != "" {
		p.Flash = "You are logged out."
	}
	h.render(w, http.StatusOK, "login", p)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.checkFormCSRF(w, r) {
		return
	}
	email, pw := r.PostForm.Get("email"), r.PostForm.Get("password")
	next := safeNext(r.PostForm.Get("next"))
	ctx := r.Context()
	c, err := h.reg.Authenticate(ctx, core.Credentials{Method: "password", Username: email, Password: pw}, nil)
	var info core.SessionInfo
	if err == nil {
		info, err = h.reg.CreateSession(ctx, c, 0)
	}
	if err != nil {
		p := page{Title: "Log in", CSRF: h.formCSRF(w, r), Data: loginData{Email: email, Next: next}, Error: core.PublicMessage(err)}
		if d := core.RetryAfter(err); d > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+0.999)))
		}
		h.render(w, statusOf(err), "login", p)
		return
	}
	maxAge := 0
	if info.Expires > 0 {
		maxAge = int(info.Expires - h.opts.Now().Unix())
	}
	http.SetCookie(w, h.cookie(SessionCookie, info.ID, maxAge))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	err := h.reg.DeleteSession(r.Context(), s.caller, "")
	if err != nil && core.ErrorCode(err) != core.NotFound {
		h.fail(w, r, s, err)
		return
	}
	http.SetCookie(w, h.cookie(SessionCookie, "", -1))
	http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
}

// safeNext keeps a redirect target on this site: a path, not "//host"
// nor "/\\host", and without control characters (browsers drop tabs and
// line breaks from URLs, so "/\t/host" would become "//host").
func safeNext(next string) string {
	if len(next) < 2 || next[0] != '/' || next[1] == '/' || next[1] == '\\' || strings.IndexFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "/slices"
	}
	return next
}

func urlEscape(s string) string { return template.URLQueryEscaper(s) }

// caller-bound registry: sshcli's directory calls Get with a nil caller
// (the REST client fills in its own); in-process the caller is explicit.
type boundRegistry struct {
	core.Registry
	c *core.Caller
}

func (b boundRegistry) Get(ctx context.Context, _ *core.Caller, class core.Class, f *core.Filter, fields []string) ([]core.Record, error) {
	return b.Registry.Get(ctx, b.c, class, f, fields)
}
