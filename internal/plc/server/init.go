package server

import (
	"context"
	"fmt"
	"os"

	"github.com/planetlab/pl/internal/plc/service"
)

// InitOptions describe the first admin.
type InitOptions struct {
	Email    string
	Password string
}

// InitResult says what Init created.
type InitResult struct {
	PersonID  int64
	SiteID    int64
	LoginBase string
}

// Init creates the first admin and the system site in the store of cfg
// (creating the data directory if needed). It fails with core.Conflict when
// the registry is already initialized.
func Init(ctx context.Context, cfg Config, opts InitOptions) (InitResult, error) {
	if err := os.MkdirAll(cfg.dataDir(), 0o700); err != nil {
		return InitResult{}, fmt.Errorf("data directory: %w", err)
	}
	log := cfg.Log
	reg, closer, err := OpenRegistry(ctx, cfg.DSN(), log)
	if err != nil {
		return InitResult{}, err
	}
	defer closer.Close()
	pid, err := reg.Init(ctx, opts.Email, opts.Password)
	if err != nil {
		return InitResult{}, err
	}
	return InitResult{PersonID: pid, SiteID: 1, LoginBase: service.SystemSiteLoginBase}, nil
}
