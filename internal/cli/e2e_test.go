package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
	"github.com/planetlab/pl/internal/nodeapi"
	"golang.org/x/crypto/ssh"
)

// buildPL builds the real pl binary into a temporary directory.
func buildPL(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pl")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/planetlab/pl/cmd/pl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build pl: %v\n%s", err, out)
	}
	return bin
}

// plRunner runs pl with one CLI configuration directory (one user).
type plRunner struct {
	t   *testing.T
	bin string
	cfg string
}

type plResult struct {
	out, errOut string
	code        int
}

func (p plRunner) run(args ...string) plResult {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...) // hostdeps: self
	cmd.Env = append(os.Environ(), "PL_CONFIG_DIR="+p.cfg, "PL_PLC=", "PL_PASSWORD=", "PL_ADMIN_PASSWORD=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("pl %s: %v", strings.Join(args, " "), err)
	}
	return plResult{stdout.String(), stderr.String(), code}
}

// ok runs pl and fails the test unless it exits 0.
func (p plRunner) ok(args ...string) string {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("pl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.errOut)
	}
	return r.out
}

// fails runs pl and checks its exit code.
func (p plRunner) fails(code int, args ...string) plResult {
	p.t.Helper()
	r := p.run(args...)
	if r.code != code {
		p.t.Fatalf("pl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.out, r.errOut)
	}
	return r
}

func (p plRunner) json(v any, args ...string) {
	p.t.Helper()
	out := p.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		p.t.Fatalf("pl %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func sshKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " " + comment
}

// nodeHTTP is a minimal node API client for the test: TLS pinned by the
// join token's fingerprint, node credentials in the Authorization header.
type nodeHTTP struct {
	t   *testing.T
	url string
	hc  *http.Client
	id  int64
	key string
}

func newNodeHTTP(t *testing.T, url, fingerprint string) *nodeHTTP {
	want, err := hex.DecodeString(fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return fmt.Errorf("certificate fingerprint mismatch")
			}
			return nil
		},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &nodeHTTP{t: t, url: url, hc: &http.Client{Transport: tr}}
}

func (n *nodeHTTP) do(method, path string, body any) (int, []byte) {
	n.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.url+path, r)
	if err != nil {
		n.t.Fatal(err)
	}
	if n.key != "" {
		req.Header.Set("Authorization", fmt.Sprintf("%s %d:%s", nodeapi.AuthScheme, n.id, n.key))
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (n *nodeHTTP) state() core.NodeState {
	n.t.Helper()
	st, data := n.do("GET", nodeapi.StatePath, nil)
	if st != 200 {
		n.t.Fatalf("node state: HTTP %d %s", st, data)
	}
	var s core.NodeState
	if err := json.Unmarshal(data, &s); err != nil {
		n.t.Fatal(err)
	}
	return s
}

func sliver(st core.NodeState, name string) *core.Sliver {
	for i := range st.Slivers {
		if st.Slivers[i].Name == name {
			return &st.Slivers[i]
		}
	}
	return nil
}

func attr(s *core.Sliver, tag string) []string {
	var vals []string
	for _, a := range s.Attributes {
		if a.TagName == tag {
			vals = append(vals, a.Value)
		}
	}
	return vals
}

// TestEndToEnd drives the real pl binary through the whole PLC workflow:
// an empty data directory, pl plc init, pl plc, login, a site, a PI, a
// user enabled by the PI, keys, nodes registered and joined, a slice with
// nodes, users and attributes, renewal, and the node's desired state
// changing through the node API (state and watch).
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the pl binary")
	}
	bin := buildPL(t)
	tmp := t.TempDir()
	data := filepath.Join(tmp, "plc-data") // does not exist yet: pl plc creates it
	admin := plRunner{t, bin, filepath.Join(tmp, "admin-cli")}
	pi := plRunner{t, bin, filepath.Join(tmp, "pi-cli")}
	user := plRunner{t, bin, filepath.Join(tmp, "user-cli")}

	// 1. The first admin and the system site.
	adminPW := writeFile(t, tmp, "admin-pw", "correct horse battery staple\n", 0o600)
	var initRes struct {
		PersonID int64  `json:"person_id"`
		Email    string `json:"email"`
	}
	admin.json(&initRes, "plc", "init", "--data", data, "--email", "admin@example.org", "--password-file", adminPW)
	if initRes.PersonID <= 0 || initRes.Email != "admin@example.org" {
		t.Fatalf("plc init: %+v", initRes)
	}
	admin.fails(5, "plc", "init", "--data", data, "--email", "admin2@example.org", "--password-file", adminPW)

	// 2. PLC itself, on a free port, HTTPS with a generated certificate.
	srv := exec.Command(bin, "plc", "--data", data, "--listen", "127.0.0.1:0", "--geni-host", "plc.test") // hostdeps: self
	srv.Env = append(os.Environ(), "PL_CONFIG_DIR="+filepath.Join(tmp, "plc-cli"))
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvLog bytes.Buffer
	srv.Stderr = &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		srv.Process.Kill()
		if t.Failed() {
			t.Logf("pl plc log:\n%s", srvLog.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	var url, fp string
	for sc.Scan() && (url == "" || fp == "") {
		line := sc.Text()
		if m := regexp.MustCompile(`PLC serving at (\S+)`).FindStringSubmatch(line); m != nil {
			url = m[1]
		}
		if m := regexp.MustCompile(`fingerprint: ([0-9a-f]{64})`).FindStringSubmatch(line); m != nil {
			fp = m[1]
		}
	}
	if url == "" || fp == "" {
		t.Fatalf("pl plc did not print its URL and fingerprint; log:\n%s", srvLog.String())
	}
	go io.Copy(io.Discard, stdout)
	go func() { exited <- srv.Wait() }()
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("url %q", url)
	}

	// The OpenAPI document is served.
	nodeAPI := newNodeHTTP(t, url, fp)
	if st, body := nodeAPI.do("GET", "/api/v1/openapi.json", nil); st != 200 || !bytes.Contains(body, []byte(`"openapi"`)) {
		t.Fatalf("openapi: %d %.200s", st, body)
	}

	// 3. Login: a wrong fingerprint is refused, the right one works.
	admin.fails(1, "login", url, "--email", "admin@example.org", "--password-file", adminPW, "--fingerprint", strings.Repeat("ab", 32))
	r := admin.fails(4, "login", url, "--email", "admin@example.org", "--password-file", adminPW)
	if !strings.Contains(r.errOut, fp) {
		t.Errorf("login without a pin should show the fingerprint; stderr: %s", r.errOut)
	}
	admin.ok("login", url, "--email", "admin@example.org", "--password-file", adminPW, "--fingerprint", fp)
	if fi, err := os.Stat(filepath.Join(admin.cfg, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v %v", fi, err)
	}
	if out := admin.ok("whoami"); !strings.Contains(out, "admin@example.org") || !strings.Contains(out, "admin") {
		t.Fatalf("whoami: %s", out)
	}
	// Replicas (docs/replicas.md): the first URL refuses connections;
	// login and later commands go on to the next.
	dead := "https://127.0.0.1:1"
	admin.ok("login", dead, "--replica", url, "--email", "admin@example.org", "--password-file", adminPW, "--fingerprint", fp)
	if out := admin.ok("whoami"); !strings.Contains(out, "admin@example.org") {
		t.Fatalf("whoami through a replica list: %s", out)
	}
	admin.fails(2, "login", url+","+url, "--email", "admin@example.org", "--password-file", adminPW, "--fingerprint", fp)
	admin.ok("login", url, "--email", "admin@example.org", "--password-file", adminPW, "--fingerprint", fp)

	// 4. A site.
	admin.ok("site", "add", "princeton", "--name", "Princeton University", "--abbrev", "Princeton",
		"--url", "https://www.princeton.edu", "--latitude", "40", "--longitude", "-74.66", "--max-slices", "10")
	admin.fails(5, "site", "add", "princeton", "--name", "Again") // duplicate
	admin.fails(5, "site", "add", "Bad Base!", "--name", "Bad")   // invalid login_base
	admin.fails(3, "site", "show", "nosuchsite")                  // not found
	admin.fails(2, "site", "add")                                 // usage
	admin.fails(2, "site", "list", "--no-such-flag")              // usage
	if out := admin.ok("site", "list"); !strings.Contains(out, "princeton") || !strings.Contains(out, "LOGIN_BASE") {
		t.Fatalf("site list: %s", out)
	}

	// 5. A PI, disabled until an admin enables them.
	piPW := writeFile(t, tmp, "pi-pw", "pi-secret-pw\n", 0o600)
	admin.ok("person", "add", "pi@princeton.edu", "--first", "Larry", "--last", "Peterson",
		"--site", "princeton", "--role", "pi", "--password-file", piPW)
	pi.fails(4, "login", url, "--email", "pi@princeton.edu", "--password-file", piPW, "--fingerprint", fp)
	admin.ok("person", "enable", "pi@princeton.edu")
	pi.ok("login", url, "--email", "pi@princeton.edu", "--password-file", piPW, "--fingerprint", fp)

	// 6. The PI adds a user at the site and enables them; a PI cannot grant pi.
	userPW := writeFile(t, tmp, "user-pw", "user-secret-pw\n", 0o600)
	pi.ok("person", "add", "student@princeton.edu", "--first", "Stu", "--last", "Dent", "--site", "princeton", "--role", "user", "--password-file", userPW)
	pi.fails(4, "person", "role", "add", "student@princeton.edu", "admin")
	user.fails(4, "login", url, "--email", "student@princeton.edu", "--password-file", userPW, "--fingerprint", fp)
	pi.ok("person", "enable", "student@princeton.edu")
	user.ok("login", url, "--email", "student@princeton.edu", "--password-file", userPW, "--fingerprint", fp)
	var persons []map[string]any
	pi.json(&persons, "person", "list", "--site", "princeton")
	if len(persons) != 2 {
		t.Fatalf("persons at princeton: %v", persons)
	}

	// 7. Keys: the user adds their own; a bad key is refused.
	userKey := sshKey(t, "student@laptop")
	user.ok("key", "add", "student@princeton.edu", writeFile(t, tmp, "user.pub", userKey+"\n", 0o644))
	user.fails(5, "key", "add", "student@princeton.edu", writeFile(t, tmp, "bad.pub", "ecdsa-sha2-nistp256 AAAAnotakey\n", 0o644))
	// What the original PLCAPI accepted is stored, and the user is told
	// why it will not be installed (issue 9.1).
	out := user.ok("key", "add", "student@princeton.edu", writeFile(t, tmp, "text.pub", "ssh-rsa AAAAnotakey me@there\n", 0o644))
	if !strings.Contains(out, "created with id") || !strings.Contains(out, "warning: key ") || !strings.Contains(out, "not an OpenSSH public key") {
		t.Fatalf("key add of an unusable key: %s", out)
	}
	if out := user.ok("key", "list"); !strings.Contains(out, "USABLE") || !strings.Contains(out, "no: not an OpenSSH public key") || !strings.Contains(out, "yes") {
		t.Fatalf("key list: %s", out)
	}
	var keys []map[string]any
	user.json(&keys, "key", "list")
	if len(keys) != 2 || keys[0]["key"] != userKey || keys[0]["usable"] != true || keys[1]["usable"] != false {
		t.Fatalf("user keys: %v", keys)
	}
	user.ok("key", "delete", fmt.Sprint(keys[1]["key_id"]))

	// 8. Nodes: register two, print their join commands.
	type regOut struct {
		NodeID  int64  `json:"node_id"`
		Token   string `json:"token"`
		Command string `json:"command"`
	}
	var n1, n2 regOut
	admin.json(&n1, "node", "register", "princeton", "node1.princeton.edu", "--ip", "10.1.0.11/24")
	pi.json(&n2, "node", "register", "princeton", "node2.princeton.edu", "--ip", "10.1.0.12/24", "--gateway", "10.1.0.1")
	if !strings.HasPrefix(n1.Command, "pl node join "+url+" plj1:") {
		t.Fatalf("register: %+v", n1)
	}
	if out := admin.ok("node", "register", "princeton", "node3.princeton.edu"); !strings.Contains(out, "pl node join "+url+" plj1:") {
		t.Fatalf("register (human): %s", out)
	}
	admin.fails(5, "node", "register", "princeton", "not a hostname")
	// an interface PLC refuses leaves no node behind
	r = admin.fails(5, "node", "register", "princeton", "node8.princeton.edu", "--ip", "10.1.0.18/24", "--gateway", "192.168.7.1")
	if !strings.Contains(r.errOut, "gateway") {
		t.Errorf("refused interface: %s", r.errOut)
	}
	admin.fails(3, "node", "show", "node8.princeton.edu")
	admin.fails(3, "node", "register", "nosuchsite", "node9.princeton.edu")

	// 9. A node joins over the node API with its one-time token.
	tok, err := nodeapi.ParseJoinToken(n1.Token)
	if err != nil || tok.Fingerprint != fp || tok.NodeID != n1.NodeID {
		t.Fatalf("token %q: %+v %v", n1.Token, tok, err)
	}
	st, body := nodeAPI.do("POST", nodeapi.JoinPath, nodeapi.JoinRequest{NodeID: tok.NodeID, Secret: tok.Secret})
	if st != 200 {
		t.Fatalf("join: %d %s", st, body)
	}
	var jr nodeapi.JoinResponse
	json.Unmarshal(body, &jr)
	if jr.NodeKey == "" || jr.Hostname != "node1.princeton.edu" {
		t.Fatalf("join response %s", body)
	}
	if st, _ := nodeAPI.do("POST", nodeapi.JoinPath, nodeapi.JoinRequest{NodeID: tok.NodeID, Secret: tok.Secret}); st < 400 {
		t.Fatalf("join token reused: HTTP %d", st)
	}
	node1 := newNodeHTTP(t, url, fp)
	node1.id, node1.key = jr.NodeID, jr.NodeKey
	if st, _ := nodeAPI.do("GET", nodeapi.StatePath, nil); st != 401 {
		t.Fatalf("state without credentials: HTTP %d", st)
	}
	state0 := node1.state()
	if state0.NodeID != n1.NodeID || state0.Hostname != "node1.princeton.edu" || state0.Version == "" {
		t.Fatalf("state: %+v", state0)
	}

	// 10. A slice on both nodes with the user; the node sees it.
	pi.ok("slice", "create", "princeton_codeen", "--url", "https://codeen.example.org", "--description", "a content distribution network")
	pi.fails(5, "slice", "create", "princeton_codeen")                               // duplicate
	pi.fails(4, "slice", "create", "pl_notmine", "--url", "x", "--description", "y") // not the PI's site
	// A user may not create slices: the refusal says who can (issue 9.12).
	r = user.fails(4, "slice", "create", "princeton_mine", "--url", "x", "--description", "y")
	if want := "AddSlice: Permission denied: needs role admin or pi (you have user); the PIs of site princeton are: pi@princeton.edu"; !strings.Contains(r.errOut, want) {
		t.Errorf("user's slice create: stderr %q lacks %q", r.errOut, want)
	}
	if out := pi.ok("__complete", "slice", "add-nodes", "princeton_"); !strings.Contains(out, "princeton_codeen\n") {
		t.Errorf("shell completion of slice names: %q", out)
	}
	pi.ok("slice", "add-nodes", "princeton_codeen", "node1.princeton.edu", "node2.princeton.edu")
	pi.ok("slice", "add-users", "princeton_codeen", "student@princeton.edu")
	user.fails(4, "slice", "add-users", "princeton_codeen", "pi@princeton.edu") // users cannot add members

	// GENI: the member's certificate and slice credential from PLC's slice
	// authority, checked by xmlsec1 alone against the authority's
	// certificate; no credential without a certificate.
	user.ok("geni", "cert")
	credFile := filepath.Join(tmp, "slice.cred")
	user.ok("geni", "credential", "princeton_codeen", "-o", credFile)
	if b, err := os.ReadFile(credFile); err != nil || !bytes.Contains(b, []byte("urn:publicid:IDN+plc.test+slice+princeton_codeen")) ||
		!bytes.Contains(b, []byte("urn:publicid:IDN+plc.test+user+student_at_princeton.edu")) {
		t.Fatalf("credential: %v %.300s", err, b)
	}
	if out, err := exec.Command("xmlsec1", "--verify", "--node-id", "Sig_ref0", "--trusted-pem", filepath.Join(data, "geni-sa.pem"), credFile).CombinedOutput(); err != nil {
		t.Fatalf("xmlsec1 --verify: %v\n%s", err, out)
	}
	pi.fails(5, "geni", "credential", "princeton_codeen")
	state1 := node1.state()
	sl := sliver(state1, "princeton_codeen")
	if sl == nil {
		t.Fatalf("slice not in node state: %+v", state1.Slivers)
	}
	if len(sl.Keys) != 1 || sl.Keys[0].Key != userKey {
		t.Fatalf("sliver keys %+v, want the user's key", sl.Keys)
	}

	// 11. Attributes: a watching node hears of a change at once.
	type watchRes struct {
		status int
		state  core.NodeState
		after  time.Duration
	}
	watch := func(version string) <-chan watchRes {
		ch := make(chan watchRes, 1)
		go func() {
			start := time.Now()
			st, body := node1.do("GET", nodeapi.WatchPath+"?timeout=30&version="+version, nil)
			var s core.NodeState
			if st == 200 {
				json.Unmarshal(body, &s)
			}
			ch <- watchRes{st, s, time.Since(start)}
		}()
		return ch
	}
	if st, _ := node1.do("GET", nodeapi.WatchPath+"?timeout=1&version="+state1.Version, nil); st != 304 {
		t.Fatalf("idle watch: HTTP %d, want 304", st)
	}
	w := watch(state1.Version)
	time.Sleep(200 * time.Millisecond) // let the watch park
	changed := time.Now()
	admin.ok("slice", "set", "princeton_codeen", "cpu_share", "5")
	res := <-w
	if res.status != 200 || res.state.Version == state1.Version {
		t.Fatalf("watch: HTTP %d version %q", res.status, res.state.Version)
	}
	t.Logf("watch answered %v after the change was made (including the pl process)", time.Since(changed).Round(time.Millisecond))
	if got := attr(sliver(res.state, "princeton_codeen"), "cpu_share"); len(got) != 1 || got[0] != "5" {
		t.Fatalf("cpu_share = %v", got)
	}
	// a node-scoped value beats the global one on that node only
	admin.ok("slice", "set", "princeton_codeen", "cpu_share", "9", "--node", "node1.princeton.edu")
	if got := attr(sliver(node1.state(), "princeton_codeen"), "cpu_share"); len(got) != 1 || got[0] != "9" {
		t.Fatalf("node-scoped cpu_share = %v", got)
	}
	admin.ok("slice", "set", "princeton_codeen", "cpu_share", "7") // replaces the global value
	var adminView core.NodeState
	admin.json(&adminView, "node", "state", "node2.princeton.edu")
	if got := attr(sliver(adminView, "princeton_codeen"), "cpu_share"); len(got) != 1 || got[0] != "7" {
		t.Fatalf("node2 cpu_share = %v", got)
	}
	admin.ok("slice", "unset", "princeton_codeen", "cpu_share", "--node", "node1.princeton.edu")
	if got := attr(sliver(node1.state(), "princeton_codeen"), "cpu_share"); len(got) != 1 || got[0] != "7" {
		t.Fatalf("cpu_share after unset = %v", got)
	}
	// pl slice links composes the vlinks tag: a ring of the slice's two
	// nodes is one link; a node the slice is not on is refused by PLC,
	// a bad delay by the grammar before anything is sent.
	pi.ok("slice", "links", "princeton_codeen", "ring", "node1.princeton.edu", "node2.princeton.edu", "--delay", "10ms", "--prefix", "10.200.0.0/24")
	if got := attr(sliver(node1.state(), "princeton_codeen"), "vlinks"); len(got) != 1 || got[0] != "prefix 10.200.0.0/24; r1 node1.princeton.edu node2.princeton.edu rate=10000kbit delay=10ms" {
		t.Fatalf("vlinks after pl slice links ring = %v", got)
	}
	pi.ok("slice", "links", "princeton_codeen", "lan", "node1.princeton.edu", "node2.princeton.edu", "--name", "core", "--prefix", "10.200.0.0/24")
	if got := attr(sliver(node1.state(), "princeton_codeen"), "vlinks"); len(got) != 1 || got[0] != "prefix 10.200.0.0/24; lan core node1.princeton.edu node2.princeton.edu rate=10000kbit" {
		t.Fatalf("vlinks after pl slice links lan = %v", got)
	}
	if r := pi.fails(5, "slice", "links", "princeton_codeen", "ring", "node1.princeton.edu", "nowhere.princeton.edu"); !strings.Contains(r.errOut, "nowhere.princeton.edu is not a node of slice princeton_codeen") {
		t.Fatalf("a ring through a node the slice is not on: %s", r.errOut)
	}
	if r := pi.fails(5, "slice", "links", "princeton_codeen", "ring", "node1.princeton.edu", "node2.princeton.edu", "--delay", "soon"); !strings.Contains(r.errOut, `delay "soon" is not a duration`) {
		t.Fatalf("a bad delay: %s", r.errOut)
	}
	admin.ok("slice", "unset", "princeton_codeen", "vlinks")
	var shown map[string]any
	user.json(&shown, "slice", "show", "princeton_codeen")
	var cpu []string
	tags, _ := shown["tags"].([]any)
	for _, tg := range tags {
		if m, _ := tg.(map[string]any); m["tagname"] == "cpu_share" {
			cpu = append(cpu, fmt.Sprint(m["value"], "@", m["node_id"]))
		}
	}
	if len(cpu) != 1 || cpu[0] != "7@<nil>" {
		t.Fatalf("slice show: cpu_share tags %v in %v", cpu, shown["tags"])
	}

	// 12. Renewal answers the expiry granted, and the node sees it.
	before := sliver(node1.state(), "princeton_codeen").Expires
	var renewed struct {
		Expires int64 `json:"expires"`
	}
	user.json(&renewed, "slice", "renew", "princeton_codeen", "--days", "30")
	want := time.Now().Add(30 * 24 * time.Hour).Unix()
	if renewed.Expires < want-120 || renewed.Expires > want+120 || renewed.Expires <= before {
		t.Fatalf("renewed to %d, want about %d (was %d)", renewed.Expires, want, before)
	}
	if got := sliver(node1.state(), "princeton_codeen").Expires; got != renewed.Expires {
		t.Fatalf("node sees expires %d, want %d", got, renewed.Expires)
	}
	// beyond 8 weeks: a user is granted at most 8 weeks, and told so
	user.json(&renewed, "slice", "renew", "princeton_codeen", "--days", "100")
	if max := time.Now().Add(8 * 7 * 24 * time.Hour).Unix(); renewed.Expires > max+5 || renewed.Expires < max-120 {
		t.Fatalf("renewal beyond 8 weeks granted %d, want about %d", renewed.Expires, max)
	}

	// 13. Removing the node from the slice removes the sliver, through watch.
	cur := node1.state()
	w = watch(cur.Version)
	time.Sleep(200 * time.Millisecond)
	pi.ok("slice", "remove-nodes", "princeton_codeen", "node1.princeton.edu")
	res = <-w
	if res.status != 200 || sliver(res.state, "princeton_codeen") != nil {
		t.Fatalf("after remove-nodes: HTTP %d slivers %+v", res.status, res.state.Slivers)
	}

	// 14. The node reports its run level; admins see the contact.
	if st, body := node1.do("POST", nodeapi.ReportPath, nodeapi.Report{RunLevel: "boot"}); st != 204 {
		t.Fatalf("report: %d %s", st, body)
	}
	var nodes []map[string]any
	admin.json(&nodes, "node", "list", "--site", "princeton")
	if len(nodes) != 3 {
		t.Fatalf("nodes: %v", nodes)
	}
	for _, n := range nodes {
		if n["hostname"] == "node1.princeton.edu" && (n["run_level"] != "boot" || n["last_contact"] == nil) {
			t.Fatalf("node1 after report: %v", n)
		}
	}

	// 14b. The report's figures fill the planet table (issue 11): the
	// node is up at once, public rows answer queries, bad queries are
	// refused with their position, selection chooses by measurement.
	figs := &core.NodeFigures{Time: time.Now(), Load1: 0.25, CPUs: 2, MemTotal: 4 << 30, MemUsed: 1 << 30,
		DiskTotal: 100 << 30, DiskUsed: 30 << 30, SliverCount: 1,
		Slivers: []core.SliverFigures{{Slice: "princeton_codeen", State: "running", CPUPct: 12.5, IPv6: "2001:db8:7::1:5"}}}
	if st, body := node1.do("POST", nodeapi.ReportPath, nodeapi.Report{BootState: "boot", Figures: figs}); st != 204 {
		t.Fatalf("report with figures: %d %s", st, body)
	}
	var rows []core.NodeRow
	for deadline := time.Now().Add(10 * time.Second); ; {
		user.json(&rows, "top", "nodes", "--where", `up && load < 1 && disk_free_gb > 50`)
		if len(rows) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(rows) != 1 || rows[0].Hostname != "node1.princeton.edu" || rows[0].TopCPU[0] != "princeton_codeen" {
		t.Fatalf("pl top nodes: %+v", rows)
	}
	if out := user.ok("top", "nodes", "--sort", "-load"); !strings.Contains(out, "node1.princeton.edu") || !strings.Contains(out, "TOP_CPU") {
		t.Errorf("pl top nodes table:\n%s", out)
	}
	// pl node show carries the live row (issue 11).
	var shownNode struct {
		Hostname string        `json:"hostname"`
		Live     *core.NodeRow `json:"live"`
	}
	user.json(&shownNode, "node", "show", "node1.princeton.edu")
	if shownNode.Hostname != "node1.princeton.edu" || shownNode.Live == nil || shownNode.Live.Status != "up" ||
		shownNode.Live.Load != 0.25 || shownNode.Live.DiskFreeGB != 70 || shownNode.Live.Slivers != 1 || shownNode.Live.LastContact == 0 {
		t.Errorf("pl node show --json: %+v live %+v", shownNode, shownNode.Live)
	}
	if out := user.ok("node", "show", "node1.princeton.edu"); !strings.Contains(out, "live (planet table):") ||
		!regexp.MustCompile(`status:\s+up`).MatchString(out) || !regexp.MustCompile(`load:\s+0\.25 `).MatchString(out) ||
		!regexp.MustCompile(`disk free:\s+70\.0 GB`).MatchString(out) || !regexp.MustCompile(`slivers:\s+1 `).MatchString(out) {
		t.Errorf("pl node show:\n%s", out)
	}
	r = user.fails(5, "top", "nodes", "--where", "load < ")
	if !strings.Contains(r.errOut, "line 1, column 8") {
		t.Errorf("bad query: %s", r.errOut)
	}
	var srows []core.SliceRow
	pi.json(&srows, "top", "slices")
	if len(srows) != 1 || srows[0].Name != "princeton_codeen" || srows[0].MaxCPU != 12.5 {
		t.Errorf("pl top slices: %+v", srows)
	}
	// 14c. Slivers' IPv6 (issue 16): the prefix is set at PLC on the
	// node's primary interface, refused when bad, delivered to the node;
	// PLC shows each sliver's address as its node reports it.
	r = pi.fails(5, "node", "update", "node1.princeton.edu", "--ipv6-prefix", "2001:db8:7::1/64")
	if !strings.Contains(r.errOut, "sliversipv6prefix") || !strings.Contains(r.errOut, "did you mean 2001:db8:7::/64?") {
		t.Errorf("bad prefix: %s", r.errOut)
	}
	user.fails(4, "node", "update", "node1.princeton.edu", "--ipv6-prefix", "2001:db8:7::/64")
	pi.ok("node", "update", "node1.princeton.edu", "--ipv6-prefix", "2001:db8:7::/64")
	if st := node1.state(); st.IPv6Prefix != "2001:db8:7::/64" {
		t.Errorf("node state's ipv6_prefix %q", st.IPv6Prefix)
	}
	var shown6 struct {
		IPv6Prefix string `json:"ipv6_prefix"`
	}
	user.json(&shown6, "node", "show", "node1.princeton.edu")
	if out := user.ok("node", "show", "node1.princeton.edu"); shown6.IPv6Prefix != "2001:db8:7::/64" || !strings.Contains(out, "slivers' IPv6 prefix: 2001:db8:7::/64") {
		t.Errorf("pl node show: prefix %q\n%s", shown6.IPv6Prefix, out)
	}
	var shownSlice struct {
		Slivers []core.SliverRow `json:"slivers"`
	}
	user.json(&shownSlice, "slice", "show", "princeton_codeen")
	if len(shownSlice.Slivers) != 1 || shownSlice.Slivers[0].IPv6 != "2001:db8:7::1:5" || shownSlice.Slivers[0].Hostname != "node1.princeton.edu" {
		t.Errorf("pl slice show --json slivers: %+v", shownSlice.Slivers)
	}
	if out := user.ok("slice", "show", "princeton_codeen"); !regexp.MustCompile(`node1\.princeton\.edu\s+running\s+2001:db8:7::1:5`).MatchString(out) {
		t.Errorf("pl slice show:\n%s", out)
	}
	pi.ok("node", "update", "node1.princeton.edu", "--ipv6-prefix", "none")
	if st := node1.state(); st.IPv6Prefix != "" {
		t.Errorf("node state's ipv6_prefix after none: %q", st.IPv6Prefix)
	}
	var chosen []core.Selected
	pi.json(&chosen, "slice", "add-nodes", "princeton_codeen", "--where", "load < 1", "--near", "40.35,-74.66", "--count", "1")
	if len(chosen) != 1 || chosen[0].Hostname != "node1.princeton.edu" {
		t.Errorf("selection: %+v", chosen)
	}
	if sliver(node1.state(), "princeton_codeen") == nil {
		t.Error("selected node does not host the slice")
	}
	admin.ok("slice", "suspend", "princeton_codeen", "--reason", "test suspension")
	if a := attr(sliver(node1.state(), "princeton_codeen"), "enabled"); len(a) != 1 || a[0] != "0" {
		t.Errorf("suspended slice's enabled: %v", a)
	}
	admin.fails(5, "slice", "resume", "princeton_codeen")
	admin.ok("slice", "resume", "princeton_codeen", "--reason", "done")
	var acts []core.MonitorAction
	admin.json(&acts, "monitor", "actions")
	if len(acts) != 2 || acts[0].Kind != "slice_suspend" || acts[0].Reason != "test suspension" || acts[1].Kind != "slice_resume" {
		t.Errorf("monitor actions: %+v", acts)
	}
	pi.fails(4, "monitor", "actions")

	// 14b. Tickets and leases (docs/brokering.md): a ticket PLC signs with
	// the key node1's state carries; leases on a reservable node, with
	// overlaps refused.
	tw := admin.ok("ticket", "get", "princeton_codeen", "--node", "node1.princeton.edu", "--duration", "2h")
	tkeys := node1.state().TicketKeys
	trusted, err := ticket.Trusted(tkeys)
	if err != nil || len(tkeys) != 1 {
		t.Fatalf("node state ticket keys %+v: %v", tkeys, err)
	}
	tk, err := ticket.Verify(strings.TrimSpace(tw), trusted)
	if err != nil || tk.Sliver.Name != "princeton_codeen" || tk.NotAfter-tk.NotBefore != 7200 {
		t.Fatalf("pl ticket get: %v %+v", err, tk)
	}
	tf := writeFile(t, tmp, "ticket", tw, 0o600)
	if out := admin.ok("ticket", "show", tf); !strings.Contains(out, "slice:   princeton_codeen") {
		t.Errorf("pl ticket show: %s", out)
	}
	user.fails(4, "ticket", "get", "princeton_codeen", "--cpu-pct", "50") // only admins set the rspec
	admin.ok("node", "update", "node2.princeton.edu", "--node-type", "reservable")
	admin.ok("lease", "add", "princeton_codeen", "node2.princeton.edu", "--from", "+2h", "--until", "+5h") // rounded to whole hours: at least [+3h, +4h)
	r = pi.fails(5, "lease", "add", "princeton_codeen", "node2.princeton.edu", "--from", "+3h", "--until", "+6h")
	if !strings.Contains(r.out, "refused:") {
		t.Errorf("overlapping lease: %+v", r)
	}
	var leases []core.Record
	admin.json(&leases, "lease", "list", "--node", "node2.princeton.edu")
	if len(leases) != 1 || leases[0]["name"] != "princeton_codeen" {
		t.Fatalf("lease list: %+v", leases)
	}
	if out := admin.ok("lease", "list"); !strings.Contains(out, "princeton_codeen") || !strings.Contains(out, "node2.princeton.edu") {
		t.Errorf("lease list table: %s", out)
	}
	admin.ok("lease", "rm", fmt.Sprint(leases[0]["lease_id"]))
	admin.json(&leases, "lease", "list")
	if len(leases) != 0 {
		t.Errorf("lease rm left %+v", leases)
	}

	// 15. Logout forgets the session; JSON errors carry the code.
	user.ok("logout")
	r = user.fails(4, "slice", "list", "--json")
	if !strings.Contains(r.errOut, `"code":"unauthenticated"`) {
		t.Errorf("JSON error: %s", r.errOut)
	}

	// 16. SIGTERM shuts PLC down gracefully.
	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("pl plc exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pl plc did not stop within 20 s of SIGTERM")
	}
}
