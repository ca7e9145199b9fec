package vlink

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// relayHelper is the first argument that makes the test binary the relay
// process (Config.RelayCommand in TestRelayProcess), as `pl node
// vlink-relay` is in a node.
const relayHelper = "vlink-relay-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == relayHelper {
		fs := flag.NewFlagSet(relayHelper, flag.ExitOnError)
		state := fs.String("state", "", "")
		ns := fs.String("netns", "", "")
		_ = fs.Parse(os.Args[2:])
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := RunRelayProcess(ctx, RelayProcessConfig{StateDir: *state, NetNS: *ns})
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// withRelayProcess replaces a node's link manager by one whose relays run
// in a process of their own.
func (n *testNode) withRelayProcess(t *testing.T) {
	t.Helper()
	n.vl.Close()
	vl, err := New(Config{NetNS: n.ns, StateDir: n.vl.cfg.StateDir, LocalAddr: n.addr, Table: "hvvl", Reserved: n.vl.cfg.Reserved,
		RelayCommand: []string{os.Args[0], relayHelper}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(t, err)
	n.vl = vl
}

// fastest returns the fastest of tries UDP round trips (0 when none
// came back).
func fastest(t *testing.T, ns, addr string, tries int) time.Duration {
	t.Helper()
	best := time.Duration(0)
	for range tries {
		d, err := rtt(t, ns, addr)
		if err == nil && (best == 0 || d < best) {
			best = d
		}
	}
	return best
}

// TestRelayProcess: with Config.RelayCommand the delay relays run in a
// process of their own: a delayed link carries while the managers are
// closed (the node manager stopped), a new manager adopts the running
// process (no second one) and changes its delay, and a killed process is
// restarted by the manager's supervision. Teardown stops it.
func TestRelayProcess(t *testing.T) {
	n1, n2 := newPair(t)
	a1, a2 := n1.sliver(t, "hva", 11), n2.sliver(t, "hva", 11)
	n1.withRelayProcess(t)
	n2.withRelayProcess(t)
	const delay = 10 * time.Millisecond
	slow := end("slow", 67, "10.200.0.9/30", "", n2.addr, 100_000)
	slow.DelayUS = delay.Microseconds()
	link(t, n1, n2, a1, a2, "hva", slow)
	go echo(udpListen(t, a2, "10.200.0.10:7002"))
	const addr = "10.200.0.10:7002"

	best := fastest(t, a1, addr, 10)
	t.Logf("delay %v each way, relays in their own processes: fastest round trip %v", delay, best)
	if best < 2*delay {
		t.Fatalf("round trip %v over a link delayed %v each way (0: none came back)", best, delay)
	}
	if len(n1.vl.relays) != 0 || len(n2.vl.relays) != 0 {
		t.Fatal("relays run in the manager's process")
	}
	pid1, pid2 := n1.vl.proc.running(), n2.vl.proc.running()
	if pid1 == 0 || pid2 == 0 || pid1 == os.Getpid() {
		t.Fatalf("relay processes %d %d", pid1, pid2)
	}

	// The node managers stop: the link keeps its delay and keeps carrying.
	n1.vl.Close()
	n2.vl.Close()
	if best := fastest(t, a1, addr, 5); best < 2*delay {
		t.Fatalf("with the managers stopped: fastest round trip %v (0: none came back)", best)
	}

	// New managers adopt the processes and change the delay through them.
	n1.withRelayProcess(t)
	n2.withRelayProcess(t)
	time.Sleep(2 * relaySuperTick) // a supervision pass or two
	if p1, p2 := n1.vl.proc.running(), n2.vl.proc.running(); p1 != pid1 || p2 != pid2 {
		t.Fatalf("relay processes %d %d after the managers restarted, want the same %d %d", p1, p2, pid1, pid2)
	}
	const shorter = 3 * time.Millisecond
	slow.DelayUS = shorter.Microseconds()
	link(t, n1, n2, a1, a2, "hva", slow)
	best = fastest(t, a1, addr, 10)
	t.Logf("delay changed to %v: fastest round trip %v", shorter, best)
	if best < 2*shorter || best >= 2*delay {
		t.Fatalf("round trip %v after the delay went from %v to %v each way", best, delay, shorter)
	}

	// A killed relay process is restarted by the supervision.
	must(t, syscall.Kill(pid1, syscall.SIGKILL))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p := n1.vl.proc.running(); p != 0 && p != pid1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed relay process was not restarted within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if best := fastest(t, a1, addr, 10); best < 2*shorter {
		t.Fatalf("after the restart: fastest round trip %v (0: none came back)", best)
	}

	// Teardown stops the processes.
	must(t, n1.vl.Teardown())
	if p := n1.vl.proc.running(); p != 0 {
		t.Errorf("relay process %d left after Teardown", p)
	}
	// A process whose state directory disappears (pl dev down, a wiped
	// node) stops by itself.
	n2.vl.Close() // no supervision to restart it
	must(t, os.RemoveAll(filepath.Join(n2.vl.cfg.StateDir, relayDir)))
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid2, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("relay process %d still runs 10 s after its state directory went", pid2)
		}
	}
}
