package nodecmd

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/rspec"
	"github.com/planetlab/pl/internal/node/agent"
	"github.com/vishvananda/netns"

	"github.com/planetlab/pl/internal/node/bwmon"
	"github.com/planetlab/pl/internal/node/codemux"
	"github.com/planetlab/pl/internal/node/flows"
	"github.com/planetlab/pl/internal/node/image"
	"github.com/planetlab/pl/internal/node/netcfg"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/node/plcclient"
	"github.com/planetlab/pl/internal/node/sensors"
	"github.com/planetlab/pl/internal/node/sliver"
	"github.com/planetlab/pl/internal/node/sshgw"
	"github.com/planetlab/pl/internal/node/vlink"
	"github.com/planetlab/pl/internal/nodeapi"
)

// Version is the node manager version reported to PLC:
// pl-node/<module version>+<vcs revision>[.dirty], from the build info.
var Version = version(debug.ReadBuildInfo())

func version(bi *debug.BuildInfo, ok bool) string {
	v, rev, dirty := "devel", "", false
	if ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "pl-node/" + v
	if rev != "" {
		out += "+" + rev[:min(len(rev), 12)]
		if dirty {
			out += ".dirty"
		}
	}
	return out
}

// Options configure a whole node manager (the `pl node` daemon). Zero
// values take the documented defaults.
type Options struct {
	State     string // state directory; DefaultStateDir
	SSHListen string // SSH gateway address; ":22"; "-" = no gateway

	// Networking (package netcfg).
	NetNS      string // the node's network namespace ("" = ours)
	Uplink     string // uplink interface ("" = the default route's)
	NodeAddr   string // public IPv4 ("" = the uplink's first)
	Prefix     string // sliver address space; 10.42.0.0/16
	Prefix6    string // IPv6 prefix routed to the node for slivers; "" = slivers are IPv4-only
	CapKbit    int64  // node egress cap, kbit/s; 1 Gbit/s
	NFTable    string // nftables table; "pl"
	VethPrefix string // node-side veth names; "plv"

	// Slivers (package sliver).
	CgroupParent string // "/pl"
	DiskDir      string // btrfs for writable layers (qgroup quotas); a loop image under State by default

	Parallel int // concurrent sliver operations
	Logger   *slog.Logger

	// Sensors (package sensors; docs/monitoring.md).
	SensorAddr    string             // sensor server address; sensors.DefaultAddr (:3100); "-" = none
	SensorSlivers sensors.Visibility // who may read per-sliver figures; sensors.Local

	// NoFlows turns the flow log off (package flows; docs/audit.md). On,
	// the node records every flow of its slivers and itself from
	// conntrack into <state>/flows/flows.db and answers PLC's signed
	// queries at nodeapi.FlowsPath on the sensor listener.
	NoFlows bool
	// DailyKByte is the daily egress budget of slices without
	// net_max_kbyte (bwmon; 0 = bwmon.DefaultMaxKByte, -1 = none).
	DailyKByte int64
	// BwmonInterval is how often bwmon reads the counters (0 = 30 s).
	BwmonInterval time.Duration
	// Codemux shares the node's ports 80 and 443 among slices by host name
	// (codemux slice tag; package codemux, docs/networks.md) on
	// CodemuxHTTP and CodemuxTLS (":80", ":443"); those ports are then the
	// node's, no slice may reserve them.
	Codemux                 bool
	CodemuxHTTP, CodemuxTLS string

	// PLC overrides the client built from node.json (tests, benchmarks).
	PLC agent.PLC
	// Observe is passed to the agent (benchmarks).
	Observe func(op agent.Op, err error, took time.Duration)
	// ResyncInterval and ReportInterval are passed to the agent.
	ResyncInterval time.Duration
	// GatewayCommand, when set, runs the SSH gateway as a process of its
	// own (`pl node sshgw`; this is the program and its leading
	// arguments), supervised, that outlives the node manager; the `pl
	// node` daemon sets it. Unset: the gateway runs in-process (tests,
	// benchmarks) and Node.Gateway is it.
	GatewayCommand []string
	ReportInterval time.Duration
	// APISocket is the node manager's local API socket (package nmapi;
	// docs/brokering.md): "" = <State>/api.sock, "-" = none.
	APISocket string
	// APIClient is the static pl binary bound into slivers with the local
	// API, their client: "" = this program when it is statically linked
	// (else none, logged), "-" = none.
	APIClient string
	// VsysDir holds the operator's scripts of privileged operations
	// (package vsys; "" = none) and DatasetDir the node's datasets that
	// the built-in dataset operation attaches ("" = none).
	VsysDir, DatasetDir string
	// VsysTimeout bounds a script's run (0 = 30 s).
	VsysTimeout time.Duration
}

