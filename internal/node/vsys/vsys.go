// Package vsys runs privileged operations for slices: the modern form of
// PlanetLab's vsys (and of Proper before it, reference nodemanager.md
// §5.2-5.3). A slice whose vsys tag grants an operation asks the node
// manager through its local API (method Vsys, package agent) and the
// node runs the operation on its behalf, as root on the host, with
// arguments checked first.
//
// Operations are built-ins written in Go (sensor, dataset) and operator
// scripts: executables in the node's script directory, run with the
// checked arguments as argv (no shell), a timeout, a bound on their
// output, and an environment naming the calling slice. Every call is
// logged with its caller, operation, arguments and outcome; a refusal (not
// granted, unknown operation, bad argument) changes nothing.
package vsys

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
)

// Limits of a request.
const (
	MaxArgs    = 16  // arguments of one call
	MaxArgLen  = 256 // bytes of one argument
	MaxPending = 2   // calls of one slice running at once
)

// Request is what a slice asks: an operation and its arguments.
type Request struct {
	Op   string   `json:"op"`
	Args []string `json:"args"`
}

// Result is what an operation answers. Built-ins answer Data; scripts
// answer their exit status and output.
type Result struct {
	Op        string `json:"op"`
	Data      any    `json:"data,omitempty"`
	Exit      int    `json:"exit"`
	Stdout    string `json:"stdout,omitempty"`
	Stderr    string `json:"stderr,omitempty"`
	Truncated bool   `json:"truncated,omitempty"` // output beyond MaxOutput was dropped
}

// Caller is the slice a call is made for (the local API knows it from
// the kernel, never from the request).
type Caller struct {
	Slice string
	XID   int
}

// Op is one operation.
type Op struct {
	Name string
	Help string
	// Check validates the arguments and returns the value a scoped
	// grant (op:scope) must name ("" when the call has no scoped
	// argument: only an unscoped grant allows it). It changes nothing.
	Check func(args []string) (scope string, err error)
	// Run performs the checked call.
	Run func(ctx context.Context, c Caller, args []string) (Result, error)
}

// Config configures a Registry.
type Config struct {
	// ScriptDir holds the operator's scripts, one executable per
	// operation, named like the operation ("" = none).
	ScriptDir string
	Timeout   time.Duration // of a script; 0 = 30 s
	MaxOutput int           // bytes kept of a script's stdout and of its stderr; 0 = 64 KiB
	Log       *slog.Logger
}

// Registry holds the operations of a node and runs calls.
type Registry struct {
	cfg     Config
	builtin map[string]Op
	mu      sync.Mutex
	pending map[string]int // slice -> calls running
}

