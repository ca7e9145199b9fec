package plcapi

import (
	"context"
	"strings"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/ticket"
)

// Role sets (reference plcapi.md §2.1).
const (
	rA  = core.RoleAdmin
	rP  = core.RolePI
	rU  = core.RoleUser
	rT  = core.RoleTech
	rN  = core.RoleNode
	rAN = core.RoleAnonymous
)

func roles(r ...string) []string { return r }

var (
	allPersons = roles(rA, rP, rU, rT)
	allNodes   = roles(rA, rP, rU, rT, rN)
	everyone   = roles(rA, rP, rU, rT, rN, rAN)
	adminOnly  = roles(rA)
)

func p(name string, t *typ) param   { return param{name: name, t: t} }
func opt(name string, t *typ) param { return param{name: name, t: t, optional: true} }
func one(x *call, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return int64(1), nil
}

// peering is the registry's core.Peering, if it federates.
func (x *call) peering() (core.Peering, error) {
	p, ok := x.reg().(core.Peering)
	if !ok {
		return nil, core.Errorf(core.Unimplemented, "this registry does not peer")
	}
	return p, nil
}

// peerByShortname finds the peer whose shortname is name (the original
// looks up the upper-cased name; any case matches here).
func (x *call) peerByShortname(name string) (int64, error) {
	ps, err := x.reg().Get(x.ctx, x.caller, core.Peer, nil, []string{"peer_id", "shortname"})
	if err != nil {
		return 0, err
	}
	var found []int64
	for _, p := range ps {
		if sn, ok := p["shortname"].(string); ok && strings.EqualFold(sn, name) {
			id, _ := asInt(p["peer_id"])
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return 0, core.Errorf(core.Invalid, "No such peer with shortname %s", name)
	}
	return found[0], nil
}

// --- generic builders -----------------------------------------------------

// mailer is the registry's core.Mailer, if it serves mail.
func (x *call) mailer() (core.Mailer, error) {
	m, ok := x.reg().(core.Mailer)
	if !ok {
		return nil, core.Errorf(core.Unimplemented, "this PLC sends no mail")
	}
	return m, nil
}

// mailM is VerifyPerson or ResetPassword(auth, person_id_or_email,
// [verification_key], [verification_expires]) -> 1 (admin).
func mailM(name, help string, fn func(x *call, m core.Mailer, who any, key string, exp int64) error) *method {
	return &method{
		name: name, roles: adminOnly, returns: tInt,
		params: []param{p("person_id_or_email", tIDOrName), opt("verification_key", null(str(254))), opt("verification_expires", null(tInt))},
		help:   help,
		fn: func(x *call, a []any) (any, error) {
			m, err := x.mailer()
			if err != nil {
				return nil, err
			}
			key, _ := a[1].(string)
			exp, _ := asInt(a[2])
			return one(x, fn(x, m, a[0], key, exp))
		},
	}
}

// getM is Get<Objs>(auth, [filter], [return_fields]).
func getM(name string, class core.Class, r []string, filterName string, bare bool) *method {
	return &method{
		name: name, roles: r,
		params:  []param{opt(filterName, filterT(bare)), opt("return_fields", tReturnField)},
		returns: arrayOf(structOf(nil)),
		help:    "Returns an array of structs describing the matching " + string(class) + " objects. The filter is a list of ids or names, or a struct of field filters; return_fields restricts the fields (and may name tags).",
		fn: func(x *call, a []any) (any, error) {
			return x.get(class, a[0], a[1])
		},
	}
}

// addM is Add<Obj>(auth, fields) -> new id.
func addM(name string, class core.Class, r []string, argName string, fields map[string]*typ, required ...string) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(argName, structOf(fields, required...))},
		returns: tInt,
		help:    "Adds a new " + string(class) + " and returns its id.",
		fn: func(x *call, a []any) (any, error) {
			return x.reg().Add(x.ctx, x.caller, class, record(a[0], fields))
		},
	}
}

// addUnderM is Add<Obj>(auth, parent_id_or_name, fields) -> new id; the
// resolved parent becomes field parentField.
func addUnderM(name string, class core.Class, r []string, parentName string, parentClass core.Class, parentT *typ, parentField, argName string, fields map[string]*typ, required ...string) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(parentName, parentT), p(argName, structOf(fields, required...))},
		returns: tInt,
		help:    "Adds a new " + string(class) + " to the given " + string(parentClass) + " and returns its id.",
		fn: func(x *call, a []any) (any, error) {
			pid, err := x.resolve(parentClass, a[0])
			if err != nil {
				return nil, err
			}
			rec := record(a[1], fields)
			rec[parentField] = pid
			return x.reg().Add(x.ctx, x.caller, class, rec)
		},
	}
}

