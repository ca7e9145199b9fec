package plcbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/server"
	"github.com/planetlab/pl/internal/plc/service"
)

// `pl bench scale` (docs/replicas.md): PLC serving N simulated nodes over
// real HTTPS, each holding a watch (long poll) and reporting, with 1,000
// slices spread over them; once with 1 replica on SQLite and once with 2
// replicas on one PostgreSQL database (--db). The nodes run in a child
// process (`pl bench scale-nodes`, scalenodes.go) so that the memory
// measured in this process is PLC's alone; the two talk over the child's
// stdin and stdout (JSON lines).

// ScaleOptions configure a scale run.
type ScaleOptions struct {
	Nodes         int    // simulated nodes; default 1000
	Slices        int    // slices; default 1000
	NodesPerSlice int    // default 10
	Changes       int    // slice changes timed (each to its slice's nodes); default 10
	DB            string // PostgreSQL DSN for the 2-replica case ("": SQLite only)
	NoSQLite      bool   // skip the SQLite case
	// InProcess runs the nodes in this process (tests: there is no pl
	// binary to start); PLC's memory figure then includes the nodes'.
	InProcess bool
	Out       io.Writer
}

// ScaleResult is one case of the run.
type ScaleResult struct {
	Case               string
	Nodes, Watching    int
	Populate           time.Duration // registering nodes and slices
	Connect            time.Duration // every node's first fetch and watch
	FetchP50, FetchP99 time.Duration
	FetchRate          float64 // fetches/s, 32 in flight
	SliceP50, SliceP99 time.Duration
	SliceWakes         int // affected watchers woken (of SliceExpected)
	SliceExpected      int
	AllP50, AllP99     time.Duration // a change affecting every node
	AllWakes           int
	AllDrain           time.Duration // until every node watched again
	ReportRate         float64       // reports/s, 64 in flight
	ReportP99          time.Duration
	MemPerWatcher      float64 // bytes of PLC's heap and stacks per watching node
	Errors             int     // failed node calls
}

