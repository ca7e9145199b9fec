package portal

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// The mail outbox as the service records it (core.Outbox, REST GET
// /api/v1/outbox): for admins at /outbox, with each message's state,
// attempts and last error. Under `pl dev` (Options.Mailbox, with the
// service's OpenOutbox) the same page is open to anyone at /mailbox, so a
// newcomer reads the sign-up, link and expiry mail that only went to the
// log.

type outboxRow struct {
	ID         int64
	Created    string
	Kind       string
	Recipients string
	Subject    string
	Body       string
	State      string
	Attempts   int64
	When       string // sent at, or next try
	LastError  string
}

type outboxData struct {
	Rows   []outboxRow
	State  string // the filter
	States []string
	Path   string // /outbox or /mailbox
	Older  int64  // the id to page back from; 0: no more
}

const outboxPage = 100

func (h *Handler) outboxPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.showOutbox(w, r, s, s.caller, "/outbox", "Mail outbox")
}

// mailbox is /mailbox of `pl dev`: the outbox, open to anyone.
func (h *Handler) mailbox(w http.ResponseWriter, r *http.Request) {
	if !h.opts.Mailbox {
		h.notFound(w, r)
		return
	}
	s := h.optionalSession(r)
	c := (*core.Caller)(nil)
	if s != nil {
		c = s.caller
	} else {
		anon, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "anonymous"}, nil)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		c = anon
	}
	h.showOutbox(w, r, s, c, "/mailbox", "Mailbox (pl dev: nothing is mailed)")
}

func (h *Handler) showOutbox(w http.ResponseWriter, r *http.Request, s *session, c *core.Caller, path, title string) {
	if h.opts.Outbox == nil {
		h.fail(w, r, s, core.Errorf(core.Unimplemented, "the outbox is not served here"))
		return
	}
	q := r.URL.Query()
	oq := core.OutboxQuery{State: q.Get("state"), Limit: outboxPage}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			h.fail(w, r, s, core.FieldErrorf("before", "want a non-negative id, got %q", b))
			return
		}
		oq.Before = n
	}
	ms, err := h.opts.Outbox.Outbox(r.Context(), c, oq)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := outboxData{State: oq.State, States: []string{core.OutboxQueued, core.OutboxFailed, core.OutboxSent}, Path: path}
	for _, m := range ms {
		row := outboxRow{ID: m.MailID, Created: utc(m.Created), Kind: m.Kind, Recipients: strings.Join(m.Recipients, ", "),
			Subject: m.Subject, Body: m.Body, State: m.State, Attempts: m.Attempts, LastError: m.LastError}
		if m.SentAt > 0 {
			row.When = "sent " + utc(m.SentAt)
		} else if m.NextTry > 0 {
			row.When = "next try " + utc(m.NextTry)
		}
		d.Rows = append(d.Rows, row)
	}
	if len(ms) == outboxPage {
		d.Older = ms[len(ms)-1].MailID
	}
	var p page
	if s != nil {
		p = s.page(title, d)
	} else {
		p = page{Title: title, Data: d}
	}
	h.render(w, http.StatusOK, "outbox", p)
}

func utc(unix int64) string { return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05 UTC") }

// optionalSession is the request's session when it has a valid one.
func (h *Handler) optionalSession(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c, err := h.reg.Authenticate(r.Context(), core.Credentials{Method: "session", Session: ck.Value}, nil)
	if err != nil || c == nil || c.Kind != core.PersonCaller {
		return nil
	}
	return &session{caller: c, csrf: sessionCSRF(ck.Value), name: c.Email, may: h.mayAll(c, pageOps...)}
}
