package geniam

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/rspec"
	"github.com/planetlab/pl/internal/sfa"
)

// Privileges a credential must grant (SFA's rights: "*" is all; control
// and embed are a slice's; info is a user's right to look).
var (
	privRead  = []string{"*", "control", "embed", "info"}
	privWrite = []string{"*", "control", "embed"}
)

// authorize finds among creds one that verifies for peer over target
// (any target when "") and grants one of privs.
func (a *Aggregate) authorize(ctx context.Context, peer *sfa.Cert, creds [][]byte, target string, privs []string) (*sfa.Credential, error) {
	if len(creds) == 0 {
		return nil, geni.Errorf(geni.Forbidden, "no geni_sfa credential")
	}
	var first error
	for _, b := range creds {
		c, err := a.cfg.Verifier.Verify(ctx, b, peer, target)
		if err == nil && !c.HasAny(privs...) {
			err = geni.Errorf(geni.Forbidden, "the credential for %s grants none of %s", c.TargetURN, strings.Join(privs, ", "))
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	var ge *geni.Error
	if errors.As(first, &ge) || core.ErrorCode(first) == core.Internal {
		return nil, first
	}
	return nil, geni.Errorf(geni.Forbidden, "%s", core.PublicMessage(first))
}

// actor is the person the credential's chain starts from: the service
// answers as them.
func (a *Aggregate) actor(ctx context.Context, c *sfa.Credential) (*core.Caller, error) {
	root := c
	for root.Parent != nil {
		root = root.Parent
	}
	caller, err := a.cfg.Persons.GENICaller(ctx, root.OwnerURN)
	if err != nil {
		return nil, geni.Errorf(geni.Forbidden, "%s", core.PublicMessage(err))
	}
	return caller, nil
}

// sliceCall is what every slice method starts with: arguments, the
// credential over the slice, the acting person and the slice.
func (a *Aggregate) sliceCall(ctx context.Context, peer *sfa.Cert, sliceName string, creds [][]byte, privs []string) (*core.Caller, *slice, *sfa.Credential, error) {
	cred, err := a.authorize(ctx, peer, creds, a.sliceURN(sliceName), privs)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := a.actor(ctx, cred)
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := a.slice(ctx, c, sliceName)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, s, cred, nil
}

func (a *Aggregate) refuseShut(slice string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shut[slice] {
		return geni.Errorf(geni.Refused, "slice %s was shut down (Shutdown); an operator must restore it", a.sliceURN(slice))
	}
	return nil
}

func (a *Aggregate) getVersion(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if len(p) > 1 {
		return nil, geni.Errorf(geni.BadArgs, "want at most 1 argument (options), got %d", len(p))
	}
	rv := func(kind string) []any {
		return []any{map[string]any{"type": geni.RSpecType, "version": geni.RSpecVersion,
			"schema": geni.RSpecNS + "/" + kind + ".xsd", "namespace": geni.RSpecNS, "extensions": []any{}}}
	}
	return map[string]any{
		"geni_api":                    geni.APIVersion,
		"geni_api_versions":           map[string]any{strconv.Itoa(geni.APIVersion): a.cfg.URL},
		"geni_request_rspec_versions": rv("request"),
		"geni_ad_rspec_versions":      rv("ad"),
		"geni_credential_types":       []any{map[string]any{"geni_type": geni.CredentialSFA, "geni_version": geni.CredentialVersion}},
		"geni_single_allocation":      false,
		"geni_allocate":               "geni_many",
		"urn":                         a.urn,
		"geni_am_type":                "planetlab",
	}, nil
}

func (a *Aggregate) listResources(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(2, "credentials, options"); err != nil {
		return nil, err
	}
	creds, err := p.credentials(0)
	if err != nil {
		return nil, err
	}
	o, err := p.opts(1)
	if err != nil {
		return nil, err
	}
	if err := rspecVersion(o); err != nil {
		return nil, err
	}
	availOnly, err := boolOpt(o, "geni_available")
	if err != nil {
		return nil, err
	}
	compressed, err := boolOpt(o, "geni_compressed")
	if err != nil {
		return nil, err
	}
	if _, err := a.authorize(ctx, peer, creds, "", privRead); err != nil {
		return nil, err
	}
	nodes, _, _, err := a.inventory(ctx)
	if err != nil {
		return nil, err
	}
	ad := string(rspec.Advertisement(a.urn, nodes, availOnly, a.cfg.Now()))
	if compressed {
		return compress(ad), nil
	}
	return ad, nil
}

func (a *Aggregate) allocate(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(4, "slice_urn, credentials, rspec, options"); err != nil {
		return nil, err
	}
	sliceURN, err := p.str(0, "slice_urn")
	if err != nil {
		return nil, err
	}
	name, err := a.sliceName(sliceURN)
	if err != nil {
		return nil, err
	}
	creds, err := p.credentials(1)
	if err != nil {
		return nil, err
	}
	doc, err := p.str(2, "rspec")
	if err != nil {
		return nil, err
	}
	o, err := p.opts(3)
	if err != nil {
		return nil, err
	}
	end, hasEnd, err := timeArg(o["geni_end_time"], "options geni_end_time")
	if err != nil {
		return nil, err
	}
	req, err := rspec.ParseRequest([]byte(doc))
	if err != nil {
		return nil, err
	}
	c, s, cred, err := a.sliceCall(ctx, peer, name, creds, privWrite)
	if err != nil {
		return nil, err
	}
	if err := a.refuseShut(name); err != nil {
		return nil, err
	}
	nodes, _, ids, err := a.inventory(ctx)
	if err != nil {
		return nil, err
	}
	bound, err := rspec.Bind(req, a.urn, nodes)
	if err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	exp := minTime(now.Add(a.cfg.AllocationTTL), cred.Expires, s.expires)
	if hasEnd {
		if !end.After(now) {
			return nil, geni.Errorf(geni.BadArgs, "options geni_end_time %s is not in the future", end.Format(time.RFC3339))
		}
		exp = minTime(exp, end)
	}
	a.mu.Lock()
	a.sweep(now)
	m := a.allocs[name]
	for _, b := range bound {
		id := ids[strings.ToLower(b.Node.ComponentID)]
		if containsID(s.nodes, id) || m[id] != nil {
			a.mu.Unlock()
			return nil, geni.Errorf(geni.AlreadyExists, "slice %s already has a sliver on %s (node %q)", sliceURN, b.Node.ComponentName, b.ClientID)
		}
	}
	if m == nil {
		m = map[int64]*alloc{}
		a.allocs[name] = m
	}
	var mine []sliver
	for _, b := range bound {
		id := ids[strings.ToLower(b.Node.ComponentID)]
		al := &alloc{clientID: b.ClientID, node: b.Node, expires: exp}
		m[id] = al
		mine = append(mine, sliver{node: id, clientID: b.ClientID, rn: b.Node, alloc: geni.Allocated, op: geni.PendingAllocation, expires: exp, allocated: al})
	}
	a.mu.Unlock()
	a.cfg.Log.Info("GENI AM allocated", "slice", name, "slivers", len(mine), "caller", peer.URN, "as", c.Email)
	man, err := a.manifest(ctx, c, name, mine, exp)
	if err != nil {
		return nil, err
	}
	return map[string]any{"geni_rspec": man, "geni_slivers": a.statuses(name, mine)}, nil
}

// urnsCall reads (urns, credentials, ...) and authorizes it.
func (a *Aggregate) urnsCall(ctx context.Context, peer *sfa.Cert, p params, privs []string) (*target, *core.Caller, *slice, *sfa.Credential, error) {
	urns, err := p.strs(0, "urns")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	t, err := a.targets(urns)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	creds, err := p.credentials(1)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	c, s, cred, err := a.sliceCall(ctx, peer, t.slice, creds, privs)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return t, c, s, cred, nil
}

func (a *Aggregate) slivers(ctx context.Context, t *target, s *slice) ([]sliver, error) {
	_, byID, _, err := a.inventory(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.settleRestarts(ctx, s); err != nil {
		return nil, err
	}
	return a.pick(t, a.view(s, byID))
}

func (a *Aggregate) provision(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(3, "urns, credentials, options"); err != nil {
		return nil, err
	}
	o, err := p.opts(2)
	if err != nil {
		return nil, err
	}
	if err := rspecVersion(o); err != nil {
		return nil, err
	}
	keys, hasUsers, err := usersOpt(o)
	if err != nil {
		return nil, err
	}
	end, hasEnd, err := timeArg(o["geni_end_time"], "options geni_end_time")
	if err != nil {
		return nil, err
	}
	t, c, s, cred, err := a.urnsCall(ctx, peer, p, privWrite)
	if err != nil {
		return nil, err
	}
	if err := a.refuseShut(s.name); err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	// Nodes first, then keys and expiry; a refusal on the way takes the
	// nodes added back out, so a refused Provision changes nothing.
	var linked []int64
	undo := func(err error) error {
		for _, n := range linked {
			if uerr := a.cfg.Registry.Unlink(ctx, c, core.SliceNode, s.id, n); uerr != nil {
				a.cfg.Log.Error("GENI AM: undoing a refused Provision", "slice", s.name, "node", n, "err", uerr)
			}
		}
		return err
	}
	for _, x := range sl {
		if x.alloc != geni.Allocated {
			continue
		}
		if err := a.cfg.Registry.Link(ctx, c, core.SliceNode, s.id, x.node, nil); err != nil {
			return nil, undo(err)
		}
		linked = append(linked, x.node)
	}
	if hasUsers {
		if err := a.setKeys(ctx, c, s.id, keys); err != nil {
			return nil, undo(err)
		}
	}
	if hasEnd {
		if _, err := a.renewSlice(ctx, c, s, cred, end, true); err != nil {
			return nil, undo(err)
		}
	}
	a.mu.Lock()
	for _, x := range sl {
		if x.alloc != geni.Allocated {
			continue
		}
		delete(a.allocs[s.name], x.node)
		if a.clients[s.name] == nil {
			a.clients[s.name] = map[int64]string{}
		}
		a.clients[s.name][x.node] = x.clientID
	}
	a.mu.Unlock()
	a.cfg.Log.Info("GENI AM provisioned", "slice", s.name, "slivers", len(sl), "caller", peer.URN, "as", c.Email)
	return a.describeSlivers(ctx, c, t, s.name)
}

// describeSlivers answers {geni_rspec, geni_urn, geni_slivers} with a fresh view.
func (a *Aggregate) describeSlivers(ctx context.Context, c *core.Caller, t *target, name string) (map[string]any, error) {
	s, err := a.slice(ctx, c, name)
	if err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	man, err := a.manifest(ctx, c, name, sl, s.expires)
	if err != nil {
		return nil, err
	}
	return map[string]any{"geni_rspec": man, "geni_urn": a.sliceURN(name), "geni_slivers": a.statuses(name, sl)}, nil
}

// usersOpt reads geni_users [{urn, keys[]}]: every key an ssh public key.
func usersOpt(o map[string]any) ([]string, bool, error) {
	v, ok := o["geni_users"]
	if !ok {
		return nil, false, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false, geni.Errorf(geni.BadArgs, "options geni_users: want an array of {urn, keys}")
	}
	var keys []string
	for i, u := range arr {
		m, ok := u.(map[string]any)
		if !ok {
			return nil, false, geni.Errorf(geni.BadArgs, "options geni_users[%d]: want a struct {urn, keys}", i)
		}
		urn, _ := m["urn"].(string)
		ks, ok := m["keys"].([]any)
		if !ok {
			return nil, false, geni.Errorf(geni.BadArgs, "options geni_users[%d] (%s): keys: want an array of ssh public keys", i, urn)
		}
		for j, k := range ks {
			s, _ := k.(string)
			s = strings.TrimSpace(s)
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s)); err != nil || strings.ContainsAny(s, "\r\n") {
				return nil, false, geni.Errorf(geni.BadArgs, "options geni_users[%d] (%s) keys[%d]: not an ssh public key", i, urn, j)
			}
			keys = append(keys, s)
		}
	}
	if len(keys) > 256 {
		return nil, false, geni.Errorf(geni.TooBig, "options geni_users: %d keys, at most 256", len(keys))
	}
	return keys, true, nil
}

// setKeys makes keys the slice's geni_user_key tags (installed in every
// sliver with the members' keys).
func (a *Aggregate) setKeys(ctx context.Context, c *core.Caller, sliceID int64, keys []string) error {
	old, err := a.cfg.Registry.Get(ctx, c, core.SliceTag, &core.Filter{Terms: []core.Term{
		{Field: "slice_id", Op: core.Eq, Value: sliceID}, {Field: "tagname", Op: core.Eq, Value: tags.GENIUserKey}}},
		[]string{"slice_tag_id", "value"})
	if err != nil {
		return err
	}
	have := map[string]int64{}
	for _, t := range old {
		v, _ := t["value"].(string)
		id, _ := t["slice_tag_id"].(int64)
		have[v] = id
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	for v, id := range have {
		if !want[v] {
			if err := a.cfg.Registry.Delete(ctx, c, core.SliceTag, id); err != nil {
				return err
			}
		}
	}
	var tt int64
	for k := range want {
		if _, ok := have[k]; ok {
			continue
		}
		if tt == 0 {
			if tt, err = a.cfg.Registry.Resolve(ctx, c, core.TagType, tags.GENIUserKey); err != nil {
				return err
			}
		}
		if _, err := a.cfg.Registry.Add(ctx, c, core.SliceTag, core.Record{"slice_id": sliceID, "tag_type_id": tt, "value": k}); err != nil {
			return err
		}
	}
	return nil
}

func (a *Aggregate) status(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(3, "urns, credentials, options"); err != nil {
		return nil, err
	}
	if _, err := p.opts(2); err != nil {
		return nil, err
	}
	t, _, s, _, err := a.urnsCall(ctx, peer, p, privRead)
	if err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	return map[string]any{"geni_urn": a.sliceURN(s.name), "geni_slivers": a.statuses(s.name, sl)}, nil
}

func (a *Aggregate) describe(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(3, "urns, credentials, options"); err != nil {
		return nil, err
	}
	o, err := p.opts(2)
	if err != nil {
		return nil, err
	}
	if err := rspecVersion(o); err != nil {
		return nil, err
	}
	compressed, err := boolOpt(o, "geni_compressed")
	if err != nil {
		return nil, err
	}
	t, c, s, _, err := a.urnsCall(ctx, peer, p, privRead)
	if err != nil {
		return nil, err
	}
	res, err := a.describeSlivers(ctx, c, t, s.name)
	if err != nil {
		return nil, err
	}
	if compressed {
		res["geni_rspec"] = compress(res["geni_rspec"].(string))
	}
	return res, nil
}

// renewSlice renews a slice to want (at most the credential's expiry and
// what the service's policy grants; with alap a later wish is lowered,
// without it refused).
func (a *Aggregate) renewSlice(ctx context.Context, c *core.Caller, s *slice, cred *sfa.Credential, want time.Time, alap bool) (time.Time, error) {
	now := a.cfg.Now()
	if !want.After(now) {
		return time.Time{}, geni.Errorf(geni.BadArgs, "expiration time %s is not in the future", want.Format(time.RFC3339))
	}
	limit := minTime(now.Add(core.MaxRenewal), cred.Expires)
	if want.After(limit) {
		if !alap {
			return time.Time{}, geni.Errorf(geni.Refused, "expiration time %s is later than allowed (%s: the credential's expiry or %v from now); ask with geni_extend_alap for the latest allowed",
				want.Format(time.RFC3339), limit.Format(time.RFC3339), core.MaxRenewal)
		}
		want = limit
	}
	got, err := a.cfg.Registry.RenewSlice(ctx, c, s.id, want.Unix())
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(got, 0).UTC(), nil
}

func (a *Aggregate) renew(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(4, "urns, credentials, expiration_time, options"); err != nil {
		return nil, err
	}
	want, ok, err := timeArg(p[2], "expiration_time")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, geni.Errorf(geni.BadArgs, "expiration_time: required")
	}
	o, err := p.opts(3)
	if err != nil {
		return nil, err
	}
	alap, err := boolOpt(o, "geni_extend_alap")
	if err != nil {
		return nil, err
	}
	t, c, s, cred, err := a.urnsCall(ctx, peer, p, privWrite)
	if err != nil {
		return nil, err
	}
	if err := a.refuseShut(s.name); err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	provisioned := false
	for _, x := range sl {
		provisioned = provisioned || x.alloc == geni.Provisioned
	}
	if provisioned {
		if _, err := a.renewSlice(ctx, c, s, cred, want, alap); err != nil {
			return nil, err
		}
	}
	// Allocated slivers: at most their slice's (new) expiry.
	s, err = a.slice(ctx, c, s.name)
	if err != nil {
		return nil, err
	}
	limit := minTime(s.expires, cred.Expires)
	a.mu.Lock()
	for _, x := range sl {
		if x.allocated == nil {
			continue
		}
		if want.After(limit) && !alap {
			a.mu.Unlock()
			return nil, geni.Errorf(geni.Refused, "expiration time %s is later than the slice's expiry %s", want.Format(time.RFC3339), limit.Format(time.RFC3339))
		}
		x.allocated.expires = minTime(want, limit)
	}
	a.mu.Unlock()
	sl, err = a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	return a.statuses(s.name, sl), nil
}

func (a *Aggregate) performOperationalAction(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(4, "urns, credentials, action, options"); err != nil {
		return nil, err
	}
	action, err := p.str(2, "action")
	if err != nil {
		return nil, err
	}
	o, err := p.opts(3)
	if err != nil {
		return nil, err
	}
	switch action {
	case geni.ActionStart, geni.ActionStop, geni.ActionRestart, geni.ActionUpdateUsers:
	default:
		return nil, geni.Errorf(geni.Unsupported, "not supported: action %q (this aggregate has geni_start, geni_stop, geni_restart, geni_update_users)", action)
	}
	keys, hasUsers, err := usersOpt(o)
	if err != nil {
		return nil, err
	}
	if action == geni.ActionUpdateUsers && !hasUsers {
		return nil, geni.Errorf(geni.BadArgs, "geni_update_users: options geni_users is required")
	}
	t, c, s, _, err := a.urnsCall(ctx, peer, p, privWrite)
	if err != nil {
		return nil, err
	}
	if err := a.refuseShut(s.name); err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	for _, x := range sl {
		if x.alloc != geni.Provisioned {
			return nil, geni.Errorf(geni.BadArgs, "sliver %s is %s: provision it first", a.sliverURN(s.name, x.node), x.alloc)
		}
	}
	switch action {
	case geni.ActionUpdateUsers:
		if err := a.setKeys(ctx, c, s.id, keys); err != nil {
			return nil, err
		}
	case geni.ActionStop, geni.ActionRestart:
		for _, x := range sl {
			a.dropRestart(s.name, x.node)
			if err := a.setEnabled(ctx, c, s, x.node, false); err != nil {
				return nil, err
			}
		}
		if action == geni.ActionRestart {
			a.holdRestarts(c, s.name, sl)
		}
	case geni.ActionStart:
		for _, x := range sl {
			a.dropRestart(s.name, x.node)
			if err := a.setEnabled(ctx, c, s, x.node, true); err != nil {
				return nil, err
			}
		}
	}
	a.cfg.Log.Info("GENI AM action", "slice", s.name, "action", action, "slivers", len(sl), "caller", peer.URN, "as", c.Email)
	s, err = a.slice(ctx, c, s.name)
	if err != nil {
		return nil, err
	}
	if sl, err = a.slivers(ctx, t, s); err != nil {
		return nil, err
	}
	return a.statuses(s.name, sl), nil
}

// holdRestarts records the slivers geni_restart has just stopped: they
// are geni_stopping until their node reports them stopped, or
// Config.RestartHold has passed, and then started again (settleRestarts,
// run by every call that looks at the slice and once after the hold).
func (a *Aggregate) holdRestarts(c *core.Caller, name string, sl []sliver) {
	until := a.cfg.Now().Add(a.cfg.RestartHold)
	a.mu.Lock()
	m := a.restarts[name]
	if m == nil {
		m = map[int64]*restart{}
		a.restarts[name] = m
	}
	for _, x := range sl {
		m[x.node] = &restart{caller: c, until: until}
	}
	a.mu.Unlock()
	time.AfterFunc(a.cfg.RestartHold+100*time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := a.slice(ctx, c, name)
		if err == nil {
			err = a.settleRestarts(ctx, s)
		}
		if err != nil {
			a.cfg.Log.Warn("GENI AM geni_restart: starting the slivers again", "slice", name, "err", err)
		}
	})
}

