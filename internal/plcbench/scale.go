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
	"github.com/planetlab/pl/internal/plc/store"
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
	// KillReplica runs, instead of the measurements, the replica-kill
	// case on DB: 2 replicas, reports and changes flowing, replica 2
	// closed at once mid-run (killrun.go).
	KillReplica bool
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
	FetchP50, FetchP99 time.Duration // with the node-state cache
	FetchRate          float64       // fetches/s, 32 in flight
	// The same without the node-state cache, in the same run (before).
	FetchOffP50, FetchOffP99 time.Duration
	FetchOffRate             float64
	SliceP50, SliceP99       time.Duration
	SliceWakes               int // affected watchers woken (of SliceExpected)
	SliceExpected            int
	AllP50, AllP99           time.Duration // a change affecting every node (with the cache)
	AllWakes                 int
	AllDrain                 time.Duration // until the last node got its new state
	// The same without the node-state cache, in the same run (before).
	AllOffP50, AllOffP99 time.Duration
	AllOffWakes          int
	AllOffDrain          time.Duration
	ReportRate           float64 // reports/s, 64 in flight
	ReportP99            time.Duration
	MemPerWatcher        float64     // bytes of PLC's heap and stacks per watching node
	Errors               int         // failed node calls
	Kill                 *KillResult // the replica-kill case (nil: not run)
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
	if o.KillReplica {
		if o.DB == "" {
			return nil, fmt.Errorf("--kill-replica needs --db (2 replicas on PostgreSQL)")
		}
		r, err := scaleCase(ctx, o, "2 replicas, PostgreSQL, one killed", o.DB, 2)
		if r.Kill != nil {
			PrintKill(o.Out, r)
		}
		fmt.Fprintf(o.Out, "\nload after: %s\n", loadavg())
		return append(out, r), err
	}
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

// scaleRun is one case in progress: PLC's replicas in this process and
// the simulated nodes in the child, spoken to with send and next.
type scaleRun struct {
	o          ScaleOptions
	res        *ScaleResult
	ms         []*server.Main
	reg        *service.Service // replica 1's: changes are made through it
	admin      *core.Caller
	spec       scaleSpec
	sliceIDs   []int64
	sliceNodes [][]int64
	lines      *bufio.Scanner
	stdin      io.Writer
}

func (r *scaleRun) send(cmd string) { fmt.Fprintln(r.stdin, cmd) }

// next reads the child's lines until the event want.
func (r *scaleRun) next(want string) (map[string]json.RawMessage, error) {
	for r.lines.Scan() {
		var m map[string]json.RawMessage
		if json.Unmarshal(r.lines.Bytes(), &m) != nil {
			continue
		}
		var ev string
		json.Unmarshal(m["event"], &ev)
		if ev == want {
			return m, nil
		}
	}
	return nil, fmt.Errorf("scale-nodes ended before %q: %v", want, r.lines.Err())
}

func dur(m map[string]json.RawMessage, k string) time.Duration {
	var v float64
	json.Unmarshal(m[k], &v)
	return time.Duration(v * float64(time.Millisecond))
}

func num(m map[string]json.RawMessage, k string) float64 {
	var v float64
	json.Unmarshal(m[k], &v)
	return v
}

// watchers counts the watches held at the replicas still serving.
func (r *scaleRun) watchers() int {
	n := 0
	for _, m := range r.ms {
		if m != nil {
			n += m.Registry().Watchers()
		}
	}
	return n
}

// rewatched waits (up to limit) until every node holds a watch again
// after a change woke some.
func (r *scaleRun) rewatched(limit time.Duration) {
	time.Sleep(100 * time.Millisecond)
	end := time.Now().Add(limit)
	for r.watchers() < r.res.Watching && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
	}
}

// setCache turns every replica's node-state cache on or off.
func (r *scaleRun) setCache(on bool) {
	for _, m := range r.ms {
		if m != nil {
			m.Registry().SetStateCache(on)
		}
	}
}

