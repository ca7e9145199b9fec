package dev

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devRun is a `pl dev` started by an end-to-end test.
type devRun struct {
	t        *testing.T
	cmd      *exec.Cmd
	done     chan error
	stderr   lockedBuffer
	summary  lockedBuffer
	stopped  bool
	stopWait time.Duration
}

// startDev starts dev (a `pl dev ...` command of instance id), waits up to
// readyWait until its summary prints a line starting with ready, and
// returns it. Cleanup stops it (SIGINT, then up to stopWait) and runs
// `pl dev down --id id`.
func startDev(t *testing.T, dev *exec.Cmd, id, ready string, readyWait, stopWait time.Duration) *devRun {
	t.Helper()
	d := &devRun{t: t, cmd: dev, done: make(chan error, 1), stopWait: stopWait}
	out, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	dev.Stderr = &d.stderr
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	readyCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			d.summary.WriteString(sc.Text() + "\n")
			if !signalled && strings.HasPrefix(sc.Text(), ready) {
				signalled = true
				close(readyCh)
			}
		}
		io.Copy(io.Discard, out)
		d.done <- dev.Wait()
	}()
	t.Cleanup(func() {
		d.stop()
		// hostdeps: self
		exec.Command(dev.Path, "dev", "down", "--id", id).Run()
	})
	select {
	case <-readyCh:
	case err := <-d.done:
		d.stopped = true
		t.Fatalf("pl dev exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", err, d.summary.String(), d.stderr.String())
	case <-time.After(readyWait):
		t.Fatalf("pl dev not ready after %v\nstdout:\n%s\nstderr:\n%s", readyWait, d.summary.String(), d.stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // the rest of the summary
	return d
}

// stop interrupts pl dev as Ctrl-C does and waits for it to clean up.
func (d *devRun) stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("pl dev exited with %v\nstderr:\n%s", err, d.stderr.String())
		}
	case <-time.After(d.stopWait):
		d.cmd.Process.Kill()
		d.t.Errorf("pl dev did not stop within %v after SIGINT", d.stopWait)
	}
}
