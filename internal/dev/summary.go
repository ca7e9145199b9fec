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

// The planet's monitoring pace: its nodes report every ReportInterval
// (`pl node --report-interval`; 15 s by default) and PLC's monitor marks a
// node down after DownAfter without a report (`pl plc
// --monitor-down-after`; 2 min by default), so that stopping a node shows
// in `pl top nodes` within half a minute.
const (
	ReportInterval = 5 * time.Second
	DownAfter      = 20 * time.Second
)

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
	fmt.Fprintf(tw, "portal\t%s/\t(in a browser; the certificate is self-signed: compare its sha256 above)\n", p.PLCURL)
	fmt.Fprintf(tw, "mailbox\t%s/mailbox\t(the mail PLC would have sent: sign-up, links, expiry warnings; no mail leaves the host)\n", p.PLCURL)
	fmt.Fprintf(tw, "GENI AM\t%s\t(the aggregate, AM API v3, client certificates; authority %s; docs/geni.md)\n", p.GENIURL, p.GENIHost())
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
	p.printMonitoring(w)
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
	regular := p.regular()
	n := regular[len(regular)-1]
	ssh := p.SSHCommand(n)
	fmt.Fprintf(w, "\nDemo slice %s on every node, member %s (password in %s), ssh key %s.\n", d.Slice, d.User, d.PWFile, d.KeyFile)
	fmt.Fprintf(w, "Its initscript serves HTTP on the reserved port %d of every node.\n", d.Port)
	fmt.Fprintf(w, "Portal: log in at %s/login as %s", p.PLCURL, d.User)
	if d.PI != "" {
		fmt.Fprintf(w, " (or the site's PI %s)", d.PI)
	}
	fmt.Fprintf(w, " with the password in %s;\n  the demo slice and its nodes on the world map: %s/slices/%s\n\nTry:\n", d.PWFile, p.PLCURL, d.Slice)
	fmt.Fprintf(w, "  %s 'hostname; cat /etc/slicename; ps'\n", iv.command(false, nil, ssh...))
	fmt.Fprintf(w, "  curl http://%s:%d/\n", n.Addr, d.Port)
	for _, l := range p.cliHints() {
		fmt.Fprintf(w, "  %s\n", l)
	}
	// Port 80 is shared by host name (codemux, docs/networks.md).
	fmt.Fprintf(w, "  %s   # after pl login: the page by name on port 80\n", iv.command(false, nil, p.Binary, "slice", "set", d.Slice, "codemux", fmt.Sprintf("demo.example.org,%d", d.Port)))
	fmt.Fprintf(w, "  curl -H 'Host: demo.example.org' http://%s/   # port 80, shared by host name (docs/networks.md)\n", n.Addr)
	if len(regular) > 1 {
		fmt.Fprintf(w, "  %s   # the WAN between two sites, from node %s\n",
			iv.command(true, nil, "ip", "netns", "exec", p.Nodes[0].NS, "traceroute", "-n", n.Addr.String()), p.Nodes[0].Name)
	}
	p.printAudit(w)
	p.printLeases(w)
	p.printGENI(w)
	fmt.Fprintln(w)
}

// printGENI tells how to use the GENI aggregate with the demo user's
// certificate and slice credential (docs/geni.md).
func (p *Planet) printGENI(w io.Writer) {
	if p.GENIURL == "" {
		return
	}
	iv := p.invoker
	d := p.Demo
	fmt.Fprintf(w, "\nTry GENI (AM API v3 at %s, e.g. omni -a %s): after pl login as %s (above), your certificate and credentials:\n", p.GENIURL, p.GENIURL, d.User)
	fmt.Fprintf(w, "  %s   # key and certificate in pl's configuration directory, geni/\n", iv.command(false, nil, p.Binary, "geni", "cert"))
	fmt.Fprintf(w, "  %s   # slice urn:publicid:IDN+%s+slice+%s\n", iv.command(false, nil, p.Binary, "geni", "credential", d.Slice, "-o", d.Slice+".cred"), p.GENIHost(), d.Slice)
	fmt.Fprintf(w, "  %s\n", iv.command(false, nil, p.Binary, "geni", "credential", "-o", "user.cred"))
}

// printAudit tells how to try accountability (docs/audit.md): the demo
// sliver on the last node sends TCP and UDP to the first node's address,
// and `pl audit who` at PLC names the slice, its node, site and PIs.
func (p *Planet) printAudit(w io.Writer) {
	regular := p.regular()
	if len(regular) < 2 {
		return
	}
	iv := p.invoker
	from, to := regular[len(regular)-1], regular[0]
	send := fmt.Sprintf("busybox wget -q -O - http://%s:%d/; busybox nslookup pl-audit.example %s", to.Addr, p.Demo.Port, to.Addr)
	fmt.Fprintf(w, "\nTry accountability: the demo sliver on %s sends TCP and UDP to %s; PLC names the slice, node, site and PIs:\n", from.Name, to.Addr)
	fmt.Fprintf(w, "  %s '%s'\n", iv.command(false, nil, p.SSHCommand(from)...), send)
	fmt.Fprintf(w, "  %s\n", iv.command(true, p.cliEnv(), p.Binary, "audit", "who", to.Addr.String(), "--since", "10m"))
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

// printMonitoring tells where the planet table is and how to watch a node
// go down and come back (docs/monitoring.md).
func (p *Planet) printMonitoring(w io.Writer) {
	iv := p.invoker
	pl := func(args ...string) string {
		return iv.command(true, p.cliEnv(), append([]string{p.Binary}, args...)...)
	}
	dev := func(args ...string) string {
		argv := append([]string{p.Binary, "dev"}, args...)
		if p.ID != "" {
			argv = append(argv, "--id", p.ID)
		}
		return iv.command(true, nil, argv...)
	}
	fmt.Fprintf(w, "\nThe planet table (nodes report every %v; PLC's monitor marks a node down after %v without a report):\n", ReportInterval, DownAfter)
	fmt.Fprintf(w, "  %s\n", pl("top", "nodes"))
	fmt.Fprintf(w, "  %s\n", pl("top", "slices"))
	if len(p.Nodes) > 0 {
		fmt.Fprintf(w, "  %s\n", pl("node", "show", p.Nodes[0].Hostname))
	}
	fmt.Fprintf(w, "  %s   # Prometheus\n", iv.command(false, nil, "curl", "-sk", p.PLCURL+"/metrics"))
	if len(p.Nodes) < 2 {
		return
	}
	n := p.Nodes[1]
	fmt.Fprintf(w, "\nTry an outage: stop node %s's node manager; within %v it is down and its site is notified:\n", n.Name, DownAfter+DownAfter/4+ReportInterval)
	fmt.Fprintf(w, "  %s\n", dev("stop", n.Name))
	fmt.Fprintf(w, "  %s\n", pl("top", "nodes", "--where", "!up"))
	fmt.Fprintf(w, "  %s\n", pl("monitor", "notices"))
	fmt.Fprintf(w, "  %s   # it reports again and is up\n", dev("start", n.Name))
}
