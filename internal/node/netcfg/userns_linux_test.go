package netcfg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// newUserOwnedNetNS is a test stand-in for sliver.NewNetNS: it creates a
// network namespace owned by a new user namespace mapping root to uidBase,
// by starting a short-lived child in both, and bind-mounts it at path.
func newUserOwnedNetNS(path string, uidBase uint32) error {
	cmd := exec.Command("/bin/sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uidBase), Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(uidBase), Size: 65536}},
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	return unix.Mount(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), path, "", unix.MS_BIND, "")
}

// rawSocketAsSliverRoot tries to open a raw ICMP socket as root of the
// user namespace owning userNSOf's network namespace, inside netnsPath.
func rawSocketAsSliverRoot(t *testing.T, userNSOf, netnsPath string) error {
	t.Helper()
	nfd, err := unix.Open(userNSOf, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nfd)
	ufd, err := unix.IoctlRetInt(nfd, unix.NS_GET_USERNS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ufd)
	cmd := exec.Command("nsenter", fmt.Sprintf("--user=/proc/%d/fd/%d", os.Getpid(), ufd), "--net="+netnsPath,
		"/usr/bin/python3", "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw ok')")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestUserOwnedNetNS: with the NewNetNS hook, a sliver's namespace belongs
// to its user namespace, so its root can open raw sockets there, while a
// namespace created by netcfg itself (owned by the node) refuses them.
func TestUserOwnedNetNS(t *testing.T) {
	tn := newTestNet(t)
	m := newTestManager(t, tn, func(c *Config) { c.NewNetNS = newUserOwnedNetNS })
	ctx := context.Background()
	const uidBase = 3_000_000
	owned, err := m.Ensure(ctx, Sliver{Name: "pltest_owned", XID: 30, UIDBase: uidBase})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := m.Ensure(ctx, Sliver{Name: "pltest_plain", XID: 31})
	if err != nil {
		t.Fatal(err)
	}
	// Networking works the same in both.
	serveEcho(listen(t, tn.peer, "tcp4", testPeerAddr+":7000"))
	for _, a := range []Attachment{owned, plain} {
		if seen, err := roundTrip(t, a.NetNS, testPeerAddr+":7000"); err != nil || !strings.HasPrefix(seen, testNodeAddr+":") {
			t.Fatalf("%s -> peer: %q %v", a.NetNS, seen, err)
		}
	}
	if err := rawSocketAsSliverRoot(t, owned.NetNS, owned.NetNS); err != nil {
		t.Errorf("sliver root could not open a raw socket in its own namespace: %v", err)
	}
	// Same user namespace, but a namespace owned by the node: refused.
	if err := rawSocketAsSliverRoot(t, owned.NetNS, plain.NetNS); err == nil || !strings.Contains(err.Error(), "PermissionError") {
		t.Errorf("raw socket in a namespace the sliver does not own: %v, want PermissionError", err)
	} else {
		t.Logf("as expected: %v", err)
	}
	if err := m.Remove(ctx, "pltest_owned", 30); err != nil {
		t.Fatal(err)
	}
	if isNetNSMount(owned.NetNS) {
		t.Fatal("netns survived Remove")
	}
}