// updateM is Update<Obj>(auth, id_or_name, fields) -> 1.
func updateM(name string, class core.Class, r []string, refName string, refT *typ, fields map[string]*typ) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(refName, refT), p(string(class)+"_fields", structOf(fields))},
		returns: tInt,
		help:    "Updates the fields of an existing " + string(class) + ". Returns 1 if successful.",
		fn: func(x *call, a []any) (any, error) {
			id, err := x.resolve(class, a[0])
			if err != nil {
				return nil, err
			}
			return one(x, x.reg().Update(x.ctx, x.caller, class, id, record(a[1], fields)))
		},
	}
}

// deleteM is Delete<Obj>(auth, id_or_name) -> 1.
func deleteM(name string, class core.Class, r []string, refName string, refT *typ) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(refName, refT)},
		returns: tInt,
		help:    "Deletes a " + string(class) + ". Returns 1 if successful.",
		fn: func(x *call, a []any) (any, error) {
			id, err := x.resolve(class, a[0])
			if err != nil {
				return nil, err
			}
			return one(x, x.reg().Delete(x.ctx, x.caller, class, id))
		},
	}
}

// linkM is Add<A>To<B>/Delete<A>From<B>(auth, first, second) -> 1 over a
// relation; swap says the relation's (a, b) order is (second, first).
func linkM(name string, add bool, rel core.Relation, r []string, n1 string, c1 core.Class, t1 *typ, n2 string, c2 core.Class, t2 *typ, swap bool) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(n1, t1), p(n2, t2)},
		returns: tInt,
		help:    "Adds or removes a " + string(rel) + " relation. Returns 1 if successful.",
		fn: func(x *call, a []any) (any, error) {
			id1, err := x.resolve(c1, a[0])
			if err != nil {
				return nil, err
			}
			ids2, err := x.resolveAll(c2, a[1])
			if err != nil {
				return nil, err
			}
			for _, id2 := range ids2 {
				ra, rb := id1, id2
				if swap {
					ra, rb = id2, id1
				}
				if add {
					err = x.reg().Link(x.ctx, x.caller, rel, ra, rb, nil)
				} else {
					err = x.reg().Unlink(x.ctx, x.caller, rel, ra, rb)
				}
				if err != nil {
					return nil, err
				}
			}
			return int64(1), nil
		},
	}
}

// addTagM is Add<Obj>Tag(auth, obj_id_or_name, tag_type_id_or_name, value).
func addTagM(name string, tagClass, objClass core.Class, objField string, r []string, objName string, objT *typ) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(objName, objT), p("tag_type_id_or_name", tIDOrName), p("value", tagValue)},
		returns: tInt,
		help:    "Sets the specified tag of the " + string(objClass) + " to the given value and returns the new tag id.",
		fn: func(x *call, a []any) (any, error) {
			oid, err := x.resolve(objClass, a[0])
			if err != nil {
				return nil, err
			}
			tid, err := x.resolve(core.TagType, a[1])
			if err != nil {
				return nil, err
			}
			return x.reg().Add(x.ctx, x.caller, tagClass, core.Record{objField: oid, "tag_type_id": tid, "value": a[2]})
		},
	}
}

// updateValueM is Update<Obj>Tag/UpdateIlink(auth, id, value) -> 1.
func updateValueM(name string, class core.Class, r []string, idName string) *method {
	return &method{
		name: name, roles: r,
		params:  []param{p(idName, tInt), p("value", tagValue)},
		returns: tInt,
		help:    "Updates the value of an existing " + string(class) + ". Returns 1 if successful.",
		fn: func(x *call, a []any) (any, error) {
			id, _ := asInt(a[0])
			return one(x, x.reg().Update(x.ctx, x.caller, class, id, core.Record{"value": a[1]}))
		},
	}
}

// lookupDeleter is implemented by registries that can delete lookup
// table names (the PLC service).
type lookupDeleter interface {
	DeleteLookup(ctx context.Context, c *core.Caller, class core.Class, name string) error
}

// lookupPK is the key field of each lookup table.
var lookupPK = map[core.Class]string{
	core.BootState: "boot_state", core.NodeType: "node_type", core.NetworkType: "type",
	core.NetworkMethod: "method", core.SliceInstantiation: "instantiation", core.KeyType: "key_type",
}