// wakes fetches the watch answers the nodes got since the last dump, by
// node.
func (r *scaleRun) wakes() (map[int64][]int64, error) {
	r.send("dump")
	d, err := r.next("wakes")
	if err != nil {
		return nil, err
	}
	var wakes [][2]int64 // node, unix ns
	json.Unmarshal(d["wakes"], &wakes)
	byNode := map[int64][]int64{}
	for _, w := range wakes {
		byNode[w[0]] = append(byNode[w[0]], w[1])
	}
	return byNode, nil
}

// collect gathers the nodes' answers (wakes) into byNode until done
// holds for them or limit passes.
func (r *scaleRun) collect(byNode map[int64][]int64, done func() bool, limit time.Duration) error {
	end := time.Now().Add(limit)
	for {
		w, err := r.wakes()
		if err != nil {
			return err
		}
		for n, ts := range w {
			byNode[n] = append(byNode[n], ts...)
		}
		if done() || time.Now().After(end) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wokeAll tells whether every node of nodes answered in [from, to).
func wokeAll(byNode map[int64][]int64, nodes []int64, from, to int64) bool {
	for _, n := range nodes {
		if _, ok := firstWake(byNode, n, from, to); !ok {
			return false
		}
	}
	return true
}

// firstWake is the delay from from to node's first answer in [from, to).
func firstWake(byNode map[int64][]int64, node, from, to int64) (time.Duration, bool) {
	for _, t := range byNode[node] {
		if t >= from && t < to {
			return time.Duration(t - from), true
		}
	}
	return 0, false
}

// fetch times one fetch of 2,000 nodes (all when fewer), 32 in flight:
// the nodes first fetch once (opening a connection; untimed), then the
// replicas forget every cached state, then each fetches again on its
// kept-alive connection and that is timed: the state's cost, not a TLS
// handshake's, and with the cache on, a state computed afresh (only the
// parts shared by every node come from the cache).
func (r *scaleRun) fetch() (p50, p99 time.Duration, rate float64, err error) {
	r.send("fetch-prep")
	f, err := r.next("fetch-prep")
	if err != nil {
		return 0, 0, 0, err
	}
	r.res.Errors += int(num(f, "errors"))
	for _, m := range r.ms {
		if m != nil {
			m.Registry().ForgetStates()
		}
	}
	r.send("fetch")
	if f, err = r.next("fetch"); err != nil {
		return 0, 0, 0, err
	}
	r.res.Errors += int(num(f, "errors"))
	return dur(f, "p50_ms"), dur(f, "p99_ms"), num(f, "rate"), nil
}

// herd makes one change that reaches every node (a new init script)
// and waits until every node got its new state (at most 3 minutes); it
// returns the delays from the change to each node's answer, and the time
// until the last.
func (r *scaleRun) herd(ctx context.Context, name string) (p50, p99 time.Duration, woken int, drain time.Duration, err error) {
	r.rewatched(30 * time.Second)
	if _, err := r.wakes(); err != nil { // forget earlier answers
		return 0, 0, 0, 0, err
	}
	tAll := time.Now().UnixNano()
	if _, err := r.reg.Add(ctx, r.admin, core.InitScriptClass, core.Record{"name": name, "script": "true"}); err != nil {
		return 0, 0, 0, 0, err
	}
	ids := make([]int64, len(r.spec.Nodes))
	for i, n := range r.spec.Nodes {
		ids[i] = n.ID
	}
	byNode := map[int64][]int64{}
	if err := r.collect(byNode, func() bool { return wokeAll(byNode, ids, tAll, 1<<62) }, 3*time.Minute); err != nil {
		return 0, 0, 0, 0, err
	}
	var all []time.Duration
	for _, n := range ids {
		if d, ok := firstWake(byNode, n, tAll, 1<<62); ok {
			all = append(all, d)
			drain = max(drain, d)
		}
	}
	return pct(all, 50), pct(all, 99), len(all), drain, nil
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
	r := &scaleRun{o: o, res: &res}
	for range replicas {
		m := &server.Main{Config: cfg}
		if err := m.Open(ctx); err != nil {
			return res, err
		}
		done := make(chan struct{})
		go func() { m.Run(context.Background()); close(done) }()
		defer func() { m.Close(); <-done }()
		r.ms = append(r.ms, m)
	}
	r.reg = r.ms[0].Registry()
	admin, err := r.reg.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@bench.test", Password: "bench-admin-pw"}, nil)
	if err != nil {
		return res, err
	}
	r.admin = admin
	start := time.Now()
	if err := r.populate(ctx, dsn); err != nil {
		return res, err
	}
	res.Populate = time.Since(start)
	fmt.Fprintf(o.Out, "   registered in %v\n", res.Populate.Round(time.Second))
	specFile := filepath.Join(dir, "nodes.json")
	b, _ := json.Marshal(r.spec)
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		return res, err
	}
	heap0 := heapAndStacks()

	exe, err := os.Executable()
	if err != nil {
		return res, err
	}
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
		r.stdin, stdout = inW, outR
		defer func() { inW.Close(); <-done }()
	} else {
		child := exec.CommandContext(ctx, exe, "bench", "scale-nodes", specFile) // hostdeps: self
		child.Stderr = os.Stderr
		stdin, _ := child.StdinPipe()
		stdout, _ = child.StdoutPipe()
		if err := child.Start(); err != nil {
			return res, err
		}
		r.stdin = stdin
		defer func() { stdin.Close(); child.Wait() }()
	}
	r.lines = bufio.NewScanner(stdout)
	r.lines.Buffer(make([]byte, 1<<20), 1<<30)

	ready, err := r.next("ready")
	if err != nil {
		return res, err
	}
	res.Connect = dur(ready, "connect_ms")
	res.Errors += int(num(ready, "errors"))
	deadline := time.Now().Add(60 * time.Second)
	for r.watchers() < o.Nodes && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	res.Watching = r.watchers()
	res.MemPerWatcher = float64(heapAndStacks()-heap0) / float64(max(res.Watching, 1))
	fmt.Fprintf(o.Out, "   %d watching after %v; PLC heap+stacks %+.1f MiB\n", res.Watching, res.Connect.Round(time.Millisecond), float64(heapAndStacks()-heap0)/(1<<20))

	if o.KillReplica {
		k, err := r.kill(ctx)
		res.Kill = k
		r.send("quit")
		return res, err
	}

	// Node-state fetches, first without the node-state cache, then with.
	r.setCache(false)
	if res.FetchOffP50, res.FetchOffP99, res.FetchOffRate, err = r.fetch(); err != nil {
		return res, err
	}
	r.setCache(true)
	if res.FetchP50, res.FetchP99, res.FetchRate, err = r.fetch(); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "   fetch p50/p99 without the cache %.1f/%.1f ms, with %.1f/%.1f ms\n", ms(res.FetchOffP50), ms(res.FetchOffP99), ms(res.FetchP50), ms(res.FetchP99))

	// Changes: each renews one slice (its nodes' state changes), made
	// through replica 1; with 2 replicas half the watchers are at replica
	// 2.
	if _, err := r.wakes(); err != nil {
		return res, err
	}
	var t0 []int64
	for k := range o.Changes {
		r.rewatched(30 * time.Second)
		t0 = append(t0, time.Now().UnixNano())
		if _, err := r.reg.RenewSlice(ctx, admin, r.sliceIDs[k%len(r.sliceIDs)], time.Now().Add(20*24*time.Hour).Unix()+int64(k)); err != nil {
			return res, err
		}
		time.Sleep(time.Second)
	}
	const tEnd int64 = 1 << 62 // no later change in this phase
	byNode := map[int64][]int64{}
	if err := r.collect(byNode, func() bool { return slicesWoken(byNode, r.sliceNodes, o.Changes, t0, tEnd) }, 30*time.Second); err != nil {
		return res, err
	}
	var sl []time.Duration
	for k := range o.Changes {
		to := tEnd
		if k+1 < o.Changes {
			to = t0[k+1]
		}
		for _, n := range r.sliceNodes[k%len(r.sliceNodes)] {
			res.SliceExpected++
			if d, ok := firstWake(byNode, n, t0[k], to); ok {
				sl = append(sl, d)
			}
		}
	}
	res.SliceWakes = len(sl)
	res.SliceP50, res.SliceP99 = pct(sl, 50), pct(sl, 99)

	// The herd, without the cache and then with it.
	r.setCache(false)
	if res.AllOffP50, res.AllOffP99, res.AllOffWakes, res.AllOffDrain, err = r.herd(ctx, "bench-all-off"); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "   herd without the cache: p50/p99 %v/%v, %d woken, all watching after %v\n", res.AllOffP50.Round(time.Millisecond), res.AllOffP99.Round(time.Millisecond), res.AllOffWakes, res.AllOffDrain.Round(time.Millisecond))
	r.setCache(true)
	if res.AllP50, res.AllP99, res.AllWakes, res.AllDrain, err = r.herd(ctx, "bench-all-on"); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "   herd with the cache: p50/p99 %v/%v, %d woken, all watching after %v\n", res.AllP50.Round(time.Millisecond), res.AllP99.Round(time.Millisecond), res.AllWakes, res.AllDrain.Round(time.Millisecond))

	r.send("report")
	rep, err := r.next("report")
	if err != nil {
		return res, err
	}
	res.ReportRate, res.ReportP99 = num(rep, "rate"), dur(rep, "p99_ms")
	res.Errors += int(num(rep, "errors"))
	r.send("quit")
	return res, nil
}

