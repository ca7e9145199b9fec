package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	coretags "github.com/planetlab/pl/internal/core/tags"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
)

// Flavour defaults for GetSliceFamily (PLC_FLAVOUR_SLICE_*).
const (
	DefaultPldistro = "lxc"
	DefaultFcdistro = "f27"
	DefaultArch     = "x86_64"
)

// contactInterval bounds how often a node's fetches write last_contact.
const contactInterval = 30

// NodeState implements core.Registry (GetSlivers, reference plcapi.md §4).
func (s *Service) NodeState(ctx context.Context, c *core.Caller, nodeID int64) (*core.NodeState, error) {
	if err := authorize(c, opGetSlivers); err != nil {
		return nil, err
	}
	if isNode(c) && c.NodeID != nodeID {
		return nil, forbidden("Permission denied: a node may only fetch its own state")
	}
	st, err := s.nodeState(ctx, c, nodeID, true)
	if err != nil {
		return nil, err
	}
	if isNode(c) {
		s.recordContact(ctx, nodeID)
	}
	return st, nil
}

func (s *Service) recordContact(ctx context.Context, nodeID int64) {
	now := s.now()
	s.contactMu.Lock()
	last := s.contacts[nodeID]
	if now-last < contactInterval {
		s.contactMu.Unlock()
		return
	}
	s.contacts[nodeID] = now
	s.contactMu.Unlock()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.Exec(ctx, "UPDATE nodes SET last_contact = ? WHERE node_id = ?", now, nodeID)
		return err
	})
	if err != nil {
		s.log.Warn("record last_contact", "node", nodeID, "err", err)
	}
}

type stateSlice struct {
	id      int64
	name    string
	inst    string
	expires int64
	peer    *int64 // a peer's slice (foreign)
}

type stateTag struct {
	id          int64
	slice       int64
	tagname     string
	value       string
	node, group *int64
}

// nodeState returns the node's state, from the node-state cache when it
// holds one computed since the last change (statecache.go).
func (s *Service) nodeState(ctx context.Context, c *core.Caller, nodeID int64, _ bool) (*core.NodeState, error) {
	now := s.now()
	// The epoch is taken before the read transaction begins: what the
	// transaction reads is at least as new as the epoch.
	epoch, cached := s.stateCacheEpoch()
	if cached {
		if st, ok := s.scache.get(epoch, nodeID, now); ok {
			return st, nil
		}
	}
	var st *core.NodeState
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var sp *sharedParts
		if cached {
			sp = s.scache.sharedAt(epoch, func(sp *sharedParts) error {
				var err error
				if sp.initScripts, err = stateInitScripts(ctx, tx); err != nil {
					return err
				}
				sp.confFiles, err = enabledConfFiles(ctx, tx)
				return err
			})
		}
		var err error
		st, err = s.computeState(ctx, tx, nodeID, now, sp)
		return err
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	if cached {
		s.scache.put(epoch, nodeID, st)
	}
	return st, nil
}

// computeState reads the node's state at now; the parts shared by every
// node come from sp when it is not nil.
func (s *Service) computeState(ctx context.Context, tx *store.Tx, nodeID, now int64, sp *sharedParts) (*core.NodeState, error) {
	st := &core.NodeState{NodeID: nodeID, Timestamp: now, LeaseGranularity: s.opts.LeaseGranularity}
	var site int64
	var ntype string
	found, err := tx.QueryRow(ctx, "SELECT hostname, site_id, node_type FROM nodes WHERE node_id = ? AND deleted = 0", []any{nodeID}, &st.Hostname, &site, &ntype)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound(core.Node, nodeID)
	}
	st.ReservationPolicy = "none"
	if ntype == "reservable" {
		st.ReservationPolicy = "lease_or_idle"
	}
	if st.Interfaces, err = stateInterfaces(ctx, tx, nodeID); err != nil {
		return nil, err
	}
	if st.IPv6Prefix, err = stateIPv6Prefix(ctx, tx, nodeID); err != nil {
		return nil, err
	}
	groups, names, err := stateGroups(ctx, tx, nodeID)
	if err != nil {
		return nil, err
	}
	st.Groups = names
	if sp != nil {
		st.ConfFiles = chooseConfFiles(sp.confFiles, nodeID, groups)
		st.InitScripts = sp.initScripts
		st.Accounts, err = sp.siteAccounts(site, func() ([]core.Account, error) { return stateAccounts(ctx, tx, site) })
	} else {
		var cfs []core.Record
		if cfs, err = enabledConfFiles(ctx, tx); err != nil {
			return nil, err
		}
		st.ConfFiles = chooseConfFiles(cfs, nodeID, groups)
		if st.InitScripts, err = stateInitScripts(ctx, tx); err != nil {
			return nil, err
		}
		st.Accounts, err = stateAccounts(ctx, tx, site)
	}
	if err != nil {
		return nil, err
	}
	if st.Slivers, err = stateSlivers(ctx, tx, nodeID, st.Hostname, now, groups); err != nil {
		return nil, err
	}
	if st.HRN, err = stateHRN(ctx, tx, nodeID); err != nil {
		return nil, err
	}
	if ntype == "reservable" {
		if st.Leases, err = stateLeases(ctx, tx, nodeID, now); err != nil {
			return nil, err
		}
	}
	st.TicketKeys = s.ticketKeys()
	st.Version = Version(st)
	return st, nil
}

