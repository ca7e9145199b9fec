package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/plc/store"
)

// "Who sent this?" (docs/audit.md): flow records stay on the nodes, as
// PlanetFlow's did; PLC asks every node at once (signing with each node's
// key), waits at most AuditOptions.Timeout, lists the nodes that did not
// answer, and joins each flow to its slice's site and that site's PIs.

var _ core.Auditor = (*Service)(nil)

// AuditOptions configure flow queries to nodes.
type AuditOptions struct {
	// Port is the nodes' sensor listener port, where they answer flow
	// queries; default "3100".
	Port string
	// Timeout bounds the wait for all nodes; default 5 s.
	Timeout time.Duration
	// Parallel bounds the nodes asked at once; default 64.
	Parallel int
	// Client makes the requests (tests); default a client with Timeout.
	Client *http.Client
}

func (o AuditOptions) withDefaults() AuditOptions {
	if o.Port == "" {
		o.Port = "3100"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 64
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	return o
}

type auditNode struct {
	id       int64
	hostname string
	siteID   int64
	addr     string
	key      string
}

// AuditWho implements core.Auditor.
func (s *Service) AuditWho(ctx context.Context, c *core.Caller, q core.FlowQuery) (*core.AuditAnswer, error) {
	if err := authorize(c, opAuditWho); err != nil {
		return nil, err
	}
	if !q.Addr.IsValid() || !q.Since.Before(q.Until) {
		return nil, core.FieldErrorf("addr", "an address and a window are required")
	}
	opts := s.opts.Audit.withDefaults()
	nodes, err := s.auditNodes(ctx)
	if err != nil {
		return nil, err
	}
	ans := &core.AuditAnswer{Asked: len(nodes), Flows: []core.AuditFlow{}, NotAnswering: []core.NodeFailure{}}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, opts.Parallel)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			page, err := s.askNode(ctx, opts, n, q)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ans.NotAnswering = append(ans.NotAnswering, core.NodeFailure{NodeID: n.id, Hostname: n.hostname, Error: err.Error()})
				return
			}
			if page.Next != "" {
				ans.More = true
			}
			for _, f := range page.Flows {
				ans.Flows = append(ans.Flows, core.AuditFlow{Flow: f, NodeID: n.id, Hostname: n.hostname, SiteID: n.siteID})
			}
		}()
	}
	wg.Wait()
	sort.Slice(ans.NotAnswering, func(i, j int) bool { return ans.NotAnswering[i].Hostname < ans.NotAnswering[j].Hostname })
	if err := s.joinAudit(ctx, c, ans); err != nil {
		return nil, err
	}
	sort.SliceStable(ans.Flows, func(i, j int) bool { return ans.Flows[i].Start.Before(ans.Flows[j].Start) })
	if len(ans.Flows) > q.Limit && q.Limit > 0 {
		ans.Flows = ans.Flows[:q.Limit]
		ans.More = true
	}
	return ans, nil
}

// auditNodes lists every node with its primary address and key.
func (s *Service) auditNodes(ctx context.Context) ([]auditNode, error) {
	recs, err := s.selectAll(ctx, core.Node, nil, []string{"node_id", "hostname", "site_id"})
	if err != nil {
		return nil, err
	}
	ifs, err := s.selectAll(ctx, core.Interface, nil, []string{"node_id", "ip", "is_primary"})
	if err != nil {
		return nil, err
	}
	addr := map[int64]string{}
	for _, i := range ifs {
		id, _ := i["node_id"].(int64)
		ip, _ := i["ip"].(string)
		if p, _ := i["is_primary"].(bool); (p || addr[id] == "") && ip != "" {
			ip, _, _ = strings.Cut(ip, "/")
			addr[id] = ip
		}
	}
	out := make([]auditNode, 0, len(recs))
	for _, r := range recs {
		n := auditNode{}
		n.id, _ = r["node_id"].(int64)
		n.hostname, _ = r["hostname"].(string)
		n.siteID, _ = r["site_id"].(int64)
		n.addr = addr[n.id]
		if n.addr == "" {
			n.addr = n.hostname
		}
		if n.key, err = s.nodeKey(ctx, n.id); err != nil {
			n.key = ""
		}
		out = append(out, n)
	}
	return out, nil
}

