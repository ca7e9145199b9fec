package nodecmd

import (
	"fmt"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/vsys"
)

// vsysRegistry is the node's privileged operations (package vsys): the
// sensor built-in over the node's sensors, the dataset built-in when the
// node has a dataset directory, and the operator's scripts.
func (n *Node) vsysRegistry(opts Options) *vsys.Registry {
	ops := []vsys.Op{vsys.Sensor(func() (*core.NodeFigures, error) {
		if n.Sensors == nil {
			return nil, fmt.Errorf("this node has no sensors")
		}
		return n.Sensors.Collect()
	})}
	if opts.DatasetDir != "" {
		ops = append(ops, vsys.Dataset(vsys.DatasetConfig{
			Dir:       opts.DatasetDir,
			SliverDir: func(slice string) (string, error) { return n.Runtime.DatasetDir(slice), nil },
			InSliver:  sliver.DatasetsPath,
			Mounter:   vsys.SysMounter{},
		}))
	}
	return vsys.New(vsys.Config{ScriptDir: opts.VsysDir, Timeout: opts.VsysTimeout, Log: n.log.With("subsystem", "vsys")}, ops...)
}