// lookupMs are Get<X>s() -> [string], Add<X>(name) and Delete<X>(name).
func lookupMs(singular, plural string, class core.Class, getRoles []string) []*method {
	pk := lookupPK[class]
	return []*method{
		{
			name: "Get" + plural, roles: getRoles, returns: arrayOf(tStr),
			help: "Returns an array of all valid " + pk + " values.",
			fn: func(x *call, a []any) (any, error) {
				recs, err := x.get(class, nil, []any{pk})
				if err != nil {
					return nil, err
				}
				out := make([]any, 0, len(recs))
				for _, r := range recs {
					out = append(out, r[pk])
				}
				return out, nil
			},
		},
		{
			name: "Add" + singular, roles: adminOnly, returns: tInt,
			params: []param{p("name", str(100))},
			help:   "Adds a new " + pk + " value. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				_, err := x.reg().Add(x.ctx, x.caller, class, core.Record{pk: a[0]})
				return one(x, err)
			},
		},
		{
			name: "Delete" + singular, roles: adminOnly, returns: tInt,
			params: []param{p("name", tStr)},
			help:   "Deletes a " + pk + " value. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				// Lookup tables are keyed by name, which Registry.Delete's
				// int id cannot express: the service offers DeleteLookup.
				d, ok := x.reg().(lookupDeleter)
				if !ok {
					return nil, core.Errorf(core.Unimplemented, "this registry cannot delete %s values", pk)
				}
				return one(x, d.DeleteLookup(x.ctx, x.caller, class, a[0].(string)))
			},
		},
	}
}

