package plccmd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestAttach(t *testing.T) {
	root := &cobra.Command{Use: "pl"}
	Attach(root)
	for _, path := range [][]string{{"plc"}, {"plc", "init"}} {
		c, rest, err := root.Find(path)
		if err != nil || len(rest) != 0 || c.Name() != path[len(path)-1] {
			t.Errorf("pl %s: %v %v", strings.Join(path, " "), c, err)
		}
	}
}

// TestClientSideDoesNotLinkTheServer keeps the layering of
// docs/ARCHITECTURE.md: the CLI and the Go client reach PLC over the
// network through the wire packages (restapi, nodeapi) and link no PLC
// server package.
func TestClientSideDoesNotLinkTheServer(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/planetlab/pl/internal/cli", "github.com/planetlab/pl/internal/client").CombinedOutput() // hostdeps: go
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/planetlab/pl/internal/plc/") {
			t.Errorf("the CLI or the client links %s", p)
		}
	}
}
