package service

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/plc/peering"
	"github.com/planetlab/pl/internal/plc/store"
)

// Peer data (docs/federation.md): what this PLC hands a peer (PeerData,
// the original's GetPeerData) and how it stores what a peer hands it
// (applyPeerData, the original's RefreshPeer) as foreign objects.
//
// A refresh is one transaction: the data is checked whole first (the
// decoder checked its own consistency; here, that it overwrites no local
// object and no other peer's), then every foreign object of the peer is
// inserted, updated or deleted to match. A refused refresh changes
// nothing; its error is logged and kept in the peer's refresh_error.

var _ peering.Backend = (*Service)(nil)

// PeerByKey implements peering.Backend.
func (s *Service) PeerByKey(ctx context.Context, key string) (int64, ed25519.PublicKey, error) {
	var id int64
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		found, err := tx.QueryRow(ctx, "SELECT peer_id FROM peers WHERE key = ? AND deleted = 0", []any{key}, &id)
		if err == nil && !found {
			err = core.Errorf(core.Unauthenticated, "no peer has the key %s", key)
		}
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	pub, err := peering.ParsePublicKey(key)
	return id, pub, err
}

// PeerNotified implements peering.Backend: the peer changed something;
// refresh it soon.
func (s *Service) PeerNotified(peerID int64) { s.peers.poke(peerID) }

