package dev

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Tracing `pl bench planet --trace`: where the time from "add the slice to
// every node" to "every sliver answers" goes, phase by phase, from the
// bench's own clock (PLC calls, probes) and the node managers' logs (run at
// debug level), all on the host's clock.

// nodeTrace is one node's timeline of one repetition, relative to the
// start of the PLC calls. Zero means "not seen".
type nodeTrace struct {
	Node     string
	Linked   time.Duration // the PLC call adding the slice to this node returned
	Fetched  time.Duration // the node manager received the new state
	Planned  time.Duration // it planned the sliver's create
	Created  time.Duration // the create (network + runtime) finished
	Answered time.Duration // the sliver's service answered the probe
	Steps    string        // the runtime's create steps, as logged
	Net      string        // how long the network took, as logged
}

// logEvent is one parsed line of a node manager's log.
type logEvent struct {
	at    time.Time
	msg   string
	attrs map[string]string
}

// parseLogLine parses a log/slog text line (key=value, values possibly
// quoted). ok is false for lines that are not.
func parseLogLine(line string) (ev logEvent, ok bool) {
	ev.attrs = map[string]string{}
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimLeft(rest, " ") {
		k, after, found := strings.Cut(rest, "=")
		if !found || strings.ContainsAny(k, " \"") {
			return ev, false
		}
		var v string
		if strings.HasPrefix(after, `"`) {
			// A quoted value: up to the next unescaped quote.
			i := 1
			for i < len(after) && after[i] != '"' {
				if after[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(after) {
				return ev, false
			}
			v = strings.ReplaceAll(after[1:i], `\"`, `"`)
			rest = after[i+1:]
		} else {
			v, rest, _ = strings.Cut(after, " ")
		}
		ev.attrs[k] = v
	}
	t, err := time.Parse(time.RFC3339Nano, ev.attrs["time"])
	if err != nil {
		return ev, false
	}
	ev.at, ev.msg = t, ev.attrs["msg"]
	return ev, true
}

// traceNode reads a node manager's log for the events of sliver's create
// after start.
func traceNode(r io.Reader, sliver string, start time.Time, tr *nodeTrace) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		ev, ok := parseLogLine(sc.Text())
		if !ok || ev.at.Before(start.Add(-time.Millisecond)) {
			continue
		}
		d := ev.at.Sub(start)
		switch {
		case ev.msg == "new desired state from PLC" && ev.attrs["slivers"] != "0" && tr.Fetched == 0:
			tr.Fetched = d
		case ev.msg == "plan" && ev.attrs["op"] == "create" && ev.attrs["sliver"] == sliver && tr.Planned == 0:
			tr.Planned = d
		case ev.msg == "sliver create" && ev.attrs["sliver"] == sliver:
			var steps []string
			for _, k := range []string{"disk", "mount", "files", "runc-create", "runc-start", "runc-run"} {
				if v, ok := ev.attrs[k]; ok {
					steps = append(steps, k+" "+v)
				}
			}
			tr.Steps = strings.Join(steps, ", ")
		case ev.msg == "sliver network ensured" && ev.attrs["sliver"] == sliver:
			tr.Net = ev.attrs["took"]
		case ev.msg == "sliver operation done" && ev.attrs["op"] == "create" && ev.attrs["sliver"] == sliver && tr.Created == 0:
			tr.Created = d
		}
	}
}

// traceFile traces a node's log file.
func traceFile(path, sliver string, start time.Time, tr *nodeTrace) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	traceNode(f, sliver, start, tr)
	return nil
}

// phaseRow is one phase over all nodes: its duration on each node.
type phaseRow struct {
	name string
	ds   []time.Duration
}

// phases turns node timelines into per-phase durations.
func phases(trs []nodeTrace) []phaseRow {
	rows := []phaseRow{
		{name: "PLC call (add slice to node) returns"},
		{name: "PLC call start -> node has the new state (notification + fetch)"},
		{name: "state -> create planned"},
		{name: "planned -> created (network + runc)"},
		{name: "created -> service answers (init, httpd, WAN probe)"},
		{name: "total: PLC call start -> service answers"},
	}
	for _, t := range trs {
		rows[0].ds = append(rows[0].ds, t.Linked)
		rows[1].ds = append(rows[1].ds, t.Fetched)
		rows[2].ds = append(rows[2].ds, t.Planned-t.Fetched)
		rows[3].ds = append(rows[3].ds, t.Created-t.Planned)
		rows[4].ds = append(rows[4].ds, t.Answered-t.Created)
		rows[5].ds = append(rows[5].ds, t.Answered)
	}
	return rows
}

// printTrace prints one repetition's phases: p50 and max over the nodes,
// and the slowest node's runtime steps.
func printTrace(w io.Writer, trs []nodeTrace) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "    phase\tp50 over nodes\tmax\t\n")
	for _, r := range phases(trs) {
		fmt.Fprintf(tw, "    %s\t%v\t%v\t\n", r.name, pct(r.ds, 50), pct(r.ds, 100))
	}
	tw.Flush()
	slow := trs[0]
	for _, t := range trs {
		if t.Answered > slow.Answered {
			slow = t
		}
	}
	fmt.Fprintf(w, "    slowest node %s: linked %v, state %v, planned %v, created %v (network %s; runtime: %s), answered %v\n",
		slow.Node, ms3(slow.Linked), ms3(slow.Fetched), ms3(slow.Planned), ms3(slow.Created), slow.Net, slow.Steps, ms3(slow.Answered))
}

func ms3(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// sortTraces orders traces by node name.
func sortTraces(trs []nodeTrace) {
	sort.Slice(trs, func(i, j int) bool { return trs[i].Node < trs[j].Node })
}
