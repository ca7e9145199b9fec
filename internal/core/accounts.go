package core

import "context"

// Registration is what a person gives to sign up (the portal's sign-up
// form, POST /api/v1/register).
type Registration struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Site      string `json:"site"` // the site's login_base
	Password  string `json:"password"`
	Key       string `json:"key,omitempty"` // an ssh public key; optional
}

// MinPasswordLength bounds the passwords people choose when they sign up.
const MinPasswordLength = 8

// Accounts is self-service account management. The PLC service
// implements it, the REST client speaks it remotely (like Registry).
//
// A sign-up's life: RegisterPerson creates the person disabled, at the
// site, with role user (and the key, if given), and sends the site's PIs a
// notice (kind signup_pending). A PI of the site or an admin then approves
// (Registry.Update enabled=true; the person is sent a notice, kind
// account_approved) or rejects (Registry.Delete) the account. The pending
// queue is the disabled persons of the PI's sites (Get persons with
// enabled=false).
type Accounts interface {
	// RegisterPerson signs a person up; anonymous callers may. It returns
	// the new person's id.
	RegisterPerson(ctx context.Context, c *Caller, r Registration) (int64, error)
	// RequestPasswordReset mails a one-time reset link to the enabled,
	// non-admin account of email; it answers nil whether or not there is
	// one (a refusal is only ever RateLimited or a bad address).
	RequestPasswordReset(ctx context.Context, c *Caller, email string) error
	// CompletePasswordReset sets the password of the person whose reset
	// link token is; the link then ends.
	CompletePasswordReset(ctx context.Context, c *Caller, token, password string) error
	// ConfirmEmail marks the address of the person whose verification
	// link token is as verified (the link ends) and returns the address.
	ConfirmEmail(ctx context.Context, c *Caller, token string) (string, error)
}

// Mailer is the original PLCAPI's mail methods, served by the PLC
// service through its outbox. who is a person id (int64) or e-mail
// (string); an empty key asks for a link, a key uses it.
type Mailer interface {
	// VerifyPerson mails a disabled person a verification link, or
	// checks its key.
	VerifyPerson(ctx context.Context, c *Caller, who any, key string, expires int64) error
	// ResetPassword mails an enabled non-admin person a reset link, or
	// checks its key and mails a new random password.
	ResetPassword(ctx context.Context, c *Caller, who any, key string, expires int64) error
	// NotifyPersons mails the persons f selects.
	NotifyPersons(ctx context.Context, c *Caller, f *Filter, subject, body string) error
	// NotifySupport mails the support address.
	NotifySupport(ctx context.Context, c *Caller, subject, body string) error
}

// OutboxMail is one message of PLC's mail outbox: every message PLC sends
// is recorded there, delivered or not.
type OutboxMail struct {
	MailID     int64    `json:"mail_id"`
	Created    int64    `json:"created"`
	Kind       string   `json:"kind"` // signup_pending, slice_expiring, ...
	Recipients []string `json:"recipients"`
	Subject    string   `json:"subject"`
	Body       string   `json:"body"`
	State      string   `json:"state"` // OutboxQueued, OutboxSent or OutboxFailed
	Attempts   int64    `json:"attempts"`
	NextTry    int64    `json:"next_try,omitempty"` // unsent: when it is tried next
	SentAt     int64    `json:"sent_at,omitempty"`
	LastError  string   `json:"last_error,omitempty"` // of the last failed attempt
}

// States of an outbox message: queued (not tried yet), failed (tried, not
// delivered yet: it is retried), sent.
const (
	OutboxQueued = "queued"
	OutboxSent   = "sent"
	OutboxFailed = "failed"
)

// OutboxQuery selects outbox messages: State "" is all; Before > 0 gives
// the messages with smaller ids (paging back); Limit 0 is the maximum
// (1,000). Newest first.
type OutboxQuery struct {
	State  string
	Before int64
	Limit  int
}

// Outbox reads PLC's mail outbox (admins; anyone under `pl dev`'s open
// mailbox).
type Outbox interface {
	Outbox(ctx context.Context, c *Caller, q OutboxQuery) ([]OutboxMail, error)
}
