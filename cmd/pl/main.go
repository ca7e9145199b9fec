// Command pl is PlanetLab in one binary: the central server (pl plc), the
// node manager (pl node), an emulated planet on one machine (pl dev) and the
// user commands (pl slice, pl ssh, ...). Run `pl help` for the list.
package main

import (
	"os"

	"github.com/planetlab/pl/internal/cli"
	"github.com/planetlab/pl/internal/dev"
	"github.com/planetlab/pl/internal/node/nodecmd"
	"github.com/planetlab/pl/internal/plc/plccmd"
	"github.com/planetlab/pl/internal/plcbench"
	"github.com/planetlab/pl/internal/sshcli"
)

func main() {
	root := cli.NewRoot() // registry commands: login, site, person, key, node register, slice, ...
	plccmd.Attach(root)   // the PLC server: pl plc, plc init
	nodecmd.Attach(root)  // node manager: pl node (daemon), node join, node image, bench sliver
	sshcli.Attach(root)   // slice access: ssh, exec, copy
	dev.Attach(root)      // emulated planet: dev, dev down, bench planet
	plcbench.Attach(root) // bench plcapi: our PLCAPI beside the original
	os.Exit(cli.Execute(root))
}
