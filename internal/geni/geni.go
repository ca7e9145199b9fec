// Package geni is the wire contract of the GENI Aggregate Manager API v3
// as this project speaks it (docs/geni.md): the error codes, the
// allocation and operational states, option and field names. The
// aggregate (internal/plc/geni), RSpec documents (geni/rspec) and the Go
// client (geni/amclient) share it.
package geni

import "fmt"

// APIVersion is the AM API version served.
const APIVersion = 3

// Code is an AM API error code (geni_code).
type Code int

// The AM API v3 error codes.
const (
	Success       Code = 0
	BadArgs       Code = 1
	Err           Code = 2
	Forbidden     Code = 3
	BadVersion    Code = 4
	ServerError   Code = 5
	TooBig        Code = 6
	Refused       Code = 7
	TimedOut      Code = 8
	DBError       Code = 9
	RPCError      Code = 10
	Unavailable   Code = 11
	SearchFailed  Code = 12
	Unsupported   Code = 13
	Busy          Code = 14
	Expired       Code = 15
	InProgress    Code = 16
	AlreadyExists Code = 17
)

var codeNames = [...]string{"SUCCESS", "BADARGS", "ERROR", "FORBIDDEN", "BADVERSION", "SERVERERROR", "TOOBIG",
	"REFUSED", "TIMEDOUT", "DBERROR", "RPCERROR", "UNAVAILABLE", "SEARCHFAILED", "UNSUPPORTED", "BUSY",
	"EXPIRED", "INPROGRESS", "ALREADYEXISTS"}

func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("CODE%d", int(c))
}

// Error is an AM API failure: the code and the output text.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf makes an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Allocation states of a sliver.
const (
	Unallocated = "geni_unallocated"
	Allocated   = "geni_allocated"
	Provisioned = "geni_provisioned"
)

// Operational states of a sliver.
const (
	PendingAllocation = "geni_pending_allocation"
	NotReady          = "geni_notready"
	Configuring       = "geni_configuring"
	Stopping          = "geni_stopping"
	Ready             = "geni_ready"
	ReadyBusy         = "geni_ready_busy"
	Failed            = "geni_failed"
)

// Operational actions of PerformOperationalAction.
const (
	ActionStart       = "geni_start"
	ActionStop        = "geni_stop"
	ActionRestart     = "geni_restart"
	ActionUpdateUsers = "geni_update_users"
)

// RSpec identifiers of GetVersion and geni_rspec_version.
const (
	RSpecType    = "GENI"
	RSpecVersion = "3"
	RSpecNS      = "http://www.geni.net/resources/rspec/3"
)

// Credential type served.
const (
	CredentialSFA     = "geni_sfa"
	CredentialVersion = "3"
)
