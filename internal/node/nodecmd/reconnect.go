package nodecmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/plc/server"
)

// ReconnectResult is one row of `pl bench reconnect`: how long after PLC
// came back from an outage its watching nodes had reached it again.
type ReconnectResult struct {
	Policy        string
	Nodes         int
	P50, P99, Max time.Duration // PLC starting again -> node's first answer
	Attempts      int           // calls to PLC during and after the outage
}

// ReconnectOptions configure BenchReconnect.
type ReconnectOptions struct {
	Nodes    int
	Outage   time.Duration
	Dir      string // PLC's data directory (scratch)
	Progress io.Writer
}

// BenchReconnect runs a real PLC (in-process, HTTPS on loopback) with
// Nodes registered nodes, each followed by a plcclient.Follower as the
// node manager runs it (long-polling watch), kills PLC, keeps it down for
// Outage, starts it again on the same address and measures until every
// node has an answer from it. It does so with the node manager's backoff
// policy and, as the baseline in the same run, with the policy before
// issue 9.20.
func BenchReconnect(ctx context.Context, o ReconnectOptions) ([]ReconnectResult, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	cfg := server.Config{
		DataDir: o.Dir, Listen: "127.0.0.1:0",
		// All nodes come from 127.0.0.1: lift the per-source limit.
		MaxConnsPerSource: -1,
		Log:               slog.New(slog.DiscardHandler),
	}
	if _, err := server.Init(ctx, cfg, server.InitOptions{Email: "admin@bench.test", Password: "bench-admin-pw"}); err != nil {
		return nil, err
	}
	plc, stop, err := runPLC(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Listen = plc.URL()[len("https://"):] // the same address after the outage
	reg := plc.Registry()
	admin, err := reg.Authenticate(ctx, core.Credentials{Method: "password", Username: "admin@bench.test", Password: "bench-admin-pw"}, nil)
	if err != nil {
		stop()
		return nil, err
	}
	nodes, err := registerBenchNodes(ctx, reg, admin, o)
	if err != nil {
		stop()
		return nil, err
	}
	fp := plc.Fingerprint()
	var out []ReconnectResult
	for _, pol := range []struct {
		name string
		b    plcclient.Backoff
	}{
		{"0.5s doubling to 3s, full jitter (now)", plcclient.ReconnectBackoff},
		{"1s doubling to 30s, +50% jitter (before)", plcclient.OldReconnectBackoff},
	} {
		r := reconnectRun{o: o, cfg: cfg, nodes: nodes, fp: fp, name: pol.name, backoff: pol.b, plc: plc, stop: stop}
		res, err := r.run(ctx)
		plc, stop = r.plc, r.stop
		if err != nil {
			if stop != nil {
				stop()
			}
			return out, err
		}
		out = append(out, res)
	}
	stop()
	return out, nil
}

type benchNode struct {
	id  int64
	key string
}

// registerBenchNodes adds o.Nodes nodes at one site and joins each.
func registerBenchNodes(ctx context.Context, reg core.Registry, admin *core.Caller, o ReconnectOptions) ([]benchNode, error) {
	fmt.Fprintf(o.Progress, "registering %d nodes...\n", o.Nodes)
	site, err := reg.Add(ctx, admin, core.Site, core.Record{"login_base": "bench", "name": "Bench", "abbreviated_name": "bench", "max_slices": int64(10)})
	if err != nil {
		return nil, err
	}
	nodes := make([]benchNode, o.Nodes)
	for i := range nodes {
		id, err := reg.Add(ctx, admin, core.Node, core.Record{"site_id": site, "hostname": fmt.Sprintf("n%d.bench.test", i+1)})
		if err != nil {
			return nil, err
		}
		secret, err := reg.IssueJoinToken(ctx, admin, id)
		if err != nil {
			return nil, err
		}
		key, err := reg.JoinNode(ctx, id, secret, "")
		if err != nil {
			return nil, err
		}
		nodes[i] = benchNode{id, key}
	}
	return nodes, nil
}

// reconnectRun measures one backoff policy: all nodes watch, PLC goes
// down for o.Outage and comes back on the same address; the time from its
// return to each node's first answer is the result. plc and stop follow
// the restarted PLC.
type reconnectRun struct {
	o       ReconnectOptions
	cfg     server.Config
	nodes   []benchNode
	fp      string
	name    string
	backoff plcclient.Backoff
	plc     *server.Main
	stop    func()
}

func (r *reconnectRun) run(ctx context.Context) (ReconnectResult, error) {
	o, nodes, fp, cfg := r.o, r.nodes, r.fp, r.cfg
	pol := struct {
		name string
		b    plcclient.Backoff
	}{r.name, r.backoff}
	plc, stop := r.plc, r.stop
	defer func() { r.plc, r.stop = plc, stop }()
	var out ReconnectResult
	fmt.Fprintf(o.Progress, "%s: %d nodes watching...\n", pol.name, o.Nodes)
	var mu sync.Mutex
	var back time.Time // PLC listening again; zero while up or down
	down := false
	attempts := 0
	first := make([]time.Time, len(nodes))
	connected := 0
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, n := range nodes {
		c, err := plcclient.New(plcclient.Config{URL: plc.URL(), NodeID: n.id, NodeKey: n.key, Fingerprint: fp})
		if err != nil {
			cancel()
			return out, err
		}
		version := ""
		f := &plcclient.Follower{
			PLC: c, Backoff: pol.b, WatchTimeout: 30 * time.Second,
			Version: func() string { return version },
			OnState: func(st *core.NodeState) { version = st.Version },
			OnContact: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				if down || !back.IsZero() {
					attempts++
				}
				switch {
				case err == nil && !back.IsZero() && first[i].IsZero():
					first[i] = time.Now()
				case err == nil && back.IsZero() && !down && first[i].IsZero():
					first[i] = time.Now() // first contact before the outage
					connected++
				}
			},
		}
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(fctx); c.CloseIdleConnections() }()
	}
	waitCond := func(limit time.Duration, cond func() bool) bool {
		end := time.Now().Add(limit)
		for time.Now().Before(end) {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}
	if !waitCond(2*time.Minute, func() bool { return connected == len(nodes) }) {
		cancel()
		return out, fmt.Errorf("only %d of %d nodes reached PLC", connected, len(nodes))
	}
	time.Sleep(time.Second) // all in their long polls
	fmt.Fprintf(o.Progress, "%s: PLC down for %v...\n", pol.name, o.Outage)
	mu.Lock()
	down = true
	for i := range first {
		first[i] = time.Time{}
	}
	mu.Unlock()
	stop()
	time.Sleep(o.Outage)
	// Timed from just before PLC opens its listener (a node answered
	// before that instant would be lost to the measurement).
	mu.Lock()
	down, back = false, time.Now()
	mu.Unlock()
	var err error
	plc, stop, err = runPLC(ctx, cfg)
	if err != nil {
		stop = nil
		cancel()
		return out, fmt.Errorf("restart PLC: %w", err)
	}
	ok := waitCond(5*time.Minute, func() bool {
		for _, t := range first {
			if t.IsZero() {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	if !ok {
		return out, fmt.Errorf("%s: not every node reconnected within 5 minutes", pol.name)
	}
	var lat []time.Duration
	for _, t := range first {
		lat = append(lat, t.Sub(back))
	}
	q := func(ds []time.Duration, p int) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[max((len(ds)*p+99)/100-1, 0)]
	}
	return ReconnectResult{Policy: pol.name, Nodes: len(nodes),
		P50: q(lat, 50), P99: q(lat, 99), Max: q(lat, 100), Attempts: attempts}, nil
}

// runPLC starts PLC's server and returns it with a function that kills it
// (no graceful shutdown: an outage).
func runPLC(ctx context.Context, cfg server.Config) (*server.Main, func(), error) {
	m := &server.Main{Config: cfg}
	if err := m.Open(ctx); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() { m.Run(context.Background()); close(done) }()
	return m, func() { m.Close(); <-done }, nil
}

// PrintReconnect renders BenchReconnect's results.
func PrintReconnect(w io.Writer, outage time.Duration, res []ReconnectResult) {
	if len(res) == 0 {
		return
	}
	fmt.Fprintf(w, "%d nodes watching PLC; PLC killed, down for %v, started again on the same address.\n", res[0].Nodes, outage)
	fmt.Fprintf(w, "Time from PLC starting again to each node's first answer from it:\n")
	for _, r := range res {
		fmt.Fprintf(w, "  %-42s p50 %6v  p99 %6v  all %6v  (%d calls to PLC during and after the outage)\n",
			r.Policy, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Attempts)
	}
}

func benchReconnectCmd() *cobra.Command {
	var o ReconnectOptions
	c := &cobra.Command{
		Use:   "reconnect",
		Short: "Time for N watching nodes to reach PLC again after an outage, beside the old backoff",
		Long: `Run a real PLC in-process (HTTPS on 127.0.0.1) with N registered nodes, each
following it as the node manager does (long-polling watch), kill PLC, keep it
down for --outage, start it again on the same address, and print how long
each node took to get an answer from it: with the node manager's backoff
(0.5 s doubling to 3 s, full jitter) and, as the baseline in the same run,
the backoff before (1 s doubling to 30 s, plus up to 50 %).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Nodes < 1 {
				return fmt.Errorf("--nodes %d: want at least 1", o.Nodes)
			}
			dir, err := os.MkdirTemp("", "pl-bench-reconnect-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o.Dir, o.Progress = dir, cmd.ErrOrStderr()
			ctx, stop := signalContext()
			defer stop()
			res, err := BenchReconnect(ctx, o)
			PrintReconnect(cmd.OutOrStdout(), o.Outage, res)
			return err
		},
	}
	c.Flags().IntVarP(&o.Nodes, "nodes", "n", 1000, "watching nodes")
	c.Flags().DurationVar(&o.Outage, "outage", 15*time.Second, "how long PLC stays down")
	return c
}