func (a *Aggregate) dropRestart(name string, node int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.restarts[name], node)
	if len(a.restarts[name]) == 0 {
		delete(a.restarts, name)
	}
}

// settleRestarts starts again the slivers of s that geni_restart stopped
// once their node reports them not running or the hold has passed, and
// updates s to match. A sliver no longer in the slice is forgotten.
func (a *Aggregate) settleRestarts(ctx context.Context, s *slice) error {
	now := a.cfg.Now()
	type due struct {
		node int64
		r    *restart
	}
	var todo []due
	a.mu.Lock()
	for n, r := range a.restarts[s.name] {
		if !slices.Contains(s.nodes, n) {
			delete(a.restarts[s.name], n)
			continue
		}
		rep, ok := s.reported[n]
		if !now.Before(r.until) || (ok && rep.Error == "" && rep.State != "running") {
			todo = append(todo, due{n, r})
		}
	}
	a.mu.Unlock()
	for _, d := range todo {
		if err := a.setEnabled(ctx, d.r.caller, s, d.node, true); err != nil {
			return err
		}
		delete(s.tagIDs, d.node)
		s.stopped[d.node] = false
		a.mu.Lock()
		if a.restarts[s.name][d.node] == d.r {
			delete(a.restarts[s.name], d.node)
		}
		a.mu.Unlock()
		a.cfg.Log.Info("GENI AM geni_restart: started again", "slice", s.name, "node", d.node, "as", d.r.caller.Email)
	}
	return nil
}