// stateInterfaces lists the node's interfaces, primary first.
func stateInterfaces(ctx context.Context, tx *store.Tx, nodeID int64) ([]core.Record, error) {
	it, _ := store.TableOf(core.Interface)
	ifs, err := tx.Select(ctx, store.Query{Table: it, Admin: true, Where: []string{"t.node_id = ?"}, Args: []any{nodeID}})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(ifs, func(i, j int) bool { return ifs[i]["is_primary"] == true && ifs[j]["is_primary"] != true })
	return ifs, nil
}

// stateIPv6Prefix returns the node's sliversipv6prefix interface tag: the
// primary interface's, else that of the interface with the lowest id that
// has one. PLC checked the value when it was written (tags.ParsePrefix6);
// the node checks it again.
func stateIPv6Prefix(ctx context.Context, tx *store.Tx, nodeID int64) (string, error) {
	var v string
	_, err := tx.QueryRow(ctx, `SELECT v.value FROM interface_tags v
		JOIN tag_types tt ON tt.tag_type_id = v.tag_type_id
		JOIN interfaces i ON i.interface_id = v.interface_id
		WHERE i.node_id = ? AND tt.tagname = ?
		ORDER BY CASE WHEN i.is_primary = 1 THEN 0 ELSE 1 END, i.interface_id LIMIT 1`,
		[]any{nodeID, coretags.SliversIPv6Prefix}, &v)
	return strings.TrimSpace(v), err
}

// stateGroups returns the node's node groups, as a set of ids and as
// sorted names.
func stateGroups(ctx context.Context, tx *store.Tx, nodeID int64) (map[int64]bool, []string, error) {
	rows, err := tx.Query(ctx, `SELECT ng.nodegroup_id, ng.groupname FROM nodegroups ng
		JOIN node_tags g ON g.tag_type_id = ng.tag_type_id AND g.value = ng.value WHERE g.node_id = ? ORDER BY ng.groupname`, nodeID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	groups := map[int64]bool{}
	names := []string{}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, nil, err
		}
		groups[id] = true
		names = append(names, name)
	}
	return groups, names, rows.Err()
}

// enabledConfFiles lists every enabled conf file (each node picks its
// own with chooseConfFiles).
func enabledConfFiles(ctx context.Context, tx *store.Tx) ([]core.Record, error) {
	ct, _ := store.TableOf(core.ConfFile)
	return tx.Select(ctx, store.Query{Table: ct, Admin: true, Where: []string{"t.enabled = 1"}})
}

// chooseConfFiles picks one conf file per destination: one bound to the
// node beats one bound to a node group, which beats a global one.
func chooseConfFiles(cfs []core.Record, nodeID int64, groups map[int64]bool) []core.Record {
	best := map[string]int{}
	chosen := map[string]core.Record{}
	for _, cf := range cfs {
		rank := -1
		nids, gids := ids(cf, "node_ids"), ids(cf, "nodegroup_ids")
		switch {
		case slices.Contains(nids, nodeID):
			rank = 2
		case anyIn(gids, groups):
			rank = 1
		case len(nids) == 0 && len(gids) == 0:
			rank = 0
		}
		dest := str(cf, "dest")
		if cur, ok := best[dest]; rank >= 0 && (!ok || rank > cur) {
			best[dest] = rank
			chosen[dest] = cf
		}
	}
	out := []core.Record{}
	for _, dest := range sortedKeysOf(chosen) {
		out = append(out, chosen[dest])
	}
	return out
}

