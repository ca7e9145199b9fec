package sshgw

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/node/sliver"
	"golang.org/x/crypto/ssh"
)

// BenchmarkLoginLatency compares the gateway with OpenSSH's sshd whose
// ForceCommand enters the same sliver with the same `runc exec` the
// runtime uses, measured interleaved in one run with the same Go client:
//
//   - prompt: TCP connect, key exchange, publickey auth, pty-req, shell,
//     until the first byte of the sliver's shell prompt;
//   - true: TCP connect, auth, exec "true", until the exit status.
//
// Run: go test -run XXX -bench LoginLatency -benchtime 30x ./internal/node/sshgw
// (root). Target: gateway p50 < 100 ms and within 1.5x of sshd.
func BenchmarkLoginLatency(b *testing.B) {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		b.Skip("needs /usr/sbin/sshd")
	}
	e, rt, _ := newRealEnvB(b)
	sshdAddr := startSSHD(b, e, rt)
	gw := e.gw.Addr().String()
	cb := ssh.FixedHostKey(e.gw.HostKey())
	var d [4][]time.Duration // gw prompt, sshd prompt, gw true, sshd true
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d[0] = append(d[0], measure(b, gw, realSliceName, e, cb, true))
		d[1] = append(d[1], measure(b, sshdAddr, "root", e, ssh.InsecureIgnoreHostKey(), true))
		d[2] = append(d[2], measure(b, gw, realSliceName, e, cb, false))
		d[3] = append(d[3], measure(b, sshdAddr, "root", e, ssh.InsecureIgnoreHostKey(), false))
	}
	b.StopTimer()
	names := []string{"gw-prompt", "sshd-prompt", "gw-true", "sshd-true"}
	var p50 [4]float64
	for i, ds := range d {
		p50[i] = pct(ds, 50)
		b.ReportMetric(p50[i], names[i]+"-p50-ms")
		b.ReportMetric(pct(ds, 99), names[i]+"-p99-ms")
	}
	b.ReportMetric(p50[0]/p50[1], "prompt-ratio")
	b.ReportMetric(p50[2]/p50[3], "true-ratio")
	fmt.Printf("ssh latency over %d runs (ms): prompt p50 gw %.1f sshd %.1f (x%.2f), p99 gw %.1f sshd %.1f; true p50 gw %.1f sshd %.1f (x%.2f), p99 gw %.1f sshd %.1f\n",
		b.N, p50[0], p50[1], p50[0]/p50[1], pct(d[0], 99), pct(d[1], 99),
		p50[2], p50[3], p50[2]/p50[3], pct(d[2], 99), pct(d[3], 99))
}

func pct(ds []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(s[i].Microseconds()) / 1000
}

// measure times one login: to the first prompt byte (shell) or to the exit
// status of "true".
func measure(b *testing.B, addr, user string, e *env, cb ssh.HostKeyCallback, shell bool) time.Duration {
	start := time.Now()
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(e.key.signer)}, HostKeyCallback: cb, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatalf("%s: %v", addr, err)
	}
	defer c.Close()
	// A login that does not finish in time fails the benchmark instead of
	// hanging it.
	hung := time.AfterFunc(20*time.Second, func() { c.Close() })
	defer hung.Stop()
	s, err := c.NewSession()
	if err != nil {
		b.Fatalf("%s: %v", addr, err)
	}
	defer s.Close()
	if !shell {
		if err := s.Run("true"); err != nil {
			b.Fatalf("%s: true: %v", addr, err)
		}
		return time.Since(start)
	}
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		b.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	if err := s.Shell(); err != nil {
		b.Fatal(err)
	}
	one := make([]byte, 1)
	if _, err := out.Read(one); err != nil {
		b.Fatalf("%s: no prompt: %v", addr, err)
	}
	return time.Since(start)
}

func newRealEnvB(b *testing.B) (*env, *sliver.Runc, *runtimeSlices) {
	var view *runtimeSlices
	var rt *sliver.Runc
	e := newEnvWith(b, func(e *env, c *Config) {
		r, spec := realSliver(b, e.key.authorized)
		rt = r
		view = &runtimeSlices{spec: spec, on: true, netns: "/proc/" + sliverInit(b) + "/ns/net"}
		c.Runtime, c.Slices = r, view
	})
	return e, rt, view
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startSSHD runs OpenSSH's sshd on a loopback port; every login (as root,
// with the test key) enters the sliver with the runtime's own runc exec
// command line, with a pty when the client asked for one.
func startSSHD(b *testing.B, e *env, rt *sliver.Runc) string {
	ctx := context.Background()
	const marker = "__PL_CMD__"
	execCmd, err := rt.Command(ctx, realSliceName, sliver.Process{Args: []string{"/bin/sh", "-c", marker}})
	if err != nil {
		b.Fatal(err)
	}
	ttyCmd, err := rt.Command(ctx, realSliceName, sliver.Process{TTY: true, Env: []string{"TERM=xterm"}})
	if err != nil {
		b.Fatal(err)
	}
	quote := func(args []string) string {
		var q []string
		for _, a := range args {
			if a == marker {
				q = append(q, `"$SSH_ORIGINAL_COMMAND"`)
			} else {
				q = append(q, shQuote(a))
			}
		}
		return strings.Join(q, " ")
	}
	dir := e.dir
	enter := filepath.Join(dir, "enter.sh")
	script := fmt.Sprintf("#!/bin/sh\nif [ -n \"$SSH_ORIGINAL_COMMAND\" ]; then exec %s; fi\nexec %s\n", quote(execCmd.Args), quote(ttyCmd.Args))
	if err := os.WriteFile(enter, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	if _, err := LoadOrCreateHostKey(filepath.Join(dir, "sshd_host_key")); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(e.key.authorized+"\n"), 0o600)
	port := freePort(b)
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
ForceCommand %s
`, port, filepath.Join(dir, "sshd_host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"), enter)), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory sshd requires
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	var logb syncBuffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b.Fatalf("sshd did not start: %v\n%s", err, logb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
