package dev

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLeaseOnReservableNode runs `pl dev --nodes 2 --reservable` (issue
// 14): on the reservable node the demo sliver and a second slice's are
// frozen while no lease runs; the summary's `pl lease add` for the demo
// slice, run as printed, thaws the demo sliver (its HTTP service answers)
// while the other stays frozen. Sliver states are read from the node's
// sensors (/slivers/<slice>/state).
func TestLeaseOnReservableNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: pl dev creates namespaces, cgroups and containers")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, tool := range []string{"runc", "go"} {
		if _, err := exec.LookPath(tool); err != nil { // hostdeps: runc go
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	const id = "lse"
	tmp := t.TempDir()
	pl := buildPL(t, tmp)
	exec.Command(pl, "dev", "down", "--id", id).Run()                                                                          // hostdeps: self
	dev := exec.Command(pl, "dev", "--nodes", "2", "--reservable", "--id", id, "--wan", "10.79.0.0/16", "--plc-port", "18461") // hostdeps: self
	d := startDev(t, dev, id, "Try a lease:", 6*time.Minute, 3*time.Minute)
	sum := d.summary.String()

	cfgDir, host := match1(t, sum, `PL_CONFIG_DIR=(\S+) \S+ lease add \S+ (\S+) --from \+0s --until \+30m\n`)
	addr, _ := match1(t, sum, `\n  curl http://(\S+):8080/ +# answers within a minute, (once) the lease starts`)
	demo, _ := match1(t, sum, `(?m)^Demo slice (\S+) on every node, (m)ember`)
	other := strings.Split(demo, "_")[0] + "_other"
	admin := &plCLI{t: t, bin: pl, env: []string{"PL_CONFIG_DIR=" + cfgDir}}
	admin.run("slice", "create", other, "--url", "https://example.org/other", "--description", "holds no lease")
	admin.run("slice", "add-nodes", other, host)

	state := func(slice string) string {
		hc := &http.Client{Timeout: 2 * time.Second}
		resp, err := hc.Get("http://" + net.JoinHostPort(addr, SensorPort) + "/slivers/" + slice + "/state")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var v struct {
			State string `json:"state"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("%d %v", resp.StatusCode, err)
		}
		return v.State
	}
	both := func(want string) error {
		if a, b := state(demo), state(other); a != want || b != "frozen" {
			return fmt.Errorf("%s %s, %s %s; want %s, frozen", demo, a, other, b, want)
		}
		return nil
	}
	waitFor(t, 60*time.Second, "both slivers frozen without a lease", func() error { return both("frozen") })
	if body, err := httpGet(fmt.Sprintf("http://%s:%d/", addr, DemoPort)); err == nil {
		t.Fatalf("the frozen demo sliver answered: %q", body)
	}

	// The lease, as the summary prints it (without sudo: we are root).
	m := strings.Fields(regexp.MustCompile(`PL_CONFIG_DIR=\S+ \S+ lease add [^\n]*`).FindString(sum))
	cmd := exec.Command(pl, m[2:]...) // hostdeps: self
	cmd.Env = append(os.Environ(), m[0])
	if out, err := cmd.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "lease ") {
		t.Fatalf("%s: %v\n%s", strings.Join(m, " "), err, out)
	}
	start := time.Now()
	waitFor(t, 90*time.Second, "the demo sliver thawed by its lease, the other frozen", func() error { return both("running") })
	waitFor(t, 20*time.Second, "the demo service answers on the reservable node", func() error {
		body, err := httpGet(fmt.Sprintf("http://%s:%d/", addr, DemoPort))
		if err == nil && !strings.Contains(body, demo) {
			err = fmt.Errorf("answer %q does not name %s", body, demo)
		}
		return err
	})
	t.Logf("lease on %s taken; the demo sliver ran %v later (the lease starts at the next whole minute)", host, time.Since(start).Round(time.Second))
	if s := state(other); s != "frozen" {
		t.Errorf("%s is %s during another slice's lease", other, s)
	}
}