// askNode asks one node for its flows, signed with its key.
func (s *Service) askNode(ctx context.Context, opts AuditOptions, n auditNode, q core.FlowQuery) (*nodeapi.FlowPage, error) {
	var page nodeapi.FlowPage
	if err := s.getNode(ctx, opts, n, nodeapi.FlowsPath+"?"+q.Values().Encode(), &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// getNode GETs uri from a node's sensor listener, signed with its key,
// and decodes the JSON answer into out.
func (s *Service) getNode(ctx context.Context, opts AuditOptions, n auditNode, uri string, out any) error {
	if n.key == "" {
		return fmt.Errorf("has no key (never joined)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(n.addr, opts.Port)+uri, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", nodeapi.SignPLC(n.key, n.id, http.MethodGet, uri, s.opts.Now()))
	resp, err := opts.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %s", opts.Timeout)
		}
		return fmt.Errorf("not answering: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading its answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("keeps no flow log (404)")
		}
		return fmt.Errorf("answered %d: %s", resp.StatusCode, e.Error)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("answered malformed JSON: %v", err)
	}
	return nil
}

// joinAudit fills slice, site and PIs and drops what the caller may not see.
func (s *Service) joinAudit(ctx context.Context, c *core.Caller, ans *core.AuditAnswer) error {
	type sliceInfo struct {
		siteID  int64
		members map[int64]bool
	}
	slices := map[int64]*sliceInfo{}
	for _, f := range ans.Flows {
		if f.SliceID != 0 {
			slices[f.SliceID] = nil
		}
	}
	if len(slices) > 0 {
		ids := make([]any, 0, len(slices))
		for id := range slices {
			ids = append(ids, id)
		}
		recs, err := s.selectAll(ctx, core.Slice, &core.Filter{Terms: []core.Term{{Field: "slice_id", Op: core.Eq, Value: ids}}}, []string{"slice_id", "site_id", "person_ids"})
		if err != nil {
			return err
		}
		for _, r := range recs {
			id, _ := r["slice_id"].(int64)
			si := &sliceInfo{members: map[int64]bool{}}
			si.siteID, _ = r["site_id"].(int64)
			if ps, ok := r["person_ids"].([]int64); ok {
				for _, p := range ps {
					si.members[p] = true
				}
			}
			slices[id] = si
		}
	}
	sites, err := s.selectAll(ctx, core.Site, nil, []string{"site_id", "name", "login_base"})
	if err != nil {
		return err
	}
	siteName, siteByBase := map[int64]string{}, map[string]int64{}
	for _, r := range sites {
		id, _ := r["site_id"].(int64)
		siteName[id], _ = r["name"].(string)
		b, _ := r["login_base"].(string)
		siteByBase[b] = id
	}
	admin := isAdmin(c)
	piOf := map[int64]bool{}
	if c.HasRole(core.RolePI) {
		for _, id := range c.SiteIDs {
			piOf[id] = true
		}
	}
	kept := ans.Flows[:0]
	needPIs := map[int64]bool{}
	for _, f := range ans.Flows {
		member := false
		if f.XID != 0 {
			si := slices[f.SliceID]
			switch {
			case si != nil:
				f.SiteID = si.siteID
				member = si.members[c.PersonID]
			default:
				f.SliceGone = f.Slice != ""
				base, _, _ := strings.Cut(f.Slice, "_")
				f.SiteID = siteByBase[base]
			}
		}
		if !admin && !piOf[f.SiteID] && !member {
			continue
		}
		f.SiteName = siteName[f.SiteID]
		needPIs[f.SiteID] = true
		kept = append(kept, f)
	}
	ans.Flows = kept
	pis, err := s.sitePIs(ctx, needPIs)
	if err != nil {
		return err
	}
	for i := range ans.Flows {
		ans.Flows[i].PIs = pis[ans.Flows[i].SiteID]
		if ans.Flows[i].PIs == nil {
			ans.Flows[i].PIs = []core.Contact{}
		}
	}
	return nil
}

// sitePIs returns the enabled PIs of each site.
func (s *Service) sitePIs(ctx context.Context, sites map[int64]bool) (map[int64][]core.Contact, error) {
	out := map[int64][]core.Contact{}
	if len(sites) == 0 {
		return out, nil
	}
	recs, err := s.selectAll(ctx, core.Person, nil, []string{"person_id", "email", "first_name", "last_name", "roles", "site_ids", "enabled"})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		roles, _ := r["roles"].([]string)
		if !contains(roles, core.RolePI) {
			continue
		}
		ct := core.Contact{}
		ct.PersonID, _ = r["person_id"].(int64)
		ct.Email, _ = r["email"].(string)
		fn, _ := r["first_name"].(string)
		ln, _ := r["last_name"].(string)
		ct.Name = strings.TrimSpace(fn + " " + ln)
		ids, _ := r["site_ids"].([]int64)
		for _, id := range ids {
			if sites[id] {
				out[id] = append(out[id], ct)
			}
		}
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// selectAll reads records as an admin would, for PLC's own use (the
// caller's visibility is applied by joinAudit).
func (s *Service) selectAll(ctx context.Context, class core.Class, f *core.Filter, fields []string) ([]core.Record, error) {
	t, ok := store.TableOf(class)
	if !ok {
		return nil, core.Errorf(core.Internal, "no table for %s", class)
	}
	var out []core.Record
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.Select(ctx, store.Query{Table: t, Filter: f, Fields: fields, Admin: true})
		return err
	})
	return out, s.mapErr(err)
}