// Node is a running node manager: agent, sliver runtime, networking, SSH
// gateway. It is the type behind `pl node`, usable in-process by tests and
// by `pl dev`.
type Node struct {
	Agent   *agent.Main
	Runtime *sliver.Runc
	Net     *netcfg.Linux
	Links   *vlink.Manager // slivers' virtual links (vlinks tag)
	Images  *image.Store
	Gateway *sshgw.Gateway // nil when SSHListen is "-"
	Sensors *sensors.Collector
	// SensorListener is the sensor server's listener (nil when
	// SensorAddr is "-"); Run serves it.
	SensorListener net.Listener
	sensorVis      sensors.Visibility
	// APIListener is the local API's socket (nil with APISocket "-").
	APIListener net.Listener
	// Flows and FlowStore are the flow log (nil with NoFlows).
	Flows     *flows.Recorder
	FlowStore *flows.Store
	flowKey   func() (int64, string, bool)
	// Bwmon holds slices to their daily byte budgets.
	Bwmon *bwmon.Monitor
	// Codemux shares ports 80 and 443 among slices (nil without
	// Options.Codemux); Run serves its listeners.
	Codemux                 *codemux.Mux
	codemuxHTTP, codemuxTLS net.Listener
	codemuxNS               *netns.NsHandle            // with --netns: the node's, where codemux dials
	dir                     map[string]agent.SliceInfo // the agent's last slice directory

	log    *slog.Logger
	client *plcclient.Client
	mu     sync.Mutex
	gw     *sshgw.Gateway
	gwSup  *gatewaySupervisor // the gateway process's, with GatewayCommand
}

