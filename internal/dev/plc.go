package dev

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/server"
	"github.com/planetlab/pl/internal/tlspin"
)

// AdminEmail is the demo PLC's administrator.
const AdminEmail = "admin@pl-dev.example.org"

// cliEnv keeps the pl CLI's configuration (sessions, known PLCs) of the
// planet's children in the data directory.
func (p *Planet) cliEnv() []string {
	return []string{"PL_CONFIG_DIR=" + p.CLIConfigDir()}
}

// CLIConfigDir is the pl CLI configuration directory of the planet's admin
// session (PL_CONFIG_DIR).
func (p *Planet) CLIConfigDir() string { return p.DataPath("admin-cli") }

// DefaultGENIPort is the dev PLC's GENI aggregate port (docs/geni.md).
const DefaultGENIPort = 12346

// GENIHost is the dev PLC's GENI authority: its URNs are
// urn:publicid:IDN+<GENIHost>+... (docs/geni.md).
func (p *Planet) GENIHost() string {
	if p.ID != "" {
		return p.ID + ".pl-dev.example.org"
	}
	return "pl-dev.example.org"
}

// startPLC starts `pl plc` on the host's WAN address and creates its
// first administrator with `pl plc init`.
func (p *Planet) startPLC(ctx context.Context) error {
	dir := p.DataPath("plc")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p.AdminEmail = AdminEmail
	p.AdminPWFile = p.DataPath("admin-password")
	if err := os.WriteFile(p.AdminPWFile, []byte(randomPassword()+"\n"), 0o600); err != nil {
		return err
	}
	if _, err := p.run(ctx, nil, "plc", "init", "--data", dir, "--email", p.AdminEmail, "--password-file", p.AdminPWFile); err != nil {
		return err
	}
	listen := net.JoinHostPort(p.Plan.HostAddr.String(), strconv.Itoa(p.PLCPort))
	geniListen := net.JoinHostPort(p.Plan.HostAddr.String(), strconv.Itoa(p.GENIPort))
	// Something listening on all addresses at this port (another PLC on
	// :8443, say) would answer in place of ours.
	for _, l := range []struct {
		addr string
		port int
		flag string
	}{{listen, p.PLCPort, "--plc-port"}, {geniListen, p.GENIPort, "--geni-port"}} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("port %d is taken on %s (%v); choose another with %s", l.port, p.Plan.HostAddr, err, l.flag)
		}
		ln.Close()
	}
	// The GENI aggregate trusts the PLC's own slice authority (always).
	s := p.newProc("plc", "", p.DataPath("plc.log"), "plc", "--data", dir, "--listen", listen,
		"--monitor-down-after", DownAfter.String(), "--dev-mailbox", "--lease-granularity", LeaseGranularity,
		"--geni-host", p.GENIHost(), "--geni-listen", geniListen)
	c, err := p.spawn(s)
	if err != nil {
		return err
	}
	if err := waitTCP(ctx, c, listen, 30*time.Second); err != nil {
		return err
	}
	// PLC listens before it writes a new certificate: wait until the file
	// exists and the server presents it.
	p.PLCURL = "https://" + listen
	p.GENIURL = "https://" + geniListen + "/"
	certFile := filepath.Join(dir, server.CertFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		fp, err := certFingerprint(certFile)
		if err == nil {
			var got string
			if got, err = tlspin.Peer(ctx, listen); err == nil && got != fp {
				err = fmt.Errorf("the server at %s presents certificate %s, not PLC's %s", listen, got, fp)
			}
			if err == nil {
				p.Fingerprint = fp
				break
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("PLC exited: %v (log: %s)", c.err, c.log.Name())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (log: %s)", err, c.log.Name())
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	if err := waitTCP(ctx, c, geniListen, 30*time.Second); err != nil {
		return err
	}
	go p.supervise(s)
	_, err = p.run(ctx, nil, "login", p.PLCURL, "--fingerprint", p.Fingerprint, "--email", p.AdminEmail, "--password-file", p.AdminPWFile)
	return err
}

func certFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	return tlspin.Fingerprint(blk.Bytes), nil
}

// AdminClient returns a PLC client logged in as the administrator.
func (p *Planet) AdminClient(ctx context.Context) (*client.Client, error) {
	c, err := client.New(p.PLCURL, client.Options{Fingerprint: p.Fingerprint})
	if err != nil {
		return nil, err
	}
	pw, err := os.ReadFile(p.AdminPWFile)
	if err != nil {
		return nil, err
	}
	if _, err := c.Login(ctx, p.AdminEmail, strings.TrimSpace(string(pw)), 0); err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	return c, nil
}

// startNodes creates the sites, registers every node at PLC, and starts
// `pl node join` then the `pl node` daemon in each node's namespace.
func (p *Planet) startNodes(ctx context.Context) error {
	reg, err := p.AdminClient(ctx)
	if err != nil {
		return err
	}
	siteIDs := map[string]int64{}
	for _, s := range p.Plan.SitePlans {
		ds := p.Sites[s.Index-1]
		id, err := reg.Add(ctx, nil, core.Site, core.Record{
			"login_base": ds.LoginBase, "name": ds.Name, "abbreviated_name": ds.LoginBase,
			"latitude": ds.Lat, "longitude": ds.Lon, "url": "https://" + ds.LoginBase + ".example.org/",
			"enabled": true, "is_public": true, "max_slices": 100, "max_slivers": 1000,
		})
		if err != nil {
			return fmt.Errorf("add site %s: %w", ds.LoginBase, err)
		}
		siteIDs[ds.LoginBase] = id
	}
	for _, np := range p.Plan.NodePlans {
		s := p.Plan.SiteOf(np)
		p.Nodes = append(p.Nodes, &Node{
			NodePlan: np,
			SiteName: s.Site.Name,
			Hostname: fmt.Sprintf("%s.%s.pl-dev.example.org", np.Name, s.Site.Name),
			StateDir: p.DataPath("nodes", np.Name),
			Cgroup:   p.rec.Cgroup + "/" + np.Name,
		})
	}
	// Join and start the nodes concurrently.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	var mu sync.Mutex
	for _, n := range p.Nodes {
		g.Go(func() error {
			// The normal flow: `pl node register` at PLC prints the join
			// command, which runs on the node. IPv6 for slivers: the /64
			// the node's site routes to it, PLC's sliversipv6prefix tag
			// of its interface (docs/networks.md).
			out, err := p.run(gctx, nil, "node", "register", n.SiteName, n.Hostname, "--json",
				"--ip", netip.PrefixFrom(n.Addr, 24).String(), "--gateway", n.Gateway.String(), "--model", "pl dev",
				"--ipv6-prefix", n.SliverPrefix6.String())
			if err != nil {
				return err
			}
			var reg struct {
				NodeID int64  `json:"node_id"`
				Token  string `json:"token"`
			}
			if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.Token == "" {
				return fmt.Errorf("pl node register %s: unexpected output %q: %v", n.Hostname, out, err)
			}
			n.NodeID = reg.NodeID
			if err := os.MkdirAll(n.StateDir, 0o755); err != nil {
				return err
			}
			if _, err := p.runIn(gctx, n.NS, p.nodeArgs(n, "join", p.PLCURL, reg.Token)...); err != nil {
				return err
			}
			s := p.newProc(n.Name, n.NS, filepath.Join(n.StateDir, "node.log"), p.nodeArgs(n)...)
			if _, err := p.spawn(s); err != nil {
				return err
			}
			mu.Lock()
			n.proc = s
			mu.Unlock()
			go p.supervise(s)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return p.waitNodesContact(ctx, reg, 60*time.Second)
}

// nodeArgs returns the arguments of `pl node <sub...>` for node n.
func (p *Planet) nodeArgs(n *Node, sub ...string) []string {
	args := append([]string{"node"}, sub...)
	args = append(args, "--state", n.StateDir)
	if len(sub) == 0 { // the daemon
		args = append(args, "--cgroup-parent", n.Cgroup, "--ssh-listen", net.JoinHostPort(n.Addr.String(), "22"),
			// A dev planet shows every sliver's figures to anyone.
			"--sensor-addr", net.JoinHostPort(n.Addr.String(), SensorPort), "--sensor-slivers", "public",
			"--report-interval", ReportInterval.String(), "--bwmon-interval", ReportInterval.String(),
			// Ports 80 and 443 shared by host name (docs/networks.md).
			// IPv6 for slivers comes from PLC (registered with the node).
			"--codemux")
		if p.NodeLogLevel != "" {
			args = append(args, "--log-level", p.NodeLogLevel)
		}
	}
	return args
}

// waitNodesContact waits until every node has contacted PLC.
func (p *Planet) waitNodesContact(ctx context.Context, reg core.Registry, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		recs, err := reg.Get(ctx, nil, core.Node, nil, []string{"node_id", "hostname", "last_contact"})
		if err != nil {
			return err
		}
		var missing []string
		for _, r := range recs {
			if v, _ := r["last_contact"].(int64); v == 0 {
				missing = append(missing, fmt.Sprint(r["hostname"]))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		for _, n := range p.Nodes {
			if n.proc != nil {
				if st := n.proc.status(); st.State != "running" {
					return fmt.Errorf("node %s %s (log %s)", n.Name, st.LastExit, n.proc.logFile)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes never contacted PLC: %s", strings.Join(missing, ", "))
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// cliHints are copy-paste pl commands for the demo user, run as the user
// who ran pl dev (the files they name are theirs).
func (p *Planet) cliHints() []string {
	d := p.Demo
	var key []string
	if d.KeyFile != "" {
		key = []string{"-i", d.KeyFile}
	}
	n := p.Nodes[0]
	iv := p.invoker
	return []string{
		iv.command(false, nil, p.Binary, "login", p.PLCURL, "--fingerprint", p.Fingerprint, "--email", d.User, "--password-file", d.PWFile),
		iv.command(false, nil, append(append([]string{p.Binary, "exec", d.Slice}, key...), "--", "uname", "-a")...),
		iv.command(false, nil, append(append([]string{p.Binary, "ssh"}, key...), d.Slice+"@"+n.Hostname)...),
	}
}
