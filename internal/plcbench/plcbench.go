// Package plcbench implements `pl bench plcapi`: PLCAPI over XML-RPC with
// password authentication and one client, our PLC beside the original
// Python PLCAPI measured in the same run.
//
// It starts our PLC in this process (plain HTTP on 127.0.0.1, SQLite in a
// temporary directory unless --db names a store) and, when given the
// original's start script (start-plcref.sh), the original with its
// PostgreSQL. Both get the same data through the same XML-RPC calls: one
// site, a PI with a key, N nodes with an interface each, and slices of 50
// nodes with the PI as member. Then each case (AuthCheck, GetNodes over 100
// and all nodes with every field, GetSlices with every field) is called
// sequentially by one client on each server in turn, and p50, p99 and
// calls/s are printed side by side. With SQLite, ours runs twice: with its
// read cache (the timed calls repeat one read, so they are served from
// it) and with the cache off ("no-cache": every call reads the store). A "floor" row is the same client
// against a server that answers a canned response: what the client and
// HTTP cost by themselves.
package plcbench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/plc/server"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// Options configure a run.
type Options struct {
	Nodes    int           // nodes in the registry (GetNodes-all reads them all); default 1000
	Slices   int           // slices (GetSlices reads them all); default 20
	Duration time.Duration // time per case and server; default 3 s
	MinCalls int           // at least this many timed calls per case; default 10
	DB       string        // our store's DSN; "" = SQLite in a temporary directory
	Original string        // path of start-plcref.sh; "" = ours only
	// CPUProfile, when set, is where the CPU profile of the timed calls
	// is written (our server and the client share this process).
	CPUProfile string
	Out        io.Writer
}

// The account the cases authenticate as, created on both servers.
const (
	benchPI, benchPW = "pi@bench.example.org", "bench-password"
)

// target is one PLCAPI server under test.
type target struct {
	name         string
	url          string
	admin        map[string]any
	nodeIDs      []int64
	sliceIDs     []int64
	close        func()
	client       *http.Client
	populateTime time.Duration
}