// NewNode assembles a node from opts. It changes nothing that exists on the
// host: slivers keep running and are adopted by Run.
func NewNode(ctx context.Context, opts Options) (_ *Node, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{log: opts.Logger.With("subsystem", "node")}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := prepareState(opts.State); err != nil {
		return nil, err
	}
	plc, err := n.openPLC(opts)
	if err != nil {
		return nil, err
	}
	pub, err := HostKey(opts.State)
	if err != nil {
		return nil, err
	}
	if err := n.openRuntime(ctx, opts); err != nil {
		return nil, err
	}
	if n.Net, err = openNet(opts); err != nil {
		return nil, err
	}
	nc := n.Net.Config()
	if n.Links, err = vlink.New(vlink.Config{NetNS: opts.NetNS, StateDir: filepath.Join(opts.State, "net"),
		LocalAddr: nc.NodeAddr, Reserved: []netip.Prefix{nc.Prefix}}, opts.Logger); err != nil {
		return nil, err
	}
	var onCodemux func(string, []agent.CodemuxRoute)
	if opts.Codemux {
		if err := n.openCodemux(opts); err != nil {
			return nil, err
		}
		onCodemux = n.setCodemux
	}
	observe := func(op agent.Op, err error, took time.Duration) {
		if err == nil && (op.Kind == agent.OpDestroy || op.Kind == agent.OpSuspend) {
			n.mu.Lock()
			gw := n.gw
			n.mu.Unlock()
			if gw != nil {
				if k := gw.Disconnect(op.Name); k > 0 {
					n.log.Info("closed ssh sessions of sliver", "sliver", op.Name, "op", op.Kind, "sessions", k)
				}
			}
		}
		if opts.Observe != nil {
			opts.Observe(op, err, took)
		}
	}
	var onDir func(map[string]agent.SliceInfo)
	if opts.SSHListen != "-" && len(opts.GatewayCommand) > 0 {
		n.gwSup = &gatewaySupervisor{
			opts:    GatewayOptions{State: opts.State, Listen: opts.SSHListen, CgroupParent: opts.CgroupParent},
			command: opts.GatewayCommand,
			log:     n.log,
			slices:  filepath.Join(opts.State, gatewayDir, "slices.json"),
		}
		if err := os.MkdirAll(filepath.Join(opts.State, gatewayDir), 0o700); err != nil {
			return nil, err
		}
		onDir = n.gwSup.writeSlices
	}
	if err := n.openSensors(opts); err != nil {
		return nil, err
	}
	if err := n.openFlows(opts); err != nil {
		return nil, err
	}
	{
		next := onDir
		onDir = func(dir map[string]agent.SliceInfo) {
			n.mu.Lock()
			n.dir = dir
			n.mu.Unlock()
			if next != nil {
				next(dir)
			}
		}
	}
	if n.Bwmon, err = bwmon.New(bwmon.Config{
		Shaper:    n.Net,
		Slivers:   n.bwmonSlivers,
		StatePath: filepath.Join(opts.State, "bwmon.json"),
		Policy:    bwmon.Policy{DefaultMaxKByte: opts.DailyKByte},
		Interval:  opts.BwmonInterval,
		Logger:    opts.Logger,
	}); err != nil {
		return nil, err
	}
	if n.Flows != nil {
		gwDir := onDir
		onDir = func(dir map[string]agent.SliceInfo) {
			m := make(map[int]flows.SliceRef, len(dir))
			for _, info := range dir {
				if info.XID != 0 && info.SliceID != 0 {
					m[info.XID] = flows.SliceRef{Name: info.Name, SliceID: info.SliceID}
				}
			}
			n.Flows.SetSlices(m)
			if gwDir != nil {
				gwDir(dir)
			}
		}
	}
	apiSocket := opts.APISocket
	switch apiSocket {
	case "":
		apiSocket = filepath.Join(opts.State, APISocketName)
	case "-":
		apiSocket = ""
	}
	apiClient := ""
	if apiSocket != "" {
		apiClient = sliverClient(opts.APIClient, opts.Logger)
	}
	n.Agent, err = agent.New(agent.Config{
		StateDir: filepath.Join(opts.State, "agent"),
		PLC:      plc,
		Runtime:  n.Runtime,
		Runtimes: n.Runtime.Runtimes(),
		Net:      n.Net,
		Links:    n.Links,
		Images: func(ctx context.Context) ([]string, error) {
			infos, err := n.Images.List()
			if err != nil {
				return nil, err
			}
			names := make([]string, len(infos))
			for i, in := range infos {
				names[i] = in.Name
			}
			return names, nil
		},
		Logger:         opts.Logger,
		Parallel:       opts.Parallel,
		Version:        Version,
		SSHHostKey:     pub,
		Observe:        observe,
		ResyncInterval: opts.ResyncInterval,
		OnDirectory:    onDir,
		ReportInterval: opts.ReportInterval,
		Figures:        n.Sensors.Collect,
		BwmonEvents: func(after time.Time) []core.BwmonEvent {
			return n.Bwmon.EventsAfter(after, core.MaxBwmonEvents)
		},
		OnCodemux: onCodemux,
		Capacity:  rspec.Capacity{NetKbit: n.Net.Config().CapKbit, MemKiB: sliverMemKiB()},
		APISocket: apiSocket,
		APIClient: apiClient,
		Vsys:      n.vsysRegistry(opts),
		// The node's own prefix (--ipv6-prefix, checked by openNet) wins
		// over PLC's sliversipv6prefix.
		IPv6Prefix: n.Net.Config().Prefix6,
	})
	if err != nil {
		return nil, err
	}
	if apiSocket != "" {
		if n.APIListener, err = nmapi.Listen(apiSocket); err != nil {
			return nil, fmt.Errorf("local API: %w", err)
		}
	}
	if opts.SSHListen != "-" && n.gwSup == nil {
		n.Gateway, err = sshgw.New(sshgw.Config{
			Addr:        opts.SSHListen,
			HostKeyPath: filepath.Join(opts.State, hostKeyFileName),
			Runtime:     n.Runtime,
			Slices:      sliceView{n.Agent},
			Logger:      opts.Logger,
		})
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		n.gw = n.Gateway
		n.mu.Unlock()
	}
	if opts.SensorAddr != "-" {
		if n.SensorListener, err = net.Listen("tcp", opts.SensorAddr); err != nil {
			return nil, fmt.Errorf("sensor server: %w", err)
		}
		n.sensorVis = opts.SensorSlivers
	}
	return n, nil
}

