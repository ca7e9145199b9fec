package rest

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// StatusOf maps an error to its HTTP status and public error detail. It is
// the only place where domain error codes become HTTP statuses. Internal
// errors never expose their cause.
func StatusOf(err error) (int, restapi.ErrorDetail) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, restapi.ErrorDetail{
			Code: core.Invalid, Field: "body", Message: "request body too large"}
	}
	var me *MethodError
	if errors.As(err, &me) {
		return http.StatusMethodNotAllowed, restapi.ErrorDetail{Code: core.Invalid, Field: "method", Message: me.Error()}
	}
	code := core.ErrorCode(err)
	d := restapi.ErrorDetail{Code: code, Field: core.ErrorField(err), Message: core.PublicMessage(err)}
	switch code {
	case core.Invalid:
		return http.StatusBadRequest, d
	case core.NotFound:
		return http.StatusNotFound, d
	case core.Conflict:
		return http.StatusConflict, d
	case core.Unauthenticated:
		return http.StatusUnauthorized, d
	case core.Forbidden:
		return http.StatusForbidden, d
	case core.Unimplemented:
		return http.StatusNotImplemented, d
	case core.RateLimited:
		d.RetryAfter = int64(core.RetryAfter(err) / time.Second)
		return http.StatusTooManyRequests, d
	case core.Unavailable:
		return http.StatusServiceUnavailable, d
	default:
		return http.StatusInternalServerError, restapi.ErrorDetail{Code: core.Internal, Message: "internal error"}
	}
}

// writeError answers err as JSON and logs internal errors with their cause.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, d := StatusOf(err)
	if status == http.StatusInternalServerError {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pl"`)
	}
	if d.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(d.RetryAfter, 10))
	}
	writeJSON(w, status, restapi.ErrorBody{Error: d})
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(restapi.ErrorBody{Error: restapi.ErrorDetail{Code: core.Internal, Message: "internal error"}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
