package geniam

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/rspec"
	"github.com/planetlab/pl/internal/sfa"
	"github.com/planetlab/pl/internal/slicedir"
)

// Persons maps GENI users of this PLC's slice authority to callers of the
// service (service.Service implements it).
type Persons interface {
	GENICaller(ctx context.Context, urn string) (*core.Caller, error)
}

// DefaultAllocationTTL is how long an allocated sliver waits for Provision.
const DefaultAllocationTTL = 10 * time.Minute

// Config configures an aggregate.
type Config struct {
	Host     string // the authority of every URN: urn:publicid:IDN+<Host>+authority+am
	Registry core.Registry
	Persons  Persons
	// Planet, when set, gives provisioned slivers their operational
	// state from what the nodes report (running: geni_ready; an error:
	// geni_failed; not reported yet: geni_configuring). Without it a
	// sliver is geni_ready when its node is in boot state.
	Planet        core.Planet
	Verifier      *sfa.Verifier
	URL           string // the aggregate's URL, for GetVersion
	Log           *slog.Logger
	Now           func() time.Time
	AllocationTTL time.Duration
	// RestartHold is how long geni_restart keeps a sliver stopped when
	// its node does not report it stopped sooner (the planet table);
	// DefaultRestartHold when zero.
	RestartHold time.Duration
}

// DefaultRestartHold is how long geni_restart waits, at most, for a
// node to stop a sliver before starting it again. Node managers watch
// their state, so they see the stop within a second or two.
const DefaultRestartHold = 10 * time.Second

// Aggregate serves the AM API.
type Aggregate struct {
	cfg  Config
	urn  string
	anon *core.Caller

	mu      sync.Mutex
	allocs  map[string]map[int64]*alloc // slice name -> node id -> allocated sliver
	clients map[string]map[int64]string // slice name -> node id -> client_id of provisioned slivers
	shut    map[string]bool             // slices shut down
	// restarts are the slivers geni_restart stopped and will start again
	// (slice name -> node id).
	restarts map[string]map[int64]*restart
}

// restart is a sliver between the stop and the start of geni_restart.
type restart struct {
	caller *core.Caller // who asked: the start is made as them
	until  time.Time    // started again by then even without a report
}

type alloc struct {
	clientID string
	node     rspec.Node
	expires  time.Time
}

// New returns an aggregate.
func New(cfg Config) *Aggregate {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AllocationTTL <= 0 {
		cfg.AllocationTTL = DefaultAllocationTTL
	}
	if cfg.RestartHold <= 0 {
		cfg.RestartHold = DefaultRestartHold
	}
	return &Aggregate{cfg: cfg, urn: sfa.URN{Authority: cfg.Host, Type: "authority", Name: "am"}.String(),
		anon:   &core.Caller{Kind: core.Anonymous},
		allocs: map[string]map[int64]*alloc{}, clients: map[string]map[int64]string{}, shut: map[string]bool{}, restarts: map[string]map[int64]*restart{}}
}

// URN is the aggregate's URN.
func (a *Aggregate) URN() string { return a.urn }

func (a *Aggregate) nodeURN(hostname string) string {
	return sfa.URN{Authority: a.cfg.Host, Type: "node", Name: hostname}.String()
}

func (a *Aggregate) sliceURN(name string) string {
	return sfa.URN{Authority: a.cfg.Host, Type: "slice", Name: name}.String()
}

func (a *Aggregate) sliverURN(slice string, node int64) string {
	return sfa.URN{Authority: a.cfg.Host, Type: "sliver", Name: slice + "." + strconv.FormatInt(node, 10)}.String()
}

