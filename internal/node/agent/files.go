package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/netcfg"
)

// The desired-state cache: the last good node state from PLC, used at start
// and while PLC is unreachable. The file carries a SHA-256 of the state so a
// torn or edited file is detected and ignored rather than acted upon.

const cacheFormat = 1

type cacheFile struct {
	Format  int             `json:"format"`
	SavedAt time.Time       `json:"saved_at"`
	SHA256  string          `json:"sha256"` // of State, as stored
	State   json.RawMessage `json:"state"`
}

// ErrCacheCorrupt marks a cache file that exists but cannot be trusted.
var ErrCacheCorrupt = errors.New("desired-state cache is corrupt")

// SaveCache stores st at path atomically.
func SaveCache(path string, st *core.NodeState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode desired-state cache: %w", err)
	}
	sum := sha256.Sum256(raw)
	data, err := json.MarshalIndent(cacheFile{Format: cacheFormat, SavedAt: time.Now().UTC(), SHA256: hex.EncodeToString(sum[:]), State: raw}, "", " ")
	if err != nil {
		return fmt.Errorf("encode desired-state cache: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write desired-state cache %s: %w", path, err)
	}
	return nil
}

// LoadCache reads the cached state. It returns an error wrapping
// os.ErrNotExist when there is none and ErrCacheCorrupt (with the reason)
// when the file cannot be trusted.
func LoadCache(path string) (*core.NodeState, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var cf cacheFile
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: not JSON: %v", ErrCacheCorrupt, path, err)
	}
	if cf.Format != cacheFormat {
		return nil, time.Time{}, fmt.Errorf("%w: %s: format %d, want %d", ErrCacheCorrupt, path, cf.Format, cacheFormat)
	}
	// json.RawMessage keeps the stored bytes, but MarshalIndent re-indented
	// them: compact before hashing.
	raw, err := compactJSON(cf.State)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: state is not JSON: %v", ErrCacheCorrupt, path, err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != cf.SHA256 {
		return nil, time.Time{}, fmt.Errorf("%w: %s: checksum mismatch (stored %.12s..., computed %x)", ErrCacheCorrupt, path, cf.SHA256, sum[:6])
	}
	var st core.NodeState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %s: %v", ErrCacheCorrupt, path, err)
	}
	if st.Version == "" {
		return nil, time.Time{}, fmt.Errorf("%w: %s: state has no version", ErrCacheCorrupt, path)
	}
	return &st, cf.SavedAt, nil
}

func compactJSON(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MaxXID is the largest sliver number: HTB class ids use 12 bits and 0xFFF
// is the default class (reference nodemanager.md §3.3).
const MaxXID = 4094

// XIDs allocates sliver numbers: stable per slice for the sliver's life,
// persisted, reused only after the sliver is destroyed (Release).
type XIDs struct {
	path string
	mu   sync.Mutex
	m    map[string]int
}

// LoadXIDs reads the allocation file at path (absent = empty). A corrupt
// file is an error; the caller may start empty and re-adopt from the host.
func LoadXIDs(path string) (*XIDs, error) {
	x := &XIDs{path: path, m: map[string]int{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return x, nil
	}
	if err != nil {
		return x, err
	}
	var m map[string]int
	if err := json.Unmarshal(data, &m); err != nil {
		return x, fmt.Errorf("xid file %s: %w", path, err)
	}
	used := map[int]string{}
	for name, xid := range m {
		if xid < 1 || xid > MaxXID {
			return x, fmt.Errorf("xid file %s: %q has xid %d outside 1..%d", path, name, xid, MaxXID)
		}
		if other, dup := used[xid]; dup {
			return x, fmt.Errorf("xid file %s: xid %d held by both %q and %q", path, xid, name, other)
		}
		used[xid] = name
	}
	x.m = m
	return x, nil
}

// Get returns the xid of name, 0 if none.
func (x *XIDs) Get(name string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.m[name]
}

// Snapshot returns a copy of the allocation.
func (x *XIDs) Snapshot() map[string]int {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[string]int, len(x.m))
	for k, v := range x.m {
		out[k] = v
	}
	return out
}

// Adopt records that name exists on the host with xid (the host is the
// authority: a sliver's files are owned by its uid range). It fails when
// xid is held by another name.
func (x *XIDs) Adopt(name string, xid int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if xid < 1 || xid > MaxXID {
		return fmt.Errorf("sliver %q has xid %d outside 1..%d", name, xid, MaxXID)
	}
	if x.m[name] == xid {
		return nil
	}
	for n, v := range x.m {
		if v == xid && n != name {
			return fmt.Errorf("sliver %q has xid %d, already allocated to %q", name, xid, n)
		}
	}
	x.m[name] = xid
	return x.saveLocked()
}

// Allocate gives every name without an xid the lowest free one, in name
// order. It fails (allocating what it can) when the space is exhausted.
func (x *XIDs) Allocate(names []string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	used := make(map[int]bool, len(x.m))
	for _, v := range x.m {
		used[v] = true
	}
	names = append([]string(nil), names...)
	sort.Strings(names)
	changed := false
	next := 1
	var err error
	for _, n := range names {
		if x.m[n] != 0 {
			continue
		}
		for next <= MaxXID && used[next] {
			next++
		}
		if next > MaxXID {
			err = fmt.Errorf("no free xid for %q: all %d in use", n, MaxXID)
			break
		}
		x.m[n] = next
		used[next] = true
		changed = true
	}
	if changed {
		if serr := x.saveLocked(); serr != nil {
			return serr
		}
	}
	return err
}

// Release frees name's xid after its sliver was destroyed.
func (x *XIDs) Release(name string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.m[name]; !ok {
		return nil
	}
	delete(x.m, name)
	return x.saveLocked()
}

func (x *XIDs) saveLocked() error {
	data, err := json.MarshalIndent(x.m, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(x.path, data, 0o600); err != nil {
		return fmt.Errorf("write xid file: %w", err)
	}
	return nil
}

// netRecord persists the network configuration last applied per sliver:
// netcfg.Manager.List only reports names, so the agent remembers what it
// asked for to detect changes (a missing record just means "ensure again").
type netRecord struct {
	path string
	mu   sync.Mutex
	m    map[string]netcfg.Sliver
}

func loadNetRecord(path string) (*netRecord, error) {
	r := &netRecord{path: path, m: map[string]netcfg.Sliver{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r.m); err != nil {
		r.m = map[string]netcfg.Sliver{}
		return r, fmt.Errorf("network record %s (ignored; every sliver's network will be re-ensured): %w", path, err)
	}
	return r, nil
}

func (r *netRecord) snapshot() map[string]netcfg.Sliver {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]netcfg.Sliver, len(r.m))
	for k, v := range r.m {
		out[k] = v
	}
	return out
}

func (r *netRecord) set(name string, s *netcfg.Sliver) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == nil {
		if _, ok := r.m[name]; !ok {
			return nil
		}
		delete(r.m, name)
	} else {
		r.m[name] = *s
	}
	data, err := json.MarshalIndent(r.m, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(r.path, data, 0o600)
}
