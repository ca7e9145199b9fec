package geniam

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/core/vlinks"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/rspec"
	"github.com/planetlab/pl/internal/sfa"
	"github.com/planetlab/pl/internal/slicedir"
)

// Persons is the service's GENI side (service.Service implements it; no
// transport serves it): GENI users to callers of the service, the
// stand-ins of other authorities' slices and users, and the aggregate's
// memory of slivers (docs/geni.md).
type Persons interface {
	// GENICaller is the caller of the person a GENI user URN is: of this
	// PLC's slice authority, or the stand-in of another's.
	GENICaller(ctx context.Context, urn string) (*core.Caller, error)
	// GENIForeignSlice is the stand-in of a slice of another authority
	// and the caller of the stand-in of the user (a member of it).
	GENIForeignSlice(ctx context.Context, r core.GENIForeign) (*core.Caller, string, error)
	// GENISliceURN is the URN a PlanetLab slice stands in for ("" for
	// this PLC's own slices).
	GENISliceURN(ctx context.Context, name string) (string, error)
	GENISlivers(ctx context.Context, sliceID, now int64) ([]core.GENISliver, error)
	PutGENISlivers(ctx context.Context, now int64, rows ...core.GENISliver) error
	DeleteGENISlivers(ctx context.Context, sliceID int64, kind string, refs ...string) error
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
	// ForeignMaxSlices is the max_slices of the site made for a GENI
	// authority on its first slice here (the service's default when 0);
	// an admin changes it per authority on the site afterwards.
	ForeignMaxSlices int64
	// Refuse are GENI authorities (the authority part of URNs; their
	// sub-authorities too) whose slices this aggregate refuses, before
	// or after their first use.
	Refuse []string
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

	// mu serialises this process's checks and writes of allocations
	// (two Allocates of one node).
	mu sync.Mutex
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
		anon: &core.Caller{Kind: core.Anonymous}}
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

// parseSliceURN checks that urn is a slice's.
func parseSliceURN(urn string) (sfa.URN, error) {
	u, err := sfa.ParseURN(urn)
	if err != nil {
		return u, geni.Errorf(geni.BadArgs, "%s", core.PublicMessage(err))
	}
	if u.Type != "slice" {
		return u, geni.Errorf(geni.BadArgs, "%s is a %s URN, not a slice's", urn, u.Type)
	}
	return u, nil
}

// isLocal says whether a URN is of this PLC's own slice authority.
func (a *Aggregate) isLocal(u sfa.URN) bool { return strings.EqualFold(u.Authority, a.cfg.Host) }

// sameURN compares URNs as GENI does (authority case-insensitively).
func sameURN(x, y string) bool {
	ux, err1 := sfa.ParseURN(x)
	uy, err2 := sfa.ParseURN(y)
	return err1 == nil && err2 == nil && strings.EqualFold(ux.Authority, uy.Authority) && ux.Type == uy.Type && ux.Name == uy.Name
}

// target is what a call's urns name: one slice (by the URN the caller
// gave or, for slivers, the URN their slice stands for) and, unless all,
// some of its slivers (node ids).
type target struct {
	slice string // the slice's URN
	all   bool
	nodes []int64
}

func (a *Aggregate) targets(ctx context.Context, urns []string) (*target, error) {
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
			slice = s
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
			// The sliver URN names the PlanetLab slice; the call is about
			// the GENI slice it stands for.
			name := u.Name[:i]
			foreign, err := a.cfg.Persons.GENISliceURN(ctx, name)
			if core.ErrorCode(err) == core.NotFound {
				return nil, geni.Errorf(geni.SearchFailed, "no sliver %s at this aggregate", s)
			}
			if err != nil {
				return nil, err
			}
			slice = foreign
			if slice == "" {
				slice = a.sliceURN(name)
			}
			t.nodes = append(t.nodes, id)
		default:
			return nil, geni.Errorf(geni.BadArgs, "urns: %s is neither a slice nor a sliver", s)
		}
		if t.slice != "" && !sameURN(t.slice, slice) {
			return nil, geni.Errorf(geni.BadArgs, "urns: slivers of two slices (%s, %s)", t.slice, slice)
		}
		if t.slice == "" {
			t.slice = slice
		}
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
	urn     string // the GENI slice's URN (of another authority for a stand-in)
	name    string
	expires time.Time
	nodes   []int64
	stopped map[int64]bool  // node-scoped enabled <= 0
	tagIDs  map[int64]int64 // node -> the node-scoped enabled tag's id
	allOff  bool            // slice-wide enabled <= 0
	// reported is what the nodes say of their slivers (Config.Planet);
	// nil without it.
	reported map[int64]core.SliverRow
	// rows are the aggregate's memory of the slice (allocated slivers,
	// client_ids, restarts) by node id; links its links.
	rows  map[int64]core.GENISliver
	links []core.GENISliver
}