// sliceName maps a GENI slice URN to the PlanetLab slice of this PLC.
func (a *Aggregate) sliceName(urn string) (string, error) {
	u, err := sfa.ParseURN(urn)
	if err != nil {
		return "", geni.Errorf(geni.BadArgs, "%s", core.PublicMessage(err))
	}
	if u.Type != "slice" {
		return "", geni.Errorf(geni.BadArgs, "%s is a %s URN, not a slice's", urn, u.Type)
	}
	if !strings.EqualFold(u.Authority, a.cfg.Host) {
		return "", geni.Errorf(geni.Unsupported, "not supported: slice %s is of authority %s; this aggregate hosts the slices of its own slice authority (%s)", urn, u.Authority, a.cfg.Host)
	}
	return u.Name, nil
}

// target is what a call's urns name: one slice and, unless all, some of
// its slivers (node ids).
type target struct {
	slice string
	all   bool
	nodes []int64
}

func (a *Aggregate) targets(urns []string) (*target, error) {
	if len(urns) == 0 {
		return nil, geni.Errorf(geni.BadArgs, "urns: empty")
	}
	t := &target{}
	for _, s := range urns {
		u, err := sfa.ParseURN(s)
		if err != nil {
			return nil, geni.Errorf(geni.BadArgs, "urns: %s", core.PublicMessage(err))
		}
		var slice string
		switch u.Type {
		case "slice":
			if slice, err = a.sliceName(s); err != nil {
				return nil, err
			}
			t.all = true
		case "sliver":
			if !strings.EqualFold(u.Authority, a.cfg.Host) {
				return nil, geni.Errorf(geni.SearchFailed, "sliver %s is not of this aggregate", s)
			}
			i := strings.LastIndexByte(u.Name, '.')
			id, err := strconv.ParseInt(u.Name[i+1:], 10, 64)
			if i <= 0 || err != nil {
				return nil, geni.Errorf(geni.SearchFailed, "no sliver %s at this aggregate", s)
			}
			slice = u.Name[:i]
			t.nodes = append(t.nodes, id)
		default:
			return nil, geni.Errorf(geni.BadArgs, "urns: %s is neither a slice nor a sliver", s)
		}
		if t.slice != "" && t.slice != slice {
			return nil, geni.Errorf(geni.BadArgs, "urns: slivers of two slices (%s, %s)", t.slice, slice)
		}
		t.slice = slice
	}
	return t, nil
}

// inventory is the aggregate's nodes, read as anonymous (the node list is
// public, as PLCAPI's GetNodes).
func (a *Aggregate) inventory(ctx context.Context) ([]rspec.Node, map[int64]rspec.Node, map[string]int64, error) {
	nodes, err := a.cfg.Registry.Get(ctx, a.anon, core.Node, nil, []string{"node_id", "hostname", "site_id", "boot_state"})
	if err != nil {
		return nil, nil, nil, err
	}
	sites, err := a.cfg.Registry.Get(ctx, a.anon, core.Site, nil, []string{"site_id", "login_base", "latitude", "longitude"})
	if err != nil {
		return nil, nil, nil, err
	}
	bySite := map[int64]core.Record{}
	for _, s := range sites {
		id, _ := s["site_id"].(int64)
		bySite[id] = s
	}
	out := make([]rspec.Node, 0, len(nodes))
	byID := map[int64]rspec.Node{}
	ids := map[string]int64{}
	for _, n := range nodes {
		id, _ := n["node_id"].(int64)
		host, _ := n["hostname"].(string)
		sid, _ := n["site_id"].(int64)
		bs, _ := n["boot_state"].(string)
		rn := rspec.Node{ComponentID: a.nodeURN(host), ComponentName: host, Available: bs == "boot"}
		if s := bySite[sid]; s != nil {
			rn.Site, _ = s["login_base"].(string)
			if lat, ok := s["latitude"].(float64); ok {
				if lon, ok := s["longitude"].(float64); ok {
					rn.Latitude, rn.Longitude = &lat, &lon
				}
			}
		}
		out = append(out, rn)
		byID[id] = rn
		ids[strings.ToLower(rn.ComponentID)] = id
	}
	slices.SortFunc(out, func(x, y rspec.Node) int { return strings.Compare(x.ComponentName, y.ComponentName) })
	return out, byID, ids, nil
}

