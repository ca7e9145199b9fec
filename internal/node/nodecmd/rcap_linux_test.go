package nodecmd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rcap"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/node/sliver"
)

// buildStaticPL builds the pl command statically into dir (as make
// build does), the client slivers get.
func buildStaticPL(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "pl")
	cmd := exec.Command("go", "build", "-o", out, "github.com/planetlab/pl/cmd/pl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build a static pl for the slivers: %v\n%s", err, b)
	}
	if err := checkStatic(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Resource capabilities from inside real slivers, through the node's own
// pl bound at /run/pl/pl: slice A acquires one, slice B binds it to
// itself and the live cgroup and HTB values of both move; a forged token
// and a bind to a slice B does not control are refused; release and the
// capability's end undo it. Then GetXIDs from a sliver and ReCreate of a
// sliver (a new init, a file written before it is gone).
func TestRcapFromSlivers(t *testing.T) {
	plc := NewStaticPLC()
	l := newLiveNode(t, plc)
	base := filepath.Dir(l.state) // 0711: every uid may traverse
	l.apiSocket = filepath.Join(base, "api.sock")
	l.apiClient = buildStaticPL(t, base)
	l.start()
	l.eventually("first pass", 30*time.Second, func() bool { return l.node.Agent.Status().Passes > 0 })
	plc.Set([]core.Sliver{
		liveSliver("pltest_ra", 1, "nm_api", "1", "cpu_share", "4", "net_max_rate", "20000"),
		liveSliver("pltest_rb", 2, "nm_api", "1", "net_max_rate", "5000"),
		liveSliver("pltest_rc", 3, "net_max_rate", "5000"),
	})
	l.eventually("slivers running", 90*time.Second, func() bool {
		return l.running("pltest_ra") && l.running("pltest_rb") && l.running("pltest_rc")
	})
	// pl runs as the slice's own account in the sliver.
	pl := func(slice string, args ...string) (string, error) {
		cmd, err := l.node.Runtime.Command(context.Background(), slice, sliver.Process{Args: append([]string{nmapi.SliverClient, "nm"}, args...)})
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := l.exec("pltest_rc", "sh", "-c", "test -e /run/pl/pl && echo client"); strings.TrimSpace(out) != "" {
		t.Fatalf("client in a sliver without nm_api: %q %v", out, err)
	}
	out, err := pl("pltest_ra", "GetRecord")
	if err != nil || !strings.Contains(out, `"name": "pltest_ra"`) {
		t.Fatalf("pl nm GetRecord in pltest_ra: %v\n%s", err, out)
	}

	htb := func(name string) int64 {
		c, err := l.node.Net.ClassCeilings()
		if err != nil {
			t.Fatal(err)
		}
		return c[l.xid(name)][1]
	}
	shares := func(name string) string { return l.cgroupFile("cpu", name, "cpu.shares") }
	values := func() string {
		return shares("pltest_ra") + " " + shares("pltest_rb") + " " + strconv.FormatInt(htb("pltest_ra"), 10) + " " + strconv.FormatInt(htb("pltest_rb"), 10)
	}
	const before, moved = "4096 1024 20000 5000", "1024 4096 12000 13000"
	if v := values(); v != before {
		t.Fatalf("before: %s, want %s", v, before)
	}
	acquire := func(until int64) agent.RcapResult {
		t.Helper()
		out, err := pl("pltest_ra", "Acquire", "slice=pltest_ra", "amount.cpu_share=3", "amount.net_max_rate=8000", "until="+strconv.FormatInt(until, 10))
		var r agent.RcapResult
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || !strings.HasPrefix(r.Rcap, rcap.Prefix) {
			t.Fatalf("Acquire in pltest_ra: %v\n%s", err, out)
		}
		return r
	}
	r := acquire(time.Now().Add(time.Hour).Unix())
	if v := values(); v != before {
		t.Fatalf("an unbound capability moved resources: %s", v)
	}
	// Refusals change nothing.
	forged, _, _ := rcap.NewToken(nil)
	for _, c := range []struct {
		slice string
		args  []string
		want  string
	}{
		{"pltest_rb", []string{"Bind", "rcap=" + forged, "slice=pltest_rb"}, "no such capability"},
		{"pltest_rb", []string{"Bind", "rcap=" + r.Rcap, "slice=pltest_ra"}, "slice pltest_rb may not control slice pltest_ra"},
		{"pltest_rb", []string{"Bind", "rcap=" + r.Rcap, "slice=pltest_rc"}, "may not control"},
		{"pltest_rb", []string{"Acquire", "slice=pltest_ra", "amount.cpu_share=1"}, "may not control"},
		{"pltest_ra", []string{"Acquire", "slice=pltest_ra", "amount.cpu_share=1"}, "cpu_share: pltest_ra holds 4, has lent 3 and keeps 1"},
	} {
		out, err := pl(c.slice, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: pl nm %v: %v %q, want a refusal %q", c.slice, c.args, err, out, c.want)
		}
	}
	// pltest_ra hands the token over; pltest_rb binds it to itself.
	if out, err := pl("pltest_rb", "Bind", "rcap="+r.Rcap, "slice=pltest_rb"); err != nil {
		t.Fatalf("Bind in pltest_rb: %v\n%s", err, out)
	}
	took := l.eventually("bound capability applied live", 30*time.Second, func() bool { return values() == moved })
	t.Logf("Bind -> live cgroup and HTB values: %v", took)
	if out, err := pl("pltest_rb", "Release", "rcap="+r.Rcap); err != nil {
		t.Fatalf("Release: %v\n%s", err, out)
	}
	took = l.eventually("released capability undone", 30*time.Second, func() bool { return values() == before })
	t.Logf("Release -> values back: %v", took)

	// A capability that ends: bound from the host as pltest_rb's uid.
	until := time.Now().Add(8 * time.Second).Unix() // margin for a loaded machine: Bind must come before the end
	r = acquire(until)
	if err := callAs(agent.UIDBase(l.xid("pltest_rb"))+1000, l.apiSocket, "Bind", agent.BindArgs{Rcap: r.Rcap, Slice: "pltest_rb"}, nil); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	l.eventually("bound again", 30*time.Second, func() bool { return values() == moved })
	l.eventually("capability undone at its end", 30*time.Second, func() bool { return values() == before })
	if time.Now().Unix() < until {
		t.Fatal("capability undone before its end")
	}

	// GetXIDs from a sliver; ReCreate of pltest_rb by itself.
	out, err = pl("pltest_rb", "GetXIDs")
	var xids map[string]int
	if err != nil || json.Unmarshal([]byte(out), &xids) != nil || xids["pltest_ra"] != l.xid("pltest_ra") || len(xids) != 3 {
		t.Fatalf("GetXIDs: %v %s", err, out)
	}
	if out, err := l.exec("pltest_rb", "sh", "-c", "echo mark > /root/mark && cat /root/mark"); err != nil || strings.TrimSpace(out) != "mark" {
		t.Fatalf("writing a mark: %v %q", err, out)
	}
	pid := l.initPID("pltest_rb")
	if out, err := pl("pltest_rb", "ReCreate", "slice=pltest_rb"); err != nil {
		t.Fatalf("ReCreate: %v\n%s", err, out)
	}
	took = l.eventually("re-created", 90*time.Second, func() bool {
		p := l.initPID("pltest_rb")
		return p != "" && p != pid && l.running("pltest_rb")
	})
	t.Logf("ReCreate -> sliver running again: %v", took)
	if out, _ := l.exec("pltest_rb", "sh", "-c", "cat /root/mark 2>/dev/null; test -x /run/pl/pl && echo client"); strings.TrimSpace(out) != "client" {
		t.Fatalf("after ReCreate: %q (want no mark, the client again)", out)
	}
}
