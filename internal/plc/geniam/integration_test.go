package geniam_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/amclient"
	"github.com/planetlab/pl/internal/tlspin"
)

// plc runs the real pl binary as one CLI user.
type plcli struct {
	t   *testing.T
	bin string
	cfg string
}

func (p plcli) ok(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...) // hostdeps: self
	cmd.Env = append(os.Environ(), "PL_CONFIG_DIR="+p.cfg, "PL_PLC=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("pl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// TestRealPLC: pl plc serving the aggregate on its own port; a user gets a
// certificate and a slice credential with 'pl geni' and uses them with the
// Go AM client to list, allocate, provision (with the login in the
// manifest), check and delete a sliver.
func TestRealPLC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the pl binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "pl")
	build := exec.Command("go", "build", "-o", bin, "github.com/planetlab/pl/cmd/pl") // hostdeps: go
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(tmp, "data")
	admin := plcli{t, bin, filepath.Join(tmp, "admin")}
	alice := plcli{t, bin, filepath.Join(tmp, "alice")}
	pw := filepath.Join(tmp, "pw")
	os.WriteFile(pw, []byte("admin-password-1\n"), 0o600)
	admin.ok("plc", "init", "--data", data, "--email", "admin@plc.test", "--password-file", pw)

	srv := exec.Command(bin, "plc", "--data", data, "--listen", "127.0.0.1:0", "--geni-host", "plc.test", "--geni-listen", "127.0.0.1:0") // hostdeps: self
	srv.Env = append(os.Environ(), "PL_CONFIG_DIR="+filepath.Join(tmp, "srv"))
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	srv.Stderr = &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- srv.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			srv.Process.Kill()
		}
		if t.Failed() {
			t.Logf("pl plc log:\n%s", log.String())
		}
	})
	var url, fp, amURL string
	sc := bufio.NewScanner(stdout)
	for (url == "" || fp == "" || amURL == "") && sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`PLC serving at (\S+)`).FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		if m := regexp.MustCompile(`fingerprint: ([0-9a-f]{64})`).FindStringSubmatch(line); m != nil {
			fp = m[1]
		}
		if m := regexp.MustCompile(`GENI aggregate at (\S+) \(urn:publicid:IDN\+plc.test\+authority\+am\)`).FindStringSubmatch(line); m != nil {
			amURL = m[1]
		}
	}
	if url == "" || fp == "" || amURL == "" {
		t.Fatalf("pl plc did not print its URLs; log:\n%s", log.String())
	}
	go io.Copy(io.Discard, stdout)

	admin.ok("login", url, "--email", "admin@plc.test", "--password-file", pw, "--fingerprint", fp)
	admin.ok("site", "add", "pr", "--name", "Princeton", "--abbrev", "pr", "--url", "https://pr.test", "--latitude", "40.35", "--longitude", "-74.66", "--max-slices", "5")
	alicePW := filepath.Join(tmp, "alice-pw")
	os.WriteFile(alicePW, []byte("alice-password-1\n"), 0o600)
	admin.ok("person", "add", "alice@pr.test", "--first", "Alice", "--last", "L", "--site", "pr", "--role", "pi", "--password-file", alicePW)
	admin.ok("person", "enable", "alice@pr.test")
	admin.ok("node", "register", "pr", "node1.pr.test", "--ip", "10.9.0.11/24")
	admin.ok("node", "update", "node1.pr.test", "--boot-state", "boot")
	alice.ok("login", url, "--email", "alice@pr.test", "--password-file", alicePW, "--fingerprint", fp)
	alice.ok("slice", "create", "pr_geni", "--url", "https://pr.test/geni", "--description", "a GENI slice")
	alice.ok("slice", "add-users", "pr_geni", "alice@pr.test")

	dir := filepath.Join(tmp, "geni")
	alice.ok("geni", "cert", "--dir", dir)
	sliceCred := alice.ok("geni", "credential", "pr_geni", "--dir", dir)
	userCred := alice.ok("geni", "credential", "--dir", dir)

	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "geni-cert.pem"), filepath.Join(dir, "geni-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pin, err := tlspin.Parse(fp)
	if err != nil {
		t.Fatal(err)
	}
	tc := tlspin.Config(pin)
	tc.Certificates = []tls.Certificate{cert}
	am := amclient.New(amURL, tc)
	ctx := context.Background()
	okr := func(r *amclient.Result, err error) *amclient.Result {
		t.Helper()
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	v3 := map[string]any{"geni_rspec_version": amclient.V3()}
	if r := okr(am.GetVersion(ctx)); r.Map()["geni_api_versions"].(map[string]any)["3"] != amURL {
		t.Fatalf("GetVersion %v", r.Value)
	}
	ad := okr(am.ListResources(ctx, amclient.Creds(userCred), v3)).Value.(string)
	if !strings.Contains(ad, `component_name="node1.pr.test"`) || !strings.Contains(ad, `<available now="true">`) {
		t.Fatalf("advertisement:\n%s", ad)
	}
	creds := amclient.Creds(sliceCred)
	okr(am.Allocate(ctx, sliceURN, creds, request("node1.pr.test"), map[string]any{}))
	key := sshPub(t)
	r := okr(am.Provision(ctx, []string{sliceURN}, creds, map[string]any{"geni_rspec_version": amclient.V3(),
		"geni_users": []any{map[string]any{"urn": "urn:publicid:IDN+plc.test+user+alice_at_pr.test", "keys": []any{key}}}}))
	if man := r.Map()["geni_rspec"].(string); !strings.Contains(man, `hostname="10.9.0.11" port="22" username="pr_geni"`) {
		t.Fatalf("manifest:\n%s", man)
	}
	if out := alice.ok("slice", "show", "pr_geni"); !strings.Contains(out, "node1.pr.test") && !strings.Contains(out, "node_ids") {
		t.Fatalf("slice after Provision:\n%s", out)
	}
	st := okr(am.Status(ctx, []string{sliceURN}, creds)).Map()["geni_slivers"].([]any)
	// No node manager runs here: the sliver waits for its node to report it.
	if len(st) != 1 || st[0].(map[string]any)["geni_operational_status"] != geni.Configuring {
		t.Fatalf("status %v", st)
	}
	okr(am.Delete(ctx, []string{sliceURN}, creds))
	// A client without a certificate is refused in the TLS handshake.
	bad := amclient.New(amURL, tlspin.Config(pin))
	if r, err := bad.GetVersion(ctx); err == nil {
		t.Fatalf("answered a client without a certificate: %v", r.Raw)
	}
}