// PeerData implements peering.Backend: this PLC's data for peer peerID (0:
// for an admin, every local slice).
func (s *Service) PeerData(ctx context.Context, peerID int64) (*peering.Data, error) {
	start := time.Now()
	d := &peering.Data{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		now := s.now()
		rows, err := tx.Query(ctx, `SELECT site_id, login_base, name, abbreviated_name, url, enabled, is_public, latitude, longitude, max_slices, max_slivers
			FROM sites WHERE peer_id IS NULL AND deleted = 0 AND login_base <> ? ORDER BY site_id`, SystemSiteLoginBase)
		if err != nil {
			return err
		}
		for rows.Next() {
			var x peering.Site
			var en, pub int64
			if err := rows.Scan(&x.SiteID, &x.LoginBase, &x.Name, &x.AbbreviatedName, &x.URL, &en, &pub, &x.Latitude, &x.Longitude, &x.MaxSlices, &x.MaxSlivers); err != nil {
				rows.Close()
				return err
			}
			x.Enabled, x.IsPublic = en != 0, pub != 0
			d.Sites = append(d.Sites, x)
		}
		rows.Close()
		nodes := func(where string, args ...any) ([]peering.Node, error) {
			rows, err := tx.Query(ctx, `SELECT node_id, hostname, site_id, node_type, boot_state, peer_node_id FROM nodes n
				WHERE n.deleted = 0 AND `+where+` ORDER BY node_id`, args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []peering.Node
			for rows.Next() {
				var x peering.Node
				if err := rows.Scan(&x.NodeID, &x.Hostname, &x.SiteID, &x.NodeType, &x.BootState, &x.PeerNodeID); err != nil {
					return nil, err
				}
				out = append(out, x)
			}
			return out, rows.Err()
		}
		// The system site and its nodes and slices are every PLC's own.
		if d.Nodes, err = nodes("n.peer_id IS NULL AND n.site_id <> 1 AND NOT EXISTS (SELECT 1 FROM slice_node_whitelist w WHERE w.node_id = n.node_id)"); err != nil {
			return err
		}
		if d.PeerNodes, err = nodes("n.peer_id = ?", peerID); err != nil {
			return err
		}
		// The local slices that use the peer's nodes (for an admin: all).
		sliceWhere := "s.peer_id IS NULL AND s.deleted = 0 AND s.expires > ? AND s.site_id <> 1"
		args := []any{now}
		if peerID != 0 {
			sliceWhere += " AND EXISTS (SELECT 1 FROM slice_node sn JOIN nodes n ON n.node_id = sn.node_id WHERE sn.slice_id = s.slice_id AND n.peer_id = ? AND n.deleted = 0)"
			args = append(args, peerID)
		}
		rows, err = tx.Query(ctx, `SELECT slice_id, name, site_id, instantiation, url, description, max_nodes, created, expires FROM slices s WHERE `+sliceWhere+` ORDER BY slice_id`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var x peering.Slice
			if err := rows.Scan(&x.SliceID, &x.Name, &x.SiteID, &x.Instantiation, &x.URL, &x.Description, &x.MaxNodes, &x.Created, &x.Expires); err != nil {
				rows.Close()
				return err
			}
			d.Slices = append(d.Slices, x)
		}
		rows.Close()
		members, peerMembers := map[int64]bool{}, map[int64]bool{}
		for i := range d.Slices {
			sl := &d.Slices[i]
			// Its nodes that the peer can name: this PLC's and the peer's.
			if sl.NodeIDs, err = tx.Ints(ctx, `SELECT sn.node_id FROM slice_node sn JOIN nodes n ON n.node_id = sn.node_id
				WHERE sn.slice_id = ? AND n.deleted = 0 AND (n.peer_id IS NULL OR n.peer_id = ?) ORDER BY sn.node_id`, sl.SliceID, peerID); err != nil {
				return err
			}
			// Its local members (a foreign member is its own PLC's to hand out).
			if sl.PersonIDs, err = tx.Ints(ctx, `SELECT sp.person_id FROM slice_person sp JOIN persons p ON p.person_id = sp.person_id
				WHERE sp.slice_id = ? AND p.deleted = 0 AND p.peer_id IS NULL ORDER BY sp.person_id`, sl.SliceID); err != nil {
				return err
			}
			for _, p := range sl.PersonIDs {
				members[p] = true
			}
			// Its members who are the peer's own persons: the peer knows
			// them and their keys better than this PLC does.
			if peerID != 0 {
				theirs, err := tx.Ints(ctx, `SELECT sp.person_id FROM slice_person sp JOIN persons p ON p.person_id = sp.person_id
					WHERE sp.slice_id = ? AND p.deleted = 0 AND p.peer_id = ? ORDER BY sp.person_id`, sl.SliceID, peerID)
				if err != nil {
					return err
				}
				for _, p := range theirs {
					peerMembers[p] = true
				}
				sl.PersonIDs = append(sl.PersonIDs, theirs...)
			}
			trows, err := tx.Query(ctx, `SELECT tt.tagname, st.value FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
				WHERE st.slice_id = ? AND st.node_id IS NULL AND st.nodegroup_id IS NULL ORDER BY st.slice_tag_id`, sl.SliceID)
			if err != nil {
				return err
			}
			for trows.Next() {
				var t peering.SliceTag
				if err := trows.Scan(&t.Tagname, &t.Value); err != nil {
					trows.Close()
					return err
				}
				if peering.CarriedTag(t.Tagname) {
					sl.Tags = append(sl.Tags, t)
				}
			}
			trows.Close()
		}
		for _, pid := range slices.Sorted(maps.Keys(peerMembers)) {
			x := peering.Person{PeerPersonID: new(int64)}
			var en int64
			if _, err := tx.QueryRow(ctx, "SELECT person_id, email, first_name, last_name, enabled, peer_person_id FROM persons WHERE person_id = ?", []any{pid},
				&x.PersonID, &x.Email, &x.FirstName, &x.LastName, &en, x.PeerPersonID); err != nil {
				return err
			}
			x.Enabled = en != 0
			d.PeerPersons = append(d.PeerPersons, x)
		}
		for _, pid := range slices.Sorted(maps.Keys(members)) {
			var x peering.Person
			var en int64
			if _, err := tx.QueryRow(ctx, "SELECT person_id, email, first_name, last_name, enabled FROM persons WHERE person_id = ?", []any{pid}, &x.PersonID, &x.Email, &x.FirstName, &x.LastName, &en); err != nil {
				return err
			}
			x.Enabled = en != 0
			if x.SiteIDs, err = tx.Ints(ctx, `SELECT ps.site_id FROM person_site ps JOIN sites s ON s.site_id = ps.site_id
				WHERE ps.person_id = ? AND s.deleted = 0 AND s.peer_id IS NULL ORDER BY ps.is_primary DESC, ps.site_id`, pid); err != nil {
				return err
			}
			d.Persons = append(d.Persons, x)
			krows, err := tx.Query(ctx, "SELECT key_id, person_id, key_type, key FROM keys WHERE person_id = ? AND is_blacklisted = 0 AND usable = 1 ORDER BY key_id", pid)
			if err != nil {
				return err
			}
			for krows.Next() {
				var k peering.Key
				if err := krows.Scan(&k.KeyID, &k.PersonID, &k.KeyType, &k.Key); err != nil {
					krows.Close()
					return err
				}
				d.Keys = append(d.Keys, k)
			}
			krows.Close()
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	d.DBTime = time.Since(start).Seconds()
	return d, nil
}

// refusal is the error of a refused refresh.
func refusal(peer string, format string, args ...any) error {
	return core.Errorf(core.Invalid, "peer %s: %s", peer, fmt.Sprintf(format, args...))
}

// PeerStats counts what a refresh changed.
type PeerStats struct {
	Added, Updated, Deleted int
	// Refused are the objects left out, each with the reason.
	Refused []string
}

// applyPeerData stores d, the data of peer peerID, as its foreign objects.
func (o *op) applyPeerData(peerID int64, name string, d *peering.Data) (PeerStats, error) {
	var st PeerStats
	if err := d.Check(); err != nil {
		return st, refusal(name, "%v", err)
	}
	// Names the peer's objects may not take: those of local objects and of
	// other peers'. Such an object is refused (logged, kept in
	// refresh_error, left out with what depends on it) and the rest of the
	// data is stored, as the original skipped it.
	var refused []string
	clash := func(table, col, what, v string, peerObjID int64) (bool, error) {
		var id int64
		var owner *int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT "+strings.TrimSuffix(table, "s")+"_id, peer_id FROM "+table+
			" WHERE LOWER("+col+") = LOWER(?) AND deleted = 0", []any{v}, &id, &owner)
		if err != nil || !found {
			return false, err
		}
		if owner == nil {
			refused = append(refused, fmt.Sprintf("%s %q (its id %d) would overwrite local %s %d", what, v, peerObjID, what, id))
			return true, nil
		}
		if *owner != peerID {
			refused = append(refused, fmt.Sprintf("%s %q (its id %d) is already peer %d's %s %d", what, v, peerObjID, *owner, what, id))
			return true, nil
		}
		return false, nil
	}
	d = cloneData(d)
	drop := map[string]map[int64]bool{"site": {}, "node": {}, "person": {}, "slice": {}}
	filter := func(n int, keep func(i int) (bool, error)) ([]int, error) {
		var idx []int
		for i := range n {
			ok, err := keep(i)
			if err != nil {
				return nil, err
			}
			if ok {
				idx = append(idx, i)
			}
		}
		return idx, nil
	}
	idx, err := filter(len(d.Sites), func(i int) (bool, error) {
		x := d.Sites[i]
		bad, err := clash("sites", "login_base", "site", x.LoginBase, x.SiteID)
		if bad {
			drop["site"][x.SiteID] = true
		}
		return !bad, err
	})
	if err != nil {
		return st, err
	}
	d.Sites = pick(d.Sites, idx)
	if idx, err = filter(len(d.Nodes), func(i int) (bool, error) {
		x := d.Nodes[i]
		bad := drop["site"][x.SiteID]
		if bad {
			refused = append(refused, fmt.Sprintf("node %q (its id %d) is at a refused site", x.Hostname, x.NodeID))
		} else if bad, err = clash("nodes", "hostname", "node", x.Hostname, x.NodeID); err != nil {
			return false, err
		}
		if bad {
			drop["node"][x.NodeID] = true
		}
		return !bad, nil
	}); err != nil {
		return st, err
	}
	d.Nodes = pick(d.Nodes, idx)
	if idx, err = filter(len(d.Persons), func(i int) (bool, error) {
		x := &d.Persons[i]
		bad, err := clash("persons", "email", "person", x.Email, x.PersonID)
		if bad {
			drop["person"][x.PersonID] = true
		}
		x.SiteIDs = without(x.SiteIDs, drop["site"])
		return !bad, err
	}); err != nil {
		return st, err
	}
	d.Persons = pick(d.Persons, idx)
	// PeerPersons name this PLC's own persons, members of the peer's
	// slices: the slivers here get their keys as this PLC knows them. One
	// that names no local person is left out of the slices, noted.
	ownPerson := map[int64]int64{} // the peer's id -> local id
	for _, x := range d.PeerPersons {
		var one int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM persons WHERE person_id = ? AND peer_id IS NULL AND deleted = 0", []any{*x.PeerPersonID}, &one)
		if err != nil {
			return st, err
		}
		if !found {
			refused = append(refused, fmt.Sprintf("member %q (its id %d) claims to be local person %d, which is not a local person here", x.Email, x.PersonID, *x.PeerPersonID))
			drop["person"][x.PersonID] = true
			continue
		}
		ownPerson[x.PersonID] = *x.PeerPersonID
	}
	idx, _ = filter(len(d.Keys), func(i int) (bool, error) { return !drop["person"][d.Keys[i].PersonID], nil })
	d.Keys = pick(d.Keys, idx)
	if idx, err = filter(len(d.Slices), func(i int) (bool, error) {
		x := &d.Slices[i]
		bad := drop["site"][x.SiteID]
		if bad {
			refused = append(refused, fmt.Sprintf("slice %q (its id %d) is at a refused site", x.Name, x.SliceID))
		} else if bad, err = clash("slices", "name", "slice", x.Name, x.SliceID); err != nil {
			return false, err
		}
		x.NodeIDs = without(x.NodeIDs, drop["node"])
		x.PersonIDs = without(x.PersonIDs, drop["person"])
		return !bad, nil
	}); err != nil {
		return st, err
	}
	d.Slices = pick(d.Slices, idx)
	st.Refused = refused
	// PeerNodes name this PLC's own nodes.
	ownNode := map[int64]int64{} // the peer's id -> local id
	for _, x := range d.PeerNodes {
		var one int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT 1 FROM nodes WHERE node_id = ? AND peer_id IS NULL AND deleted = 0", []any{*x.PeerNodeID}, &one)
		if err != nil {
			return st, err
		}
		if !found {
			return st, refusal(name, "PeerNodes: its node %d claims to be local node %d, which is not a local node here", x.NodeID, *x.PeerNodeID)
		}
		ownNode[x.NodeID] = *x.PeerNodeID
	}
	// Values of lookup tables must be known here.
	lookups := []struct {
		table, col, where, v string
	}{}
	for i, x := range d.Nodes {
		w := fmt.Sprintf("Nodes[%d] (node_id %d)", i, x.NodeID)
		lookups = append(lookups, struct{ table, col, where, v string }{"node_types", "node_type", w, orDefault(x.NodeType, "regular")},
			struct{ table, col, where, v string }{"boot_states", "boot_state", w, orDefault(x.BootState, "boot")})
	}
	for i, x := range d.Slices {
		lookups = append(lookups, struct{ table, col, where, v string }{"slice_instantiations", "instantiation", fmt.Sprintf("Slices[%d] (slice_id %d)", i, x.SliceID), orDefault(x.Instantiation, "plc-instantiated")})
	}
	for i, x := range d.Keys {
		lookups = append(lookups, struct{ table, col, where, v string }{"key_types", "key_type", fmt.Sprintf("Keys[%d] (key_id %d)", i, x.KeyID), orDefault(x.KeyType, "ssh")})
	}
	for _, l := range lookups {
		found, err := o.lookupExists(l.table, l.col, l.v)
		if err != nil {
			return st, err
		}
		if !found {
			return st, refusal(name, "%s: unknown %s %q", l.where, l.col, l.v)
		}
	}
	// Affected local nodes: those of the peer's slices, before and after.
	before, err := o.tx.Ints(o.ctx, `SELECT DISTINCT sn.node_id FROM slice_node sn JOIN slices s ON s.slice_id = sn.slice_id
		JOIN nodes n ON n.node_id = sn.node_id WHERE s.peer_id = ? AND n.peer_id IS NULL`, peerID)
	if err != nil {
		return st, err
	}
	o.ch.addNodes(before...)

	sites, err := o.syncRows(peerID, &st, "sites", "site", len(d.Sites), func(i int) (int64, []string, []any) {
		x := d.Sites[i]
		return x.SiteID, []string{"login_base", "name", "abbreviated_name", "url", "enabled", "is_public", "latitude", "longitude", "max_slices", "max_slivers"},
			[]any{x.LoginBase, x.Name, x.AbbreviatedName, x.URL, boolInt(x.Enabled), boolInt(x.IsPublic), x.Latitude, x.Longitude, x.MaxSlices, x.MaxSlivers}
	}, "date_created", "last_updated")
	if err != nil {
		return st, err
	}
	nodes, err := o.syncRows(peerID, &st, "nodes", "node", len(d.Nodes), func(i int) (int64, []string, []any) {
		x := d.Nodes[i]
		nt, bs := orDefault(x.NodeType, "regular"), orDefault(x.BootState, "boot")
		return x.NodeID, []string{"hostname", "site_id", "node_type", "boot_state"}, []any{strings.ToLower(x.Hostname), sites[x.SiteID], nt, bs}
	}, "date_created", "last_updated")
	if err != nil {
		return st, err
	}
	persons, err := o.syncRows(peerID, &st, "persons", "person", len(d.Persons), func(i int) (int64, []string, []any) {
		x := d.Persons[i]
		return x.PersonID, []string{"email", "first_name", "last_name", "enabled"}, []any{strings.ToLower(x.Email), x.FirstName, x.LastName, boolInt(x.Enabled)}
	}, "date_created", "last_updated")
	if err != nil {
		return st, err
	}
	// Keys: parsed as local keys are; an unusable key is stored flagged.
	parsedKeys := make([]PersonKey, len(d.Keys))
	for i, k := range d.Keys {
		p, err := ParsePersonKey(k.Key)
		if err != nil {
			return st, refusal(name, "Keys[%d] (key_id %d): %v", i, k.KeyID, err)
		}
		parsedKeys[i] = p
	}
	if _, err := o.syncRows(peerID, &st, "keys", "key", len(d.Keys), func(i int) (int64, []string, []any) {
		x, p := d.Keys[i], parsedKeys[i]
		kt := orDefault(x.KeyType, "ssh")
		var reason any
		if !p.Usable {
			reason = p.Reason
		}
		return x.KeyID, []string{"person_id", "key_type", "key", "material", "usable", "unusable_reason"}, []any{persons[x.PersonID], kt, p.Line, p.Material, boolInt(p.Usable), reason}
	}); err != nil {
		return st, err
	}
	slices, err := o.syncRows(peerID, &st, "slices", "slice", len(d.Slices), func(i int) (int64, []string, []any) {
		x := d.Slices[i]
		inst := orDefault(x.Instantiation, "plc-instantiated")
		return x.SliceID, []string{"name", "site_id", "instantiation", "url", "description", "max_nodes", "created", "expires"},
			[]any{x.Name, sites[x.SiteID], inst, x.URL, x.Description, x.MaxNodes, x.Created, x.Expires}
	})
	if err != nil {
		return st, err
	}
	// Relations of foreign objects: replaced whole.
	for _, x := range d.Persons {
		pid := persons[x.PersonID]
		if _, err := o.tx.Exec(o.ctx, "DELETE FROM person_site WHERE person_id = ?", pid); err != nil {
			return st, err
		}
		for i, s := range x.SiteIDs {
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO person_site (person_id, site_id, is_primary) VALUES (?, ?, ?)", pid, sites[s], boolInt(i == 0)); err != nil {
				return st, err
			}
		}
	}
	for _, x := range d.Slices {
		sid := slices[x.SliceID]
		for _, q := range []string{"DELETE FROM slice_node WHERE slice_id = ?", "DELETE FROM slice_person WHERE slice_id = ?"} {
			if _, err := o.tx.Exec(o.ctx, q, sid); err != nil {
				return st, err
			}
		}
		for _, n := range x.NodeIDs {
			local, own := ownNode[n]
			if !own {
				local = nodes[n]
			} else {
				o.ch.addNodes(local)
			}
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_node (slice_id, node_id) VALUES (?, ?)", sid, local); err != nil {
				return st, err
			}
		}
		for _, p := range x.PersonIDs {
			local, own := ownPerson[p]
			if !own {
				local = persons[p]
			}
			if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_person (slice_id, person_id) VALUES (?, ?)", sid, local); err != nil {
				return st, err
			}
		}
		if err := o.syncSliceTags(sid, x, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// syncRows makes the peer's foreign rows of table match n objects: row(i)
// gives the i-th object's id at the peer, columns and values. Rows of the
// peer that are not among them are deleted (marked, for soft-deleted
// tables; their relations removed). created are columns set to now on
// insert. It returns the peer's ids mapped to local ids.
func (o *op) syncRows(peerID int64, st *PeerStats, table, obj string, n int, row func(i int) (int64, []string, []any), created ...string) (map[int64]int64, error) {
	pk, peerCol := obj+"_id", "peer_"+obj+"_id"
	soft := table != "keys"
	live := ""
	if soft {
		live = " AND deleted = 0"
	}
	existing := map[int64]int64{}
	rows, err := o.tx.Query(o.ctx, "SELECT "+peerCol+", "+pk+" FROM "+table+" WHERE peer_id = ?"+live, peerID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var theirs, ours int64
		if err := rows.Scan(&theirs, &ours); err != nil {
			rows.Close()
			return nil, err
		}
		existing[theirs] = ours
	}
	rows.Close()
	// Deletions first: a name the peer moved from a deleted object to
	// another one is free by the time the other is written.
	present := make(map[int64]bool, n)
	for i := range n {
		theirs, _, _ := row(i)
		present[theirs] = true
	}
	for theirs := range existing {
		if present[theirs] {
			continue
		}
		ours := existing[theirs]
		delete(existing, theirs)
		st.Deleted++
		var q []string
		switch table {
		case "slices":
			nodes, err := o.tx.Ints(o.ctx, "SELECT node_id FROM slice_node WHERE slice_id = ?", ours)
			if err != nil {
				return nil, err
			}
			o.ch.addNodes(nodes...)
			q = []string{"DELETE FROM slice_node WHERE slice_id = ?", "DELETE FROM slice_person WHERE slice_id = ?", "UPDATE slices SET deleted = 1 WHERE slice_id = ?"}
		case "nodes":
			q = []string{"DELETE FROM slice_node WHERE node_id = ?", "DELETE FROM slice_node_whitelist WHERE node_id = ?", "UPDATE nodes SET deleted = 1 WHERE node_id = ?"}
		case "persons":
			q = []string{"DELETE FROM slice_person WHERE person_id = ?", "DELETE FROM person_site WHERE person_id = ?", "DELETE FROM keys WHERE person_id = ?", "UPDATE persons SET deleted = 1 WHERE person_id = ?"}
		case "sites":
			q = []string{"UPDATE sites SET deleted = 1 WHERE site_id = ?"}
		case "keys":
			q = []string{"DELETE FROM keys WHERE key_id = ?"}
		}
		for _, s := range q {
			if _, err := o.tx.Exec(o.ctx, s, ours); err != nil {
				return nil, err
			}
		}
	}
	out := map[int64]int64{}
	for i := range n {
		theirs, cols, vals := row(i)
		if ours, ok := existing[theirs]; ok {
			sets := make([]string, len(cols))
			for j, c := range cols {
				sets[j] = c + " = ?"
			}
			if _, err := o.tx.Exec(o.ctx, "UPDATE "+table+" SET "+strings.Join(sets, ", ")+" WHERE "+pk+" = ?", append(vals, ours)...); err != nil {
				return nil, err
			}
			out[theirs] = ours
			st.Updated++
			continue
		}
		cols = append(cols, "peer_id", peerCol)
		vals = append(vals, peerID, theirs)
		for _, c := range created {
			cols = append(cols, c)
			vals = append(vals, o.now)
		}
		id, err := o.tx.Insert(o.ctx, table, pk, cols, vals)
		if err != nil {
			return nil, err
		}
		out[theirs] = id
		st.Added++
	}
	return out, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// cloneData copies what applyPeerData filters (the caller's data stays
// as it was).
func cloneData(d *peering.Data) *peering.Data {
	c := *d
	c.Sites = slices.Clone(d.Sites)
	c.Nodes = slices.Clone(d.Nodes)
	c.Keys = slices.Clone(d.Keys)
	c.Persons = slices.Clone(d.Persons)
	c.Slices = slices.Clone(d.Slices)
	return &c
}

func pick[T any](list []T, idx []int) []T {
	out := make([]T, 0, len(idx))
	for _, i := range idx {
		out = append(out, list[i])
	}
	return out
}

func without(ids []int64, drop map[int64]bool) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !drop[id] {
			out = append(out, id)
		}
	}
	return out
}

// syncSliceTags replaces the carried slice-wide tags of a foreign slice
// with the peer's (peering.CarriedTag, checked again here); a tag this PLC
// does not know or whose value its table refuses is left out and noted.
// Other tags (an admin's suspension here) are untouched.
func (o *op) syncSliceTags(sliceID int64, x peering.Slice, st *PeerStats) error {
	rows, err := o.tx.Query(o.ctx, `SELECT st.slice_tag_id, tt.tagname FROM slice_tags st JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
		WHERE st.slice_id = ? AND st.node_id IS NULL AND st.nodegroup_id IS NULL`, sliceID)
	if err != nil {
		return err
	}
	var old []int64
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return err
		}
		if peering.CarriedTag(name) {
			old = append(old, id)
		}
	}
	rows.Close()
	for _, id := range old {
		if _, err := o.tx.Exec(o.ctx, "DELETE FROM slice_tags WHERE slice_tag_id = ?", id); err != nil {
			return err
		}
	}
	for _, t := range x.Tags {
		if !peering.CarriedTag(t.Tagname) {
			st.Refused = append(st.Refused, fmt.Sprintf("slice %q: tag %q is not one a member may set", x.Name, t.Tagname))
			continue
		}
		if err := tags.Check(t.Tagname, t.Value); err != nil {
			st.Refused = append(st.Refused, fmt.Sprintf("slice %q: %v", x.Name, err))
			continue
		}
		tt, err := o.tagTypeID(t.Tagname)
		if core.ErrorCode(err) == core.Internal {
			return err
		}
		if err != nil {
			st.Refused = append(st.Refused, fmt.Sprintf("slice %q: tag %q: %v", x.Name, t.Tagname, core.PublicMessage(err)))
			continue
		}
		if _, err := o.tx.Exec(o.ctx, "INSERT INTO slice_tags (slice_id, tag_type_id, value) VALUES (?, ?, ?)", sliceID, tt, t.Value); err != nil {
			return err
		}
	}
	return nil
}
