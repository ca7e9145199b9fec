package plccmd

import (
	"encoding/base64"
	"os"
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

// A bad --ticket-broker or --lease-granularity is refused precisely before PLC opens anything.
func TestTicketBrokerFlag(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ spec, want string }{
		{"gush", "want <name>=<base64 Ed25519 public key>"},
		{"gush=%%%", "broker gush: key is not standard base64"},
		{"gush=AAAA", "broker gush: key is 3 bytes, an Ed25519 public key is 32"},
	} {
		root := &cobra.Command{Use: "pl", SilenceUsage: true, SilenceErrors: true}
		Attach(root)
		root.SetArgs([]string{"plc", "--data", dir, "--ticket-broker", c.spec})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "--ticket-broker: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.spec, err, c.want)
		}
	}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	root := &cobra.Command{Use: "pl", SilenceUsage: true, SilenceErrors: true}
	Attach(root)
	root.SetArgs([]string{"plc", "--data", dir, "--ticket-broker", "a=" + key, "--ticket-broker", "a=" + key})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "broker a named twice") {
		t.Errorf("duplicate: %v", err)
	}
	for _, g := range []string{"0s", "1500ms", "-1h"} {
		root := &cobra.Command{Use: "pl", SilenceUsage: true, SilenceErrors: true}
		Attach(root)
		root.SetArgs([]string{"plc", "--data", dir, "--lease-granularity", g})
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--lease-granularity") || !strings.Contains(err.Error(), "want whole seconds, at least 1s") {
			t.Errorf("--lease-granularity %s: %v", g, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused flag left %d files in the data directory", len(ents))
	}
}
