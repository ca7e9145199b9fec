package dev

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/nodecmd"
)

// BenchPlanet brings up a planet and measures, reps times, the time from
// the PLC calls that add a fresh slice to every node until (a) every
// sliver's initscript service accepts TCP connections on the slice's
// reserved port (probed from the host through the WAN), and (b) an ssh
// command succeeds in every sliver (stock OpenSSH client through the
// nodes' gateways). It prints p50/p99 of both.
//
// With trace, the node managers log at debug level and every repetition
// prints its phases (PLC call, notification and fetch, planning, network
// and runc, init to first answer). After the repetitions it measures, as the
// baseline, the same number of slivers created by one node manager in one
// process (pl bench sliver -n <nodes>) in the same run.
func BenchPlanet(ctx context.Context, cfg Config, reps int, trace bool, out io.Writer) error {
	if reps < 1 {
		return fmt.Errorf("reps %d: want at least 1", reps)
	}
	if trace {
		cfg.NodeLogLevel = "debug"
	}
	p, err := Up(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	reg, err := p.AdminClient(ctx)
	if err != nil {
		return err
	}
	site := p.Sites[0].LoginBase
	siteID, err := reg.Resolve(ctx, nil, core.Site, site)
	if err != nil {
		return err
	}
	userID, err := addPerson(ctx, reg, "bench@"+site+".example.org", "Bench", "Mark", randomPassword(), siteID, core.RoleUser)
	if err != nil {
		return err
	}
	pub, keyFile, err := freshKey(p.DataDir, "bench_ed25519")
	if err != nil {
		return err
	}
	if _, err := reg.Add(ctx, nil, core.Key, core.Record{"person_id": userID, "key_type": "ssh", "key": pub}); err != nil {
		return err
	}
	if err := p.writeKnownHosts(ctx, reg); err != nil {
		return err
	}
	fmt.Fprintf(out, "pl bench planet: %d nodes on %d sites, %d repetitions\n", len(p.Nodes), len(p.Plan.SitePlans), reps)
	var initT, sshT []time.Duration
	for i := 0; i < reps; i++ {
		port := 9000 + i
		name := fmt.Sprintf("%s_bench%d", site, i)
		sliceID, err := reg.Add(ctx, nil, core.Slice, core.Record{"name": name, "url": "https://example.org/bench", "description": "pl bench planet"})
		if err != nil {
			return err
		}
		if err := reg.Link(ctx, nil, core.SlicePerson, sliceID, userID, nil); err != nil {
			return err
		}
		script := fmt.Sprintf("#!/bin/sh\nmkdir -p /tmp/w && echo ok > /tmp/w/index.html\nexec busybox httpd -f -p %d -h /tmp/w\n", port)
		if err := p.tagSlice(ctx, reg, sliceID, "initscript_code", script); err != nil {
			return err
		}
		if err := p.tagSlice(ctx, reg, sliceID, "ports", "tcp/"+strconv.Itoa(port)); err != nil {
			return err
		}
		start, trs, ti, ts, err := p.benchOnce(ctx, reg, sliceID, name, port, keyFile)
		if err != nil {
			return fmt.Errorf("repetition %d: %w", i+1, err)
		}
		initT, sshT = append(initT, ti), append(sshT, ts)
		fmt.Fprintf(out, "  rep %2d: all %d slivers serving after %v, ssh ok on all after %v\n", i+1, len(p.Nodes), ti.Round(time.Millisecond), ts.Round(time.Millisecond))
		if trace {
			for k, n := range p.Nodes {
				if err := traceFile(n.proc.logFile, name, start, &trs[k]); err != nil {
					return err
				}
			}
			sortTraces(trs)
			printTrace(out, trs)
		}
		if err := reg.Delete(ctx, nil, core.Slice, sliceID); err != nil {
			return err
		}
		if err := p.waitPortClosed(ctx, port, time.Minute); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "add slice to %d nodes -> every sliver's init running (service answering): p50 %v  p99 %v  (n=%d)\n",
		len(p.Nodes), pct(initT, 50), pct(initT, 99), len(initT))
	fmt.Fprintf(out, "add slice to %d nodes -> ssh command succeeds on every sliver:         p50 %v  p99 %v  (n=%d)\n",
		len(p.Nodes), pct(sshT, 50), pct(sshT, 99), len(sshT))
	return p.benchBaseline(ctx, pct(initT, 99), out)
}

// benchBaseline measures the same number of slivers created by one node
// manager in one process (as pl bench sliver), in the same run, and prints
// the planet's p99 beside it.
func (p *Planet) benchBaseline(ctx context.Context, planetP99 time.Duration, out io.Writer) error {
	fmt.Fprintf(out, "baseline: %d slivers bound at once to one node manager in one process (pl bench sliver -n %d)...\n", len(p.Nodes), len(p.Nodes))
	res, err := nodecmd.BenchSliver(ctx, nodecmd.BenchOptions{Ns: []int{len(p.Nodes)}, Dir: p.DataPath("bench-sliver"), Parallel: 8})
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	r := res[0]
	fmt.Fprintf(out, "  one process, state received -> all %d slivers running: p50 %v  p99 %v  (bare runc batch of %d: p99 %v)\n",
		r.N, ms3(r.P50), ms3(r.P99), r.N, ms3(r.BatchP99))
	if r.P99 > 0 {
		fmt.Fprintf(out, "  planet p99 / one-process p99: %.2fx\n", float64(planetP99)/float64(r.P99))
	}
	return nil
}

// benchOnce adds the slice to every node and waits for both milestones.
// It returns when the PLC calls started and each node's bench-side times
// (PLC call returned, service answered), in the order of p.Nodes.
func (p *Planet) benchOnce(ctx context.Context, reg core.Registry, sliceID int64, slice string, port int, keyFile string) (start time.Time, trs []nodeTrace, initT, sshT time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	trs = make([]nodeTrace, len(p.Nodes))
	start = time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(p.Nodes))
	var mu sync.Mutex
	for i, n := range p.Nodes {
		trs[i].Node = n.Name
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := reg.Link(ctx, nil, core.SliceNode, sliceID, n.NodeID, nil); err != nil {
				errs <- err
			}
			mu.Lock()
			trs[i].Linked = time.Since(start)
			mu.Unlock()
		}()
	}
	var lastInit, lastSSH time.Duration
	for i, n := range p.Nodes {
		wg.Add(2)
		go func() { // (a) the service answers
			defer wg.Done()
			addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(port))
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
					d := time.Since(start)
					mu.Lock()
					lastInit = max(lastInit, d)
					trs[i].Answered = d
					mu.Unlock()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			errs <- fmt.Errorf("%s: service on %s never answered", n.Name, addr)
		}()
		go func() { // (b) ssh works
			defer wg.Done()
			for ctx.Err() == nil {
				cmd := exec.CommandContext(ctx, "ssh", "-i", keyFile, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", // hostdeps: ssh
					"-o", "UserKnownHostsFile="+p.KnownHosts(), "-o", "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR",
					slice+"@"+n.Addr.String(), "true")
				if cmd.Run() == nil {
					d := time.Since(start)
					mu.Lock()
					lastSSH = max(lastSSH, d)
					mu.Unlock()
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			errs <- fmt.Errorf("%s: ssh %s@%s never succeeded", n.Name, slice, n.Addr)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return start, nil, 0, 0, err
	}
	return start, trs, lastInit, lastSSH, nil
}

// waitPortClosed waits until no node accepts connections on port.
func (p *Planet) waitPortClosed(ctx context.Context, port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range p.Nodes {
		addr := net.JoinHostPort(n.Addr.String(), strconv.Itoa(port))
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still serves %s after the slice was deleted", n.Name, addr)
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// pct returns the q-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, q int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (q*len(s) + 99) / 100
	if rank < 1 {
		rank = 1
	}
	return s[rank-1].Round(time.Millisecond)
}
