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
	return openRegistry(ctx, dsn, service.Options{Log: log})
}

func openRegistry(ctx context.Context, dsn string, opts service.Options) (*service.Service, io.Closer, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the registry store: %w", err)
	}
	return service.New(db, opts), db, nil
}

// extraHandlers returns the handlers mounted besides /api/v1: PLCAPI
// XML-RPC at /PLCAPI/ and /PLCAPI.
func extraHandlers(reg *service.Service, log *slog.Logger, name string) map[string]http.Handler {
	h := plcapi.NewHandler(reg, plcapi.Options{Logger: log, LeaseGranularity: reg.LeaseGranularity(), PLCName: name})
	return map[string]http.Handler{"/PLCAPI/": h, "/PLCAPI": h}
}
