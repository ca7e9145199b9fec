package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 1 << 20

// readBody reads a bounded request body. (PLC's server bounds the time a
// body may take, for every transport: plc/server/limits.go.)
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, core.FieldErrorf("body", "reading request body: %v", err)
	}
	return b, nil
}

// decodeStrict decodes a JSON object into a typed request struct, refusing
// unknown fields and wrong types with errors naming the field.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return core.FieldErrorf("body", "missing JSON request body")
	}
	// Syntax, duplicate keys and depth first: encoding/json would keep
	// the last of two equal keys.
	if _, err := restapi.DecodeJSON(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "body"
			}
			return core.FieldErrorf(field, "want %s, got JSON %s", te.Type, te.Value)
		}
		if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
			f, _ := strconv.Unquote(strings.TrimPrefix(s, "json: unknown field "))
			if f == "" {
				return core.FieldErrorf("body", "unknown field %q", f)
			}
			return core.FieldErrorf(f, "unknown field")
		}
		return core.FieldErrorf("body", "malformed JSON: %s", restapi.JSONErrText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return core.FieldErrorf("body", "unexpected data after the JSON value")
	}
	return nil
}