// setEnabled stops a sliver (the enabled slice tag, scoped to its node,
// set to 0) or starts it (that tag removed).
func (a *Aggregate) setEnabled(ctx context.Context, c *core.Caller, s *slice, node int64, on bool) error {
	id, has := s.tagIDs[node]
	switch {
	case on && has:
		return a.cfg.Registry.Delete(ctx, c, core.SliceTag, id)
	case on:
		return nil
	case has:
		return a.cfg.Registry.Update(ctx, c, core.SliceTag, id, core.Record{"value": "0"})
	}
	tt, err := a.cfg.Registry.Resolve(ctx, c, core.TagType, tags.Enabled)
	if err != nil {
		return err
	}
	_, err = a.cfg.Registry.Add(ctx, c, core.SliceTag, core.Record{"slice_id": s.id, "tag_type_id": tt, "value": "0", "node_id": node})
	return err
}

func (a *Aggregate) delete(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(3, "urns, credentials, options"); err != nil {
		return nil, err
	}
	if _, err := p.opts(2); err != nil {
		return nil, err
	}
	t, c, s, _, err := a.urnsCall(ctx, peer, p, privWrite)
	if err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(sl))
	for _, x := range sl {
		if x.alloc == geni.Provisioned {
			if err := a.cfg.Registry.Unlink(ctx, c, core.SliceNode, s.id, x.node); err != nil {
				return nil, err
			}
			if id, has := s.tagIDs[x.node]; has {
				if err := a.cfg.Registry.Delete(ctx, c, core.SliceTag, id); err != nil {
					return nil, err
				}
			}
		}
		a.mu.Lock()
		delete(a.allocs[s.name], x.node)
		delete(a.clients[s.name], x.node)
		a.mu.Unlock()
		out = append(out, sliverStatus(a.sliverURN(s.name, x.node), a.cfg.Now(), geni.Unallocated, geni.PendingAllocation, ""))
	}
	a.cfg.Log.Info("GENI AM deleted", "slice", s.name, "slivers", len(sl), "caller", peer.URN, "as", c.Email)
	return out, nil
}