// populate registers the nodes (joined: each gets its key) and the
// slices, slice k on NodesPerSlice consecutive nodes from k*step. On
// PostgreSQL it goes through a service of its own whose connections
// commit asynchronously (synchronous_commit=off: a commit does not wait
// for its WAL to reach the disk), so that 40,000 registration
// transactions do not each wait for an fsync; the replicas, and so
// everything measured, commit as configured. The calls are the same
// service calls as through the API.
func (r *scaleRun) populate(ctx context.Context, dsn string) error {
	o := r.o
	reg, admin := r.reg, r.admin
	if dsn != "" {
		db, err := store.Open(ctx, asyncCommitDSN(dsn))
		if err != nil {
			return err
		}
		defer db.Close()
		seed := service.New(db, service.Options{Log: slog.New(slog.DiscardHandler)})
		defer seed.Close()
		if admin, err = seed.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@bench.test", Password: "bench-admin-pw"}, nil); err != nil {
			return err
		}
		reg = seed
	}
	r.spec = scaleSpec{Fingerprint: r.ms[0].Fingerprint()}
	site, err := reg.Add(ctx, admin, core.Site, core.Record{"login_base": "bench", "name": "Bench", "abbreviated_name": "bench", "max_slices": int64(o.Slices + 10)})
	if err != nil {
		return err
	}
	ids := make([]int64, o.Nodes)
	for i := range o.Nodes {
		id, err := reg.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": fmt.Sprintf("n%d.bench.test", i+1)})
		if err != nil {
			return err
		}
		secret, err := reg.IssueJoinToken(ctx, admin, id)
		if err != nil {
			return err
		}
		key, err := reg.JoinNode(ctx, id, secret, "")
		if err != nil {
			return err
		}
		// Node i talks to replica i mod R first, the others after it.
		var urls []string
		for k := range r.ms {
			urls = append(urls, r.ms[(i+k)%len(r.ms)].URL())
		}
		ids[i] = id
		r.spec.Nodes = append(r.spec.Nodes, scaleNode{ID: id, Key: key, URLs: strings.Join(urls, ",")})
	}
	step := max(1, o.Nodes/o.Slices)
	for k := range o.Slices {
		sid, err := reg.Add(ctx, admin, core.Slice, core.Record{"name": fmt.Sprintf("bench_s%d", k), "url": "http://bench.test", "description": "bench"})
		if err != nil {
			return err
		}
		var on []int64
		for j := range o.NodesPerSlice {
			n := ids[(k*step+j)%len(ids)]
			if err := reg.Link(ctx, admin, core.SliceNode, sid, n, nil); err != nil {
				return err
			}
			on = append(on, n)
		}
		r.sliceIDs = append(r.sliceIDs, sid)
		r.sliceNodes = append(r.sliceNodes, on)
	}
	return nil
}