// slice is a PlanetLab slice as the aggregate sees it.
type slice struct {
	id      int64
	name    string
	expires time.Time
	nodes   []int64
	stopped map[int64]bool  // node-scoped enabled <= 0
	tagIDs  map[int64]int64 // node -> the node-scoped enabled tag's id
	allOff  bool            // slice-wide enabled <= 0
	// reported is what the nodes say of their slivers (Config.Planet);
	// nil without it.
	reported map[int64]core.SliverRow
}

func (a *Aggregate) slice(ctx context.Context, c *core.Caller, name string) (*slice, error) {
	recs, err := a.cfg.Registry.Get(ctx, c, core.Slice, &core.Filter{IsList: true, Names: []string{name}}, []string{"slice_id", "name", "expires", "node_ids"})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, geni.Errorf(geni.SearchFailed, "no slice %s at this PLC", a.sliceURN(name))
	}
	s := &slice{name: name, stopped: map[int64]bool{}, tagIDs: map[int64]int64{}}
	s.id, _ = recs[0]["slice_id"].(int64)
	exp, _ := recs[0]["expires"].(int64)
	s.expires = time.Unix(exp, 0).UTC()
	s.nodes = int64s(recs[0]["node_ids"])
	trecs, err := a.cfg.Registry.Get(ctx, c, core.SliceTag, &core.Filter{Terms: []core.Term{
		{Field: "slice_id", Op: core.Eq, Value: s.id}, {Field: "tagname", Op: core.Eq, Value: tags.Enabled}}},
		[]string{"slice_tag_id", "node_id", "value"})
	if err != nil {
		return nil, err
	}
	if a.cfg.Planet != nil {
		rows, err := a.cfg.Planet.TopSlices(ctx, c, core.TopQuery{Where: "slice_id == " + strconv.FormatInt(s.id, 10)})
		if err != nil {
			return nil, err
		}
		s.reported = map[int64]core.SliverRow{}
		for _, r := range rows {
			for _, sr := range r.Slivers {
				s.reported[sr.NodeID] = sr
			}
		}
	}
	for _, t := range trecs {
		v, _ := t["value"].(string)
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		node, hasNode := t["node_id"].(int64)
		if !hasNode || node == 0 {
			s.allOff = s.allOff || n <= 0
			continue
		}
		tid, _ := t["slice_tag_id"].(int64)
		s.tagIDs[node] = tid
		s.stopped[node] = n <= 0
	}
	return s, nil
}