// raiseFDLimit lifts the open-file limit to the hard limit: every
// simulated node holds a connection, at both ends.
func raiseFDLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// Scale runs the cases and prints a table.
func Scale(ctx context.Context, o ScaleOptions) ([]ScaleResult, error) {
	if o.Nodes <= 0 {
		o.Nodes = 1000
	}
	if o.Slices <= 0 {
		o.Slices = 1000
	}
	if o.NodesPerSlice <= 0 {
		o.NodesPerSlice = 10
	}
	o.NodesPerSlice = min(o.NodesPerSlice, o.Nodes)
	if o.Changes <= 0 {
		o.Changes = 10
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	raiseFDLimit()
	fmt.Fprintf(o.Out, "load before: %s\n", loadavg())
	var out []ScaleResult
	if !o.NoSQLite {
		r, err := scaleCase(ctx, o, "1 replica, SQLite", "", 1)
		if err != nil {
			return out, err
		}
		out = append(out, r)
		PrintScale(o.Out, out) // this case's figures at once: the next takes long
		fmt.Fprintf(o.Out, "load: %s\n\n", loadavg())
	}
	if o.DB != "" {
		r, err := scaleCase(ctx, o, "2 replicas, PostgreSQL", o.DB, 2)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	} else {
		fmt.Fprintln(o.Out, "no --db: the 2-replica PostgreSQL case is skipped")
	}
	PrintScale(o.Out, out)
	fmt.Fprintf(o.Out, "\nload after: %s\n", loadavg())
	return out, nil
}

// scaleNode is a simulated node as the child gets it.
type scaleNode struct {
	ID   int64  `json:"id"`
	Key  string `json:"key"`
	URLs string `json:"urls"`
}

type scaleSpec struct {
	Fingerprint string      `json:"fingerprint"`
	Nodes       []scaleNode `json:"nodes"`
}

func scaleCase(ctx context.Context, o ScaleOptions, name, dsn string, replicas int) (ScaleResult, error) {
	res := ScaleResult{Case: name, Nodes: o.Nodes}
	fmt.Fprintf(o.Out, "== %s: %d nodes, %d slices of %d nodes\n", name, o.Nodes, o.Slices, o.NodesPerSlice)
	dir, err := os.MkdirTemp("", "pl-bench-scale-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	cfg := server.Config{DataDir: dir, DB: dsn, Listen: "127.0.0.1:0", MaxConnsPerSource: -1, Log: slog.New(slog.DiscardHandler)}
	if _, err := server.Init(ctx, cfg, server.InitOptions{Email: "admin@bench.test", Password: "bench-admin-pw"}); err != nil {
		return res, err
	}
	var ms []*server.Main
	for range replicas {
		m := &server.Main{Config: cfg}
		if err := m.Open(ctx); err != nil {
			return res, err
		}
		done := make(chan struct{})
		go func() { m.Run(context.Background()); close(done) }()
		defer func() { m.Close(); <-done }()
		ms = append(ms, m)
	}
	reg := ms[0].Registry()
	admin, err := reg.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@bench.test", Password: "bench-admin-pw"}, nil)
	if err != nil {
		return res, err
	}
	start := time.Now()
	spec, sliceIDs, sliceNodes, err := scalePopulate(ctx, reg, admin, o, ms)
	if err != nil {
		return res, err
	}
	res.Populate = time.Since(start)
	fmt.Fprintf(o.Out, "   registered in %v\n", res.Populate.Round(time.Second))
	specFile := filepath.Join(dir, "nodes.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		return res, err
	}
	heap0 := heapAndStacks()

	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
	var stdin io.WriteCloser
	var stdout io.Reader
	if o.InProcess {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			err := ScaleNodes(ctx, specFile, inR, outW)
			outW.CloseWithError(fmt.Errorf("scale-nodes: %v", err))
		}()
		stdin, stdout = inW, outR
		defer func() { inW.Close(); <-done }()
	} else {
		child := exec.CommandContext(ctx, exe, "bench", "scale-nodes", specFile) // hostdeps: self
		child.Stderr = os.Stderr
		stdin, _ = child.StdinPipe()
		stdout, _ = child.StdoutPipe()
		if err := child.Start(); err != nil {
			return res, err
		}
		defer func() { stdin.Close(); child.Wait() }()
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<30)
	next := func(want string) (map[string]json.RawMessage, error) {
		for lines.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(lines.Bytes(), &m) != nil {
				continue
			}
			var ev string
			json.Unmarshal(m["event"], &ev)
			if ev == want {
				return m, nil
			}
		}
		return nil, fmt.Errorf("scale-nodes ended before %q: %v", want, lines.Err())
	}
	send := func(cmd string) { fmt.Fprintln(stdin, cmd) }
	dur := func(m map[string]json.RawMessage, k string) time.Duration {
		var v float64
		json.Unmarshal(m[k], &v)
		return time.Duration(v * float64(time.Millisecond))
	}
	num := func(m map[string]json.RawMessage, k string) float64 {
		var v float64
		json.Unmarshal(m[k], &v)
		return v
	}

	ready, err := next("ready")
	if err != nil {
		return res, err
	}
	res.Connect = dur(ready, "connect_ms")
	res.Errors += int(num(ready, "errors"))
	watchers := func() int {
		n := 0
		for _, m := range ms {
			n += m.Registry().Watchers()
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for watchers() < o.Nodes && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	res.Watching = watchers()
	res.MemPerWatcher = float64(heapAndStacks()-heap0) / float64(max(res.Watching, 1))
	fmt.Fprintf(o.Out, "   %d watching after %v; PLC heap+stacks %+.1f MiB\n", res.Watching, res.Connect.Round(time.Millisecond), float64(heapAndStacks()-heap0)/(1<<20))

	send("fetch")
	f, err := next("fetch")
	if err != nil {
		return res, err
	}
	res.FetchP50, res.FetchP99, res.FetchRate = dur(f, "p50_ms"), dur(f, "p99_ms"), num(f, "rate")
	res.Errors += int(num(f, "errors"))

	// Changes: each renews one slice (its nodes' state changes), made
	// through replica 1; with 2 replicas half the watchers are at replica
	// 2. Then one change that affects every node.
	// rewatched waits (up to limit) until every node holds a watch again
	// after a change woke some.
	rewatched := func(limit time.Duration) {
		time.Sleep(100 * time.Millisecond)
		end := time.Now().Add(limit)
		for watchers() < res.Watching && time.Now().Before(end) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var t0 []int64
	for k := range o.Changes {
		rewatched(30 * time.Second)
		t0 = append(t0, time.Now().UnixNano())
		if _, err := reg.RenewSlice(ctx, admin, sliceIDs[k%len(sliceIDs)], time.Now().Add(20*24*time.Hour).Unix()+int64(k)); err != nil {
			return res, err
		}
		time.Sleep(time.Second)
	}
	rewatched(30 * time.Second)
	tAll := time.Now().UnixNano()
	if _, err := reg.Add(ctx, admin, core.InitScriptClass, core.Record{"name": "bench-all", "script": "true"}); err != nil {
		return res, err
	}
	// The herd: every node fetches its new state; wait until all watch
	// again (at most 2 minutes).
	rewatched(2 * time.Minute)
	res.AllDrain = time.Duration(time.Now().UnixNano() - tAll)
	send("dump")
	d, err := next("wakes")
	if err != nil {
		return res, err
	}
	var wakes [][2]int64 // node, unix ns
	json.Unmarshal(d["wakes"], &wakes)
	byNode := map[int64][]int64{}
	for _, w := range wakes {
		byNode[w[0]] = append(byNode[w[0]], w[1])
	}
	first := func(node, from, to int64) (int64, bool) {
		for _, t := range byNode[node] {
			if t >= from && t < to {
				return t - from, true
			}
		}
		return 0, false
	}
	var sl, all []time.Duration
	for k := range o.Changes {
		to := tAll
		if k+1 < o.Changes {
			to = t0[k+1]
		}
		for _, n := range sliceNodes[k%len(sliceNodes)] {
			res.SliceExpected++
			if d, ok := first(n, t0[k], to); ok {
				sl = append(sl, time.Duration(d))
			}
		}
	}
	for _, n := range spec.Nodes {
		if d, ok := first(n.ID, tAll, 1<<62); ok {
			all = append(all, time.Duration(d))
		}
	}
	res.SliceWakes, res.AllWakes = len(sl), len(all)
	res.SliceP50, res.SliceP99 = pct(sl, 50), pct(sl, 99)
	res.AllP50, res.AllP99 = pct(all, 50), pct(all, 99)

	send("report")
	r, err := next("report")
	if err != nil {
		return res, err
	}
	res.ReportRate, res.ReportP99 = num(r, "rate"), dur(r, "p99_ms")
	res.Errors += int(num(r, "errors"))
	send("quit")
	return res, nil
}

// scalePopulate registers the nodes (joined: each gets its key) and the
// slices, slice k on NodesPerSlice consecutive nodes from k*step.
func scalePopulate(ctx context.Context, reg *service.Service, admin *core.Caller, o ScaleOptions, ms []*server.Main) (scaleSpec, []int64, [][]int64, error) {
	spec := scaleSpec{Fingerprint: ms[0].Fingerprint()}
	site, err := reg.Add(ctx, admin, core.Site, core.Record{"login_base": "bench", "name": "Bench", "abbreviated_name": "bench", "max_slices": int64(o.Slices + 10)})
	if err != nil {
		return spec, nil, nil, err
	}
	ids := make([]int64, o.Nodes)
	for i := range o.Nodes {
		id, err := reg.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": fmt.Sprintf("n%d.bench.test", i+1)})
		if err != nil {
			return spec, nil, nil, err
		}
		secret, err := reg.IssueJoinToken(ctx, admin, id)
		if err != nil {
			return spec, nil, nil, err
		}
		key, err := reg.JoinNode(ctx, id, secret, "")
		if err != nil {
			return spec, nil, nil, err
		}
		// Node i talks to replica i mod R first, the others after it.
		var urls []string
		for r := range ms {
			urls = append(urls, ms[(i+r)%len(ms)].URL())
		}
		ids[i] = id
		spec.Nodes = append(spec.Nodes, scaleNode{ID: id, Key: key, URLs: strings.Join(urls, ",")})
	}
	step := max(1, o.Nodes/o.Slices)
	var sliceIDs []int64
	var sliceNodes [][]int64
	for k := range o.Slices {
		sid, err := reg.Add(ctx, admin, core.Slice, core.Record{"name": fmt.Sprintf("bench_s%d", k), "url": "http://bench.test", "description": "bench"})
		if err != nil {
			return spec, nil, nil, err
		}
		var on []int64
		for j := range o.NodesPerSlice {
			n := ids[(k*step+j)%len(ids)]
			if err := reg.Link(ctx, admin, core.SliceNode, sid, n, nil); err != nil {
				return spec, nil, nil, err
			}
			on = append(on, n)
		}
		sliceIDs = append(sliceIDs, sid)
		sliceNodes = append(sliceNodes, on)
	}
	return spec, sliceIDs, sliceNodes, nil
}

func heapAndStacks() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

// PrintScale renders the results side by side.
func PrintScale(w io.Writer, rs []ScaleResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-34s", "")
	for _, r := range rs {
		fmt.Fprintf(w, " %24s", r.Case)
	}
	fmt.Fprintln(w)
	row := func(name string, f func(r ScaleResult) string) {
		fmt.Fprintf(w, "%-34s", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %24s", f(r))
		}
		fmt.Fprintln(w)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	row("nodes watching", func(r ScaleResult) string { return fmt.Sprintf("%d of %d", r.Watching, r.Nodes) })
	row("register nodes+slices", func(r ScaleResult) string { return r.Populate.Round(time.Second).String() })
	row("connect (fetch+watch, all)", func(r ScaleResult) string { return r.Connect.Round(time.Millisecond).String() })
	row("node-state fetch p50", func(r ScaleResult) string { return ms(r.FetchP50) })
	row("node-state fetch p99", func(r ScaleResult) string { return ms(r.FetchP99) })
	row("fetches/s (32 in flight)", func(r ScaleResult) string { return fmt.Sprintf("%.0f", r.FetchRate) })
	row("slice change -> notify p50", func(r ScaleResult) string { return ms(r.SliceP50) })
	row("slice change -> notify p99", func(r ScaleResult) string { return ms(r.SliceP99) })
	row("  affected watchers woken", func(r ScaleResult) string { return fmt.Sprintf("%d of %d", r.SliceWakes, r.SliceExpected) })
	row("global change -> notify p50", func(r ScaleResult) string { return ms(r.AllP50) })
	row("global change -> notify p99", func(r ScaleResult) string { return ms(r.AllP99) })
	row("  watchers woken", func(r ScaleResult) string { return fmt.Sprintf("%d of %d", r.AllWakes, r.Nodes) })
	row("  until all watch again", func(r ScaleResult) string { return r.AllDrain.Round(time.Millisecond).String() })
	row("reports/s (64 in flight)", func(r ScaleResult) string { return fmt.Sprintf("%.0f", r.ReportRate) })
	row("report p99", func(r ScaleResult) string { return ms(r.ReportP99) })
	row("PLC memory per watching node", func(r ScaleResult) string { return fmt.Sprintf("%.1f KiB", r.MemPerWatcher/1024) })
	row("failed node calls", func(r ScaleResult) string { return fmt.Sprint(r.Errors) })
}
