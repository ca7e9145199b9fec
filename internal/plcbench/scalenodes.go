package plcbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/nodeapi"
)

// ScaleNodes is the child of `pl bench scale`: it runs the simulated
// nodes of spec (a JSON file) and obeys commands on in ("fetch", "dump",
// "report", "quit"), answering JSON lines on out.
func ScaleNodes(ctx context.Context, specFile string, in io.Reader, out io.Writer) error {
	raiseFDLimit()
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var spec scaleSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("%s: %w", specFile, err)
	}
	emit := func(v map[string]any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(out, "%s\n", b)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(spec.Nodes)
	clients := make([]*plcclient.Client, n)
	for i, sn := range spec.Nodes {
		c, err := plcclient.New(plcclient.Config{URL: sn.URLs, NodeID: sn.ID, NodeKey: sn.Key, Fingerprint: spec.Fingerprint})
		if err != nil {
			return err
		}
		clients[i] = c
	}
	var errs atomic.Int64
	var mu sync.Mutex
	var wakes [][2]int64
	versions := make([]string, n)

	// Connect: every node fetches its state (64 at a time), then holds a
	// watch for good.
	start := time.Now()
	parallel(n, 64, func(i int) {
		st, err := clients[i].State(ctx)
		if err != nil {
			errs.Add(1)
			return
		}
		versions[i] = st.Version
	})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := versions[i]
			for ctx.Err() == nil {
				st, err := clients[i].Watch(ctx, v, 120*time.Second)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					// Every replica failed the watch (the client already
					// went on to the next one): fetch again at once, and
					// wait a second only if that fails too.
					errs.Add(1)
					st, err := clients[i].State(ctx)
					if err == nil {
						v = st.Version
						continue
					}
					errs.Add(1)
					time.Sleep(time.Second)
					continue
				}
				if st != nil {
					now := time.Now().UnixNano()
					mu.Lock()
					wakes = append(wakes, [2]int64{spec.Nodes[i].ID, now})
					mu.Unlock()
					v = st.Version
				}
			}
		}()
	}
	emit(map[string]any{"event": "ready", "connect_ms": ms(time.Since(start)), "errors": errs.Swap(0)})

	// The fetch sample: the same nodes each time.
	sample := rand.Perm(n)[:min(n, 2000)]
	var churn *churner
	cmds := bufio.NewScanner(in)
	for cmds.Scan() {
		switch cmds.Text() {
		case "fetch-prep":
			// Each node of the sample fetches once, opening the connection
			// (its watch holds another) the timed fetch will use.
			parallel(len(sample), 32, func(k int) {
				if _, err := clients[sample[k]].State(ctx); err != nil {
					errs.Add(1)
				}
			})
			emit(map[string]any{"event": "fetch-prep", "errors": errs.Swap(0)})
		case "fetch":
			// The sample fetches again, 32 in flight, while every watch is
			// held, each on its kept-alive connection: the state's cost,
			// not a TLS handshake's.
			m := len(sample)
			lat := make([]time.Duration, m)
			var busy atomic.Int64
			parallel(m, 32, func(k int) {
				c := clients[sample[k]]
				s := time.Now()
				if _, err := c.State(ctx); err != nil {
					errs.Add(1)
				}
				lat[k] = time.Since(s)
				busy.Add(int64(lat[k]))
			})
			// Rate: timed fetches per second of timed time, 32 in flight.
			el := time.Duration(busy.Load() / 32)
			emit(map[string]any{"event": "fetch", "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)), "rate": float64(m) / el.Seconds(), "errors": errs.Swap(0)})
		case "dump":
			mu.Lock()
			w := wakes
			wakes = nil
			mu.Unlock()
			emit(map[string]any{"event": "wakes", "wakes": w})
		case "report":
			// 2,000 nodes (all when fewer) report once, 64 in flight.
			m := min(n, 2000)
			lat := make([]time.Duration, m)
			perm := rand.Perm(n)
			t := time.Now()
			parallel(m, 64, func(k int) {
				s := time.Now()
				if err := clients[perm[k]].Report(ctx, nodeapi.Report{RunLevel: "boot", BootState: "boot", Version: "pl-node/bench"}); err != nil {
					errs.Add(1)
				}
				lat[k] = time.Since(s)
			})
			el := time.Since(t)
			emit(map[string]any{"event": "report", "rate": float64(m) / el.Seconds(), "p99_ms": ms(pct(lat, 99)), "errors": errs.Swap(0)})
		case "churn-start":
			churn = startChurn(ctx, spec.Nodes, clients)
			emit(map[string]any{"event": "churn-started"})
		case "churn-stop":
			if churn == nil {
				emit(map[string]any{"event": "churn", "acked": [][2]int64{}})
				continue
			}
			acked, ok, failed := churn.stop()
			churn = nil
			emit(map[string]any{"event": "churn", "acked": acked, "ok": ok, "failed": failed})
		case "quit":
			cancel()
			wg.Wait()
			return nil
		}
	}
	cancel()
	wg.Wait()
	return cmds.Err()
}

// parallel runs f(0..n-1) with at most k at a time.
func parallel(n, k int, f func(i int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(k, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// churner keeps the nodes reporting, 64 in flight, each report carrying
// the node's next sequence number in its version ("pl-node/bench-SEQ"),
// so that the replica-kill case can check that every acknowledged report
// is in the database (killrun.go).
type churner struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	nodes   []scaleNode
	mu      []sync.Mutex // per node: one report at a time
	seq     []int64      // per node: the last sequence number sent
	acked   []int64      // per node: the last acknowledged
	ok, bad atomic.Int64
}

// ReportVersion is the version a churned report carries.
func ReportVersion(seq int64) string { return fmt.Sprintf("pl-node/bench-%d", seq) }

func startChurn(ctx context.Context, nodes []scaleNode, clients []*plcclient.Client) *churner {
	n := len(nodes)
	c := &churner{nodes: nodes, mu: make([]sync.Mutex, n), seq: make([]int64, n), acked: make([]int64, n)}
	var next atomic.Int64
	for range min(64, n) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for !c.stopped.Load() && ctx.Err() == nil {
				i := int(next.Add(1)-1) % n
				c.mu[i].Lock()
				c.seq[i]++
				s := c.seq[i]
				err := clients[i].Report(ctx, nodeapi.Report{RunLevel: "boot", BootState: "boot", Version: ReportVersion(s)})
				if err == nil {
					c.acked[i] = s
					c.ok.Add(1)
				} else {
					c.bad.Add(1)
				}
				c.mu[i].Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	return c
}

// stop ends the reports and returns, per node, the last acknowledged
// sequence number, and the counts of acknowledged and failed reports.
func (c *churner) stop() (acked [][2]int64, ok, failed int64) {
	c.stopped.Store(true)
	c.wg.Wait()
	acked = [][2]int64{}
	for i, a := range c.acked {
		if a > 0 {
			acked = append(acked, [2]int64{c.nodes[i].ID, a})
		}
	}
	return acked, c.ok.Load(), c.bad.Load()
}
