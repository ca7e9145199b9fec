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

// rootOwner is the user the credential's chain starts from (the slice
// authority issued the root credential to them).
func rootOwner(c *sfa.Credential) string {
	for c.Parent != nil {
		c = c.Parent
	}
	return c.OwnerURN
}

// actor is the person the credential's chain starts from: the service
// answers as them.
func (a *Aggregate) actor(ctx context.Context, c *sfa.Credential) (*core.Caller, error) {
	caller, err := a.cfg.Persons.GENICaller(ctx, rootOwner(c))
	if err != nil {
		return nil, geni.Errorf(geni.Forbidden, "%s", core.PublicMessage(err))
	}
	return caller, nil
}

// sliceCall is what every slice method starts with: the credential over
// the slice (sliceURN), the acting person and the slice.
func (a *Aggregate) sliceCall(ctx context.Context, peer *sfa.Cert, sliceURN string, creds [][]byte, privs []string) (*core.Caller, *slice, *sfa.Credential, error) {
	if _, err := parseSliceURN(sliceURN); err != nil {
		return nil, nil, nil, err
	}
	cred, err := a.authorize(ctx, peer, creds, sliceURN, privs)
	if err != nil {
		return nil, nil, nil, err
	}
	c, s, err := a.resolve(ctx, sliceURN, cred, false)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, s, cred, nil
}

// resolve finds the PlanetLab slice of a GENI slice and the person who
// acts: for this PLC's own slices the slice of that name and the person
// the credential was issued to; for another authority's their stand-ins
// (created, with create, on the slice's first Allocate).
func (a *Aggregate) resolve(ctx context.Context, sliceURN string, cred *sfa.Credential, create bool) (*core.Caller, *slice, error) {
	u, err := parseSliceURN(sliceURN)
	if err != nil {
		return nil, nil, err
	}
	var c *core.Caller
	name := u.Name
	if a.isLocal(u) {
		if c, err = a.actor(ctx, cred); err != nil {
			return nil, nil, err
		}
	} else {
		for _, r := range a.cfg.Refuse {
			if sfa.WithinAuthority(u.Authority, r) {
				return nil, nil, geni.Errorf(geni.Refused, "slices of GENI authority %s are refused by this aggregate's operators", u.Authority)
			}
		}
		c, name, err = a.cfg.Persons.GENIForeignSlice(ctx, core.GENIForeign{SliceURN: sliceURN, UserURN: rootOwner(cred),
			Expires: cred.Expires, Create: create, MaxSlices: a.cfg.ForeignMaxSlices})
		if err != nil {
			return nil, nil, err
		}
	}
	s, err := a.slice(ctx, c, name)
	if err != nil {
		return nil, nil, err
	}
	s.urn = sliceURN
	return c, s, nil
}