// setDefaults fills in the options left empty and checks the sensor
// visibility.
func (opts *Options) setDefaults() error {
	if opts.State == "" {
		opts.State = DefaultStateDir
	}
	if opts.SSHListen == "" {
		opts.SSHListen = ":22"
	}
	if opts.CodemuxHTTP == "" {
		opts.CodemuxHTTP = ":80"
	}
	if opts.CodemuxTLS == "" {
		opts.CodemuxTLS = ":443"
	}
	if opts.SensorAddr == "" {
		opts.SensorAddr = sensors.DefaultAddr
	}
	if opts.SensorSlivers == "" {
		opts.SensorSlivers = sensors.Local
	}
	if _, err := sensors.ParseVisibility(string(opts.SensorSlivers)); err != nil {
		return err
	}
	if opts.ReportInterval != 0 && (opts.ReportInterval < time.Second || opts.ReportInterval > time.Hour) {
		return fmt.Errorf("--report-interval %v: want 1s..1h", opts.ReportInterval)
	}
	if opts.BwmonInterval != 0 && (opts.BwmonInterval < time.Second || opts.BwmonInterval > time.Hour) {
		return fmt.Errorf("--bwmon-interval %v: want 1s..1h", opts.BwmonInterval)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return nil
}

// prepareState checks the host (cgroups mounted, state directory
// traversable) and makes the state directory.
func prepareState(state string) error {
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil {
		return err
	} else if err := checkCgroupMounts(string(mi)); err != nil {
		return err
	}
	if err := CheckTraversable(state); err != nil {
		return err
	}
	// Slivers' user namespaces traverse the state directory to reach their
	// bundles and images: search permission for all, listing for none.
	if err := os.MkdirAll(state, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(state, 0o711); err != nil {
		return err
	}
	return nil
}

// openPLC returns opts.PLC or, without one, a client of the PLC this node
// joined (node.json).
func (n *Node) openPLC(opts Options) (agent.PLC, error) {
	if opts.PLC != nil {
		return opts.PLC, nil
	}
	nf, err := LoadNodeFile(opts.State)
	if err != nil {
		return nil, err
	}
	if n.client, err = plcclient.New(plcclient.Config{URL: nf.PLCURL, NodeID: nf.NodeID, NodeKey: nf.NodeKey, Fingerprint: nf.Fingerprint}); err != nil {
		return nil, fmt.Errorf("node.json: %w", err)
	}
	return n.client, nil
}

// openRuntime opens the image store (with the built-in image) and the
// sliver runtime.
func (n *Node) openRuntime(ctx context.Context, opts Options) (err error) {
	if n.Images, err = image.Open(filepath.Join(opts.State, "images")); err != nil {
		return err
	}
	if err := n.Images.EnsureDefault(ctx); err != nil {
		return fmt.Errorf("built-in image: %w", err)
	}
	n.Runtime, err = sliver.New(ctx, sliver.Config{
		StateDir:     filepath.Join(opts.State, "slivers"),
		Images:       n.Images,
		CgroupParent: opts.CgroupParent,
		DiskDir:      opts.DiskDir,
		Logger:       opts.Logger,
	})
	if err != nil {
		return err
	}
	return nil
}

// openNet opens the network manager.
func openNet(opts Options) (_ *netcfg.Linux, err error) {
	ncfg := netcfg.Config{
		StateDir:   filepath.Join(opts.State, "net"),
		NetNS:      opts.NetNS,
		Uplink:     opts.Uplink,
		CapKbit:    opts.CapKbit,
		Table:      opts.NFTable,
		VethPrefix: opts.VethPrefix,
		// Sliver namespaces owned by the sliver's user namespace: sliver
		// root holds CAP_NET_RAW (ping, traceroute, sniffers) there only.
		NewNetNS: sliver.NewNetNS,
		Logger:   opts.Logger,
	}
	if opts.Codemux {
		ncfg.NodePorts = append([]netcfg.Port{{Proto: "tcp", From: 22, To: 22}}, CodemuxPorts...)
	}
	if opts.NodeAddr != "" {
		if ncfg.NodeAddr, err = netip.ParseAddr(opts.NodeAddr); err != nil {
			return nil, fmt.Errorf("--node-addr: %w", err)
		}
	}
	if opts.Prefix != "" {
		if ncfg.Prefix, err = netip.ParsePrefix(opts.Prefix); err != nil {
			return nil, fmt.Errorf("--prefix: %w", err)
		}
	}
	if opts.Prefix6 != "" {
		if ncfg.Prefix6, err = netip.ParsePrefix(opts.Prefix6); err != nil {
			return nil, fmt.Errorf("--ipv6-prefix: %w", err)
		}
	}
	return netcfg.New(ncfg)
}

// openSensors sets up the node's sensors over the runtime, the network
// manager and the agent (read when collecting, after the agent exists).
func (n *Node) openSensors(opts Options) (err error) {
	var clock func() (int64, bool)
	if n.client != nil {
		clock = n.client.ClockOffset
	}
	n.Sensors, err = sensors.New(sensors.Config{
		CgroupParent: opts.CgroupParent,
		StoreDir:     n.Runtime.Store(),
		VethPrefix:   n.Net.Config().VethPrefix,
		Disk:         n.Runtime.DiskUsage,
		Links: func() ([]sensors.Link, error) {
			cs, err := n.Net.Counters()
			out := make([]sensors.Link, len(cs))
			for i, c := range cs {
				out[i] = sensors.Link(c)
			}
			return out, err
		},
		Slivers: func() []sensors.Sliver {
			errs := n.Agent.SliverErrors()
			names := n.Agent.Slivers()
			p6 := n.Net.Prefix6()
			n.mu.Lock()
			dir := n.dir
			n.mu.Unlock()
			out := make([]sensors.Sliver, 0, len(names))
			for _, name := range names {
				s := sensors.Sliver{Name: name, LastError: errs[name]}
				if info, ok := dir[name]; ok && info.XID != 0 && p6.IsValid() {
					if a, err := netcfg.SliverAddr6(p6, info.XID); err == nil {
						s.IPv6 = a.String() // reported to PLC (docs/networks.md)
					}
				}
				out = append(out, s)
			}
			return out
		},
		Clock: clock,
		SSH:   n.sshProbe(opts).State,
	})
	if err != nil {
		return err
	}
	return nil
}

// openFlows opens the flow store and recorder (unless opts.NoFlows).
func (n *Node) openFlows(opts Options) (err error) {
	n.flowKey = func() (int64, string, bool) { return 0, "", false }
	if nf, err := LoadNodeFile(opts.State); err == nil {
		n.flowKey = func() (int64, string, bool) { return nf.NodeID, nf.NodeKey, true }
	}
	if opts.NoFlows {
		return nil
	}
	if n.FlowStore, err = flows.OpenStore(flows.StoreConfig{Path: filepath.Join(opts.State, "flows", "flows.db"), Logger: opts.Logger}); err != nil {
		return err
	}
	// Slivers' own IPv6 addresses: the prefix in force now (PLC's may
	// change it while the node runs).
	isSliver := func(a netip.Addr) bool {
		p := n.Net.Prefix6()
		return p.IsValid() && p.Contains(a)
	}
	n.Flows, err = flows.NewRecorder(flows.RecorderConfig{Store: n.FlowStore, NetNS: opts.NetNS, IsSliverAddr: isSliver, Logger: opts.Logger})
	return err
}

// bwmonSlivers lists the slivers with networking for bwmon, from the
// agent's last directory.
func (n *Node) bwmonSlivers() []bwmon.Sliver {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]bwmon.Sliver, 0, len(n.dir))
	for _, info := range n.dir {
		if info.XID != 0 {
			out = append(out, bwmon.Sliver{Name: info.Name, XID: info.XID, SliceID: info.SliceID,
				MaxKByte: info.MaxKByte, ThreshKByte: info.ThreshKByte, MinRateKbit: info.MinRateKbit})
		}
	}
	return out
}

