package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rcap"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/tags"
)

// What slices decided through the local API (localapi.go), kept on disk:
// delegated slivers created by their controllers, slivers stopped by
// them, loans and resource capabilities (bound ones move resources as
// loans do). Applied to the desired state at every pass
// (effectiveState), so they hold while PLC is unreachable.

// MaxLoans bounds the loans one slice makes on a node.
const MaxLoans = 64

type controlFile struct {
	Created []string     `json:"created"` // delegated slices instantiated through Create
	Stopped []string     `json:"stopped"` // slices suspended through Stop
	Loans   []rspec.Loan `json:"loans"`
	Rcaps   []rcap.Cap   `json:"rcaps,omitempty"` // resource capabilities (rcaps.go)
}

// allLoans is what moves resources at now: the loans and the bound
// capabilities.
func (f controlFile) allLoans(now int64) []rspec.Loan {
	return append(slices.Clone(f.Loans), rcap.Loans(f.Rcaps, now)...)
}

func (f controlFile) clone() controlFile {
	return controlFile{Created: slices.Clone(f.Created), Stopped: slices.Clone(f.Stopped), Loans: slices.Clone(f.Loans), Rcaps: slices.Clone(f.Rcaps)}
}

type control struct {
	path string
	mu   sync.Mutex
	f    controlFile
}

func loadControl(path string) (*control, error) {
	c := &control{path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c.f); err != nil {
		return c, fmt.Errorf("control file %s: %w", path, err)
	}
	return c, nil
}

func (c *control) snapshot() controlFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.clone()
}

// update changes the file under the lock and saves it; on a save error
// nothing changes.
func (c *control) update(fn func(f *controlFile)) error {
	return c.check(func(f *controlFile) error { fn(f); return nil })
}

// check is update with a refusal: when fn returns an error nothing
// changes. fn sees the file as it is under the lock, so a check made in
// it cannot be raced by another call.
func (c *control) check(fn func(f *controlFile) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.f.clone()
	if err := fn(&next); err != nil {
		return err
	}
	data, err := json.MarshalIndent(next, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(c.path, data, 0o600); err != nil {
		return core.Errorf(core.Internal, "save %s: %v", c.path, err)
	}
	c.f = next
	return nil
}

func setIn(list []string, name string, on bool) []string {
	list = slices.DeleteFunc(list, func(s string) bool { return s == name })
	if on {
		list = append(list, name)
	}
	return list
}

// WithControl returns st with what slices decided applied at now: created
// delegated slices are instantiated, stopped ones suspended, and active
// loans move resources (rspec.Effective over each sliver's own rspec).
// It is pure; refused loans (their lender no longer holds the amount) are
// returned by index.
func WithControl(st *core.NodeState, f controlFile, now int64) (*core.NodeState, map[int]error) {
	if len(f.Created) == 0 && len(f.Stopped) == 0 && len(f.Loans) == 0 && len(f.Rcaps) == 0 {
		return st, nil
	}
	c := *st
	c.Slivers = slices.Clone(st.Slivers)
	for i, s := range c.Slivers {
		if s.Instantiation == "delegated" && slices.Contains(f.Created, s.Name) {
			c.Slivers[i].Instantiation = "plc-instantiated"
		}
	}
	own := Holdings(&c, now)
	eff, refused := rspec.Effective(own, f.allLoans(now), now)
	for i, s := range c.Slivers {
		if r, ok := eff[s.Name]; ok && r != own[s.Name] {
			c.Slivers[i].Attributes = r.Attributes(s.Attributes)
		}
		if slices.Contains(f.Stopped, s.Name) {
			c.Slivers[i].Attributes = setAttr(c.Slivers[i].Attributes, tags.Enabled, "0")
		}
	}
	return &c, refused
}