// refuseShut refuses changes to a slice disabled slice-wide (enabled=0:
// Shutdown, or an operator).
func (a *Aggregate) refuseShut(s *slice) error {
	if s.allOff {
		return geni.Errorf(geni.Refused, "slice %s is shut down (Shutdown or an operator: the slice tag enabled=0); an operator must restore it", s.urn)
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
	if _, err := parseSliceURN(sliceURN); err != nil {
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
	cred, err := a.authorize(ctx, peer, creds, sliceURN, privWrite)
	if err != nil {
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
	if hasEnd && !end.After(now) {
		return nil, geni.Errorf(geni.BadArgs, "options geni_end_time %s is not in the future", end.Format(time.RFC3339))
	}
	// Checked: now the slice (a stand-in is made on first use).
	c, s, err := a.resolve(ctx, sliceURN, cred, true)
	if err != nil {
		return nil, err
	}
	if err := a.refuseShut(s); err != nil {
		return nil, err
	}
	exp := minTime(now.Add(a.cfg.AllocationTTL), cred.Expires, s.expires)
	if hasEnd {
		exp = minTime(exp, end)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Read again under the lock: another Allocate may have just written.
	if s, err = a.slice(ctx, c, s.name); err != nil {
		return nil, err
	}
	s.urn = sliceURN
	for _, b := range bound {
		id := ids[strings.ToLower(b.Node.ComponentID)]
		if containsID(s.nodes, id) || s.rows[id].AllocatedUntil > 0 {
			return nil, geni.Errorf(geni.AlreadyExists, "slice %s already has a sliver on %s (node %q)", sliceURN, b.Node.ComponentName, b.ClientID)
		}
	}
	linkRows, err := a.planLinks(ctx, c, s, req, bound, exp.Unix())
	if err != nil {
		return nil, err
	}
	var mine []sliver
	rows := append([]core.GENISliver{}, linkRows...)
	for _, b := range bound {
		id := ids[strings.ToLower(b.Node.ComponentID)]
		rows = append(rows, core.GENISliver{SliceID: s.id, Kind: core.GENINode, Ref: strconv.FormatInt(id, 10), ClientID: b.ClientID, AllocatedUntil: exp.Unix()})
		mine = append(mine, sliver{node: id, clientID: b.ClientID, rn: b.Node, alloc: geni.Allocated, op: geni.PendingAllocation, expires: exp})
	}
	if err := a.cfg.Persons.PutGENISlivers(ctx, now.Unix(), rows...); err != nil {
		return nil, err
	}
	a.cfg.Log.Info("GENI AM allocated", "slice", s.name, "urn", sliceURN, "slivers", len(mine), "caller", peer.URN, "as", c.Email)
	man, err := a.manifest(ctx, c, s, mine, linkRows, exp)
	if err != nil {
		return nil, err
	}
	return map[string]any{"geni_rspec": man, "geni_slivers": a.statuses(s.name, mine)}, nil
}

// urnsCall reads (urns, credentials, ...) and authorizes it.
func (a *Aggregate) urnsCall(ctx context.Context, peer *sfa.Cert, p params, privs []string) (*target, *core.Caller, *slice, *sfa.Credential, error) {
	urns, err := p.strs(0, "urns")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	t, err := a.targets(ctx, urns)
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
	if err := a.refuseShut(s); err != nil {
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
		if err := a.setUsers(ctx, c, s, cred, keys); err != nil {
			return nil, undo(err)
		}
	}
	if hasEnd {
		if _, err := a.renewSlice(ctx, c, s, cred, end, true); err != nil {
			return nil, undo(err)
		}
	}
	// Links whose two nodes are now the slice's: into its vlinks tag.
	hosts := map[string]bool{}
	all, err := a.slivers(ctx, &target{slice: s.urn, all: true}, s)
	if err != nil {
		return nil, undo(err)
	}
	for _, x := range all {
		if x.alloc == geni.Provisioned || slices.Contains(linked, x.node) {
			hosts[strings.ToLower(x.rn.ComponentName)] = true
		}
	}
	rows, err := a.buildLinks(ctx, c, s, hosts)
	if err != nil {
		return nil, undo(err)
	}
	for _, x := range sl {
		if x.alloc == geni.Allocated {
			rows = append(rows, core.GENISliver{SliceID: s.id, Kind: core.GENINode, Ref: strconv.FormatInt(x.node, 10), ClientID: x.clientID})
		}
	}
	if err := a.cfg.Persons.PutGENISlivers(ctx, a.cfg.Now().Unix(), rows...); err != nil {
		return nil, undo(err)
	}
	a.cfg.Log.Info("GENI AM provisioned", "slice", s.name, "urn", s.urn, "slivers", len(sl), "caller", peer.URN, "as", c.Email)
	return a.describeSlivers(ctx, c, t, s)
}

// describeSlivers answers {geni_rspec, geni_urn, geni_slivers} with a
// fresh view of old; geni_urn is the slice's URN as the caller gave it.
func (a *Aggregate) describeSlivers(ctx context.Context, c *core.Caller, t *target, old *slice) (map[string]any, error) {
	s, err := a.reread(ctx, c, old)
	if err != nil {
		return nil, err
	}
	sl, err := a.slivers(ctx, t, s)
	if err != nil {
		return nil, err
	}
	man, err := a.manifest(ctx, c, s, sl, s.links, s.expires)
	if err != nil {
		return nil, err
	}
	return map[string]any{"geni_rspec": man, "geni_urn": s.urn, "geni_slivers": a.statuses(s.name, sl)}, nil
}

// reread reads a slice again, keeping the URN the caller named it by.
func (a *Aggregate) reread(ctx context.Context, c *core.Caller, old *slice) (*slice, error) {
	s, err := a.slice(ctx, c, old.name)
	if err != nil {
		return nil, err
	}
	s.urn = old.urn
	return s, nil
}

// geniUser is one entry of geni_users.
type geniUser struct {
	urn  string
	keys []string
}

// usersOpt reads geni_users [{urn, keys[]}]: every key an ssh public key.
func usersOpt(o map[string]any) ([]geniUser, bool, error) {
	v, ok := o["geni_users"]
	if !ok {
		return nil, false, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false, geni.Errorf(geni.BadArgs, "options geni_users: want an array of {urn, keys}")
	}
	var users []geniUser
	n := 0
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
		gu := geniUser{urn: urn}
		for j, k := range ks {
			s, _ := k.(string)
			s = strings.TrimSpace(s)
			if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s)); err != nil || strings.ContainsAny(s, "\r\n") {
				return nil, false, geni.Errorf(geni.BadArgs, "options geni_users[%d] (%s) keys[%d]: not an ssh public key", i, urn, j)
			}
			gu.keys = append(gu.keys, s)
			n++
		}
		users = append(users, gu)
	}
	if n > 256 {
		return nil, false, geni.Errorf(geni.TooBig, "options geni_users: %d keys, at most 256", n)
	}
	return users, true, nil
}

// setUsers installs geni_users: in a stand-in slice the acting user's own
// keys become their stand-in person's keys (installed as a member's);
// every other key becomes a geni_user_key tag of the slice.
func (a *Aggregate) setUsers(ctx context.Context, c *core.Caller, s *slice, cred *sfa.Credential, users []geniUser) error {
	u, _ := sfa.ParseURN(s.urn)
	foreign := !a.isLocal(u)
	owner := rootOwner(cred)
	var tagKeys, own []string
	hasOwn := false
	for _, gu := range users {
		if foreign && sameURN(gu.urn, owner) {
			own, hasOwn = append(own, gu.keys...), true
			continue
		}
		tagKeys = append(tagKeys, gu.keys...)
	}
	if hasOwn {
		if err := a.setPersonKeys(ctx, c, own); err != nil {
			return err
		}
	}
	return a.setKeys(ctx, c, s.id, tagKeys)
}

// setPersonKeys makes keys the ssh keys of the calling person.
func (a *Aggregate) setPersonKeys(ctx context.Context, c *core.Caller, keys []string) error {
	old, err := a.cfg.Registry.Get(ctx, c, core.Key, &core.Filter{Terms: []core.Term{{Field: "person_id", Op: core.Eq, Value: c.PersonID}}},
		[]string{"key_id", "key"})
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	for _, r := range old {
		k, _ := r["key"].(string)
		if want[strings.TrimSpace(k)] {
			delete(want, strings.TrimSpace(k))
			continue
		}
		id, _ := r["key_id"].(int64)
		if err := a.cfg.Registry.Delete(ctx, c, core.Key, id); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if !want[k] {
			continue
		}
		delete(want, k)
		if _, err := a.cfg.Registry.Add(ctx, c, core.Key, core.Record{"person_id": c.PersonID, "key_type": "ssh", "key": k}); err != nil {
			return err
		}
	}
	return nil
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
	return map[string]any{"geni_urn": s.urn, "geni_slivers": a.statuses(s.name, sl)}, nil
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
	res, err := a.describeSlivers(ctx, c, t, s)
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
	if err := a.refuseShut(s); err != nil {
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
	s, err = a.reread(ctx, c, s)
	if err != nil {
		return nil, err
	}
	limit := minTime(s.expires, cred.Expires)
	var rows []core.GENISliver
	for _, x := range sl {
		if x.alloc != geni.Allocated {
			continue
		}
		if want.After(limit) && !alap {
			return nil, geni.Errorf(geni.Refused, "expiration time %s is later than the slice's expiry %s", want.Format(time.RFC3339), limit.Format(time.RFC3339))
		}
		r := s.rows[x.node]
		r.AllocatedUntil = minTime(want, limit).Unix()
		rows = append(rows, r)
	}
	if len(rows) > 0 {
		for _, r := range s.links {
			if r.AllocatedUntil > 0 {
				r.AllocatedUntil = minTime(want, limit).Unix()
				rows = append(rows, r)
			}
		}
	}
	if err := a.cfg.Persons.PutGENISlivers(ctx, a.cfg.Now().Unix(), rows...); err != nil {
		return nil, err
	}
	if s, err = a.reread(ctx, c, s); err != nil {
		return nil, err
	}
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
	t, c, s, cred, err := a.urnsCall(ctx, peer, p, privWrite)
	if err != nil {
		return nil, err
	}
	if err := a.refuseShut(s); err != nil {
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
		if err := a.setUsers(ctx, c, s, cred, keys); err != nil {
			return nil, err
		}
	case geni.ActionStop, geni.ActionRestart:
		var until int64
		if action == geni.ActionRestart {
			until = a.cfg.Now().Add(a.cfg.RestartHold).Unix()
		}
		for _, x := range sl {
			if err := a.setEnabled(ctx, c, s, x.node, false); err != nil {
				return nil, err
			}
		}
		if err := a.markRestarts(ctx, s, sl, until, rootOwner(cred)); err != nil {
			return nil, err
		}
		if action == geni.ActionRestart {
			a.holdRestarts(c, s)
		}
	case geni.ActionStart:
		if err := a.markRestarts(ctx, s, sl, 0, ""); err != nil {
			return nil, err
		}
		for _, x := range sl {
			if err := a.setEnabled(ctx, c, s, x.node, true); err != nil {
				return nil, err
			}
		}
	}
	a.cfg.Log.Info("GENI AM action", "slice", s.name, "action", action, "slivers", len(sl), "caller", peer.URN, "as", c.Email)
	s, err = a.reread(ctx, c, s)
	if err != nil {
		return nil, err
	}
	if sl, err = a.slivers(ctx, t, s); err != nil {
		return nil, err
	}
	return a.statuses(s.name, sl), nil
}

// markRestarts records (until > 0) or clears the restarts of slivers in
// the aggregate's memory: a restarted sliver is geni_stopping until its
// node reports it stopped or until has passed, and is then started again
// as actor (settleRestarts).
func (a *Aggregate) markRestarts(ctx context.Context, s *slice, sl []sliver, until int64, actor string) error {
	var rows []core.GENISliver
	for _, x := range sl {
		r, ok := s.rows[x.node]
		if !ok {
			r = core.GENISliver{SliceID: s.id, Kind: core.GENINode, Ref: strconv.FormatInt(x.node, 10), ClientID: x.clientID}
		}
		if r.RestartUntil == 0 && until == 0 {
			continue
		}
		r.RestartUntil, r.RestartActor = until, actor
		s.rows[x.node] = r
		rows = append(rows, r)
	}
	return a.cfg.Persons.PutGENISlivers(ctx, a.cfg.Now().Unix(), rows...)
}

// holdRestarts looks at the slice again once the hold has passed, to
// start what geni_restart stopped even if no call looks at it sooner. (A
// restart of PLC loses this timer; the next call that looks at the slice
// starts the slivers then.)
func (a *Aggregate) holdRestarts(c *core.Caller, s *slice) {
	name, urn := s.name, s.urn
	time.AfterFunc(a.cfg.RestartHold+100*time.Millisecond, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := a.slice(ctx, c, name)
		if err == nil {
			s.urn = urn
			err = a.settleRestarts(ctx, s)
		}
		if err != nil {
			a.cfg.Log.Warn("GENI AM geni_restart: starting the slivers again", "slice", name, "err", err)
		}
	})
}

// settleRestarts starts again the slivers of s that geni_restart stopped
// once their node reports them not running or the hold has passed, and
// updates s to match. A sliver no longer in the slice is forgotten.
func (a *Aggregate) settleRestarts(ctx context.Context, s *slice) error {
	now := a.cfg.Now()
	for n, r := range s.rows {
		if r.RestartUntil == 0 {
			continue
		}
		if !slices.Contains(s.nodes, n) {
			r.RestartUntil, r.RestartActor = 0, ""
			if err := a.cfg.Persons.PutGENISlivers(ctx, now.Unix(), r); err != nil {
				return err
			}
			s.rows[n] = r
			continue
		}
		rep, ok := s.reported[n]
		if now.Unix() < r.RestartUntil && !(ok && rep.Error == "" && rep.State != "running") {
			continue
		}
		c, err := a.cfg.Persons.GENICaller(ctx, r.RestartActor)
		if err != nil {
			return err
		}
		if err := a.setEnabled(ctx, c, s, n, true); err != nil {
			return err
		}
		delete(s.tagIDs, n)
		s.stopped[n] = false
		r.RestartUntil, r.RestartActor = 0, ""
		if err := a.cfg.Persons.PutGENISlivers(ctx, now.Unix(), r); err != nil {
			return err
		}
		s.rows[n] = r
		a.cfg.Log.Info("GENI AM geni_restart: started again", "slice", s.name, "node", n, "as", c.Email)
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
	// The links of the slivers go first (the slice's vlinks tag names
	// only nodes of the slice).
	hosts := map[string]bool{}
	for _, x := range sl {
		hosts[strings.ToLower(x.rn.ComponentName)] = true
	}
	if err := a.dropLinks(ctx, c, s, hosts); err != nil {
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
		if err := a.cfg.Persons.DeleteGENISlivers(ctx, s.id, core.GENINode, strconv.FormatInt(x.node, 10)); err != nil {
			return nil, err
		}
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
	creds, err := p.credentials(1)
	if err != nil {
		return nil, err
	}
	if _, err := p.opts(2); err != nil {
		return nil, err
	}
	c, s, _, err := a.sliceCall(ctx, peer, sliceURN, creds, []string{"*", "control"})
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
	var allocated []string
	for n, r := range s.rows {
		if r.AllocatedUntil > 0 {
			allocated = append(allocated, strconv.FormatInt(n, 10))
		}
	}
	if err := a.cfg.Persons.DeleteGENISlivers(ctx, s.id, core.GENINode, allocated...); err != nil {
		return nil, err
	}
	var links []string
	for _, r := range s.links {
		if r.AllocatedUntil > 0 {
			links = append(links, r.Ref)
		}
	}
	if err := a.cfg.Persons.DeleteGENISlivers(ctx, s.id, core.GENILink, links...); err != nil {
		return nil, err
	}
	a.cfg.Log.Warn("GENI AM shutdown", "slice", s.name, "urn", s.urn, "caller", peer.URN, "as", c.Email)
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
