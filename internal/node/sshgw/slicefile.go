package sshgw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/planetlab/pl/internal/atomicfile"
)

// The slice file is how the node manager hands the gateway process (`pl
// node sshgw`) its view of the node's slices: the node manager rewrites it
// atomically whenever that view changes, and the gateway keeps serving from
// the last one it read while the node manager is down.

// sliceFile is the slice file's content.
type sliceFile struct {
	Slices map[string]SliceAccess `json:"slices"`
}

// EncodeSlices returns the slice file's content for slices, the same bytes
// for the same view (map keys are sorted).
func EncodeSlices(slices map[string]SliceAccess) ([]byte, error) {
	if slices == nil {
		slices = map[string]SliceAccess{}
	}
	b, err := json.MarshalIndent(sliceFile{Slices: slices}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeSlices parses a slice file.
func DecodeSlices(b []byte) (map[string]SliceAccess, error) {
	var f sliceFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("slice file: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("slice file: data after the object")
	}
	if f.Slices == nil {
		return nil, fmt.Errorf("slice file: no \"slices\" object")
	}
	return f.Slices, nil
}

// WriteSliceFile replaces the slice file at path atomically.
func WriteSliceFile(path string, slices map[string]SliceAccess) error {
	b, err := EncodeSlices(slices)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o600)
}

// FileSlices serves Slices from a slice file: the last content read
// successfully (a missing or broken file keeps the previous view).
type FileSlices struct {
	path string

	mu     sync.RWMutex
	slices map[string]SliceAccess
	last   []byte
}

var _ Slices = (*FileSlices)(nil)

// NewFileSlices returns an empty view of the slice file at path; call
// Reload to read it.
func NewFileSlices(path string) *FileSlices {
	return &FileSlices{path: path, slices: map[string]SliceAccess{}}
}

// Lookup implements Slices.
func (f *FileSlices) Lookup(name string) (SliceAccess, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	a, ok := f.slices[name]
	return a, ok
}

// Reload reads the file again. It returns the previous view when the
// content changed (nil when it did not) and the error of a read or parse
// that failed, keeping the previous view.
func (f *FileSlices) Reload() (old map[string]SliceAccess, err error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	f.mu.RLock()
	same := bytes.Equal(b, f.last)
	f.mu.RUnlock()
	if same {
		return nil, nil
	}
	m, err := DecodeSlices(b)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	old, f.slices, f.last = f.slices, m, b
	f.mu.Unlock()
	return old, nil
}

// DisconnectRevoked cuts the sessions of the slices that old allowed and
// the gateway's Slices now refuse (gone, disabled, expired, stopped), as
// the node manager does in-process when it destroys or suspends a sliver.
// It returns the slices cut.
func (g *Gateway) DisconnectRevoked(old map[string]SliceAccess) []string {
	now := g.cfg.Now()
	var cut []string
	for name, was := range old {
		if was.refusal(now) != "" {
			continue
		}
		if acc, ok := g.cfg.Slices.Lookup(name); ok && acc.refusal(now) == "" {
			continue
		}
		if g.Disconnect(name) > 0 {
			cut = append(cut, name)
		}
	}
	return cut
}