// asyncCommitDSN is dsn with synchronous_commit=off for its sessions.
func asyncCommitDSN(dsn string) string {
	if strings.HasPrefix(dsn, "host=") {
		return dsn + " synchronous_commit=off"
	}
	if strings.Contains(dsn, "?") {
		return dsn + "&synchronous_commit=off"
	}
	return dsn + "?synchronous_commit=off"
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
	row("fetch p50, no state cache", func(r ScaleResult) string { return ms(r.FetchOffP50) })
	row("fetch p99, no state cache", func(r ScaleResult) string { return ms(r.FetchOffP99) })
	row("  fetches/s (32 in flight)", func(r ScaleResult) string { return fmt.Sprintf("%.0f", r.FetchOffRate) })
	row("fetch p50, state cache", func(r ScaleResult) string { return ms(r.FetchP50) })
	row("fetch p99, state cache", func(r ScaleResult) string { return ms(r.FetchP99) })
	row("  fetches/s (32 in flight)", func(r ScaleResult) string { return fmt.Sprintf("%.0f", r.FetchRate) })
	row("slice change -> notify p50", func(r ScaleResult) string { return ms(r.SliceP50) })
	row("slice change -> notify p99", func(r ScaleResult) string { return ms(r.SliceP99) })
	row("  affected watchers woken", func(r ScaleResult) string { return fmt.Sprintf("%d of %d", r.SliceWakes, r.SliceExpected) })
	row("herd, no cache: notify p50", func(r ScaleResult) string { return ms(r.AllOffP50) })
	row("herd, no cache: notify p99", func(r ScaleResult) string { return ms(r.AllOffP99) })
	row("  watchers woken", func(r ScaleResult) string { return fmt.Sprintf("%d of %d", r.AllOffWakes, r.Nodes) })
	row("  until the last got its state", func(r ScaleResult) string { return r.AllOffDrain.Round(time.Millisecond).String() })
	row("herd, state cache: notify p50", func(r ScaleResult) string { return ms(r.AllP50) })
	row("herd, state cache: notify p99", func(r ScaleResult) string { return ms(r.AllP99) })
	row("  watchers woken", func(r ScaleResult) string { return fmt.Sprintf("%d of %d", r.AllWakes, r.Nodes) })
	row("  until the last got its state", func(r ScaleResult) string { return r.AllDrain.Round(time.Millisecond).String() })
	row("reports/s (64 in flight)", func(r ScaleResult) string { return fmt.Sprintf("%.0f", r.ReportRate) })
	row("report p99", func(r ScaleResult) string { return ms(r.ReportP99) })
	row("PLC memory per watching node", func(r ScaleResult) string { return fmt.Sprintf("%.1f KiB", r.MemPerWatcher/1024) })
	row("failed node calls", func(r ScaleResult) string { return fmt.Sprint(r.Errors) })
}

// slicesWoken tells whether change k (of n, at t0[k], renewing slice k)
// woke every node of its slice before the next change (or end).
func slicesWoken(byNode map[int64][]int64, sliceNodes [][]int64, n int, t0 []int64, end int64) bool {
	for k := range n {
		to := end
		if k+1 < n {
			to = t0[k+1]
		}
		if !wokeAll(byNode, sliceNodes[k%len(sliceNodes)], t0[k], to) {
			return false
		}
	}
	return true
}
