package sliver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWeakerRoot checks the original's "weaker root": the slice account
// becomes sliver root with su and no password, also from a shell (busybox
// sh runs applets by re-executing itself), and ping works for it. The
// sliver joins a user namespace created beforehand, as on a node (netcfg
// creates the network namespace owned by it), where setgroups must work.
func TestWeakerRoot(t *testing.T) {
	needRoot(t)
	r := newTestRuntime(t)
	s := testSpec(t, "su")
	dir, _ := testEnv(t)
	s.NetNS = filepath.Join(dir, "netns-"+s.Name)
	if err := NewNetNS(s.NetNS, s.UIDBase); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountAll(s.NetNS)
		os.Remove(s.NetNS)
	})
	apply(t, r, s)
	destroyAtEnd(t, r, s.Name)
	if out := mustRun(t, r, s.Name, false, "id", "-u"); strings.TrimSpace(out) != "1000" {
		t.Fatalf("slice account uid = %q, want 1000", out)
	}
	for _, args := range [][]string{
		{"su", "-c", "id -u"},
		{"/bin/sh", "-c", "su -c 'id -u'"},
	} {
		out, err := run(t, r, s.Name, false, args...)
		if err != nil || strings.TrimSpace(out) != "0" {
			t.Fatalf("%q as the slice account: %q, %v; want 0", args, out, err)
		}
	}
	if out, err := run(t, r, s.Name, false, "/bin/sh", "-c", "ping -c 1 -W 2 127.0.0.1"); err != nil {
		t.Fatalf("ping as the slice account: %v\n%s", err, out)
	}
	if out := mustRun(t, r, s.Name, false, "/bin/sh", "-c", "id -u; touch /tmp/f; stat -c %u /tmp/f"); strings.Fields(out)[0] != "1000" || strings.Fields(out)[1] != "1000" {
		t.Fatalf("ordinary applets must keep the account's uid (setuid busybox drops it): %q", out)
	}
}