// Run runs the benchmark and prints its table to o.Out.
func Run(ctx context.Context, o Options) error {
	if o.Nodes <= 0 {
		o.Nodes = 1000
	}
	if o.Slices <= 0 {
		o.Slices = 20
	}
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.MinCalls <= 0 {
		o.MinCalls = 10
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	ours, err := startOurs(ctx, "ours", o.DB, false)
	if err != nil {
		return err
	}
	defer ours.close()
	targets := []*target{ours}
	if o.DB == "" {
		// The same server with its read cache off, on a store of its own:
		// what every read costs when it goes to the store (as the first
		// read after a write does).
		plain, err := startOurs(ctx, "no-cache", "", true)
		if err != nil {
			return err
		}
		defer plain.close()
		targets = append(targets, plain)
	}
	if o.Original != "" {
		orig, err := startOriginal(ctx, o.Original)
		if err != nil {
			return err
		}
		defer orig.close()
		targets = append(targets, orig)
	}
	key, err := sshKey()
	if err != nil {
		return err
	}
	for _, t := range targets {
		start := time.Now()
		if err := t.populate(o.Nodes, o.Slices, key); err != nil {
			return fmt.Errorf("%s: populate: %w", t.name, err)
		}
		t.populateTime = time.Since(start)
	}
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml")
		w.Write(cannedAuthCheck)
	}))
	defer floor.Close()

	auth := map[string]any{"AuthMethod": "password", "Username": benchPI, "AuthString": benchPW}
	type benchCase struct {
		name   string
		method string
		params func(t *target) []any
		want   func(v any) error
	}
	cases := []benchCase{
		{"AuthCheck", "AuthCheck", func(t *target) []any { return []any{auth} }, wantInt(1)},
		{"GetNodes-100 (all fields)", "GetNodes", func(t *target) []any { return []any{auth, ids(t.nodeIDs[:min(100, len(t.nodeIDs))])} }, wantLen(min(100, o.Nodes))},
		{fmt.Sprintf("GetNodes-%d (all fields)", o.Nodes), "GetNodes", func(t *target) []any { return []any{auth} }, wantLen(o.Nodes)},
		{fmt.Sprintf("GetSlices-%d (all fields)", o.Slices), "GetSlices", func(t *target) []any { return []any{auth, ids(t.sliceIDs)} }, wantLen(o.Slices)},
	}
	host, _ := os.Hostname()
	fmt.Fprintf(o.Out, "pl bench plcapi: password auth, 1 sequential client (Go, keep-alive), %d nodes, %d slices, %s per case and server\n", o.Nodes, o.Slices, o.Duration)
	fmt.Fprintf(o.Out, "host %s, load before: %s\n", host, loadavg())
	for _, t := range targets {
		fmt.Fprintf(o.Out, "%-9s %s (populated in %.1f s)\n", t.name+":", t.url, t.populateTime.Seconds())
	}
	fmt.Fprintln(o.Out)
	header := fmt.Sprintf("%-28s", "case")
	for _, t := range targets {
		header += fmt.Sprintf(" | %-8s %9s %9s %9s", t.name, "p50 ms", "p99 ms", "calls/s")
	}
	orig := -1
	if o.Original != "" {
		orig = len(targets) - 1
		header += " | speedup"
		for _, t := range targets[:orig] {
			header += " " + t.name
		}
	}
	fmt.Fprintln(o.Out, header)
	if o.CPUProfile != "" {
		// The whole measurement: our server's work, and this client's
		// (which only reads answers while the original is measured).
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fl, err := measure(ctx, floor.Client(), floor.URL, "AuthCheck", []any{auth}, o, wantInt(1))
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	fmt.Fprintf(o.Out, "%-28s | %-8s %9.2f %9.2f %9.0f\n", "floor (canned AuthCheck)", "client", ms(fl.p50), ms(fl.p99), fl.rate)
	for _, c := range cases {
		line := fmt.Sprintf("%-28s", c.name)
		var rates []float64
		for _, t := range targets {
			r, err := measure(ctx, t.client, t.url, c.method, c.params(t), o, c.want)
			if err != nil {
				return fmt.Errorf("%s %s: %w", t.name, c.name, err)
			}
			line += fmt.Sprintf(" | %-8s %9.2f %9.2f %9.1f", "", ms(r.p50), ms(r.p99), r.rate)
			rates = append(rates, r.rate)
		}
		if orig >= 0 {
			line += " |"
			for _, r := range rates[:orig] {
				line += fmt.Sprintf(" %6.1fx", r/rates[orig])
			}
		}
		fmt.Fprintln(o.Out, line)
	}
	fmt.Fprintf(o.Out, "\nload after: %s\n", loadavg())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ids(a []int64) []any {
	out := make([]any, len(a))
	for i, v := range a {
		out[i] = v
	}
	return out
}

// cannedAuthCheck is the floor server's answer: what AuthCheck returns.
var cannedAuthCheck = []byte("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><int>1</int></value>\n</param>\n</params>\n</methodResponse>\n")

type result struct {
	p50, p99 time.Duration
	rate     float64
}

// measure checks one decoded answer, then times calls that read (but do
// not decode) the answer for o.Duration and at least o.MinCalls calls.
func measure(ctx context.Context, hc *http.Client, url, method string, params []any, o Options, want func(any) error) (result, error) {
	body, err := xmlrpc.EncodeCall(method, params...)
	if err != nil {
		return result{}, err
	}
	v, err := post(ctx, hc, url, body, true)
	if err != nil {
		return result{}, err
	}
	if err := want(v); err != nil {
		return result{}, err
	}
	for i := 0; i < 2; i++ { // warm up
		if _, err := post(ctx, hc, url, body, false); err != nil {
			return result{}, err
		}
	}
	var lat []time.Duration
	start := time.Now()
	for len(lat) < o.MinCalls || time.Since(start) < o.Duration {
		t0 := time.Now()
		if _, err := post(ctx, hc, url, body, false); err != nil {
			return result{}, err
		}
		lat = append(lat, time.Since(t0))
		if err := ctx.Err(); err != nil {
			return result{}, err
		}
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	return result{p50: lat[len(lat)/2], p99: lat[(len(lat)*99)/100], rate: float64(len(lat)) / elapsed.Seconds()}, nil
}

var decodeLimits = xmlrpc.Limits{MaxBytes: 256 << 20, MaxValues: 1 << 24}

// post sends one call; with decode it returns the decoded answer (a fault
// is an error), else it reads the answer and checks it is not a fault.
func post(ctx context.Context, hc *http.Client, url string, body []byte, decode bool) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	if decode {
		return xmlrpc.DecodeResponse(resp.Body, decodeLimits)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(data, []byte("<fault>")) {
		return nil, fmt.Errorf("fault: %.300s", data)
	}
	return nil, nil
}

func wantInt(n int64) func(any) error {
	return func(v any) error {
		if got, ok := v.(int64); !ok || got != n {
			return fmt.Errorf("answer %v, want %d", v, n)
		}
		return nil
	}
}

func wantLen(n int) func(any) error {
	return func(v any) error {
		a, ok := v.([]any)
		if !ok || len(a) != n {
			return fmt.Errorf("answer of %d records (%T), want %d", len(a), v, n)
		}
		return nil
	}
}

// call makes one decoded XML-RPC call.
func (t *target) call(method string, params ...any) (any, error) {
	body, err := xmlrpc.EncodeCall(method, params...)
	if err != nil {
		return nil, err
	}
	v, err := post(context.Background(), t.client, t.url, body, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return v, nil
}

// multicall runs calls in system.multicall batches and returns their
// results; a fault in any is an error.
func (t *target) multicall(calls []map[string]any) ([]any, error) {
	var out []any
	for start := 0; start < len(calls); start += 100 {
		batch := calls[start:min(start+100, len(calls))]
		arg := make([]any, len(batch))
		for i, c := range batch {
			arg[i] = c
		}
		v, err := t.call("system.multicall", arg)
		if err != nil {
			return nil, err
		}
		res, ok := v.([]any)
		if !ok || len(res) != len(batch) {
			return nil, fmt.Errorf("system.multicall: answer %T of %d", v, len(res))
		}
		for i, r := range res {
			a, ok := r.([]any)
			if !ok || len(a) != 1 {
				return nil, fmt.Errorf("%s: %v", batch[i]["methodName"], r)
			}
			out = append(out, a[0])
		}
	}
	return out, nil
}

func mc(method string, params ...any) map[string]any {
	return map[string]any{"methodName": method, "params": params}
}

// populate creates the same registry on any PLCAPI server.
func (t *target) populate(nodes, nslices int, key string) error {
	a := t.admin
	v, err := t.call("AddSite", a, map[string]any{"name": "Bench University", "abbreviated_name": "Bench", "login_base": "bench", "max_slices": int64(nslices + 10)})
	if err != nil {
		return err
	}
	site := v
	v, err = t.call("AddPerson", a, map[string]any{"first_name": "Pi", "last_name": "Bench", "email": benchPI, "password": benchPW})
	if err != nil {
		return err
	}
	pi := v
	if _, err := t.multicall([]map[string]any{
		mc("UpdatePerson", a, pi, map[string]any{"enabled": true}),
		mc("AddRoleToPerson", a, "pi", pi),
		mc("AddPersonToSite", a, pi, site),
		mc("AddPersonKey", a, pi, map[string]any{"key_type": "ssh", "key": key}),
	}); err != nil {
		return err
	}
	var calls []map[string]any
	for i := 0; i < nodes; i++ {
		calls = append(calls, mc("AddNode", a, site, map[string]any{"hostname": fmt.Sprintf("node%04d.bench.example.org", i), "boot_state": "boot", "model": "bench"}))
	}
	res, err := t.multicall(calls)
	if err != nil {
		return err
	}
	t.nodeIDs = t.nodeIDs[:0]
	calls = calls[:0]
	for i, r := range res {
		id, ok := r.(int64)
		if !ok {
			return fmt.Errorf("AddNode answered %v", r)
		}
		t.nodeIDs = append(t.nodeIDs, id)
		calls = append(calls, mc("AddInterface", a, id, map[string]any{"type": "ipv4", "method": "static", "is_primary": true,
			"ip": fmt.Sprintf("10.%d.%d.2", i/256, i%256), "gateway": fmt.Sprintf("10.%d.%d.1", i/256, i%256),
			"network": fmt.Sprintf("10.%d.%d.0", i/256, i%256), "broadcast": fmt.Sprintf("10.%d.%d.255", i/256, i%256),
			"netmask": "255.255.255.0", "dns1": "10.0.0.53"}))
	}
	if _, err := t.multicall(calls); err != nil {
		return err
	}
	calls = calls[:0]
	for i := 0; i < nslices; i++ {
		calls = append(calls, mc("AddSlice", a, map[string]any{"name": fmt.Sprintf("bench_s%02d", i), "url": "http://bench.example.org", "description": "pl bench plcapi", "max_nodes": int64(1000)}))
	}
	res, err = t.multicall(calls)
	if err != nil {
		return err
	}
	calls = calls[:0]
	for i, r := range res {
		id, ok := r.(int64)
		if !ok {
			return fmt.Errorf("AddSlice answered %v", r)
		}
		t.sliceIDs = append(t.sliceIDs, id)
		var members []any
		for j := 0; j < min(50, len(t.nodeIDs)); j++ {
			members = append(members, t.nodeIDs[(i*37+j*13)%len(t.nodeIDs)])
		}
		calls = append(calls, mc("AddSliceToNodes", a, id, members), mc("AddPersonToSlice", a, pi, id))
	}
	_, err = t.multicall(calls)
	return err
}

// sshKey is an RSA key: the original knows no ed25519.
func sshKey() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	pk, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " pi@bench", nil
}

// startOurs runs our PLC in this process on plain HTTP (as the original
// serves), with an admin; noCache turns its read cache off.
func startOurs(ctx context.Context, name, dsn string, noCache bool) (*target, error) {
	dir, err := os.MkdirTemp("", "pl-bench-plcapi-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	cfg := server.Config{DataDir: dir, DB: dsn, Listen: "127.0.0.1:0", HTTP: true, Log: quiet, NoReadCache: noCache}
	const admin, adminPW = "admin@bench.example.org", "admin-password"
	if _, err := server.Init(ctx, cfg, server.InitOptions{Email: admin, Password: adminPW}); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: init: %w", name, err)
	}
	m := &server.Main{Config: cfg}
	runCtx, cancel := context.WithCancel(ctx)
	if err := m.Open(runCtx); err != nil {
		cancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	return &target{
		name:   name,
		url:    m.URL() + "/PLCAPI/",
		admin:  map[string]any{"AuthMethod": "password", "Username": admin, "AuthString": adminPW},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		close: func() {
			cancel()
			<-done
			os.RemoveAll(dir)
		},
	}, nil
}

// startOriginal runs the original PLCAPI's start script and reads the URL
// and admin account it prints.
func startOriginal(ctx context.Context, script string) (*target, error) {
	cmd := exec.CommandContext(ctx, "bash", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("original: %s: %v\n%s\n(the original needs root and python3-lxml: apt-get install -y python3-lxml)", script, err, stderr.String())
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "PLCREF_") {
			env[k] = v
		}
	}
	if env["PLCREF_URL"] == "" {
		return nil, fmt.Errorf("original: %s printed no PLCREF_URL:\n%s", script, out)
	}
	return &target{
		name:   "original",
		url:    env["PLCREF_URL"],
		admin:  map[string]any{"AuthMethod": "password", "Username": env["PLCREF_USER"], "AuthString": env["PLCREF_PASSWORD"]},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		close: func() {
			exec.Command("bash", script, "stop").Run()
		},
	}, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
