package dev

import (
	"fmt"
	"io"
	"net"
	"text/tabwriter"
	"time"

	"github.com/planetlab/pl/internal/dev/wan"
)

// SensorPort is the port of every dev node's sensor server (the node's
// default, sensors.DefaultAddr).
const SensorPort = "3100"

// PrintSummary prints, plainly, what is running and how to use it.
func (p *Planet) PrintSummary(w io.Writer) {
	iv := p.invoker
	down := []string{p.Binary, "dev", "down"}
	if p.ID != "" {
		down = append(down, "--id", p.ID)
	}
	fmt.Fprintf(w, "\nAn emulated planet is running. Ctrl-C (or `%s`) removes it.\n\n", iv.command(true, nil, down...))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PLC\t%s\t(certificate sha256 %s)\n", p.PLCURL, p.Fingerprint)
	fmt.Fprintf(tw, "admin\t%s\tpassword in %s\n", p.AdminEmail, p.AdminPWFile)
	fmt.Fprintf(tw, "admin CLI\t%s\t(already logged in)\n", iv.command(true, p.cliEnv(), p.Binary, "slice", "list"))
	keep := "kept"
	if p.rec.TempData {
		keep = "removed on exit"
	}
	fmt.Fprintf(tw, "data\t%s\t(%s; logs: plc.log, nodes/*/node.log)\n", p.DataDir, keep)
	if p.rec.UserDataDir != "" {
		fmt.Fprintf(tw, "\t= %s\t(bind-mounted: a parent of it is not searchable by slivers)\n", p.rec.UserDataDir)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nNodes (one network namespace each; the host reaches them directly):\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  NODE\tADDRESS\tHOSTNAME\tSITE\tRTT FROM HOST\tNAMESPACE\n")
	for _, n := range p.Nodes {
		s := p.Plan.SiteOf(n.NodePlan)
		rtt := 2 * p.Plan.Delay(wan.PlaceHost, wan.Place(s.Index))
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s (%.2f, %.2f)\t%v\t%s\n", n.Name, n.Addr, n.Hostname, s.Site.Name, s.Site.Lat, s.Site.Lon, rtt.Round(time.Millisecond), n.NS)
	}
	tw.Flush()
	if len(p.Nodes) > 0 {
		n0 := p.Nodes[0]
		fmt.Fprintf(w, "\nSensors on every node at http://<ADDRESS>:%s/ (JSON /node, /node/load, /slivers, /slivers/<slice>/cpu; ?interval=2s streams; Prometheus /metrics), e.g.\n", SensorPort)
		fmt.Fprintf(w, "  curl http://%s/node/load\n", net.JoinHostPort(n0.Addr.String(), SensorPort))
		fmt.Fprintf(w, "  curl -N 'http://%s/slivers?interval=2s'\n", net.JoinHostPort(n0.Addr.String(), SensorPort))
	}
	if len(p.Plan.SitePlans) > 1 {
		fmt.Fprintf(w, "\nOne-way delays between sites (great circle / 2e8 m/s + %v):\n", p.Overhead)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprint(tw, "\t")
		for _, s := range p.Plan.SitePlans {
			fmt.Fprintf(tw, "%s\t", s.Site.Name)
		}
		fmt.Fprintln(tw)
		for _, a := range p.Plan.SitePlans {
			fmt.Fprintf(tw, "  %s\t", a.Site.Name)
			for _, b := range p.Plan.SitePlans {
				fmt.Fprintf(tw, "%v\t", p.Plan.Delay(wan.Place(a.Index), wan.Place(b.Index)).Round(time.Millisecond))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	if p.Demo == nil {
		return
	}
	d := p.Demo
	n := p.Nodes[len(p.Nodes)-1]
	ssh := p.SSHCommand(n)
	fmt.Fprintf(w, "\nDemo slice %s on every node, member %s (password in %s), ssh key %s.\n", d.Slice, d.User, d.PWFile, d.KeyFile)
	fmt.Fprintf(w, "Its initscript serves HTTP on the reserved port %d of every node.\n\nTry:\n", d.Port)
	fmt.Fprintf(w, "  %s 'hostname; cat /etc/slicename; ps'\n", iv.command(false, nil, ssh...))
	fmt.Fprintf(w, "  curl http://%s:%d/\n", n.Addr, d.Port)
	for _, l := range p.cliHints() {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if len(p.Nodes) > 1 {
		fmt.Fprintf(w, "  %s   # the WAN between two sites, from node %s\n",
			iv.command(true, nil, "ip", "netns", "exec", p.Nodes[0].NS, "traceroute", "-n", n.Addr.String()), p.Nodes[0].Name)
	}
	fmt.Fprintln(w)
}

// SSHCommand is the stock OpenSSH command line that logs into the demo
// slice's sliver on node n.
func (p *Planet) SSHCommand(n *Node) []string {
	args := []string{"ssh"}
	if p.Demo.KeyFile != "" {
		args = append(args, "-i", p.Demo.KeyFile)
	}
	return append(args, "-o", "UserKnownHostsFile="+p.KnownHosts(), p.Demo.Slice+"@"+n.Addr.String())
}