// sensorHandler serves the sensors, bwmon's state (/bwmon) and, with the
// flow log, PLC's flow queries.
func (n *Node) sensorHandler() http.Handler {
	mux := http.NewServeMux()
	if n.FlowStore != nil {
		fh := flows.NewHandler(flows.HandlerConfig{Store: n.FlowStore, Recorder: n.Flows, Key: n.flowKey, Logger: n.log})
		mux.Handle(nodeapi.FlowsPath, fh)
		mux.Handle(nodeapi.FlowSummaryPath, fh)
	}
	mux.Handle(BwmonPath, n.Bwmon)
	mux.Handle("/", sensors.NewHandler(n.Sensors, n.sensorVis, n.log.With("subsystem", "sensors")))
	return mux
}

// BwmonPath serves bwmon's state and events (JSON) on the sensor listener.
const BwmonPath = "/bwmon"

// sshProbe reports on the node's gateway: the process's (with
// GatewayCommand) or the in-process one.
func (n *Node) sshProbe(opts Options) *sshProbe {
	state := ""
	if n.gwSup != nil {
		state = opts.State
	}
	return newSSHProbe(opts.SSHListen, state, func() net.Addr {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.gw == nil {
			return nil
		}
		return n.gw.Addr()
	})
}

// Run runs the agent and the SSH gateway until ctx is cancelled.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.Bwmon.Run(ctx)
	}()
	if n.Flows != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The node works without its flow log; the error says why not.
			if err := n.Flows.Run(ctx); err != nil {
				n.log.Error("flow recorder stopped: flows are not recorded", "err", err)
			}
		}()
	}
	var gwErr error
	if n.gwSup != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.gwSup.run(ctx) // leaves the gateway running when ctx ends
		}()
	}
	if n.Gateway != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Gateway.Serve(ctx); err != nil && ctx.Err() == nil {
				gwErr = err
				n.log.Error("ssh gateway stopped", "err", err)
			}
		}()
		n.log.Info("ssh gateway listening", "addr", n.Gateway.Addr().String())
	}
	var sensErr error
	if n.SensorListener != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sensors.Serve(ctx, n.SensorListener, n.sensorHandler()); err != nil && ctx.Err() == nil {
				sensErr = err
				n.log.Error("sensor server stopped", "err", err)
			}
		}()
		n.log.Info("sensor server listening", "addr", n.SensorListener.Addr().String(), "slivers", n.sensorVis)
	}
	if n.Codemux != nil {
		for _, l := range []net.Listener{n.codemuxHTTP, n.codemuxTLS} {
			serve := n.Codemux.ServeHTTPOn
			if l == n.codemuxTLS {
				serve = n.Codemux.ServeTLSOn
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := serve(l); err != nil && ctx.Err() == nil {
					n.log.Error("codemux stopped", "addr", l.Addr().String(), "err", err)
				}
			}()
		}
		n.log.Info("codemux listening", "http", n.codemuxHTTP.Addr().String(), "tls", n.codemuxTLS.Addr().String())
	}
	if n.APIListener != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := &nmapi.Server{Methods: n.Agent.APIMethods(), Identify: n.Agent.SliceOfUID, Log: n.log.With("subsystem", "nmapi")}
			if err := srv.Serve(ctx, n.APIListener); err != nil && ctx.Err() == nil {
				n.log.Error("local API stopped", "err", err)
			}
		}()
		n.log.Info("local API listening", "socket", n.APIListener.Addr().String())
	}
	err := n.Agent.Run(ctx)
	cancel()
	if n.Codemux != nil {
		n.Codemux.Close()
	}
	if n.Gateway != nil {
		n.Gateway.Close()
	}
	wg.Wait()
	return errors.Join(err, gwErr, sensErr)
}