// stateInitScripts lists the enabled init scripts.
func stateInitScripts(ctx context.Context, tx *store.Tx) ([]core.InitScript, error) {
	rows, err := tx.Query(ctx, "SELECT initscript_id, name, script FROM initscripts WHERE enabled = 1 ORDER BY initscript_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.InitScript{}
	for rows.Next() {
		is := core.InitScript{Enabled: true}
		if err := rows.Scan(&is.InitScriptID, &is.Name, &is.Script); err != nil {
			return nil, err
		}
		out = append(out, is)
	}
	return out, rows.Err()
}

// stateAccounts gives the node's own accounts: site_admin (the site's PIs
// and techs) and root (admins, and PIs and techs with isrootonsite).
func stateAccounts(ctx context.Context, tx *store.Tx, site int64) ([]core.Account, error) {
	siteAdmin, err := tx.Strings(ctx, `SELECT k.key FROM keys k JOIN persons p ON p.person_id = k.person_id
		WHERE p.deleted = 0 AND p.enabled = 1 AND k.is_blacklisted = 0 AND k.usable = 1
		AND p.person_id IN (SELECT ps.person_id FROM person_site ps WHERE ps.site_id = ?)
		AND p.person_id IN (SELECT r.person_id FROM person_role r WHERE r.role_id IN (20, 40))
		ORDER BY k.key_id`, site)
	if err != nil {
		return nil, err
	}
	root, err := tx.Strings(ctx, `SELECT k.key FROM keys k JOIN persons p ON p.person_id = k.person_id
		WHERE p.deleted = 0 AND p.enabled = 1 AND k.is_blacklisted = 0 AND k.usable = 1 AND (
		p.person_id IN (SELECT r.person_id FROM person_role r WHERE r.role_id = 10)
		OR (p.person_id IN (SELECT ps.person_id FROM person_site ps WHERE ps.site_id = ?)
		    AND p.person_id IN (SELECT r.person_id FROM person_role r WHERE r.role_id IN (20, 40))
		    AND EXISTS (SELECT 1 FROM person_tags pt JOIN tag_types tt ON tt.tag_type_id = pt.tag_type_id
		                WHERE pt.person_id = p.person_id AND tt.tagname = 'isrootonsite' AND pt.value = 'true')))
		ORDER BY k.key_id`, site)
	if err != nil {
		return nil, err
	}
	return []core.Account{{Name: "site_admin", Keys: nonNil(siteAdmin)}, {Name: "root", Keys: nonNil(root)}}, nil
}

// stateSlivers lists the slivers of the node: slices attached to it,
// system slices, delegated and nm-controller slices; never expired ones.
// Each carries its members' usable keys and its attributes merged by scope.
func stateSlivers(ctx context.Context, tx *store.Tx, nodeID int64, hostname string, now int64, groups map[int64]bool) ([]core.Sliver, error) {
	rows, err := tx.Query(ctx, `SELECT s.slice_id, s.name, s.instantiation, s.expires, s.peer_id FROM slices s
		WHERE s.deleted = 0 AND s.expires > ? AND (
		s.slice_id IN (SELECT sn.slice_id FROM slice_node sn WHERE sn.node_id = ?)
		OR s.instantiation IN ('delegated', 'nm-controller')
		OR EXISTS (SELECT 1 FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		           WHERE st.slice_id = s.slice_id AND tt.tagname = 'system' AND st.value = '1'
		           AND (st.node_id IS NULL OR st.node_id = ?)))
		AND `+admittedSlice+`
		ORDER BY s.slice_id`, now, nodeID, nodeID, nodeID, now)
	if err != nil {
		return nil, err
	}
	var slices []stateSlice
	for rows.Next() {
		var sl stateSlice
		if err := rows.Scan(&sl.id, &sl.name, &sl.inst, &sl.expires, &sl.peer); err != nil {
			rows.Close()
			return nil, err
		}
		slices = append(slices, sl)
	}
	rows.Close()
	caps, err := statePeerCaps(ctx, tx, slices)
	if err != nil {
		return nil, err
	}
	slices = caps.perNode(slices)
	sliceIDs := make([]any, len(slices))
	for i, sl := range slices {
		sliceIDs[i] = sl.id
	}
	tags := map[int64][]stateTag{}
	keys := map[int64][]core.SliverKey{}
	for start := 0; start < len(sliceIDs); start += 500 {
		chunk := sliceIDs[start:min(start+500, len(sliceIDs))]
		in := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		rows, err := tx.Query(ctx, `SELECT st.slice_tag_id, st.slice_id, tt.tagname, st.value, st.node_id, st.nodegroup_id
			FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
			WHERE st.slice_id IN (`+in+`) AND (st.node_id IS NULL OR st.node_id = ?) ORDER BY st.slice_tag_id`, append(chunk, nodeID)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var t stateTag
			if err := rows.Scan(&t.id, &t.slice, &t.tagname, &t.value, &t.node, &t.group); err != nil {
				rows.Close()
				return nil, err
			}
			tags[t.slice] = append(tags[t.slice], t)
			if t.tagname == geniUserKey && (t.node == nil || *t.node == nodeID) {
				keys[t.slice] = append(keys[t.slice], core.SliverKey{KeyType: "ssh", Key: t.value})
			}
		}
		rows.Close()
		rows, err = tx.Query(ctx, `SELECT sp.slice_id, k.key_type, k.key FROM slice_person sp
			JOIN persons p ON p.person_id = sp.person_id JOIN keys k ON k.person_id = p.person_id
			WHERE sp.slice_id IN (`+in+`) AND p.deleted = 0 AND p.enabled = 1 AND k.is_blacklisted = 0 AND k.usable = 1
			ORDER BY sp.slice_id, k.key_id`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var sid int64
			var k core.SliverKey
			if err := rows.Scan(&sid, &k.KeyType, &k.Key); err != nil {
				rows.Close()
				return nil, err
			}
			keys[sid] = append(keys[sid], k)
		}
		rows.Close()
	}
	out := []core.Sliver{}
	for _, sl := range slices {
		attrs := mergeAttributes(tags[sl.id], nodeID, groups)
		if sl.peer != nil {
			attrs = caps[*sl.peer].clip(attrs)
		}
		exp := sl.expires
		if exp > math.MaxInt32 {
			exp = math.MaxInt32
		}
		k := keys[sl.id]
		if k == nil {
			k = []core.SliverKey{}
		}
		links, err := stateVLinks(ctx, tx, sl.id, hostname, attrs)
		if err != nil {
			return nil, err
		}
		out = append(out, core.Sliver{
			Name: sl.name, SliceID: sl.id, Instantiation: sl.inst, Expires: exp,
			Keys: k, Attributes: attrs, GetSliceFamily: sliceFamily(attrs), VLinks: links,
		})
	}
	return out, nil
}

// stateHRN is the node's hrn tag, if it has one.
func stateHRN(ctx context.Context, tx *store.Tx, nodeID int64) (*string, error) {
	var hrn string
	found, err := tx.QueryRow(ctx, `SELECT g.value FROM node_tags g JOIN tag_types tt ON tt.tag_type_id = g.tag_type_id
		WHERE g.node_id = ? AND tt.tagname = 'hrn'`, []any{nodeID}, &hrn)
	if err != nil || !found {
		return nil, err
	}
	return &hrn, nil
}

// stateLeases lists the leases of a reservable node for the next day.
func stateLeases(ctx context.Context, tx *store.Tx, nodeID, now int64) ([]core.SliverLease, error) {
	rows, err := tx.Query(ctx, `SELECT l.slice_id, l.t_from, l.t_until, s.name FROM leases l JOIN slices s ON s.slice_id = l.slice_id
		WHERE l.node_id = ? AND l.t_until > ? AND l.t_from < ? AND s.deleted = 0 ORDER BY l.t_from`, nodeID, now, now+24*3600)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.SliverLease{}
	for rows.Next() {
		var l core.SliverLease
		if err := rows.Scan(&l.SliceID, &l.TFrom, &l.TUntil, &l.Name); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// mergeAttributes applies the precedence of GetSlivers per tagname: values
// bound to this node beat values on one of its node groups, which beat
// global values; all values of the winning scope appear (multi-valued tags).
func mergeAttributes(tags []stateTag, node int64, groups map[int64]bool) []core.Attribute {
	best := map[string]int{}
	for _, t := range tags {
		r := scopeRank(t, node, groups)
		if r < 0 {
			continue
		}
		if cur, ok := best[t.tagname]; !ok || r > cur {
			best[t.tagname] = r
		}
	}
	out := []core.Attribute{}
	for _, t := range tags {
		if r := scopeRank(t, node, groups); r >= 0 && r == best[t.tagname] {
			out = append(out, core.Attribute{TagName: t.tagname, Value: t.value})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].TagName < out[j].TagName })
	return out
}

func scopeRank(t stateTag, node int64, groups map[int64]bool) int {
	switch {
	case t.node != nil:
		if *t.node == node {
			return 2
		}
		return -1
	case t.group != nil:
		if groups[*t.group] {
			return 1
		}
		return -1
	}
	return 0
}

func sliceFamily(attrs []core.Attribute) string {
	get := func(name, def string) string {
		for _, a := range attrs {
			if a.TagName == name && a.Value != "" {
				return a.Value
			}
		}
		return def
	}
	return get("vref", get("pldistro", DefaultPldistro)) + "-" + get("fcdistro", DefaultFcdistro) + "-" + get("arch", DefaultArch)
}

// Version hashes a state's content, excluding its timestamp.
func Version(st *core.NodeState) string {
	c := *st
	c.Version, c.Timestamp = "", 0
	b, err := json.Marshal(&c)
	if err != nil {
		panic("nodestate: " + err.Error())
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

func anyIn(ids []int64, set map[int64]bool) bool {
	for _, id := range ids {
		if set[id] {
			return true
		}
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sortedKeysOf(m map[string]core.Record) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// geniUserKey is the slice tag whose values are more keys of the slice's
// slivers (the GENI aggregate's geni_users).
const geniUserKey = coretags.GENIUserKey