func (a *Aggregate) shutdown(ctx context.Context, peer *sfa.Cert, p params) (any, error) {
	if err := p.want(3, "slice_urn, credentials, options"); err != nil {
		return nil, err
	}
	sliceURN, err := p.str(0, "slice_urn")
	if err != nil {
		return nil, err
	}
	name, err := a.sliceName(sliceURN)
	if err != nil {
		return nil, err
	}
	creds, err := p.credentials(1)
	if err != nil {
		return nil, err
	}
	if _, err := p.opts(2); err != nil {
		return nil, err
	}
	c, s, _, err := a.sliceCall(ctx, peer, name, creds, []string{"*", "control"})
	if err != nil {
		return nil, err
	}
	if !s.allOff {
		tt, err := a.cfg.Registry.Resolve(ctx, c, core.TagType, tags.Enabled)
		if err != nil {
			return nil, err
		}
		if _, err := a.cfg.Registry.Add(ctx, c, core.SliceTag, core.Record{"slice_id": s.id, "tag_type_id": tt, "value": "0"}); err != nil {
			return nil, err
		}
	}
	a.mu.Lock()
	a.shut[name] = true
	delete(a.allocs, name)
	a.mu.Unlock()
	a.cfg.Log.Warn("GENI AM shutdown", "slice", name, "caller", peer.URN, "as", c.Email)
	return true, nil
}

func minTime(t time.Time, ts ...time.Time) time.Time {
	for _, x := range ts {
		if x.Before(t) {
			t = x
		}
	}
	return t
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
