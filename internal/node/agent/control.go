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
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/core/tags"
)

// What slices decided through the local API (localapi.go), kept on disk:
// delegated slivers created by their controllers, slivers stopped by
// them, and loans. Applied to the desired state at every pass
// (effectiveState), so they hold while PLC is unreachable.

// MaxLoans bounds the loans one slice makes on a node.
const MaxLoans = 64

type controlFile struct {
	Created []string     `json:"created"` // delegated slices instantiated through Create
	Stopped []string     `json:"stopped"` // slices suspended through Stop
	Loans   []rspec.Loan `json:"loans"`
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
	return controlFile{Created: slices.Clone(c.f.Created), Stopped: slices.Clone(c.f.Stopped), Loans: slices.Clone(c.f.Loans)}
}

// update changes the file under the lock and saves it; on a save error
// nothing changes.
func (c *control) update(fn func(f *controlFile)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := controlFile{Created: slices.Clone(c.f.Created), Stopped: slices.Clone(c.f.Stopped), Loans: slices.Clone(c.f.Loans)}
	fn(&next)
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
	if len(f.Created) == 0 && len(f.Stopped) == 0 && len(f.Loans) == 0 {
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
	eff, refused := rspec.Effective(own, f.Loans, now)
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
