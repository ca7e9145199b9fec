package nodecmd

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"golang.org/x/sys/unix"
)

// TestSSHProbe: off without a gateway; down while the gateway process
// does not hold its lock or its port does not answer; up otherwise; the
// answer is kept sshProbeKeep.
func TestSSHProbe(t *testing.T) {
	if got := newSSHProbe("-", "", nil).State(); got != core.SSHOff {
		t.Errorf("no gateway: %q", got)
	}
	state := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	answers := true
	var probed []string
	p := newSSHProbe(":2222", state, nil)
	p.now = func() time.Time { return now }
	p.probe = func(addr string) error {
		probed = append(probed, addr)
		if !answers {
			return errors.New("refused")
		}
		return nil
	}
	if got := p.State(); got != core.SSHDown || len(probed) != 0 {
		t.Errorf("no gateway process: %q, probed %v", got, probed)
	}
	// A gateway process holds the lock (as RunGateway does).
	if err := os.MkdirAll(filepath.Join(state, gatewayDir), 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(state, gatewayDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if got := p.State(); got != core.SSHDown {
		t.Errorf("kept for %v: %q", sshProbeKeep, got)
	}
	now = now.Add(sshProbeKeep)
	if got := p.State(); got != core.SSHUp || len(probed) != 1 || probed[0] != "127.0.0.1:2222" {
		t.Errorf("gateway runs and answers: %q, probed %v", got, probed)
	}
	answers = false
	now = now.Add(sshProbeKeep)
	if got := p.State(); got != core.SSHDown {
		t.Errorf("gateway does not answer: %q", got)
	}

	// In-process: down until the gateway exists, then its own address.
	var addr net.Addr
	q := newSSHProbe("127.0.0.1:0", "", func() net.Addr { return addr })
	probed, answers = nil, true
	q.probe = p.probe
	if got := q.State(); got != core.SSHDown {
		t.Errorf("no in-process gateway yet: %q", got)
	}
	q.at = time.Time{} // forget the answer
	addr = &net.TCPAddr{IP: net.IPv6unspecified, Port: 4022}
	if got := q.State(); got != core.SSHUp || len(probed) != 1 || probed[0] != "[::1]:4022" {
		t.Errorf("in-process gateway: %q, probed %v", got, probed)
	}
}

// TestReportIntervalBounds: --report-interval outside 1s..1h is refused
// with the flag's name; 0 takes the agent's default.
func TestReportIntervalBounds(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {time.Second, true}, {5 * time.Second, true}, {time.Hour, true}, {500 * time.Millisecond, false}, {-time.Second, false}, {2 * time.Hour, false}} {
		o := Options{State: t.TempDir(), ReportInterval: c.d}
		err := o.setDefaults()
		if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), "--report-interval") {
			t.Errorf("%v: %v", c.d, err)
		}
	}
}
