package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
)

// Config is the CLI's stored state: one entry per PLC logged into.
// It lives in $PL_CONFIG_DIR/config.json (default ~/.config/pl), mode 0600.
type Config struct {
	Current string               `json:"current,omitempty"` // URL of the default PLC
	PLCs    map[string]*PLCEntry `json:"plcs"`
}

// PLCEntry is what `pl login` stores for one PLC.
type PLCEntry struct {
	URL         string `json:"url"`
	Email       string `json:"email,omitempty"`
	Token       string `json:"token,omitempty"`
	Expires     int64  `json:"expires,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"` // pinned certificate
	CAFile      string `json:"ca_file,omitempty"`
}

// ConfigDir returns $PL_CONFIG_DIR or ~/.config/pl.
func ConfigDir() (string, error) {
	if d := os.Getenv("PL_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "pl"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the pl configuration; set PL_CONFIG_DIR: %w", err)
	}
	return filepath.Join(home, ".config", "pl"), nil
}

func configPath() (string, error) {
	d, err := ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "config.json"), nil
}

// LoadConfig reads the configuration (empty if there is none).
func LoadConfig() (*Config, error) {
	p, err := configPath()
	if err != nil {
		return nil, err
	}
	cfg := &Config{PLCs: map[string]*PLCEntry{}}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if cfg.PLCs == nil {
		cfg.PLCs = map[string]*PLCEntry{}
	}
	return cfg, nil
}

// Save writes the configuration atomically with mode 0600.
func (c *Config) Save() error {
	p, err := configPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(b, '\n'), 0o600)
}

// Select returns the entry named by sel (a URL, or a host[:port] that
// matches one stored URL), by $PL_PLC, or the current one.
func (c *Config) Select(sel string) (*PLCEntry, error) {
	if sel == "" {
		sel = os.Getenv("PL_PLC")
	}
	if sel == "" {
		sel = c.Current
	}
	if sel == "" {
		return nil, core.Errorf(core.Unauthenticated, "not logged in to any PLC")
	}
	if e, ok := c.PLCs[normalizeURL(sel)]; ok {
		return e, nil
	}
	var matches []string
	for u := range c.PLCs {
		pu, err := url.Parse(u)
		if err == nil && (pu.Host == sel || pu.Hostname() == sel) {
			matches = append(matches, u)
		}
	}
	sort.Strings(matches)
	switch len(matches) {
	case 1:
		return c.PLCs[matches[0]], nil
	case 0:
		return nil, core.Errorf(core.Unauthenticated, "not logged in to PLC %q (pl login %s ...)", sel, sel)
	}
	return nil, core.FieldErrorf("plc", "%q matches several PLCs: %s", sel, strings.Join(matches, ", "))
}

func normalizeURL(s string) string { return strings.TrimRight(s, "/") }
