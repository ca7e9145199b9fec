package plcapi

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// PLCAPI fault codes (PLC/Faults.py).
const (
	faultInvalidMethod   = 100 // PLCInvalidAPIMethod
	faultArgumentCount   = 101 // PLCInvalidArgumentCount
	faultInvalidArgument = 102 // PLCInvalidArgument
	faultAuthentication  = 103 // PLCAuthenticationFailure
	faultDB              = 106 // PLCDBError
	faultPermission      = 108 // PLCPermissionDenied
	faultNotImplemented  = 109 // PLCNotImplemented
	faultAPI             = 111 // PLCAPIError
)

// Fault is a PLCAPI fault: an XML-RPC fault code and string.
type Fault struct {
	Code   int
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("fault %d: %s", f.Code, f.String) }

func newFault(code int, base, format string, args ...any) *Fault {
	s := base
	extra := fmt.Sprintf(format, args...)
	switch {
	case strings.HasPrefix(extra, base):
		s = extra // the service already said "Permission denied: ..."
	case extra != "":
		s += ": " + extra
	}
	return &Fault{Code: code, String: s}
}

// invalidArg is PLCInvalidArgument(extra, name): "Invalid <name> value:
// <extra>", or "Invalid argument: <extra>" without a name.
func invalidArg(name, format string, args ...any) *Fault {
	base := "Invalid argument"
	if name != "" {
		base = "Invalid " + name + " value"
	}
	return newFault(faultInvalidArgument, base, format, args...)
}

func authFailure(format string, args ...any) *Fault {
	return newFault(faultAuthentication, "Failed to authenticate call", format, args...)
}

func permissionDenied(format string, args ...any) *Fault {
	return newFault(faultPermission, "Permission denied", format, args...)
}

func argCountFault(got, min, max int) *Fault {
	if min == max {
		return &Fault{Code: faultArgumentCount, String: fmt.Sprintf("Expected %d arguments, got %d", min, got)}
	}
	return &Fault{Code: faultArgumentCount, String: fmt.Sprintf("Expected %d-%d arguments, got %d", min, max, got)}
}

func invalidMethod(name string) *Fault {
	return &Fault{Code: faultInvalidMethod, String: "Invalid method " + name}
}

// errUnexpected marks an error that is not a domain error: the server
// answers HTTP 500 (as the original's WSGI wrapper did) and logs it.
type errUnexpected struct{ err error }

func (e *errUnexpected) Error() string { return e.err.Error() }
func (e *errUnexpected) Unwrap() error { return e.err }

// toFault maps an error from the service (or from this package) to a
// PLCAPI fault. It is the only place where core error codes become fault
// codes. plcName names the operator in internal-error messages. ref is set for Internal domain errors: a reference the caller can
// quote, logged with the cause. An error that is neither a *Fault nor a
// *core.Error is unexpected: toFault returns nil and the caller answers 500.
func toFault(err error, plcName string) (f *Fault, ref string) {
	if errors.As(err, &f) {
		return f, ""
	}
	var ce *core.Error
	if !errors.As(err, &ce) {
		return nil, ""
	}
	msg := core.PublicMessage(err)
	switch ce.Code {
	case core.Invalid, core.NotFound, core.Conflict:
		if ce.Field != "" {
			// PLCInvalidArgument(extra, field) style; drop the "field: "
			// prefix core.Error adds to its text.
			return invalidArg(ce.Field, "%s", strings.Replace(msg, ce.Field+": ", "", 1)), ""
		}
		return invalidArg("", "%s", msg), ""
	case core.Unauthenticated, core.RateLimited:
		return authFailure("%s", msg), ""
	case core.Forbidden:
		return permissionDenied("%s", msg), ""
	case core.Unimplemented:
		return newFault(faultNotImplemented, "Not fully implemented", "%s", msg), ""
	case core.Unavailable:
		return newFault(faultDB, "Database error", "%s", msg), ""
	default: // core.Internal
		var b [8]byte
		_, _ = rand.Read(b[:])
		ref = hex.EncodeToString(b[:])
		return newFault(faultDB, "Database error", "Please contact %s Support and reference %s", plcName, ref), ref
	}
}
