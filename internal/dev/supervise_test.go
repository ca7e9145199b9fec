package dev

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A supervised process that exits is restarted with backoff and reported;
// pl dev stop keeps it stopped, pl dev start starts it; both work over the
// control socket (issue 9.19).
func TestSuperviseRestartsAndControl(t *testing.T) {
	oldRun, oldMin := RunDir, MinRestartBackoff
	RunDir, MinRestartBackoff = t.TempDir(), 20*time.Millisecond
	t.Cleanup(func() { RunDir, MinRestartBackoff = oldRun, oldMin })
	var logb lockedBuffer
	p := &Planet{
		Config: Config{Binary: "/bin/sh", Log: slog.New(slog.NewTextHandler(&logb, nil))},
		rec:    &Record{Prefix: "pldevu-", DataDir: t.TempDir()},
		quit:   make(chan struct{}),
	}
	defer close(p.quit)
	crash := p.newProc("n1", "", filepath.Join(p.rec.DataDir, "n1.log"), "-c", "sleep 0.05; exit 3")
	steady := p.newProc("plc", "", filepath.Join(p.rec.DataDir, "plc.log"), "-c", "exec sleep 60")
	for _, s := range []*proc{crash, steady} {
		if _, err := p.spawn(s); err != nil {
			t.Fatal(err)
		}
		go p.supervise(s)
	}
	defer func() {
		for _, s := range []*proc{crash, steady} {
			s.mu.Lock()
			s.want = false
			s.mu.Unlock()
			if c := s.current(); c != nil {
				c.stop(time.Second)
			}
		}
	}()
	if err := p.serveControl(); err != nil {
		t.Fatal(err)
	}
	defer p.ctl.Close()

	waitUntil(t, 10*time.Second, "three restarts", func() bool { return crash.status().Restarts >= 3 })
	st := crash.status()
	if !strings.HasPrefix(st.LastExit, "exited with status 3") {
		t.Errorf("last exit %q", st.LastExit)
	}
	if !strings.Contains(logb.String(), "node n1 (pl node) exited with status 3; restarting it in") {
		t.Errorf("restart not reported:\n%s", logb.String())
	}
	// The record names the current run, so pl dev down finds it.
	waitUntil(t, 5*time.Second, "a running n1", func() bool { return crash.status().PID != 0 })

	// Over the control socket, as `pl dev stop plc` does.
	resp, err := Control("u", ControlRequest{Op: "stop", Name: "plc"})
	if err != nil || len(resp.Status) != 1 || resp.Status[0].State != "stopped" {
		t.Fatalf("stop plc: %+v %v", resp, err)
	}
	time.Sleep(200 * time.Millisecond)
	if st := steady.status(); st.State != "stopped" || st.Restarts != 0 {
		t.Fatalf("a stopped process was restarted: %+v", st)
	}
	resp, err = Control("u", ControlRequest{Op: "start", Name: "plc"})
	if err != nil || resp.Status[0].State != "running" || resp.Status[0].PID == 0 {
		t.Fatalf("start plc: %+v %v", resp, err)
	}
	p.mu.Lock()
	recPID := 0
	for _, pi := range p.rec.Procs {
		if pi.Name == "plc" {
			recPID = pi.PID
		}
	}
	p.mu.Unlock()
	if recPID != resp.Status[0].PID {
		t.Errorf("record names pid %d, running is %d", recPID, resp.Status[0].PID)
	}
	resp, err = Control("u", ControlRequest{Op: "status"})
	if err != nil || len(resp.Status) != 2 || resp.Status[0].Name != "plc" {
		t.Fatalf("status: %+v %v", resp, err)
	}
	if _, err := Control("u", ControlRequest{Op: "stop", Name: "n9"}); err == nil || !strings.Contains(err.Error(), "there are: n1, plc") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := Control("nosuch", ControlRequest{Op: "status"}); err == nil || !strings.Contains(err.Error(), `no pl dev running with id "nosuch"`) {
		t.Errorf("no instance: %v", err)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
