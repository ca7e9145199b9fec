package sliver_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/planetlab/pl/internal/node/image"
	"github.com/planetlab/pl/internal/node/sliver"
)

// Example shows the life of one sliver: the agent applies specs, the SSH
// gateway runs commands in it, expiry destroys it. (Needs root, runc,
// tini and btrfs-progs; not run as a test.)
func Example() {
	ctx := context.Background()
	imgs, err := image.Open("/var/lib/pl/images")
	if err != nil {
		log.Fatal(err)
	}
	rt, err := sliver.New(ctx, sliver.Config{StateDir: "/var/lib/pl/slivers", Images: imgs})
	if err != nil {
		log.Fatal(err)
	}
	spec := sliver.Spec{
		Name: "princeton_codeen", XID: 7, UIDBase: 1<<28 + 7*sliver.UIDCount, Enabled: true,
		Keys:      []string{"ssh-ed25519 AAAA... alice@example.org"},
		Resources: sliver.Resources{CPUShares: 1024, MemoryBytes: 1 << 30, Pids: 1000, DiskBytes: 10 << 30},
	}
	if err := rt.Apply(ctx, spec); err != nil { // create and start
		log.Fatal(err)
	}
	spec.Resources.MemoryBytes = 2 << 30
	if err := rt.Apply(ctx, spec); err != nil { // live change, no restart
		log.Fatal(err)
	}
	cmd, err := rt.Command(ctx, spec.Name, sliver.Process{Args: []string{"id", "-un"}})
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil { // prints princeton_codeen
		log.Fatal(err)
	}
	if err := rt.Destroy(ctx, spec.Name); err != nil {
		log.Fatal(err)
	}
	fmt.Println("done")
}