// methodTable returns every PLCAPI method this server implements.
func methodTable() []*method {
	ms := []*method{
		// Peers (docs/federation.md)
		addM("AddPeer", core.Peer, adminOnly, "peer_fields", peerFields, "peername", "peer_url", "key"),
		getM("GetPeers", core.Peer, roles(rA, rP, rU, rN), "peer_filter", true),
		updateM("UpdatePeer", core.Peer, adminOnly, "peer_id_or_peername", tIDOrName, peerFields),
		deleteM("DeletePeer", core.Peer, adminOnly, "peer_id_or_peername", tIDOrName),
		{
			name: "RefreshPeer", roles: adminOnly, returns: structOf(nil),
			params: []param{p("peer_id_or_peername", tIDOrName)},
			help:   "Fetches the peer's data now and stores it as foreign objects. Returns timers (seconds) and the counts of objects added, updated and deleted, and the objects refused with the reason.",
			fn: func(x *call, a []any) (any, error) {
				pr, err := x.peering()
				if err != nil {
					return nil, err
				}
				id, err := x.resolve(core.Peer, a[0])
				if err != nil {
					return nil, err
				}
				r, err := pr.RefreshPeer(x.ctx, x.caller, id)
				return map[string]any(r), err
			},
		},
		{
			name: "GetPeerData", roles: roles(rA, core.RolePeer), returns: structOf(nil),
			help: "Returns the local objects a peer caches as foreign objects: Sites, Keys, Nodes, Persons, Slices (for an admin: every local slice), PeerNodes and db_time. Peers call it signed at /api/v1/peer/data.",
			fn: func(x *call, a []any) (any, error) {
				pr, err := x.peering()
				if err != nil {
					return nil, err
				}
				r, err := pr.GetPeerData(x.ctx, x.caller)
				return map[string]any(r), err
			},
		},
		{
			name: "BindObjectToPeer", roles: adminOnly, returns: tInt,
			params: []param{p("object_type", tStr), p("object_id", tInt), p("shortname", tStr), p("remote_object_id", tInt)},
			help:   "Marks a local object (object_type site, person, slice, node or key) as the peer's (by its shortname), remote_object_id its id there (0 if unknown); it is read-only here from then on. Returns 1.",
			fn: func(x *call, a []any) (any, error) {
				pr, err := x.peering()
				if err != nil {
					return nil, err
				}
				peer, err := x.peerByShortname(a[2].(string))
				if err != nil {
					return nil, err
				}
				id, _ := asInt(a[1])
				remote, _ := asInt(a[3])
				return one(x, pr.BindObjectToPeer(x.ctx, x.caller, core.Class(strings.ToLower(a[0].(string))), id, peer, remote))
			},
		},
		{
			name: "UnBindObjectFromPeer", roles: adminOnly, returns: tInt,
			params: []param{p("object_type", tStr), p("object_id", tInt), p("shortname", tStr)},
			help:   "Makes the peer's object (object_type site, person, slice, node or key) local again; an object that is not the peer's is left as it is. Returns 1.",
			fn: func(x *call, a []any) (any, error) {
				pr, err := x.peering()
				if err != nil {
					return nil, err
				}
				peer, err := x.peerByShortname(a[2].(string))
				if err != nil {
					return nil, err
				}
				id, _ := asInt(a[1])
				return one(x, pr.UnBindObjectFromPeer(x.ctx, x.caller, core.Class(strings.ToLower(a[0].(string))), id, peer))
			},
		},
		{
			name: "DeleteAllPeerEntries", roles: adminOnly, returns: tInt,
			params: []param{p("peer_id_or_peername", tIDOrName)},
			help:   "Deletes every object of the peer here and keeps the peer (a repair tool: its next refresh fetches them anew). Returns 1.",
			fn: func(x *call, a []any) (any, error) {
				pr, err := x.peering()
				if err != nil {
					return nil, err
				}
				id, err := x.resolve(core.Peer, a[0])
				if err != nil {
					return nil, err
				}
				return one(x, pr.DeleteAllPeerEntries(x.ctx, x.caller, id))
			},
		},
		{
			name: "GetPeerName", roles: roles(rA, core.RolePeer, rN), returns: tStr,
			help: "Returns this PLC's name.",
			fn: func(x *call, a []any) (any, error) {
				pr, err := x.peering()
				if err != nil {
					return nil, err
				}
				return pr.GetPeerName(x.ctx, x.caller)
			},
		},

		// Sites and addresses
		addM("AddSite", core.Site, adminOnly, "site_fields", siteFields),
		getM("GetSites", core.Site, everyone, "site_filter", true),
		updateM("UpdateSite", core.Site, roles(rA, rP), "site_id_or_login_base", tIDOrName, siteFields),
		deleteM("DeleteSite", core.Site, adminOnly, "site_id_or_login_base", tIDOrName),
		addUnderM("AddSiteAddress", core.Address, roles(rA, rP), "site_id_or_login_base", core.Site, tIDOrName, "site_id", "address_fields", addressFields),
		getM("GetAddresses", core.Address, allNodes, "address_filter", false),
		updateM("UpdateAddress", core.Address, roles(rA, rP), "address_id", tInt, addressFields),
		deleteM("DeleteAddress", core.Address, roles(rA, rP), "address_id", tInt),
		addM("AddAddressType", core.AddressType, adminOnly, "address_type_fields", addressTypeFields),
		getM("GetAddressTypes", core.AddressType, everyone, "address_type_filter", false),
		updateM("UpdateAddressType", core.AddressType, adminOnly, "address_type_id_or_name", tIDOrName, addressTypeFields),
		deleteM("DeleteAddressType", core.AddressType, adminOnly, "address_type_id_or_name", tIDOrName),
		linkM("AddAddressTypeToAddress", true, core.AddressAddressType, roles(rA, rP), "address_type_id_or_name", core.AddressType, tIDOrName, "address_id", core.Address, tInt, true),
		linkM("DeleteAddressTypeFromAddress", false, core.AddressAddressType, roles(rA, rP), "address_type_id_or_name", core.AddressType, tIDOrName, "address_id", core.Address, tInt, true),
		addTagM("AddSiteTag", core.SiteTag, core.Site, "site_id", roles(rA, rP, rT, rU), "site_id", tIDOrName),
		getM("GetSiteTags", core.SiteTag, roles(rA, rP, rU, rN), "site_tag_filter", false),
		updateValueM("UpdateSiteTag", core.SiteTag, roles(rA, rP, rT, rU), "site_tag_id"),
		deleteM("DeleteSiteTag", core.SiteTag, roles(rA, rP, rU), "site_tag_id", tInt),

		// Persons, roles, keys
		addM("AddPerson", core.Person, roles(rA, rP), "person_fields", personFields),
		getM("GetPersons", core.Person, allNodes, "person_filter", true),
		updateM("UpdatePerson", core.Person, allPersons, "person_id_or_email", tIDOrName, personFields),
		deleteM("DeletePerson", core.Person, allPersons, "person_id_or_email", tIDOrName),
		linkM("AddPersonToSite", true, core.PersonSite, adminOnly, "person_id_or_email", core.Person, tIDOrName, "site_id_or_login_base", core.Site, tIDOrName, false),
		linkM("DeletePersonFromSite", false, core.PersonSite, adminOnly, "person_id_or_email", core.Person, tIDOrName, "site_id_or_login_base", core.Site, tIDOrName, false),
		{
			name: "SetPersonPrimarySite", roles: allPersons, returns: tInt,
			params: []param{p("person_id_or_email", tIDOrName), p("site_id_or_login_base", tIDOrName)},
			help:   "Makes the specified site the person's primary site. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				pid, err := x.resolve(core.Person, a[0])
				if err != nil {
					return nil, err
				}
				sid, err := x.resolve(core.Site, a[1])
				if err != nil {
					return nil, err
				}
				return one(x, x.reg().SetPersonPrimarySite(x.ctx, x.caller, pid, sid))
			},
		},
		linkM("AddRoleToPerson", true, core.PersonRole, roles(rA, rP), "role_id_or_name", core.Role, tIDOrName, "person_id_or_email", core.Person, tIDOrName, true),
		linkM("DeleteRoleFromPerson", false, core.PersonRole, roles(rA, rP), "role_id_or_name", core.Role, tIDOrName, "person_id_or_email", core.Person, tIDOrName, true),
		addTagM("AddPersonTag", core.PersonTag, core.Person, "person_id", roles(rA, rP, rT, rU), "person_id", tIDOrName),
		getM("GetPersonTags", core.PersonTag, allPersons, "person_tag_filter", false),
		updateValueM("UpdatePersonTag", core.PersonTag, roles(rA, rP, rU), "person_tag_id"),
		deleteM("DeletePersonTag", core.PersonTag, roles(rA, rP, rU), "person_tag_id", tInt),
		getM("GetRoles", core.Role, allNodes, "role_filter", false),
		{
			name: "AddRole", roles: adminOnly, returns: tInt,
			params: []param{p("role_id", tInt), p("name", str(100))},
			help:   "Adds a new role. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				id, _ := asInt(a[0])
				_, err := x.reg().Add(x.ctx, x.caller, core.Role, core.Record{"role_id": id, "name": a[1]})
				return one(x, err)
			},
		},
		deleteM("DeleteRole", core.Role, adminOnly, "role_id_or_name", tIDOrName),
		linkM("AddRoleToTagType", true, core.TagTypeRole, adminOnly, "role_id_or_name", core.Role, tIDOrName, "tag_type_id_or_tagname", core.TagType, tIDOrName, true),
		linkM("DeleteRoleFromTagType", false, core.TagTypeRole, adminOnly, "role_id_or_name", core.Role, tIDOrName, "tag_type_id_or_tagname", core.TagType, tIDOrName, true),
		addUnderM("AddPersonKey", core.Key, roles(rA, rP, rT, rU), "person_id_or_email", core.Person, tIDOrName, "person_id", "key_fields", keyFields, "key_type", "key"),
		getM("GetKeys", core.Key, allNodes, "key_filter", false),
		updateM("UpdateKey", core.Key, roles(rA, rP, rT, rU), "key_id", tInt, keyFields),
		deleteM("DeleteKey", core.Key, roles(rA, rP, rT, rU), "key_id", tInt),
		{
			name: "BlacklistKey", roles: adminOnly, returns: tInt,
			params: []param{p("key_id", tInt)},
			help:   "Blacklists a key: every key with the same material is hidden and can never be added again. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				id, _ := asInt(a[0])
				return one(x, x.reg().BlacklistKey(x.ctx, x.caller, id))
			},
		},

		// Mail (served when the registry is a core.Mailer: the service)
		mailM("VerifyPerson", "Without verification_key, mails a new (disabled) person a link to verify the address (one pending at a time, 24 hours or until verification_expires); with it, checks the key and ends the link. An expired key gets a new link mailed and a fault. Returns 1 if the key is valid.",
			func(x *call, m core.Mailer, who any, key string, exp int64) error {
				return m.VerifyPerson(x.ctx, x.caller, who, key, exp)
			}),
		mailM("ResetPassword", "Without verification_key, mails an enabled non-admin person a link to reset the password (one pending at a time); with it, checks the key, sets a new random password and mails it. Returns 1 if successful.",
			func(x *call, m core.Mailer, who any, key string, exp int64) error {
				return m.ResetPassword(x.ctx, x.caller, who, key, exp)
			}),
		{
			name: "NotifyPersons", roles: roles(rA, rN), returns: tInt,
			params: []param{p("person_filter", filterT(false)), p("subject", tStr), p("body", tStr)},
			help:   "Sends an e-mail message to the persons the filter selects (ids, e-mails or a struct of fields). Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				m, err := x.mailer()
				if err != nil {
					return nil, err
				}
				f, err := core.ParseFilter(a[0])
				if err != nil {
					return nil, err
				}
				return one(x, m.NotifyPersons(x.ctx, x.caller, f, a[1].(string), a[2].(string)))
			},
		},
		{
			name: "NotifySupport", roles: adminOnly, returns: tInt,
			params: []param{p("subject", tStr), p("body", tStr)},
			help:   "Sends an e-mail message to the configured support address. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				m, err := x.mailer()
				if err != nil {
					return nil, err
				}
				return one(x, m.NotifySupport(x.ctx, x.caller, a[0].(string), a[1].(string)))
			},
		},

		// Tag types and node groups
		addM("AddTagType", core.TagType, adminOnly, "tag_type_fields", tagTypeFields, "tagname"),
		getM("GetTagTypes", core.TagType, allNodes, "tag_type_filter", false),
		updateM("UpdateTagType", core.TagType, adminOnly, "tag_type_id_or_name", tIDOrName, tagTypeFields),
		deleteM("DeleteTagType", core.TagType, adminOnly, "tag_type_id_or_name", tIDOrName),
		{
			name: "AddNodeGroup", roles: adminOnly, returns: tInt,
			params: []param{p("groupname", str(50)), p("tag_type_id_or_tagname", tIDOrName), p("value", str(254))},
			help:   "Adds a node group: the nodes whose tag of the given type has the given value. Returns the new nodegroup_id.",
			fn: func(x *call, a []any) (any, error) {
				tid, err := x.resolve(core.TagType, a[1])
				if err != nil {
					return nil, err
				}
				return x.reg().Add(x.ctx, x.caller, core.NodeGroup, core.Record{"groupname": a[0], "tag_type_id": tid, "value": a[2]})
			},
		},
		getM("GetNodeGroups", core.NodeGroup, everyone, "nodegroup_filter", false),
		updateM("UpdateNodeGroup", core.NodeGroup, adminOnly, "nodegroup_id_or_name", tIDOrName, nodeGroupFields),
		deleteM("DeleteNodeGroup", core.NodeGroup, adminOnly, "nodegroup_id_or_name", tIDOrName),

		// Nodes, interfaces, ilinks
		addUnderM("AddNode", core.Node, roles(rA, rP, rT), "site_id_or_login_base", core.Site, tIDOrName, "site_id", "node_fields", nodeFields),
		getM("GetNodes", core.Node, everyone, "node_filter", true),
		updateM("UpdateNode", core.Node, roles(rA, rP, rT), "node_id_or_hostname", tIDOrName, nodeFields),
		deleteM("DeleteNode", core.Node, roles(rA, rP, rT), "node_id_or_hostname", tIDOrName),
		addTagM("AddNodeTag", core.NodeTag, core.Node, "node_id", roles(rA, rP, rT, rU), "node_id_or_hostname", tIDOrName),
		getM("GetNodeTags", core.NodeTag, everyone, "node_tag_filter", false),
		updateValueM("UpdateNodeTag", core.NodeTag, roles(rA, rP, rT, rU), "node_tag_id"),
		deleteM("DeleteNodeTag", core.NodeTag, roles(rA, rP, rT, rU), "node_tag_id", tInt),
		addUnderM("AddInterface", core.Interface, roles(rA, rP, rT), "node_id_or_hostname", core.Node, tIDOrName, "node_id", "interface_fields", interfaceFields),
		getM("GetInterfaces", core.Interface, everyone, "interface_filter", false),
		updateM("UpdateInterface", core.Interface, roles(rA, rP, rT), "interface_id", tInt, interfaceFields),
		deleteM("DeleteInterface", core.Interface, roles(rA, rP, rT), "interface_id", tInt),
		addTagM("AddInterfaceTag", core.InterfaceTag, core.Interface, "interface_id", roles(rA, rP, rT, rU), "interface_id", tInt),
		getM("GetInterfaceTags", core.InterfaceTag, allNodes, "interface_tag_filter", false),
		updateValueM("UpdateInterfaceTag", core.InterfaceTag, roles(rA, rP, rT, rU), "interface_tag_id"),
		deleteM("DeleteInterfaceTag", core.InterfaceTag, roles(rA, rP, rT, rU), "interface_tag_id", tInt),
		{
			name: "AddIlink", roles: roles(rA, rP, rT, rU), returns: tInt,
			params: []param{p("src_interface_id", tInt), p("dst_interface_id", tInt), p("tag_type_id_or_name", tIDOrName), p("value", tagValue)},
			help:   "Creates a link between two interfaces and returns its ilink_id.",
			fn: func(x *call, a []any) (any, error) {
				src, err := x.resolve(core.Interface, a[0])
				if err != nil {
					return nil, err
				}
				dst, err := x.resolve(core.Interface, a[1])
				if err != nil {
					return nil, err
				}
				tid, err := x.resolve(core.TagType, a[2])
				if err != nil {
					return nil, err
				}
				return x.reg().Add(x.ctx, x.caller, core.Ilink, core.Record{"src_interface_id": src, "dst_interface_id": dst, "tag_type_id": tid, "value": a[3]})
			},
		},
		getM("GetIlinks", core.Ilink, roles(rA, rP, rU, rN), "ilink_filter", false),
		updateValueM("UpdateIlink", core.Ilink, roles(rA, rP, rT, rU), "ilink_id"),
		deleteM("DeleteIlink", core.Ilink, roles(rA, rP, rU), "ilink_id", tInt),

		// PCUs
		addUnderM("AddPCU", core.PCU, roles(rA, rP, rT), "site_id_or_login_base", core.Site, tIDOrName, "site_id", "pcu_fields", pcuFields),
		getM("GetPCUs", core.PCU, roles(rA, rP, rT, rN), "pcu_filter", false),
		updateM("UpdatePCU", core.PCU, roles(rA, rP, rT), "pcu_id", tInt, pcuFields),
		deleteM("DeletePCU", core.PCU, roles(rA, rP, rT), "pcu_id", tInt),
		{
			name: "AddNodeToPCU", roles: roles(rA, rP, rT), returns: tInt,
			params: []param{p("node_id_or_hostname", tIDOrName), p("pcu_id", tInt), p("port", tInt)},
			help:   "Adds a node to a port on a PCU. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				nid, err := x.resolve(core.Node, a[0])
				if err != nil {
					return nil, err
				}
				pid, err := x.resolve(core.PCU, a[1])
				if err != nil {
					return nil, err
				}
				port, _ := asInt(a[2])
				return one(x, x.reg().Link(x.ctx, x.caller, core.NodePCU, nid, pid, core.Record{"port": port}))
			},
		},
		linkM("DeleteNodeFromPCU", false, core.NodePCU, roles(rA, rP, rT), "node_id_or_hostname", core.Node, tIDOrName, "pcu_id", core.PCU, tInt, false),

		// Conf files and init scripts
		addM("AddConfFile", core.ConfFile, adminOnly, "conf_file_fields", confFileFields),
		getM("GetConfFiles", core.ConfFile, roles(rA, rN), "conf_file_filter", false),
		updateM("UpdateConfFile", core.ConfFile, adminOnly, "conf_file_id", tInt, confFileFields),
		deleteM("DeleteConfFile", core.ConfFile, adminOnly, "conf_file_id", tInt),
		linkM("AddConfFileToNode", true, core.ConfFileNode, adminOnly, "conf_file_id", core.ConfFile, tInt, "node_id_or_hostname", core.Node, tIDOrName, false),
		linkM("DeleteConfFileFromNode", false, core.ConfFileNode, adminOnly, "conf_file_id", core.ConfFile, tInt, "node_id_or_hostname", core.Node, tIDOrName, false),
		linkM("AddConfFileToNodeGroup", true, core.ConfFileNodeGroup, adminOnly, "conf_file_id", core.ConfFile, tInt, "nodegroup_id_or_name", core.NodeGroup, tIDOrName, false),
		linkM("DeleteConfFileFromNodeGroup", false, core.ConfFileNodeGroup, adminOnly, "conf_file_id", core.ConfFile, tInt, "nodegroup_id_or_name", core.NodeGroup, tIDOrName, false),
		addM("AddInitScript", core.InitScriptClass, adminOnly, "initscript_fields", initScriptFields),
		getM("GetInitScripts", core.InitScriptClass, allNodes, "initscript_filter", false),
		updateM("UpdateInitScript", core.InitScriptClass, adminOnly, "initscript_id", tInt, initScriptFields),
		deleteM("DeleteInitScript", core.InitScriptClass, adminOnly, "initscript_id_or_name", tIDOrName),

		// Slices
		addM("AddSlice", core.Slice, roles(rA, rP), "slice_fields", sliceFields),
		getM("GetSlices", core.Slice, roles(rA, rP, rU, rN), "slice_filter", true),
		updateM("UpdateSlice", core.Slice, roles(rA, rP, rU), "slice_id_or_name", tIDOrName, sliceFields),
		deleteM("DeleteSlice", core.Slice, roles(rA, rP, rU), "slice_id_or_name", tIDOrName),
		linkM("AddSliceToNodes", true, core.SliceNode, roles(rA, rP, rU), "slice_id_or_name", core.Slice, tIDOrName, "node_id_or_hostname_list", core.Node, tIDsOrNames, false),
		linkM("DeleteSliceFromNodes", false, core.SliceNode, roles(rA, rP, rU), "slice_id_or_name", core.Slice, tIDOrName, "node_id_or_hostname_list", core.Node, tIDsOrNames, false),
		linkM("AddSliceToNodesWhitelist", true, core.SliceNodeWhitelist, adminOnly, "slice_id_or_name", core.Slice, tIDOrName, "node_id_or_hostname_list", core.Node, tIDsOrNames, false),
		linkM("DeleteSliceFromNodesWhitelist", false, core.SliceNodeWhitelist, adminOnly, "slice_id_or_name", core.Slice, tIDOrName, "node_id_or_hostname_list", core.Node, tIDsOrNames, false),
		linkM("AddPersonToSlice", true, core.SlicePerson, roles(rA, rP), "person_id_or_email", core.Person, tIDOrName, "slice_id_or_name", core.Slice, tIDOrName, true),
		linkM("DeletePersonFromSlice", false, core.SlicePerson, roles(rA, rP), "person_id_or_email", core.Person, tIDOrName, "slice_id_or_name", core.Slice, tIDOrName, true),
		{
			name: "AddSliceTag", roles: roles(rA, rP, rU, rN), returns: tInt,
			params: []param{
				p("slice_id_or_name", tIDOrName), p("tag_type_id_or_name", tIDOrName), p("value", tagValue),
				opt("node_id_or_hostname", null(tIDOrName)), opt("nodegroup_id_or_name", null(tIDOrName)),
			},
			help: "Sets a slice tag, optionally only on one node (a sliver tag) or one node group, and returns the new slice_tag_id.",
			fn: func(x *call, a []any) (any, error) {
				sid, err := x.resolve(core.Slice, a[0])
				if err != nil {
					return nil, err
				}
				tid, err := x.resolve(core.TagType, a[1])
				if err != nil {
					return nil, err
				}
				rec := core.Record{"slice_id": sid, "tag_type_id": tid, "value": a[2]}
				if a[3] != nil {
					if rec["node_id"], err = x.resolve(core.Node, a[3]); err != nil {
						return nil, err
					}
				}
				if a[4] != nil {
					if rec["nodegroup_id"], err = x.resolve(core.NodeGroup, a[4]); err != nil {
						return nil, err
					}
				}
				return x.reg().Add(x.ctx, x.caller, core.SliceTag, rec)
			},
		},
		getM("GetSliceTags", core.SliceTag, roles(rA, rP, rU, rN), "slice_tag_filter", false),
		updateValueM("UpdateSliceTag", core.SliceTag, roles(rA, rP, rU, rN), "slice_tag_id"),
		deleteM("DeleteSliceTag", core.SliceTag, roles(rA, rP, rU, rT, rN), "slice_tag_id", tInt),

		{
			name: "GetSliceTicket", roles: roles(rA, rP, rU), returns: tStr,
			params: []param{p("slice_id_or_name", tIDOrName)},
			help:   "Returns a ticket for the slice on its nodes, valid for a day (at most until the slice expires), signed by PLC with Ed25519 over a canonical JSON encoding (docs/brokering.md); node managers honour it without asking PLC.",
			fn: func(x *call, a []any) (any, error) {
				iss, ok := x.reg().(ticket.Issuer)
				if !ok {
					return nil, core.Errorf(core.Unimplemented, "this PLC issues no tickets")
				}
				id, err := x.resolve(core.Slice, a[0])
				if err != nil {
					return nil, err
				}
				return iss.SliceTicket(x.ctx, x.caller, ticket.Request{SliceID: id})
			},
		},
		// Leases
		{
			name: "AddLeases", roles: roles(rA, rP, rU), returns: structOf(nil),
			params: []param{p("node_id_or_hostname_list", mixed(tInt, tStr, tIDsOrNames)), p("slice_id_or_name", tIDOrName), p("t_from", tTime), p("t_until", tTime)},
			help:   "Reserves nodes for a slice between t_from and t_until (ints or 'YYYY-MM-DD HH:MM:SS' UTC strings, rounded to the lease granularity). Returns {'new_ids': [...], 'errors': [...]}.",
			fn:     addLeases,
		},
		getM("GetLeases", core.Lease, roles(rA, rP, rU, rN, rAN), "lease_filter", false),
		{
			name: "UpdateLeases", roles: roles(rA, rP, rT, rU), returns: structOf(nil),
			params: []param{p("lease_ids", mixed(tInt, arrayOf(tInt))), p("input_fields", structOf(leaseUpdateFields))},
			help:   "Updates t_from, t_until or duration of leases. Returns {'updated_ids': [...], 'errors': [...]}.",
			fn:     updateLeases,
		},
		{
			name: "DeleteLeases", roles: roles(rA, rP, rT, rU), returns: tInt,
			params: []param{p("lease_ids", mixed(tInt, arrayOf(tInt)))},
			help:   "Deletes leases. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				ids, err := x.resolveAll(core.Lease, a[0])
				if err != nil {
					return nil, err
				}
				for _, id := range ids {
					if err := x.reg().Delete(x.ctx, x.caller, core.Lease, id); err != nil {
						return nil, err
					}
				}
				return int64(1), nil
			},
		},
		{
			name: "GetLeaseGranularity", roles: everyone, returns: tInt,
			help: "Returns the lease granularity in seconds.",
			fn: func(x *call, a []any) (any, error) {
				// The service owns the granularity when it says it.
				if g, ok := x.reg().(interface{ LeaseGranularity() int64 }); ok {
					return g.LeaseGranularity(), nil
				}
				return x.h.opts.LeaseGranularity, nil
			},
		},
	}
	ms = append(ms, lookupMs("BootState", "BootStates", core.BootState, everyone)...)
	ms = append(ms, lookupMs("NodeType", "NodeTypes", core.NodeType, everyone)...)
	ms = append(ms, lookupMs("NetworkType", "NetworkTypes", core.NetworkType, everyone)...)
	ms = append(ms, lookupMs("NetworkMethod", "NetworkMethods", core.NetworkMethod, everyone)...)
	ms = append(ms, lookupMs("SliceInstantiation", "SliceInstantiations", core.SliceInstantiation, everyone)...)
	ms = append(ms, lookupMs("KeyType", "KeyTypes", core.KeyType, allNodes)...)
	ms = append(ms, nodeMethods()...)
	ms = append(ms, accessorMethods()...)
	ms = append(ms, systemMethods()...)
	return ms
}
