package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func TestReadPasswordSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("from file\r\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PL_TEST_PASSWORD", "from env")
	if got, err := readPassword(file, "PL_TEST_PASSWORD", ""); err != nil || got != "from file" {
		t.Errorf("file: %q, %v; want %q", got, err, "from file")
	}
	if got, err := readPassword("", "PL_TEST_PASSWORD", ""); err != nil || got != "from env" {
		t.Errorf("env: %q, %v; want %q", got, err, "from env")
	}
	if _, err := readPassword(filepath.Join(t.TempDir(), "none"), "PL_TEST_PASSWORD", ""); err == nil {
		t.Error("missing file: no error")
	}
}

// TestReadPasswordTerminal types a password on a pseudo-terminal: it is
// read without echo, and the terminal's echo is back on afterwards.
func TestReadPasswordTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	stdin := os.Stdin
	os.Stdin = tty
	defer func() { os.Stdin = stdin }()

	type result struct {
		pw  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := readPassword("", "PL_TEST_PASSWORD_UNSET", "")
		done <- result{pw, err}
	}()
	// Type only once echo is off, as a person would after the prompt.
	for {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("returned %q, %v before echo was turned off", r.pw, r.err)
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := ptmx.Write([]byte("s3cret\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.pw != "s3cret" {
		t.Fatalf("got %q, %v; want s3cret", r.pw, r.err)
	}
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("echo still off after the password was read")
	}
}
