package dev

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/planetlab/pl/internal/atomicfile"
)

// RunDir holds one record per running (or killed) `pl dev` instance, so
// `pl dev down` finds what an earlier run left behind. It is on tmpfs: a
// reboot forgets it together with everything it describes.
var RunDir = "/run/pl-dev"

// Record is what a `pl dev` instance created, written before it creates
// anything and updated as it goes.
type Record struct {
	Prefix  string `json:"prefix"`   // name prefix of namespaces and links, e.g. "pldev-"
	DataDir string `json:"data_dir"` // data directory (as the planet reaches it)
	// The data directory the user gave, when it is reached through a bind
	// mount at DataDir (a parent of it is not searchable); "" otherwise.
	UserDataDir string     `json:"user_data_dir,omitempty"`
	TempData    bool       `json:"temp_data"` // remove DataDir on down
	Cgroup      string     `json:"cgroup"`    // cgroup parent of the nodes, relative to each hierarchy root
	PID         int        `json:"pid"`       // the pl dev process
	Procs       []ProcInfo `json:"procs"`     // children: PLC and nodes
}

// ProcInfo identifies a child process (start time guards against pid reuse).
type ProcInfo struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/<pid>/stat field 22
}

func recordPath(prefix string) string {
	return filepath.Join(RunDir, strings.TrimSuffix(prefix, "-")+".json")
}

// Save writes the record to RunDir and the data directory.
func (r *Record) Save() error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	for _, p := range []string{recordPath(r.Prefix), filepath.Join(r.DataDir, "dev.json")} {
		if err := atomicfile.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("save dev record: %w", err)
		}
	}
	return nil
}

// LoadRecords reads every instance record in RunDir.
func LoadRecords() ([]*Record, error) {
	ents, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(RunDir, e.Name()))
		if err != nil {
			return nil, err
		}
		r := new(Record)
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("dev record %s: %w", e.Name(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// userData is the data directory as the user knows it.
func (r *Record) userData() string {
	if r.UserDataDir != "" {
		return r.UserDataDir
	}
	return r.DataDir
}
