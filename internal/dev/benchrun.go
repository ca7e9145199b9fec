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
)

// BenchPlanet brings up a planet and measures, reps times, the time from
// the PLC calls that add a fresh slice to every node until (a) every
// sliver's initscript service accepts TCP connections on the slice's
// reserved port (probed from the host through the WAN), and (b) an ssh
// command succeeds in every sliver (stock OpenSSH client through the
// nodes' gateways). It prints p50/p99 of both.
func BenchPlanet(ctx context.Context, cfg Config, reps int, out io.Writer) error {
	if reps < 1 {
		return fmt.Errorf("reps %d: want at least 1", reps)
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
	site := PLCSite.LoginBase
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
		ti, ts, err := p.benchOnce(ctx, reg, sliceID, name, port, keyFile)
		if err != nil {
			return fmt.Errorf("repetition %d: %w", i+1, err)
		}
		initT, sshT = append(initT, ti), append(sshT, ts)
		fmt.Fprintf(out, "  rep %2d: all %d slivers serving after %v, ssh ok on all after %v\n", i+1, len(p.Nodes), ti.Round(time.Millisecond), ts.Round(time.Millisecond))
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
	return nil
}

// benchOnce adds the slice to every node and waits for both milestones.
func (p *Planet) benchOnce(ctx context.Context, reg core.Registry, sliceID int64, slice string, port int, keyFile string) (initT, sshT time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 3*len(p.Nodes))
	for _, n := range p.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := reg.Link(ctx, nil, core.SliceNode, sliceID, n.NodeID, nil); err != nil {
				errs <- err
			}
		}()
	}
	var mu sync.Mutex
	var lastInit, lastSSH time.Duration
	for _, n := range p.Nodes {
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
				cmd := exec.CommandContext(ctx, "ssh", "-i", keyFile, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
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
		return 0, 0, err
	}
	return lastInit, lastSSH, nil
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