// Close releases the node's handles. Slivers keep running.
func (n *Node) Close() error {
	var errs []error
	if n.Agent != nil {
		errs = append(errs, n.Agent.Close())
	}
	if n.Gateway != nil {
		errs = append(errs, n.Gateway.Close())
	}
	if n.SensorListener != nil {
		n.SensorListener.Close() // closed already when Run served it
	}
	if n.Codemux != nil {
		errs = append(errs, n.Codemux.Close())
		n.codemuxHTTP.Close()
		n.codemuxTLS.Close()
	}
	if n.codemuxNS != nil {
		n.codemuxNS.Close()
	}
	if n.APIListener != nil {
		n.APIListener.Close()
	}
	if n.Net != nil {
		errs = append(errs, n.Net.Close())
	}
	if n.Links != nil {
		n.Links.Close()
	}
	if n.FlowStore != nil {
		errs = append(errs, n.FlowStore.Close())
	}
	if n.client != nil {
		n.client.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// sliceView adapts the agent's slice directory to the SSH gateway.
type sliceView struct{ m *agent.Main }

func (v sliceView) Lookup(name string) (sshgw.SliceAccess, bool) {
	info, ok := v.m.LookupSlice(name)
	if !ok {
		return sshgw.SliceAccess{}, false
	}
	return sshgw.SliceAccess{Keys: info.Keys, Enabled: info.Enabled, Running: info.Running, Expires: info.Expires, NetNS: info.NetNS}, true
}

// APISocketName is the local API socket in the state directory.
const APISocketName = "api.sock"

// sliverMemKiB is the memory the node promises slivers at most: 90% of
// MemTotal (0 if unknown: not checked).
func sliverMemKiB() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kib int64
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kib); err == nil {
			return kib * 9 / 10
		}
	}
	return 0
}

// sliverClient resolves Options.APIClient: the binary slivers with the
// local API get as their client, which must be statically linked (the
// slivers' images have no Go runtime's libraries to offer it).
func sliverClient(opt string, log *slog.Logger) string {
	if log == nil {
		log = slog.Default()
	}
	switch opt {
	case "-":
		return ""
	case "":
		self, err := os.Executable()
		if err != nil {
			log.Warn("local API: no client for slivers: cannot find this program", "err", err)
			return ""
		}
		if err := checkStatic(self); err != nil {
			log.Info("local API: no client for slivers (this program is not statically linked; --api-client names one)", "path", self, "why", err)
			return ""
		}
		return self
	}
	if err := checkStatic(opt); err != nil {
		log.Warn("local API: no client for slivers", "path", opt, "err", err)
		return ""
	}
	return opt
}

// checkStatic refuses a file that is not a statically linked ELF
// executable (one with a program interpreter needs a dynamic loader).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is not an executable", path)
	}
	return nil
}