// New returns a registry with the given built-in operations (see
// Sensor, Dataset) and cfg's scripts.
func New(cfg Config, builtins ...Op) *Registry {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxOutput <= 0 {
		cfg.MaxOutput = 64 << 10
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Registry{cfg: cfg, builtin: map[string]Op{}, pending: map[string]int{}}
	for _, op := range builtins {
		r.builtin[op.Name] = op
	}
	return r
}

// Builtins names the built-in operations, sorted.
func (r *Registry) Builtins() []string {
	var out []string
	for n := range r.builtin {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Builtin reports whether op is a built-in operation.
func (r *Registry) Builtin(op string) bool { _, ok := r.builtin[op]; return ok }

// argChars is what an argument may contain: no white space, quotes,
// shell or glob characters, and it may not start with '-' (no option
// can be slipped into a script's argv).
var argChars = regexp.MustCompile(`^[A-Za-z0-9._,:=+@%/][A-Za-z0-9._,:=+@%/-]*$`)

// CheckArgs applies the rules every call's arguments follow; the error
// names the first bad argument.
func CheckArgs(args []string) error {
	if len(args) > MaxArgs {
		return core.FieldErrorf("args", "%d arguments, at most %d", len(args), MaxArgs)
	}
	for i, a := range args {
		switch {
		case a == "":
			return core.FieldErrorf("args", "argument %d is empty", i)
		case len(a) > MaxArgLen:
			return core.FieldErrorf("args", "argument %d is %d bytes, at most %d", i, len(a), MaxArgLen)
		case !argChars.MatchString(a):
			return core.FieldErrorf("args", "argument %d %q: want [A-Za-z0-9._,:=+@%%/-], not starting with '-'", i, a)
		}
		for _, el := range strings.Split(a, "/") {
			if el == ".." {
				return core.FieldErrorf("args", "argument %d %q: no '..' path element", i, a)
			}
		}
	}
	return nil
}

// ParseRequest decodes a request strictly (one JSON object, no unknown
// fields, nothing after it) and checks the operation's name and the
// arguments' form. It does not say whether the operation exists or is
// granted.
func ParseRequest(raw []byte) (Request, error) {
	var q Request
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return Request{}, core.Errorf(core.Invalid, "arguments: %v", err)
	}
	if dec.More() {
		return Request{}, core.Errorf(core.Invalid, "arguments: data after the object")
	}
	if !tags.ValidVsysOp(q.Op) {
		return Request{}, core.FieldErrorf("op", "%q is not an operation name (1-32 of [a-z0-9_-], starting with a letter)", q.Op)
	}
	if err := CheckArgs(q.Args); err != nil {
		return Request{}, err
	}
	return q, nil
}

// lookup returns the operation called name: a built-in, else a script.
func (r *Registry) lookup(name string) (Op, error) {
	if op, ok := r.builtin[name]; ok {
		return op, nil
	}
	return r.script(name)
}

// Call runs q for c if grants allow it. The order of checks: the
// request's form, the operation is granted at all (else Forbidden, whether
// it exists or not: an ungranted slice learns nothing of the node's
// scripts), it exists (NotFound), its arguments (Invalid), the grant's
// scope (Forbidden), then the slice's calls in progress (Unavailable).
// Every call and refusal is logged.
func (r *Registry) Call(ctx context.Context, c Caller, grants []tags.VsysGrant, q Request) (res Result, err error) {
	start := time.Now()
	defer func() {
		attrs := []any{"slice", c.Slice, "op", q.Op, "args", q.Args, "took", time.Since(start).Round(time.Millisecond)}
		switch {
		case err != nil:
			r.cfg.Log.Warn("vsys call refused", append(attrs, "err", err)...)
		default:
			r.cfg.Log.Info("vsys call", append(attrs, "exit", res.Exit, "truncated", res.Truncated)...)
		}
	}()
	if !tags.ValidVsysOp(q.Op) {
		return Result{}, core.FieldErrorf("op", "%q is not an operation name", q.Op)
	}
	if err := CheckArgs(q.Args); err != nil {
		return Result{}, err
	}
	if !tags.VsysGranted(grants, q.Op) {
		return Result{}, core.Errorf(core.Forbidden, "operation %s is not granted to slice %s (no vsys tag %s)", q.Op, c.Slice, q.Op)
	}
	op, err := r.lookup(q.Op)
	if err != nil {
		return Result{}, err
	}
	scope, err := op.Check(q.Args)
	if err != nil {
		return Result{}, err
	}
	if !tags.VsysAllows(grants, q.Op, scope) {
		if scope == "" {
			return Result{}, core.Errorf(core.Forbidden, "operation %s %s needs an unscoped grant: slice %s has only %s", q.Op, strings.Join(q.Args, " "), c.Slice, grantList(grants, q.Op))
		}
		return Result{}, core.Errorf(core.Forbidden, "operation %s is not granted to slice %s for %s (it has %s)", q.Op, c.Slice, scope, grantList(grants, q.Op))
	}
	if !r.enter(c.Slice) {
		return Result{}, core.Errorf(core.Unavailable, "slice %s has %d operations running: try again when one ends", c.Slice, MaxPending)
	}
	defer r.leave(c.Slice)
	res, err = op.Run(ctx, c, q.Args)
	res.Op = q.Op
	return res, err
}

func grantList(grants []tags.VsysGrant, op string) string {
	var out []string
	for _, g := range grants {
		if g.Op == op {
			out = append(out, g.String())
		}
	}
	return strings.Join(out, ", ")
}

func (r *Registry) enter(slice string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[slice] >= MaxPending {
		return false
	}
	r.pending[slice]++
	return true
}

func (r *Registry) leave(slice string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[slice]--; r.pending[slice] <= 0 {
		delete(r.pending, slice)
	}
}

// Help describes the operations a slice may call: each granted
// operation and what it takes.
func (r *Registry) Help(grants []tags.VsysGrant) map[string]string {
	out := map[string]string{}
	for _, g := range grants {
		if _, done := out[g.Op]; done {
			continue
		}
		op, err := r.lookup(g.Op)
		if err != nil {
			out[g.Op] = fmt.Sprintf("(granted, but %v)", err)
			continue
		}
		out[g.Op] = op.Help
	}
	return out
}
