package service

import (
	"context"
	"net/url"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/peering"
	"github.com/planetlab/pl/internal/plc/store"
)

// Peers (AddPeer, UpdatePeer, DeletePeer; GetPeers is the generic Get): a
// peering PLC as an admin of this one records it, with its URL and its
// Ed25519 public key (docs/federation.md).

func (o *op) checkPeerFields(rec core.Record, id int64) error {
	if v, ok := rec["peername"]; ok {
		name := strings.TrimSpace(v.(string))
		if name == "" {
			return core.FieldErrorf("peername", "Peer name must be specified")
		}
		var other int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT peer_id FROM peers WHERE peername = ? AND deleted = 0", []any{name}, &other)
		if err != nil {
			return err
		}
		if found && other != id {
			return core.Errorf(core.Conflict, "Peer name %q already in use", name)
		}
	}
	if v, ok := rec["peer_url"]; ok {
		if err := checkPeerURL(v.(string)); err != nil {
			return err
		}
	}
	if v, ok := rec["key"]; ok {
		pub, err := peering.ParsePublicKey(v.(string))
		if err != nil {
			return core.FieldErrorf("key", "%v", err)
		}
		rec["key"] = peering.FormatPublicKey(pub)
		var other int64
		found, err := o.tx.QueryRow(o.ctx, "SELECT peer_id FROM peers WHERE key = ? AND deleted = 0", []any{rec["key"]}, &other)
		if err != nil {
			return err
		}
		if found && other != id {
			return core.Errorf(core.Conflict, "key is already the key of peer %d", other)
		}
	}
	if err := checkPeerCaps(rec); err != nil {
		return err
	}
	if v, ok := rec["cacert"]; ok && v != nil && v != "" {
		if _, err := peering.ParsePin(v.(string)); err != nil {
			return core.FieldErrorf("cacert", "%v", err)
		}
	}
	return nil
}

// checkPeerURL accepts the original's peer_url: an https URL whose path
// ends with '/', the base of the peer's APIs.
func checkPeerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return core.FieldErrorf("peer_url", "not a URL: %v", err)
	}
	if u.Scheme != "https" {
		return core.FieldErrorf("peer_url", "Peer URL scheme must be https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return core.FieldErrorf("peer_url", "Peer URL has no host")
	}
	if !strings.HasSuffix(u.Path, "/") {
		return core.FieldErrorf("peer_url", "Peer URL should end with /")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return core.FieldErrorf("peer_url", "Peer URL may not carry a query, fragment or user")
	}
	return nil
}

func (o *op) addPeer(t *store.Table, rec core.Record) (int64, error) {
	if err := o.checkPeerFields(rec, 0); err != nil {
		return 0, err
	}
	return o.tx.InsertRecord(o.ctx, t, rec)
}

func (o *op) updatePeer(t *store.Table, id int64, rec core.Record) error {
	if err := o.exists(core.Peer, id); err != nil {
		return err
	}
	if err := o.checkPeerFields(rec, id); err != nil {
		return err
	}
	for f := range rec {
		if f == "max_slices" || f == "max_slivers_per_node" || strings.HasPrefix(f, "cap_") {
			o.ch.all = true // the caps may admit, drop or resize foreign slivers
		}
	}
	return o.tx.UpdateRecord(o.ctx, t, id, rec)
}

// deletePeer marks the peer deleted and, as the original, deletes every
// object it is authoritative for: its sites, persons, nodes and slices
// are marked deleted, its keys removed.
func (o *op) deletePeer(id int64) error {
	if err := o.exists(core.Peer, id); err != nil {
		return err
	}
	if err := o.deletePeerEntries(id); err != nil {
		return err
	}
	_, err := o.tx.Exec(o.ctx, "UPDATE peers SET deleted = 1 WHERE peer_id = ?", id)
	return err
}

