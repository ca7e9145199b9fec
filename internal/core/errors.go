package core

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for callers. Transports map codes to HTTP
// statuses and XML-RPC fault codes in exactly one place each.
type Code string

// The domain error codes.
const (
	Invalid         Code = "invalid"         // bad argument: HTTP 400, PLCAPI fault 102
	NotFound        Code = "not_found"       // unknown object: HTTP 404, PLCAPI fault 102
	Conflict        Code = "conflict"        // duplicate or violated invariant: HTTP 409, fault 102
	Unauthenticated Code = "unauthenticated" // bad or missing credentials: HTTP 401, fault 103
	Forbidden       Code = "forbidden"       // authenticated but not allowed: HTTP 403, fault 108
	Unimplemented   Code = "not_implemented" // HTTP 501, fault 109
	RateLimited     Code = "rate_limited"    // too many failed logins from this source: HTTP 429 + Retry-After, fault 103
	Unavailable     Code = "unavailable"     // try again later (shutdown, cancelled): HTTP 503
	Internal        Code = "internal"        // a bug or a failed dependency: HTTP 500, fault 106
)

// Error is a domain error: a code, the field it concerns (if any) and a
// human message. Err, when set, is the underlying cause; it is logged but
// never shown to remote callers for Internal errors. RetryAfter, for
// RateLimited errors, says when the caller may try again.
type Error struct {
	Code       Code
	Field      string
	Message    string
	Err        error
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	if e.Err != nil && msg == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an Invalid *Error naming the offending field.
func FieldErrorf(field, format string, args ...any) error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// Internal when there is none (and "" for a nil error).
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorField returns the field named by the first *Error in err's chain.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// PublicMessage is the message safe to show a remote caller: the error text
// for domain errors, and a generic text for internal ones.
func PublicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return err.Error()
	}
	return "internal error"
}

// RetryAfter returns the RetryAfter of the first *Error in err's chain (0
// when there is none).
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
