package service

import (
	"context"

	"github.com/planetlab/pl/internal/core"
)

// The original's repair and SFA methods over peers (docs/federation.md):
// BindObjectToPeer and UnBindObjectFromPeer mark a local object as a
// peer's or make a peer's object local again; DeleteAllPeerEntries drops
// every object of a peer and keeps the peer; GetPeerName is this PLC's
// name. Admin only (GetPeerName also nodes and peers).

// peerObject reads the peer of object id of a peered class (nil: local);
// a missing object is the original's "Cannot locate object".
func (o *op) peerObject(class core.Class, id int64) (*int64, error) {
	if _, ok := peered[class]; !ok {
		return nil, core.FieldErrorf("object_type", "Unrecognized object type %s", class)
	}
	t, err := table(class)
	if err != nil {
		return nil, err
	}
	q := "SELECT peer_id FROM " + t.SQL + " WHERE " + t.PK + " = ?"
	if t.SoftDelete {
		q += " AND deleted = 0"
	}
	var peer *int64
	found, err := o.tx.QueryRow(o.ctx, q, []any{id}, &peer)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, core.Errorf(core.Invalid, "Cannot locate object, type=%s id=%d", class, id)
	}
	return peer, nil
}

// BindObjectToPeer implements core.Peering: the local object becomes
// peer peerID's, its id there remoteID (0: unknown), read-only here from
// then on. Already the peer's: nothing changes (as the original). A
// refresh of that peer then treats it as the peer's object remoteID:
// updated from the peer's data, or deleted when the peer does not list it.
func (s *Service) BindObjectToPeer(ctx context.Context, c *core.Caller, class core.Class, id, peerID, remoteID int64) error {
	if err := authorize(c, opBindObjectToPeer); err != nil {
		return err
	}
	if remoteID < 0 {
		return core.FieldErrorf("remote_object_id", "must be 0 (unknown) or the object's id at the peer, got %d", remoteID)
	}
	return s.write(ctx, c, func(o *op) error {
		cur, err := o.peerObject(class, id)
		if err != nil {
			return err
		}
		if err := o.exists(core.Peer, peerID); err != nil {
			return err
		}
		if cur != nil && *cur == peerID {
			return nil
		}
		if cur != nil {
			return core.Errorf(core.Conflict, "%s %d already belongs to peer %d: unbind it from that peer first", class, id, *cur)
		}
		if err := o.systemObject(class, id); err != nil {
			return err
		}
		t, _ := table(class)
		peerCol := "peer_" + string(class) + "_id"
		q := "SELECT " + t.PK + " FROM " + t.SQL + " WHERE peer_id = ? AND " + peerCol + " = ?"
		if t.SoftDelete {
			q += " AND deleted = 0"
		}
		var other int64
		found, err := o.tx.QueryRow(o.ctx, q, []any{peerID, remoteID}, &other)
		if err != nil {
			return err
		}
		if found {
			return core.Errorf(core.Conflict, "peer %d's %s %d is already %s %d here", peerID, class, remoteID, class, other)
		}
		if _, err := o.tx.Exec(o.ctx, "UPDATE "+t.SQL+" SET peer_id = ?, "+peerCol+" = ? WHERE "+t.PK+" = ?", peerID, remoteID, id); err != nil {
			return err
		}
		o.ch.all = true // a node or slice changing hands changes node states
		s.log.Info("object bound to a peer", "class", class, "id", id, "peer", peerID, "remote_id", remoteID, "by", callerName(c))
		return nil
	})
}

// systemObject refuses the system site and its nodes and slices: every
// PLC's own.
func (o *op) systemObject(class core.Class, id int64) error {
	var site int64
	switch class {
	case core.Site:
		site = id
	case core.Node, core.Slice:
		t, _ := table(class)
		if _, err := o.tx.QueryRow(o.ctx, "SELECT site_id FROM "+t.SQL+" WHERE "+t.PK+" = ?", []any{id}, &site); err != nil {
			return err
		}
	default:
		return nil
	}
	if site == 1 {
		return core.Errorf(core.Invalid, "%s %d is (at) the system site, this PLC's own: it cannot be bound to a peer", class, id)
	}
	return nil
}

// UnBindObjectFromPeer implements core.Peering: peer peerID's object
// becomes local (writable here). An object that is not that peer's is
// left as it is (as the original). A later refresh of the peer refuses
// the peer's copy of it while the local one holds its name.
func (s *Service) UnBindObjectFromPeer(ctx context.Context, c *core.Caller, class core.Class, id, peerID int64) error {
	if err := authorize(c, opUnBindObjectFromPeer); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		cur, err := o.peerObject(class, id)
		if err != nil {
			return err
		}
		if err := o.exists(core.Peer, peerID); err != nil {
			return err
		}
		if cur == nil || *cur != peerID {
			s.log.Info("unbind: the object is not the peer's; nothing changed", "class", class, "id", id, "peer", peerID)
			return nil
		}
		t, _ := table(class)
		if _, err := o.tx.Exec(o.ctx, "UPDATE "+t.SQL+" SET peer_id = NULL, peer_"+string(class)+"_id = NULL WHERE "+t.PK+" = ?", id); err != nil {
			return err
		}
		o.ch.all = true
		s.log.Info("object unbound from its peer", "class", class, "id", id, "peer", peerID, "by", callerName(c))
		return nil
	})
}

// DeleteAllPeerEntries implements core.Peering: every object of the peer
// is deleted here (as DeletePeer does) and the peer stays; its next
// refresh fetches them anew. The original's repair tool.
func (s *Service) DeleteAllPeerEntries(ctx context.Context, c *core.Caller, peerID int64) error {
	if err := authorize(c, opDeleteAllPeerEntries); err != nil {
		return err
	}
	return s.write(ctx, c, func(o *op) error {
		if err := o.exists(core.Peer, peerID); err != nil {
			return err
		}
		if err := o.deletePeerEntries(peerID); err != nil {
			return err
		}
		s.log.Info("every object of a peer deleted", "peer", peerID, "by", callerName(c))
		return nil
	})
}

// DefaultPLCName is GetPeerName's answer when Options.Name is empty.
const DefaultPLCName = "PlanetLab Central"

// GetPeerName implements core.Peering: this PLC's name (Options.Name).
func (s *Service) GetPeerName(ctx context.Context, c *core.Caller) (string, error) {
	if err := authorize(c, opGetPeerName); err != nil {
		return "", err
	}
	if s.opts.Name == "" {
		return DefaultPLCName, nil
	}
	return s.opts.Name, nil
}

func callerName(c *core.Caller) string {
	if c == nil {
		return "system"
	}
	return c.Email
}
