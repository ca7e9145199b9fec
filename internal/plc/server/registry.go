package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/planetlab/pl/internal/plc/plcapi"
	"github.com/planetlab/pl/internal/plc/service"
	"github.com/planetlab/pl/internal/plc/store"
)

// OpenRegistry opens (and migrates) the store at dsn and returns the
// registry service over it; closing the closer closes the store.
func OpenRegistry(ctx context.Context, dsn string, log *slog.Logger) (*service.Service, io.Closer, error) {
	if log == nil {
		log = slog.Default()
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the registry store: %w", err)
	}
	return service.New(db, service.Options{Log: log}), db, nil
}

// extraHandlers returns the handlers mounted besides /api/v1: PLCAPI
// XML-RPC at /PLCAPI/ and /PLCAPI.
func extraHandlers(reg *service.Service, log *slog.Logger) map[string]http.Handler {
	h := plcapi.NewHandler(reg, plcapi.Options{Logger: log, LeaseGranularity: reg.LeaseGranularity()})
	return map[string]http.Handler{"/PLCAPI/": h, "/PLCAPI": h}
}