func (a *Aggregate) slice(ctx context.Context, c *core.Caller, name string) (*slice, error) {
	recs, err := a.cfg.Registry.Get(ctx, c, core.Slice, &core.Filter{IsList: true, Names: []string{name}}, []string{"slice_id", "name", "expires", "node_ids"})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, geni.Errorf(geni.SearchFailed, "no slice %s at this PLC", a.sliceURN(name))
	}
	s := &slice{name: name, urn: a.sliceURN(name), stopped: map[int64]bool{}, tagIDs: map[int64]int64{}, rows: map[int64]core.GENISliver{}}
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
	rows, err := a.cfg.Persons.GENISlivers(ctx, s.id, a.cfg.Now().Unix())
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		switch r.Kind {
		case core.GENINode:
			if n, err := strconv.ParseInt(r.Ref, 10, 64); err == nil {
				s.rows[n] = r
			}
		case core.GENILink:
			s.links = append(s.links, r)
		}
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

// sliverStatus is one entry of geni_slivers.
func sliverStatus(urn string, expires time.Time, alloc, op, errText string) map[string]any {
	return map[string]any{"geni_sliver_urn": urn, "geni_expires": expires.UTC().Format(time.RFC3339),
		"geni_allocation_status": alloc, "geni_operational_status": op, "geni_error": errText}
}

// sliver is one sliver of a slice: allocated (a row of the aggregate's
// memory) or provisioned (a node of the slice).
type sliver struct {
	node     int64
	clientID string
	rn       rspec.Node
	alloc    string
	op       string
	errText  string // geni_error
	expires  time.Time
}

// view is the slivers of a slice, in node id order.
func (a *Aggregate) view(s *slice, byID map[int64]rspec.Node) []sliver {
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
		if op != geni.Failed && (!rn.Available || s.stopped[n] || s.allOff) {
			op = geni.NotReady
		}
		row, has := s.rows[n]
		if has && row.RestartUntil > 0 && op != geni.Failed {
			op = geni.Stopping
		}
		cid := row.ClientID
		if cid == "" {
			cid = rn.ComponentName
		}
		out = append(out, sliver{node: n, clientID: cid, rn: rn, alloc: geni.Provisioned, op: op, errText: errText, expires: s.expires})
	}
	for n, r := range s.rows {
		if r.AllocatedUntil == 0 || slices.Contains(s.nodes, n) {
			continue
		}
		rn, ok := byID[n]
		if !ok {
			continue // the node is gone
		}
		out = append(out, sliver{node: n, clientID: r.ClientID, rn: rn, alloc: geni.Allocated, op: geni.PendingAllocation, expires: time.Unix(r.AllocatedUntil, 0).UTC()})
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

// manifest writes the manifest of slivers of s and of the links (rows)
// between two of them; provisioned slivers carry their ssh login (the
// slice's name at the node's address and ssh port), provisioned links
// their ends' addresses.
func (a *Aggregate) manifest(ctx context.Context, c *core.Caller, s *slice, sl []sliver, links []core.GENISliver, expires time.Time) (string, error) {
	dir := slicedir.RegistryDirectory{Reg: asCaller{a.cfg.Registry, c}}
	var nodes []rspec.ManifestNode
	at := map[string]int{} // host -> index in nodes
	for _, x := range sl {
		mn := rspec.ManifestNode{ClientID: x.clientID, ComponentID: x.rn.ComponentID, ComponentName: x.rn.ComponentName,
			ComponentManagerID: a.urn, SliverID: a.sliverURN(s.name, x.node)}
		if x.alloc == geni.Provisioned {
			n, err := dir.Node(ctx, x.rn.ComponentName)
			if err != nil {
				return "", err
			}
			host, port, _ := net.SplitHostPort(n.Addr)
			p, _ := strconv.Atoi(port)
			mn.Logins = []rspec.Login{{Hostname: host, Port: p, Username: s.name}}
		}
		at[strings.ToLower(x.rn.ComponentName)] = len(nodes)
		nodes = append(nodes, mn)
	}
	var mls []rspec.ManifestLink
	var top *vlinks.Topology
	for _, r := range links {
		ls, l, ok := decodeLinkSpec(r.Spec)
		if !ok {
			continue
		}
		ia, oka := at[ls.Hosts[0]]
		ib, okb := at[ls.Hosts[1]]
		if !oka || !okb {
			continue
		}
		var addrA, addrB netip.Prefix
		if r.AllocatedUntil == 0 {
			if top == nil {
				t, _, err := a.topology(ctx, c, s.id)
				if err != nil {
					return "", err
				}
				top = &t
			}
			if i := slices.IndexFunc(top.Links, func(x vlinks.Link) bool { return x.Name == l.Name }); i >= 0 {
				addrA, addrB = top.Addrs(i)
			}
		}
		for k, idx := range []int{ia, ib} {
			mi := rspec.ManifestInterface{ClientID: ls.Ifaces[k]}
			if p := []netip.Prefix{addrA, addrB}[k]; p.IsValid() {
				mi.Address, mi.Netmask = p.Addr().String(), "255.255.255.252"
			}
			nodes[idx].Interfaces = append(nodes[idx].Interfaces, mi)
		}
		mls = append(mls, rspec.ManifestLink{ClientID: r.ClientID, SliverID: a.linkSliverURN(s.name, r.Ref), Interfaces: ls.Ifaces,
			CapacityKbps: l.RateKbit, LatencyUs: l.Delay.Microseconds(), LossPPM: l.LossPPM})
	}
	return string(rspec.Manifest(nodes, mls, a.cfg.Now(), expires)), nil
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
