// Command tracerouteclnt is the client of the parallel traceroute
// service (package examples/traceroute): it asks every server at once for
// its path to the target and prints each path and, with --tree, the merged
// tree of paths toward the target. Servers are the nodes of a slice (asked
// from PLC with `pl slice nodes --json`), the lines of a file, or
// arguments; see docs/tutorial.md.
//
//	tracerouteclnt -p 33434 --slice princeton_trace --tree 10.99.3.11
//	tracerouteclnt -p 33434 --nodes-file nodes.txt 10.99.3.11
//	tracerouteclnt -p 33434 10.99.3.11 10.99.1.11 10.99.2.11
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	flag "github.com/spf13/pflag"

	traceroute "github.com/planetlab/pl/examples/traceroute"
)

func main() {
	port := flag.IntP("port", "p", 0, "the servers' port")
	tree := flag.Bool("tree", false, "also print the merged tree of paths toward the target")
	slice := flag.String("slice", "", "ask every node of this slice (runs `pl slice nodes <slice> --json`)")
	plBin := flag.String("pl", "pl", "the pl command for --slice")
	file := flag.String("nodes-file", "", "ask the servers listed in this file (one host or address a line, # comments)")
	parallel := flag.Int("parallel", 16, "servers asked at once")
	timeout := flag.Duration("timeout", 30*time.Second, "time limit per server")
	hops := flag.Int("max-hops", traceroute.DefaultHops, "TTLs to try")
	probes := flag.Int("probes", traceroute.DefaultProbes, "probes per TTL")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tracerouteclnt -p <port> [--tree] [--slice S | --nodes-file F] <target> [server...]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *port < 1 || *port > 65535 || flag.NArg() < 1 || *parallel < 1 || *timeout <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	target, servers := flag.Arg(0), flag.Args()[1:]
	if *slice != "" {
		s, err := sliceNodes(*plBin, *slice)
		if err != nil {
			fatal(err)
		}
		servers = append(servers, s...)
	}
	if *file != "" {
		s, err := readNodes(*file)
		if err != nil {
			fatal(err)
		}
		servers = append(servers, s...)
	}
	if len(servers) == 0 {
		fatal(fmt.Errorf("no servers: give --slice, --nodes-file or addresses after the target"))
	}
	q := traceroute.Request{Target: target, MaxHops: *hops, Probes: *probes}
	if err := q.Validate(); err != nil {
		fatal(err)
	}
	res := traceroute.AskAll(context.Background(), servers, *port, q, *parallel, *timeout)
	os.Exit(report(os.Stdout, os.Stderr, res, *tree))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "tracerouteclnt:", err)
	os.Exit(2)
}

// sliceNodes asks PLC, through the pl command, for the slice's nodes.
func sliceNodes(pl, slice string) ([]string, error) {
	cmd := exec.Command(pl, "slice", "nodes", slice, "--json") // hostdeps: self
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s slice nodes %s: %w", pl, slice, err)
	}
	var nodes []struct {
		Hostname string `json:"hostname"`
		Address  string `json:"address"`
	}
	if err := json.Unmarshal(out, &nodes); err != nil {
		return nil, fmt.Errorf("%s slice nodes %s --json: %w", pl, slice, err)
	}
	var s []string
	for _, n := range nodes {
		if n.Address != "" {
			s = append(s, n.Address)
		} else {
			s = append(s, n.Hostname)
		}
	}
	return s, nil
}

func readNodes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			s = append(s, strings.Fields(line)[0])
		}
	}
	return s, sc.Err()
}

// report prints every server's path (or failure), then the tree; the exit
// status is 0 when every server answered, 1 when some failed, 2 when none
// answered.
func report(out, errw io.Writer, res []traceroute.Result, tree bool) int {
	var paths []traceroute.Path
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
			fmt.Fprintf(out, "%s: FAILED: %v\n\n", r.Server, r.Err)
			continue
		}
		p := r.Path
		paths = append(paths, p)
		state := "reached"
		if !p.Reached {
			state = "NOT reached"
		}
		fmt.Fprintf(out, "%s (%s): %d hops to %v, %s (%v)\n", p.Server, r.Server, len(p.Hops), p.Target, state, r.Took.Round(time.Millisecond))
		for _, h := range p.Hops {
			addr := "*"
			if h.Addr.IsValid() {
				addr = h.Addr.String()
			}
			var rtts []string
			for _, d := range h.RTTs {
				if d <= 0 {
					rtts = append(rtts, "*")
				} else {
					rtts = append(rtts, fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000))
				}
			}
			fmt.Fprintf(out, "  %2d  %-15s  %s\n", h.TTL, addr, strings.Join(rtts, "  "))
		}
		fmt.Fprintln(out)
	}
	if tree && len(paths) > 0 {
		// The tree is toward the target most servers traced (a host name
		// may resolve differently on different nodes).
		count := map[netip.Addr]int{}
		var target netip.Addr
		for _, p := range paths {
			if count[p.Target]++; count[p.Target] > count[target] {
				target = p.Target
			}
		}
		root, skipped := traceroute.Merge(target, paths)
		fmt.Fprintln(out, "Tree of paths toward the target ([server] at the leaves):")
		root.Render(out)
		if len(skipped) > 0 {
			fmt.Fprintf(out, "(not in the tree, they traced another address: %s)\n", strings.Join(skipped, ", "))
		}
	}
	fmt.Fprintf(errw, "tracerouteclnt: %d of %d servers answered\n", len(res)-failed, len(res))
	switch {
	case failed == 0:
		return 0
	case failed < len(res):
		return 1
	}
	return 2
}