// deletePeerEntries deletes every object peer id is authoritative for:
// its sites, persons, nodes and slices are marked deleted, its keys
// removed, with their relations.
func (o *op) deletePeerEntries(id int64) error {
	nodes, err := o.tx.Ints(o.ctx, "SELECT DISTINCT sn.node_id FROM slice_node sn JOIN slices s ON s.slice_id = sn.slice_id WHERE s.peer_id = ? AND s.deleted = 0", id)
	if err != nil {
		return err
	}
	o.ch.addNodes(nodes...)
	for _, q := range []string{
		"DELETE FROM slice_node WHERE slice_id IN (SELECT slice_id FROM slices WHERE peer_id = ?)",
		"DELETE FROM slice_node WHERE node_id IN (SELECT node_id FROM nodes WHERE peer_id = ?)",
		"DELETE FROM slice_person WHERE slice_id IN (SELECT slice_id FROM slices WHERE peer_id = ?)",
		"DELETE FROM slice_person WHERE person_id IN (SELECT person_id FROM persons WHERE peer_id = ?)",
		"DELETE FROM person_site WHERE person_id IN (SELECT person_id FROM persons WHERE peer_id = ?)",
		"DELETE FROM keys WHERE peer_id = ?",
		"UPDATE slices SET deleted = 1 WHERE peer_id = ?",
		"UPDATE nodes SET deleted = 1 WHERE peer_id = ?",
		"UPDATE persons SET deleted = 1 WHERE peer_id = ?",
		"UPDATE sites SET deleted = 1 WHERE peer_id = ?",
	} {
		if _, err := o.tx.Exec(o.ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

var _ core.Peering = (*Service)(nil)

// RefuseSlice implements core.Peering: an admin refuses a peer's slice on
// this PLC's nodes (its slivers go) or admits it again. A refused slice
// stays refused across refreshes; the peer's cap (max_slices) counts only
// admitted slices.
func (s *Service) RefuseSlice(ctx context.Context, c *core.Caller, sliceID int64, refuse bool, reason string) error {
	if err := authorize(c, opRefuseSlice); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		var peer *int64
		found, err := o.tx.QueryRow(ctx, "SELECT peer_id FROM slices WHERE slice_id = ? AND deleted = 0", []any{sliceID}, &peer)
		if err != nil {
			return err
		}
		if !found {
			return notFound(core.Slice, sliceID)
		}
		if peer == nil {
			return core.Errorf(core.Invalid, "slice %d is local: only a peer's slice can be refused (delete or suspend a local one)", sliceID)
		}
		o.ch.all = true // a refusal may admit another slice under the cap
		if !refuse {
			_, err := o.tx.Exec(ctx, "DELETE FROM refused_slices WHERE slice_id = ?", sliceID)
			return err
		}
		if strings.TrimSpace(reason) == "" {
			return core.FieldErrorf("reason", "say why the slice is refused")
		}
		if _, err := o.tx.Exec(ctx, "DELETE FROM refused_slices WHERE slice_id = ?", sliceID); err != nil {
			return err
		}
		_, err = o.tx.Exec(ctx, "INSERT INTO refused_slices (slice_id, actor, reason, since) VALUES (?, ?, ?, ?)", sliceID, o.c.Email, reason, o.now)
		return err
	})
}

// admittedSlice is the SQL condition (over slices s; parameters: the
// node, now) of the slices a node of this PLC runs: local ones, and a
// peer's when bound to the node (never by instantiation), not refused and
// among the peer's first max_slices admitted live slices.
const admittedSlice = `(s.peer_id IS NULL OR (
	EXISTS (SELECT 1 FROM slice_node sn2 WHERE sn2.slice_id = s.slice_id AND sn2.node_id = ?)
	AND NOT EXISTS (SELECT 1 FROM refused_slices r WHERE r.slice_id = s.slice_id)
	AND (SELECT COUNT(*) FROM slices s2 WHERE s2.peer_id = s.peer_id AND s2.deleted = 0 AND s2.expires > ? AND s2.slice_id < s.slice_id
	     AND NOT EXISTS (SELECT 1 FROM refused_slices r2 WHERE r2.slice_id = s2.slice_id))
	  < (SELECT p.max_slices FROM peers p WHERE p.peer_id = s.peer_id)))`
