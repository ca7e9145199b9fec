package vsys

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"

	"github.com/planetlab/pl/internal/core"
)

// Names of the built-in operations.
const (
	OpSensor  = "sensor"
	OpDataset = "dataset"
)

var (
	sliceName   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`) // as the node manager accepts them
	datasetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Sensor is the built-in "sensor", for monitoring slices: the usage
// figures of one sliver on this node (args: [slice]; the scope is the
// slice) or of every sliver (no arguments: an unscoped grant only), from
// the node's sensors (figures; package sensors).
func Sensor(figures func() (*core.NodeFigures, error)) Op {
	return Op{
		Name: OpSensor,
		Help: "usage figures of a sliver on this node: [slice] -> {slice, state, cpu_seconds, cpu_pct, mem_used, ...}, or of every sliver: [] -> [...]",
		Check: func(args []string) (string, error) {
			switch {
			case len(args) == 0:
				return "", nil
			case len(args) > 1:
				return "", core.FieldErrorf("args", "sensor takes one slice name, not %d arguments", len(args))
			case !sliceName.MatchString(args[0]):
				return "", core.FieldErrorf("args", "%q is not a slice name", args[0])
			}
			return args[0], nil
		},
		Run: func(ctx context.Context, c Caller, args []string) (Result, error) {
			f, err := figures()
			if err != nil {
				return Result{}, core.Errorf(core.Unavailable, "the node's sensors: %v", err)
			}
			if len(args) == 0 {
				return Result{Data: f.Slivers}, nil
			}
			for _, s := range f.Slivers {
				if s.Slice == args[0] {
					return Result{Data: s}, nil
				}
			}
			return Result{}, core.Errorf(core.NotFound, "slice %s has no sliver on this node", args[0])
		},
	}
}

// Mounter attaches and detaches read-only directories on the host
// (MountReadOnly and friends on Linux; fakes in tests).
type Mounter interface {
	// BindReadOnly attaches a read-only, nosuid, nodev bind mount of the
	// directory src at the existing directory dst, made read-only before
	// it is attached (so that every propagated copy is read-only too).
	BindReadOnly(src, dst string) error
	// Unmount detaches the mount at dst (and its propagated copies).
	Unmount(dst string) error
	// Mounted reports whether dir is a mount point.
	Mounted(dir string) (bool, error)
}

// DatasetConfig configures the built-in "dataset".
type DatasetConfig struct {
	// Dir is the node's dataset directory: each directory in it is a
	// dataset, named like it.
	Dir string
	// SliverDir is the host directory of a slice's sliver whose mounts
	// appear in the sliver at InSliver (sliver.Runc.DatasetDir), or an
	// error when the slice has no such sliver.
	SliverDir func(slice string) (string, error)
	InSliver  string // where slivers see SliverDir (sliver.DatasetsPath)
	Mounter   Mounter
}

// Dataset is the built-in "dataset": it attaches a dataset of the node
// read-only inside the caller's sliver, at InSliver/<name> (args: attach
// <name>), or detaches it (detach <name>). The scope is the dataset's
// name. Attaching twice or detaching what is not attached succeeds.
func Dataset(cfg DatasetConfig) Op {
	return Op{
		Name: OpDataset,
		Help: "attach a node dataset read-only in the caller's sliver at " + cfg.InSliver + "/<name>: [attach, name] -> {path}; detach it: [detach, name]",
		Check: func(args []string) (string, error) {
			if len(args) != 2 || args[0] != "attach" && args[0] != "detach" {
				return "", core.FieldErrorf("args", "dataset takes attach <name> or detach <name>, not %q", args)
			}
			if !datasetName.MatchString(args[1]) {
				return "", core.FieldErrorf("args", "%q is not a dataset name (1-64 of [A-Za-z0-9._-], starting with a letter or digit)", args[1])
			}
			return args[1], nil
		},
		Run: func(ctx context.Context, c Caller, args []string) (Result, error) {
			name := args[1]
			dir, err := cfg.SliverDir(c.Slice)
			if err != nil {
				return Result{}, err
			}
			if ok, err := cfg.Mounter.Mounted(dir); err != nil || !ok {
				return Result{}, core.Errorf(core.Unavailable, "the sliver of %s has no datasets directory (yet): it gets one when it restarts after its dataset grant", c.Slice)
			}
			dst := filepath.Join(dir, name)
			inSliver := path.Join(cfg.InSliver, name)
			if args[0] == "detach" {
				if ok, _ := cfg.Mounter.Mounted(dst); ok {
					if err := cfg.Mounter.Unmount(dst); err != nil {
						return Result{}, core.Errorf(core.Internal, "detach dataset %s: %v", name, err)
					}
				}
				if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return Result{}, core.Errorf(core.Internal, "detach dataset %s: %v", name, err)
				}
				return Result{Data: map[string]string{"path": inSliver}}, nil
			}
			src := filepath.Join(cfg.Dir, name)
			if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
				return Result{}, core.Errorf(core.NotFound, "no dataset %s on this node", name)
			}
			if ok, _ := cfg.Mounter.Mounted(dst); ok {
				return Result{Data: map[string]string{"path": inSliver}}, nil
			}
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return Result{}, core.Errorf(core.Internal, "attach dataset %s: %v", name, err)
			}
			if err := cfg.Mounter.BindReadOnly(src, dst); err != nil {
				os.Remove(dst)
				return Result{}, core.Errorf(core.Internal, "attach dataset %s: %v", name, err)
			}
			return Result{Data: map[string]string{"path": inSliver}}, nil
		},
	}
}
