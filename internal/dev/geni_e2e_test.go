package dev

import (
	"context"
	"crypto/tls"
	"fmt"
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

// TestGENIEndToEnd runs `pl dev --nodes 1` and uses its GENI aggregate as
// a GENI user would (issue 15): the demo user gets a certificate and a
// slice credential with `pl geni`, allocates and provisions the node
// through the AM API (the Go client), logs into the sliver over ssh with
// the login the manifest names, restarts it (geni_restart: geni_stopping,
// then geni_ready from the node's reports), and deletes it.
func TestGENIEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"ssh", "ssh-keygen", "runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: ssh ssh-keygen runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const id = "geni"
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	exec.Command(pl, "dev", "down", "--id", id).Run() // hostdeps: self

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dev := exec.Command(pl, "dev", "--nodes", "1", "--id", id, "--wan", "10.84.0.0/16", "--plc-port", "18448", "--geni-port", "18449") // hostdeps: self
	d := startDev(t, dev, id, "Try:", 8*time.Minute, 2*time.Minute)
	sum := d.summary.String()
	t.Logf("pl dev summary:\n%s", sum)

	plcURL, fp := match1(t, sum, `(?m)^PLC\s+(\S+)\s+\(certificate sha256 ([0-9a-f]+)\)`)
	amURL, authority := match1(t, sum, `(?m)^GENI AM\s+(\S+)\s+\(the aggregate, AM API v3, client certificates; authority (\S+);`)
	cfgDir, _ := match1(t, sum, `(?m)^admin CLI\s+.*?PL_CONFIG_DIR=(\S+) ()`)
	demoSlice, user := match1(t, sum, `(?m)^Demo slice (\S+) on every node, member (\S+) \(`)
	_, pwFile := match1(t, sum, `(?m)^Demo slice \S+ on every node, member (\S+) \(password in (\S+)\)`)
	for _, want := range []string{" geni cert ", " geni credential " + demoSlice + " -o " + demoSlice + ".cred ", "urn:publicid:IDN+" + authority + "+slice+" + demoSlice} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	m := regexp.MustCompile(`(?m)^\s+n1\s+(10\.84\.\d+\.\d+)\s+(\S+)\s`).FindStringSubmatch(sum)
	if m == nil {
		t.Fatal("summary lists no node n1")
	}
	addr, host := m[1], m[2]

	// A slice of the demo site without nodes, the demo user a member.
	admin := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + cfgDir}}
	slice := strings.TrimSuffix(demoSlice, "_demo") + "_geni"
	admin.run("slice", "create", slice, "--url", "https://example.org/geni", "--description", "GENI end-to-end test slice")
	admin.run("slice", "add-users", slice, user)

	// The demo user: certificate and slice credential with pl geni.
	u := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + filepath.Join(tmp, "user")}}
	u.run("login", plcURL, "--fingerprint", fp, "--email", user, "--password-file", pwFile)
	gdir := filepath.Join(tmp, "geni")
	u.run("geni", "cert", "--dir", gdir)
	credFile := filepath.Join(tmp, slice+".cred")
	u.run("geni", "credential", slice, "--dir", gdir, "-o", credFile)
	cred, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(gdir, "geni-cert.pem"), filepath.Join(gdir, "geni-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var userURN string
	for _, u := range cert.Leaf.URIs {
		if strings.HasPrefix(u.String(), "urn:publicid:IDN+") {
			userURN = u.String()
		}
	}
	if userURN == "" {
		t.Fatalf("the certificate names no user URN: %v", cert.Leaf.URIs)
	}
	pin, err := tlspin.Parse(fp)
	if err != nil {
		t.Fatal(err)
	}
	tc := tlspin.Config(pin)
	tc.Certificates = []tls.Certificate{cert}
	am := amclient.New(amURL, tc)
	creds := amclient.Creds(string(cred))
	sliceURN := "urn:publicid:IDN+" + authority + "+slice+" + slice
	call := func(r *amclient.Result, err error) *amclient.Result {
		t.Helper()
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	key := filepath.Join(tmp, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "geni", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}

	// Allocate and Provision the node.
	request := `<rspec xmlns="http://www.geni.net/resources/rspec/3" type="request"><node client_id="n1" component_id="urn:publicid:IDN+` +
		authority + `+node+` + host + `"><sliver_type name="pl-container"/></node></rspec>`
	call(am.Allocate(ctx, sliceURN, creds, request, map[string]any{}))
	r := call(am.Provision(ctx, []string{sliceURN}, creds, map[string]any{"geni_rspec_version": amclient.V3(),
		"geni_users": []any{map[string]any{"urn": userURN, "keys": []any{strings.TrimSpace(string(pub))}}}}))
	man, _ := r.Map()["geni_rspec"].(string)
	lm := regexp.MustCompile(`<login authentication="ssh-keys" hostname="([^"]+)" port="(\d+)" username="([^"]+)"`).FindStringSubmatch(man)
	// The login names the node's address (dev host names are not in DNS).
	if lm == nil || lm[1] != addr || !strings.Contains(man, `<host name="`+host+`">`) {
		t.Fatalf("manifest without the login on %s (%s):\n%s", host, addr, man)
	}
	login := func() error {
		out, err := exec.CommandContext(ctx, "ssh", "-i", key, "-p", lm[2], "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
			lm[3]+"@"+lm[1], "cat /etc/slicename").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != slice {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	waitFor(t, 3*time.Minute, "ssh into the GENI sliver", login)
	state := func(r *amclient.Result) (string, string) {
		s := r.Map()["geni_slivers"].([]any)[0].(map[string]any)
		return s["geni_allocation_status"].(string), s["geni_operational_status"].(string)
	}
	waitFor(t, time.Minute, "the sliver geni_ready (the node reports it running)", func() error {
		if a, op := state(call(am.Status(ctx, []string{sliceURN}, creds))); a != geni.Provisioned || op != geni.Ready {
			return fmt.Errorf("%s %s", a, op)
		}
		return nil
	})

	// geni_restart: the node freezes the sliver, then thaws it.
	restarted := time.Now()
	r = call(am.PerformOperationalAction(ctx, []string{sliceURN}, creds, geni.ActionRestart, map[string]any{}))
	if l := r.List(); len(l) != 1 || l[0].(map[string]any)["geni_operational_status"] != geni.Stopping {
		t.Fatalf("geni_restart answered %v", r.Value)
	}
	var started time.Duration // until it was no longer geni_stopping
	waitFor(t, time.Minute, "the sliver geni_ready again after geni_restart", func() error {
		_, op := state(call(am.Status(ctx, []string{sliceURN}, creds)))
		if op != geni.Stopping && started == 0 {
			started = time.Since(restarted)
		}
		if op != geni.Ready {
			return fmt.Errorf("%s", op)
		}
		return nil
	})
	t.Logf("geni_restart: started again after %v, geni_ready after %v (node reports every %v, restart hold 10s)",
		started.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond), ReportInterval)
	waitFor(t, time.Minute, "ssh into the GENI sliver after geni_restart", login)

	if out := admin.run("slice", "nodes", slice); !strings.Contains(out, host) {
		t.Errorf("the slice lacks %s after Provision:\n%s", host, out)
	}

	// Delete: the node leaves the slice.
	del := call(am.Delete(ctx, []string{sliceURN}, creds))
	if l := del.List(); len(l) != 1 || l[0].(map[string]any)["geni_allocation_status"] != geni.Unallocated {
		t.Errorf("delete %v", del.Value)
	}
	if out := admin.run("slice", "nodes", slice); strings.Contains(out, host) {
		t.Errorf("the slice still has %s after Delete:\n%s", host, out)
	}
}
