package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/nodeapi"
)

// runningPLC is a `pl plc` process of a test.
type runningPLC struct {
	url, fp, key string
	admin        plRunner
	stop         func()
}

// startPLC initialises and starts a `pl plc` on a free port, and logs its
// admin in with a CLI configuration of its own.
func startPLC(t *testing.T, bin, dir string) *runningPLC {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	admin := plRunner{t, bin, filepath.Join(dir, "cli")}
	pw := writeFile(t, dir, "admin-pw", "correct horse battery staple\n", 0o600)
	admin.ok("plc", "init", "--data", data, "--email", "admin@"+filepath.Base(dir)+".test", "--password-file", pw)
	srv := exec.Command(bin, "plc", "--data", data, "--listen", "127.0.0.1:0") // hostdeps: self
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	srv.Stderr = &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	p := &runningPLC{admin: admin}
	p.stop = func() { srv.Process.Kill(); srv.Wait() }
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("pl plc %s log:\n%s", dir, log.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	for (p.url == "" || p.fp == "" || p.key == "") && sc.Scan() {
		line := sc.Text()
		if m := regexp.MustCompile(`PLC serving at (\S+)`).FindStringSubmatch(line); m != nil {
			p.url = m[1]
		}
		if m := regexp.MustCompile(`fingerprint: ([0-9a-f]{64})`).FindStringSubmatch(line); m != nil {
			p.fp = m[1]
		}
		if m := regexp.MustCompile(`peer key .*: (ed25519:\S+)`).FindStringSubmatch(line); m != nil {
			p.key = m[1]
		}
	}
	if p.url == "" || p.fp == "" || p.key == "" {
		t.Fatalf("pl plc did not print its URL, fingerprint and peer key; log:\n%s", log.String())
	}
	go io.Copy(io.Discard, stdout)
	admin.ok("login", p.url, "--email", "admin@"+filepath.Base(dir)+".test", "--password-file", pw, "--fingerprint", p.fp)
	return p
}

// TestPeeringEndToEnd: two real `pl plc` processes peer through the CLI;
// a slice of A on B's node reaches B's node API within seconds (push),
// foreign objects are read-only, and deleting at A removes it at B.
func TestPeeringEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the pl binary")
	}
	bin := buildPL(t)
	tmp := t.TempDir()
	a, b := startPLC(t, bin, filepath.Join(tmp, "pla")), startPLC(t, bin, filepath.Join(tmp, "plb"))

	// Each admin reads its PLC's key and gives it to the other side.
	var keyA struct{ Key, URL string }
	a.admin.json(&keyA, "peer", "key")
	if keyA.Key != a.key || keyA.URL != a.url+"/" {
		t.Fatalf("pl peer key at A: %+v, printed %s", keyA, a.key)
	}
	b.admin.ok("peer", "add", "PLA", "--url", a.url+"/", "--key", a.key, "--cacert", a.fp)
	a.admin.ok("peer", "add", "PLB", "--url", b.url+"/", "--key", b.key)
	a.admin.fails(5, "peer", "add", "PLB2", "--url", b.url+"/", "--key", b.key) // the same key twice
	a.admin.fails(5, "peer", "add", "PLX", "--url", "http://x.test/", "--key", b.key)

	// A site and a node on each side.
	for _, p := range []struct {
		plc      *runningPLC
		lb, host string
	}{{a, "pla", "n1.pla.test"}, {b, "plb", "n1.plb.test"}} {
		p.plc.admin.ok("site", "add", p.lb, "--name", "Site "+p.lb, "--max-slices", "5")
		p.plc.admin.ok("node", "register", p.lb, p.host)
	}
	var reg struct {
		NodeID int64  `json:"node_id"`
		Token  string `json:"token"`
	}
	b.admin.json(&reg, "node", "register", "plb", "n2.plb.test")
	tok, err := nodeapi.ParseJoinToken(reg.Token)
	if err != nil {
		t.Fatal(err)
	}
	nodeB := newNodeHTTP(t, b.url, b.fp)
	st, body := nodeB.do("POST", nodeapi.JoinPath, nodeapi.JoinRequest{NodeID: tok.NodeID, Secret: tok.Secret})
	if st != 200 {
		t.Fatalf("join at B: %d %s", st, body)
	}
	var jr nodeapi.JoinResponse
	json.Unmarshal(body, &jr)
	nodeB.id, nodeB.key = jr.NodeID, jr.NodeKey

	out := a.admin.ok("peer", "refresh", "PLB")
	if !strings.Contains(out, "added:") {
		t.Fatalf("pl peer refresh: %s", out)
	}
	b.admin.ok("peer", "refresh", "PLA")
	var peers []map[string]any
	a.admin.json(&peers, "peer", "list")
	if len(peers) != 1 || len(peers[0]["node_ids"].([]any)) != 2 {
		t.Fatalf("pl peer list at A: %v", peers)
	}
	// B's node is read-only at A.
	if r := a.admin.fails(5, "node", "update", "n1.plb.test", "--set", "model=x"); !strings.Contains(r.errOut, "Not a local node") {
		t.Fatalf("update of a foreign node: %s", r.errOut)
	}

	// A slice of A with nodes of both; B's node gets it within seconds.
	userKey := sshKey(t, "ada@pla")
	a.admin.ok("person", "add", "ada@pla.test", "--first", "Ada", "--last", "L", "--site", "pla", "--role", "user")
	a.admin.ok("person", "update", "ada@pla.test", "--set", "enabled=true")
	a.admin.ok("key", "add", "ada@pla.test", writeFile(t, tmp, "ada.pub", userKey+"\n", 0o644))
	a.admin.ok("slice", "create", "pla_demo", "--url", "https://x.test", "--description", "spans two PLCs")
	a.admin.ok("slice", "add-users", "pla_demo", "ada@pla.test")
	start := time.Now()
	a.admin.ok("slice", "add-nodes", "pla_demo", "n1.pla.test", "n2.plb.test")
	for {
		if sl := sliver(nodeB.state(), "pla_demo"); sl != nil {
			if len(sl.Keys) != 1 || sl.Keys[0].Key != userKey {
				t.Fatalf("sliver keys at B: %+v", sl.Keys)
			}
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatal("B's node has no sliver 15 s after the change at A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("slice change at A to B's node state: %v", time.Since(start))
	// B's admin refuses the slice, then admits it again.
	b.admin.ok("peer", "refuse", "pla_demo", "--reason", "test")
	if sliver(nodeB.state(), "pla_demo") != nil {
		t.Fatal("refused slice still in B's node state")
	}
	b.admin.ok("peer", "admit", "pla_demo")
	b.admin.ok("peer", "update", "PLA", "--max-slices", "3")
	// B caps A's slivers; a cap that grants nothing is refused, named.
	if r := b.admin.fails(5, "peer", "update", "PLA", "--cap-mem-max", "0"); !strings.Contains(r.errOut, "cap_mem_max") {
		t.Fatalf("a cap of 0 KiB: %s", r.errOut)
	}
	b.admin.ok("peer", "update", "PLA", "--max-slivers-per-node", "1", "--cap-mem-max", "524288", "--cap-net-max-rate", "20000")
	var shown map[string]any
	b.admin.json(&shown, "peer", "show", "PLA")
	if shown["max_slivers_per_node"] != 1.0 || shown["cap_mem_max"] != 524288.0 || shown["cap_net_max_rate"] != 20000.0 || shown["cap_cpu_share"] != nil {
		t.Fatalf("pl peer show PLA: %v", shown)
	}
	attrs := map[string]string{}
	for _, a := range sliver(nodeB.state(), "pla_demo").Attributes {
		attrs[a.TagName] = a.Value
	}
	if attrs["mem_max"] != "524288" || attrs["net_max_rate"] != "20000" {
		t.Fatalf("capped sliver at B: %v", attrs)
	}
	b.admin.ok("peer", "update", "PLA", "--set", "max_slivers_per_node=0")
	if sliver(nodeB.state(), "pla_demo") != nil {
		t.Fatal("max_slivers_per_node 0 left the sliver")
	}
	b.admin.ok("peer", "update", "PLA", "--set", "max_slivers_per_node=null", "--set", "cap_mem_max=null")
	// Bind and unbind (the original's SFA hack) and this PLC's name.
	a.admin.ok("site", "add", "plx", "--name", "Site plx")
	a.admin.ok("peer", "bind", "PLB", "site", "plx", "--remote-id", "0")
	if r := a.admin.fails(5, "site", "update", "plx", "--name", "mine"); !strings.Contains(r.errOut, "Not a local site") {
		t.Fatalf("update of a bound site: %s", r.errOut)
	}
	a.admin.fails(2, "peer", "bind", "PLB", "sitex", "plx")
	a.admin.ok("peer", "unbind", "PLB", "site", "plx")
	a.admin.ok("site", "update", "plx", "--name", "mine")
	if out := a.admin.ok("peer", "name"); strings.TrimSpace(out) != "PlanetLab Central" {
		t.Fatalf("pl peer name: %q", out)
	}

	// Deleting at A removes it at B.
	start = time.Now()
	a.admin.ok("slice", "delete", "pla_demo")
	for sliver(nodeB.state(), "pla_demo") != nil {
		if time.Since(start) > 15*time.Second {
			t.Fatal("B's sliver still desired 15 s after the deletion at A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// pl peer clear drops A's objects at B and keeps the peer; a refresh
	// brings them back.
	b.admin.ok("peer", "clear", "PLA")
	hosts := func() []any {
		var nodes []map[string]any
		b.admin.json(&nodes, "node", "list")
		var out []any
		for _, n := range nodes {
			out = append(out, n["hostname"])
		}
		return out
	}
	if slices.Contains(hosts(), "n1.pla.test") {
		t.Fatalf("A's node at B after pl peer clear: %v", hosts())
	}
	b.admin.ok("peer", "refresh", "PLA")
	if !slices.Contains(hosts(), "n1.pla.test") {
		t.Fatalf("A's node not back at B after a refresh: %v", hosts())
	}
	// Stopping peering removes A's objects at B.
	b.admin.ok("peer", "rm", "PLA")
	var nodes []map[string]any
	b.admin.json(&nodes, "node", "list")
	for _, n := range nodes {
		if slices.Contains([]any{"n1.pla.test"}, n["hostname"]) {
			t.Fatalf("A's node still at B after pl peer rm: %v", nodes)
		}
	}
}