func int64s(v any) []int64 {
	switch x := v.(type) {
	case []int64:
		return x
	case []any:
		out := make([]int64, 0, len(x))
		for _, e := range x {
			if n, ok := e.(int64); ok {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}

// sweep drops allocations past their expiry; a.mu is held.
func (a *Aggregate) sweep(now time.Time) {
	for s, m := range a.allocs {
		for n, al := range m {
			if !now.Before(al.expires) {
				delete(m, n)
			}
		}
		if len(m) == 0 {
			delete(a.allocs, s)
		}
	}
}

// sliverStatus is one entry of geni_slivers.
func sliverStatus(urn string, expires time.Time, alloc, op, errText string) map[string]any {
	return map[string]any{"geni_sliver_urn": urn, "geni_expires": expires.UTC().Format(time.RFC3339),
		"geni_allocation_status": alloc, "geni_operational_status": op, "geni_error": errText}
}

// view is the slivers of a slice: allocated ones (from memory) and
// provisioned ones (the slice's nodes), in node id order.
type sliver struct {
	node      int64
	clientID  string
	rn        rspec.Node
	alloc     string
	op        string
	errText   string // geni_error
	expires   time.Time
	allocated *alloc
}

func (a *Aggregate) view(s *slice, byID map[int64]rspec.Node) []sliver {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweep(a.cfg.Now())
	var out []sliver
	for _, n := range s.nodes {
		rn := byID[n]
		op, errText := geni.Ready, ""
		if s.reported != nil {
			r, ok := s.reported[n]
			switch {
			case ok && r.Error != "":
				op, errText = geni.Failed, r.Error
			case ok && r.State == "running":
				op = geni.Ready
			case ok:
				op = geni.NotReady
			default:
				op = geni.Configuring
			}
		}
		if op != geni.Failed && (!rn.Available || s.stopped[n] || s.allOff || a.shut[s.name]) {
			op = geni.NotReady
		}
		if a.restarts[s.name][n] != nil && op != geni.Failed {
			op = geni.Stopping
		}
		cid := a.clients[s.name][n]
		if cid == "" {
			cid = rn.ComponentName
		}
		out = append(out, sliver{node: n, clientID: cid, rn: rn, alloc: geni.Provisioned, op: op, errText: errText, expires: s.expires})
	}
	for n, al := range a.allocs[s.name] {
		out = append(out, sliver{node: n, clientID: al.clientID, rn: al.node, alloc: geni.Allocated, op: geni.PendingAllocation, expires: al.expires, allocated: al})
	}
	slices.SortFunc(out, func(x, y sliver) int { return int(x.node - y.node) })
	return out
}

// pick narrows slivers to a target's; naming a sliver that does not
// exist is SEARCHFAILED.
func (a *Aggregate) pick(t *target, all []sliver) ([]sliver, error) {
	if t.all {
		return all, nil
	}
	var out []sliver
	for _, n := range t.nodes {
		i := slices.IndexFunc(all, func(s sliver) bool { return s.node == n })
		if i < 0 {
			return nil, geni.Errorf(geni.SearchFailed, "no sliver %s at this aggregate", a.sliverURN(t.slice, n))
		}
		out = append(out, all[i])
	}
	return out, nil
}

func (a *Aggregate) statuses(slice string, sl []sliver) []any {
	out := make([]any, 0, len(sl))
	for _, s := range sl {
		out = append(out, sliverStatus(a.sliverURN(slice, s.node), s.expires, s.alloc, s.op, s.errText))
	}
	return out
}

// manifest writes the manifest of slivers; provisioned ones carry their
// ssh login (the slice's name at the node's address and ssh port).
func (a *Aggregate) manifest(ctx context.Context, c *core.Caller, slice string, sl []sliver, expires time.Time) (string, error) {
	dir := slicedir.RegistryDirectory{Reg: asCaller{a.cfg.Registry, c}}
	var nodes []rspec.ManifestNode
	for _, s := range sl {
		mn := rspec.ManifestNode{ClientID: s.clientID, ComponentID: s.rn.ComponentID, ComponentName: s.rn.ComponentName,
			ComponentManagerID: a.urn, SliverID: a.sliverURN(slice, s.node)}
		if s.alloc == geni.Provisioned {
			n, err := dir.Node(ctx, s.rn.ComponentName)
			if err != nil {
				return "", err
			}
			host, port, _ := net.SplitHostPort(n.Addr)
			p, _ := strconv.Atoi(port)
			mn.Logins = []rspec.Login{{Hostname: host, Port: p, Username: slice}}
		}
		nodes = append(nodes, mn)
	}
	return string(rspec.Manifest(nodes, a.cfg.Now(), expires)), nil
}

// asCaller makes registry reads with a nil caller use c (slicedir reads
// with nil, the REST client's "my session").
type asCaller struct {
	core.Registry
	c *core.Caller
}

func (r asCaller) Get(ctx context.Context, c *core.Caller, class core.Class, f *core.Filter, fields []string) ([]core.Record, error) {
	if c == nil {
		c = r.c
	}
	return r.Registry.Get(ctx, c, class, f, fields)
}
